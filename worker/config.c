/*
 * The config parser: a tokenizer that tracks line numbers, then one
 * small handler per directive.  Every error names the file and line.
 */

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wh_channel.h"
#include "config.h"


#define WH_CONF_MAX_ARGS  32
#define WH_CONF_MAX_FILE  (1024 * 1024)
#define WH_CONF_MAX_PASS  4096

typedef struct {
    const char  *file;
    int          line;            /* of the directive's first token */
    int          nargs;
    char        *args[WH_CONF_MAX_ARGS];
} wh_stmt_t;

typedef int (*wh_directive_pt)(wh_config_t *cf, wh_stmt_t *st,
    wh_err_t *err);

typedef struct {
    const char       *name;
    wh_directive_pt   handler;
    int               repeatable;
    int               seen;
} wh_directive_t;


static int
wh_conf_error(wh_err_t *err, wh_stmt_t *st, const char *fmt,
    const char *arg)
{
    char  what[200];

    snprintf(what, sizeof(what), fmt, arg);

    return wh_err(err, 1, "%s:%d: %s", st->file, st->line, what);
}


int
wh_config_size(const char *s, size_t *out)
{
    char                *end;
    unsigned long long   v, mul = 1;

    if (!isdigit((unsigned char) s[0])) {
        return -1;
    }

    errno = 0;
    v = strtoull(s, &end, 10);

    if (errno != 0) {
        return -1;
    }

    switch (*end) {
    case 'k': case 'K':
        mul = 1024ULL;
        end++;
        break;
    case 'm': case 'M':
        mul = 1024ULL * 1024;
        end++;
        break;
    case 'g': case 'G':
        mul = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }

    if (*end != '\0' || v > (unsigned long long) SIZE_MAX / mul) {
        return -1;
    }

    *out = (size_t) (v * mul);

    return 0;
}


int
wh_config_duration(const char *s, int64_t *out)
{
    char                *end;
    unsigned long long   v, mul;

    if (!isdigit((unsigned char) s[0])) {
        return -1;
    }

    errno = 0;
    v = strtoull(s, &end, 10);

    if (errno != 0) {
        return -1;
    }

    if (strcmp(end, "ms") == 0) {
        mul = 1;
    } else if (strcmp(end, "s") == 0 || *end == '\0') {
        mul = 1000;
    } else if (strcmp(end, "m") == 0) {
        mul = 60000;
    } else if (strcmp(end, "h") == 0) {
        mul = 3600000;
    } else if (strcmp(end, "d") == 0) {
        mul = 86400000;
    } else {
        return -1;
    }

    if (v > (unsigned long long) INT64_MAX / mul) {
        return -1;
    }

    *out = (int64_t) (v * mul);

    return 0;
}


static int
wh_conf_strdup(char **dst, const char *src, wh_err_t *err)
{
    free(*dst);
    *dst = strdup(src);

    return *dst ? 0 : wh_err(err, 1, "out of memory");
}


/* "key=value": returns value if arg starts with key=, else NULL */
static const char *
wh_conf_key(const char *arg, const char *key)
{
    size_t  n = strlen(key);

    if (strncmp(arg, key, n) == 0 && arg[n] == '=') {
        return arg + n + 1;
    }

    return NULL;
}


/* "0660": octal permission bits, at most 0777 */
static int
wh_conf_mode(const char *s, unsigned *mode)
{
    char           *end;
    unsigned long   v;

    if (*s < '0' || *s > '7') {
        return -1;
    }

    errno = 0;
    v = strtoul(s, &end, 8);

    if (errno != 0 || *end != '\0' || v > 0777) {
        return -1;
    }

    *mode = (unsigned) v;

    return 0;
}


static int
wh_conf_group(const char *name, gid_t *gid)
{
    struct group  *gr;

    gr = getgrnam(name);

    if (gr == NULL) {
        return -1;
    }

    *gid = gr->gr_gid;

    return 0;
}


static int
wh_conf_peer_add(wh_config_t *cf, uid_t uid, wh_err_t *err)
{
    unsigned   i;
    uid_t     *peers;

    for (i = 0; i < cf->npeers; i++) {
        if (cf->peers[i] == uid) {
            return 0;
        }
    }

    peers = realloc(cf->peers, (cf->npeers + 1) * sizeof(uid_t));

    if (peers == NULL) {
        return wh_err(err, 1, "out of memory");
    }

    cf->peers = peers;
    cf->peers[cf->npeers++] = uid;

    return 0;
}


/* "www-data,nginx": user names (or numeric uids) */
static int
wh_conf_peers(wh_config_t *cf, wh_stmt_t *st, const char *v, wh_err_t *err)
{
    char           name[128], *end = name;
    size_t         n;
    const char    *p = v;
    unsigned long  uid;
    struct passwd *pw;

    cf->npeers = 0;

    for ( ;; ) {
        n = strcspn(p, ",");

        if (n == 0 || n >= sizeof(name)) {
            return wh_conf_error(err, st, "invalid peers \"%s\" (user "
                                 "names separated by commas)", v);
        }

        memcpy(name, p, n);
        name[n] = '\0';
        pw = getpwnam(name);
        errno = 0;
        uid = pw ? (unsigned long) pw->pw_uid : strtoul(name, &end, 10);

        if (pw == NULL && (!isdigit((unsigned char) name[0]) || *end != '\0'
                           || errno != 0 || uid >= (uid_t) -1))
        {
            return wh_conf_error(err, st, "unknown user \"%s\" in peers",
                                 name);
        }

        if (wh_conf_peer_add(cf, (uid_t) uid, err) != 0) {
            return -1;
        }

        if (p[n] == '\0') {
            return 0;
        }

        p += n + 1;
    }
}


int
wh_config_default_peers(wh_config_t *cf, wh_err_t *err)
{
    struct passwd  *pw;

    if (cf->npeers != 0) {
        return 0;
    }

    if (wh_conf_peer_add(cf, 0, err) != 0
        || wh_conf_peer_add(cf, geteuid(), err) != 0)
    {
        return -1;
    }

    if (cf->listen_gid == (gid_t) -1) {
        return 0;
    }

    setpwent();

    while ((pw = getpwent()) != NULL) {
        if (pw->pw_gid == cf->listen_gid
            && wh_conf_peer_add(cf, pw->pw_uid, err) != 0)
        {
            endpwent();
            return -1;
        }
    }

    endpwent();

    return 0;
}


static int
wh_conf_listen_params(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i;
    const char  *v;

    for (i = 2; i < st->nargs; i++) {
        if ((v = wh_conf_key(st->args[i], "group")) != NULL) {
            if (wh_conf_group(v, &cf->listen_gid) != 0) {
                return wh_conf_error(err, st, "unknown group \"%s\"", v);
            }

        } else if ((v = wh_conf_key(st->args[i], "mode")) != NULL) {
            if (wh_conf_mode(v, &cf->listen_mode) != 0) {
                return wh_conf_error(err, st, "invalid mode \"%s\" "
                                     "(octal, at most 0777)", v);
            }

        } else if ((v = wh_conf_key(st->args[i], "peers")) != NULL) {
            if (wh_conf_peers(cf, st, v, err) != 0) {
                return -1;
            }

        } else {
            return wh_conf_error(err, st, "unknown listen parameter "
                                 "\"%s\"", st->args[i]);
        }
    }

    return 0;
}


static int
wh_conf_listen(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    const char  *path;

    if (st->nargs < 2) {
        return wh_conf_error(err, st, "\"%s\" needs an address",
                             "listen");
    }

    if (strncmp(st->args[1], "unix:", 5) != 0 || st->args[1][5] != '/') {
        return wh_conf_error(err, st, "invalid listen address \"%s\" "
                             "(expected unix:/absolute/path)",
                             st->args[1]);
    }

    path = st->args[1] + 5;

    if (strlen(path) >= 108) {
        return wh_conf_error(err, st, "socket path \"%s\" is too long",
                             path);
    }

    if (wh_conf_listen_params(cf, st, err) != 0) {
        return -1;
    }

    return wh_conf_strdup(&cf->listen, path, err);
}


static int
wh_conf_storage(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i;
    const char  *v;

    if (st->nargs < 2 || st->args[1][0] == '\0'
        || strchr(st->args[1], '=') != NULL)
    {
        return wh_conf_error(err, st, "\"%s\" needs a directory",
                             "storage");
    }

    for (i = 2; i < st->nargs; i++) {
        if ((v = wh_conf_key(st->args[i], "map_size")) != NULL) {
            if (wh_config_size(v, &cf->map_size) != 0
                || cf->map_size < 1024 * 1024)
            {
                return wh_conf_error(err, st, "invalid map_size \"%s\" "
                                     "(at least 1m)", v);
            }

        } else if ((v = wh_conf_key(st->args[i], "max_map_size")) != NULL) {
            if (wh_config_size(v, &cf->max_map_size) != 0) {
                return wh_conf_error(err, st, "invalid max_map_size "
                                     "\"%s\"", v);
            }

        } else {
            return wh_conf_error(err, st, "unknown storage parameter "
                                 "\"%s\"", st->args[i]);
        }
    }

    if (cf->max_map_size != 0 && cf->max_map_size < cf->map_size) {
        return wh_conf_error(err, st, "%s is below map_size",
                             "max_map_size");
    }

    return wh_conf_strdup(&cf->storage, st->args[1], err);
}


static int
wh_conf_history(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i;
    size_t       n;
    const char  *v;

    for (i = 1; i < st->nargs; i++) {
        if ((v = wh_conf_key(st->args[i], "length")) != NULL) {
            if (wh_config_size(v, &n) != 0 || n < 1 || n > 100000000) {
                return wh_conf_error(err, st, "invalid history length "
                                     "\"%s\"", v);
            }

            cf->history_length = (uint32_t) n;

        } else if ((v = wh_conf_key(st->args[i], "ttl")) != NULL) {
            if (wh_config_duration(v, &cf->history_ttl_ms) != 0) {
                return wh_conf_error(err, st, "invalid history ttl \"%s\"",
                                     v);
            }

        } else if ((v = wh_conf_key(st->args[i], "replay_page")) != NULL) {
            if (wh_config_size(v, &n) != 0 || n < 1 || n > 100000) {
                return wh_conf_error(err, st, "invalid history replay_page "
                                     "\"%s\"", v);
            }

            cf->replay_page = (uint32_t) n;

        } else {
            return wh_conf_error(err, st, "unknown history parameter "
                                 "\"%s\"", st->args[i]);
        }
    }

    return 0;
}


static int
wh_conf_stats(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i;
    const char  *v;

    for (i = 1; i < st->nargs; i++) {
        v = wh_conf_key(st->args[i], "interval");

        if (v == NULL) {
            return wh_conf_error(err, st, "unknown stats parameter \"%s\"",
                                 st->args[i]);
        }

        if (wh_config_duration(v, &cf->stats_interval_ms) != 0
            || cf->stats_interval_ms < 100)
        {
            return wh_conf_error(err, st, "invalid stats interval \"%s\" "
                                 "(at least 100ms)", v);
        }
    }

    return 0;
}


static int
wh_conf_log(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i;
    const char  *v;

    if (st->nargs < 2 || st->nargs > 4) {
        return wh_conf_error(err, st, "\"%s\" takes a target, an "
                             "optional level and format=", "log");
    }

    for (i = 2; i < st->nargs; i++) {
        if ((v = wh_conf_key(st->args[i], "format")) != NULL) {
            if (wh_log_format(v, &cf->log_format) != 0) {
                return wh_conf_error(err, st, "unknown log format \"%s\" "
                                     "(text or json)", v);
            }

        } else if (wh_log_level(st->args[i], &cf->log_level) != 0) {
            return wh_conf_error(err, st, "unknown log level \"%s\"",
                                 st->args[i]);
        }
    }

    if (strcmp(st->args[1], "stderr") == 0) {
        free(cf->log_path);
        cf->log_path = NULL;
        return 0;
    }

    if (st->args[1][0] != '/') {
        return wh_conf_error(err, st, "log target \"%s\" is neither "
                             "stderr nor an absolute path", st->args[1]);
    }

    return wh_conf_strdup(&cf->log_path, st->args[1], err);
}


/* the first line of a password file, without its line end, into *dst */
static int
wh_conf_password(char **dst, wh_stmt_t *st, const char *file,
    wh_err_t *err)
{
    FILE    *f;
    char     buf[WH_CONF_MAX_PASS + 2];
    size_t   n;

    f = fopen(file, "r");

    if (f == NULL) {
        return wh_conf_error(err, st, "cannot open password_file \"%s\"",
                             file);
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';

    if (n > WH_CONF_MAX_PASS || buf[0] == '\0') {
        return wh_conf_error(err, st, "password_file \"%s\" is empty or "
                             "too long", file);
    }

    free(*dst);
    *dst = strdup(buf);
    memset(buf, 0, sizeof(buf));

    return *dst ? 0 : wh_err(err, 1, "out of memory");
}


static int
wh_conf_readable(wh_stmt_t *st, char **dst, const char *file,
    wh_err_t *err)
{
    if (access(file, R_OK) != 0) {
        return wh_conf_error(err, st, "cannot read \"%s\"", file);
    }

    return wh_conf_strdup(dst, file, err);
}


static int
wh_conf_int(const char *v, long min, long max, int *out)
{
    char  *end;
    long   n;

    if (*v < '0' || *v > '9') {
        return -1;
    }

    errno = 0;
    n = strtol(v, &end, 10);

    if (errno != 0 || *end != '\0' || n < min || n > max) {
        return -1;
    }

    *out = (int) n;

    return 0;
}


/* an IP address literal needs no resolver */
static int
wh_conf_numeric_host(const char *host)
{
    struct addrinfo   hints, *res;

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        return 0;
    }

    freeaddrinfo(res);

    return 1;
}


static int
wh_conf_mqtt_time(const char *v, int64_t *ms)
{
    return wh_config_duration(v, ms) != 0 || *ms < 10 || *ms > 3600000
           ? -1 : 0;
}


static int
wh_conf_mqtt_arg(wh_config_t *cf, wh_stmt_t *st, const char *arg,
    wh_err_t *err)
{
    int64_t          ka;
    const char      *v;
    wh_mqtt_conf_t  *mq = &cf->mqtt;

    if ((v = wh_conf_key(arg, "host")) != NULL) {
        if (*v == '\0' || strlen(v) > 253) {
            return wh_conf_error(err, st, "invalid mqtt host \"%s\"", v);
        }

        mq->numeric = wh_conf_numeric_host(v);
        return wh_conf_strdup(&mq->host, v, err);
    }

    if ((v = wh_conf_key(arg, "port")) != NULL) {
        return wh_conf_int(v, 1, 65535, &mq->port) == 0 ? 0
               : wh_conf_error(err, st, "invalid mqtt port \"%s\"", v);
    }

    if ((v = wh_conf_key(arg, "client_id")) != NULL) {
        if (*v == '\0' || strlen(v) > 128) {
            return wh_conf_error(err, st, "invalid mqtt client_id \"%s\"",
                                 v);
        }

        return wh_conf_strdup(&mq->client_id, v, err);
    }

    if ((v = wh_conf_key(arg, "keepalive")) != NULL) {
        if (wh_config_duration(v, &ka) != 0 || ka < 5000
            || ka > 65535000)
        {
            return wh_conf_error(err, st, "invalid mqtt keepalive \"%s\" "
                                 "(5s to 65535s)", v);
        }

        mq->keepalive = (int) (ka / 1000);
        return 0;
    }

    if ((v = wh_conf_key(arg, "qos")) != NULL) {
        return wh_conf_int(v, 0, 1, &mq->qos) == 0 ? 0
               : wh_conf_error(err, st, "invalid mqtt qos \"%s\" (0 or 1)",
                               v);
    }

    if ((v = wh_conf_key(arg, "max_payload")) != NULL) {
        return wh_config_size(v, &mq->max_payload) == 0
               && mq->max_payload >= 16
               && mq->max_payload <= 8 * 1024 * 1024 ? 0
               : wh_conf_error(err, st, "invalid max_payload \"%s\" "
                               "(16 to 8m)", v);
    }

    if ((v = wh_conf_key(arg, "reconnect_min")) != NULL) {
        return wh_conf_mqtt_time(v, &mq->reconnect_min_ms) == 0 ? 0
               : wh_conf_error(err, st, "invalid reconnect_min \"%s\"", v);
    }

    if ((v = wh_conf_key(arg, "reconnect_max")) != NULL) {
        return wh_conf_mqtt_time(v, &mq->reconnect_max_ms) == 0 ? 0
               : wh_conf_error(err, st, "invalid reconnect_max \"%s\"", v);
    }

    if ((v = wh_conf_key(arg, "shared")) != NULL) {
        /* a shared subscription's group is one topic level */
        if (*v == '\0' || strlen(v) > 64 || strpbrk(v, "/+#") != NULL) {
            return wh_conf_error(err, st, "invalid mqtt shared group "
                                 "\"%s\" (1 to 64 characters, no / + #)",
                                 v);
        }

        return wh_conf_strdup(&mq->shared, v, err);
    }

    if ((v = wh_conf_key(arg, "username")) != NULL) {
        return wh_conf_strdup(&mq->username, v, err);
    }

    if ((v = wh_conf_key(arg, "password_file")) != NULL) {
        return wh_conf_password(&cf->mqtt.password, st, v, err);
    }

    if ((v = wh_conf_key(arg, "cafile")) != NULL) {
        return wh_conf_readable(st, &mq->cafile, v, err);
    }

    if ((v = wh_conf_key(arg, "certfile")) != NULL) {
        return wh_conf_readable(st, &mq->certfile, v, err);
    }

    if ((v = wh_conf_key(arg, "keyfile")) != NULL) {
        return wh_conf_readable(st, &mq->keyfile, v, err);
    }

    return wh_conf_error(err, st, "unknown mqtt parameter \"%s\"", arg);
}


static int
wh_conf_mqtt(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int              i;
    wh_mqtt_conf_t  *mq = &cf->mqtt;

    mq->port = 0;
    mq->keepalive = 30;
    mq->qos = 1;
    mq->max_payload = 64 * 1024;
    mq->reconnect_min_ms = 500;
    mq->reconnect_max_ms = 10000;

    for (i = 1; i < st->nargs; i++) {
        if (wh_conf_mqtt_arg(cf, st, st->args[i], err) != 0) {
            return -1;
        }
    }

    if (mq->host == NULL) {
        mq->numeric = 1;

        if (wh_conf_strdup(&mq->host, "127.0.0.1", err) != 0) {
            return -1;
        }
    }

    if (mq->client_id == NULL
        && wh_conf_strdup(&mq->client_id, "wirehubd", err) != 0)
    {
        return -1;
    }

    if (mq->port == 0) {
        mq->port = mq->cafile ? 8883 : 1883;
    }

    if (mq->password && mq->username == NULL) {
        return wh_conf_error(err, st, "\"%s\" needs username=",
                             "password_file");
    }

    if ((mq->certfile == NULL) != (mq->keyfile == NULL)
        || (mq->certfile && mq->cafile == NULL))
    {
        return wh_conf_error(err, st, "%s", "certfile= and keyfile= go "
                             "together, and TLS needs cafile=");
    }

    if (mq->reconnect_max_ms < mq->reconnect_min_ms) {
        return wh_conf_error(err, st, "%s", "reconnect_max is below "
                             "reconnect_min");
    }

    return 0;
}


static int
wh_conf_cmd_time(const char *v, int64_t min, int64_t max, int64_t *out)
{
    return wh_config_duration(v, out) != 0 || *out < min || *out > max
           ? -1 : 0;
}


static int
wh_conf_commands(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int          i, n;
    const char  *v;

    for (i = 1; i < st->nargs; i++) {
        if ((v = wh_conf_key(st->args[i], "ttl")) != NULL) {
            if (wh_conf_cmd_time(v, 1000, 30LL * 86400000,
                                 &cf->cmd_ttl_ms) != 0)
            {
                return wh_conf_error(err, st, "invalid commands ttl \"%s\" "
                                     "(1s to 30d)", v);
            }

        } else if ((v = wh_conf_key(st->args[i], "ack_timeout")) != NULL) {
            if (wh_conf_cmd_time(v, 100, 86400000,
                                 &cf->cmd_ack_timeout_ms) != 0)
            {
                return wh_conf_error(err, st, "invalid ack_timeout \"%s\" "
                                     "(100ms to 1d)", v);
            }

        } else if ((v = wh_conf_key(st->args[i], "max_attempts")) != NULL) {
            if (wh_conf_int(v, 1, 100, &n) != 0) {
                return wh_conf_error(err, st, "invalid max_attempts \"%s\" "
                                     "(1 to 100)", v);
            }

            cf->cmd_max_attempts = (unsigned) n;

        } else if ((v = wh_conf_key(st->args[i], "retention")) != NULL) {
            /* 0 keeps them for ever */
            if (wh_conf_cmd_time(v, 0, 3650LL * 86400000,
                                 &cf->cmd_retention_ms) != 0)
            {
                return wh_conf_error(err, st, "invalid commands retention "
                                     "\"%s\" (0 or up to 3650d)", v);
            }

        } else {
            return wh_conf_error(err, st, "unknown commands parameter "
                                 "\"%s\"", st->args[i]);
        }
    }

    return 0;
}


static int
wh_conf_ingest(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    char               msg[200];
    wh_ingest_rule_t  *rules;

    rules = realloc(cf->ingest, (cf->ningest + 1) * sizeof(*rules));

    if (rules == NULL) {
        return wh_err(err, 1, "out of memory");
    }

    cf->ingest = rules;

    if (wh_ingest_rule_parse(&rules[cf->ningest], st->args + 1,
                             st->nargs - 1, msg, sizeof(msg)) != 0)
    {
        return wh_conf_error(err, st, "%s", msg);
    }

    cf->ningest++;

    return 0;
}


/* a key=value of a `source` line into the definition's JSON form
 * (sourcedef.h): durations and sizes as numbers, header="Name: value"
 * into the headers object; 0, -1 invalid, -2 unknown key */
static int
wh_conf_source_kv(json_t *obj, json_t *headers, const char *arg,
    const char **ws)
{
    char         name[129];
    size_t       i, n;
    int64_t      ms;
    size_t       size;
    const char  *v, *colon;
    static const char  *strs[] = {
        "url", "channel", "type", "event_field", "subprotocol", "cafile",
        "mqtt", NULL
    };
    static const char  *durations[] = {
        "ping", "reconnect_min", "reconnect_max", "handshake_timeout", NULL
    };

    if ((v = wh_conf_key(arg, "workspace")) != NULL) {
        *ws = v;
        return 0;
    }

    for (i = 0; strs[i]; i++) {
        if ((v = wh_conf_key(arg, strs[i])) != NULL) {
            return json_object_set_new(obj, strs[i], json_string(v)) ? -1
                                                                     : 0;
        }
    }

    for (i = 0; durations[i]; i++) {
        if ((v = wh_conf_key(arg, durations[i])) != NULL) {
            snprintf(name, sizeof(name), "%s_ms", durations[i]);

            return wh_config_duration(v, &ms) != 0
                   || json_object_set_new(obj, name, json_integer(ms))
                   ? -1 : 0;
        }
    }

    if ((v = wh_conf_key(arg, "max_message")) != NULL) {
        return wh_config_size(v, &size) != 0
               || json_object_set_new(obj, "max_message",
                                      json_integer((json_int_t) size))
               ? -1 : 0;
    }

    if ((v = wh_conf_key(arg, "rate")) != NULL) {
        n = strspn(v, "0123456789");

        if (n == 0 || n > 7 || (v[n] != '\0' && strcmp(v + n, "/s") != 0))
        {
            return -1;
        }

        return json_object_set_new(obj, "rate",
                                   json_integer(strtol(v, NULL, 10)))
               ? -1 : 0;
    }

    if ((v = wh_conf_key(arg, "header")) != NULL) {
        colon = strchr(v, ':');

        if (colon == NULL || colon == v || colon - v >= (long) sizeof(name)
        ) {
            return -1;
        }

        memcpy(name, v, colon - v);
        name[colon - v] = '\0';

        for (colon++; *colon == ' ' || *colon == '\t'; colon++) {
            /* void */
        }

        if (json_object_get(headers, name) != NULL) {
            return -1;
        }

        return json_object_set_new(headers, name, json_string(colon)) ? -1
                                                                      : 0;
    }

    return -2;
}


/* source ID url=... workspace=... channel=... [...]: checked the way
 * POST /api/sources is (sourcedef.c), header files allowed */
static int
wh_conf_source(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int               i, rc = 0;
    char              msg[160];
    json_t           *obj, *headers;
    const char       *ws = NULL;
    wh_source_def_t  *defs;

    if (st->nargs < 2) {
        return wh_conf_error(err, st, "%s", "\"source\" needs an id");
    }

    defs = realloc(cf->sources, (cf->nsources + 1) * sizeof(*defs));

    if (defs == NULL) {
        return wh_err(err, 1, "out of memory");
    }

    cf->sources = defs;
    obj = json_pack("{s:s}", "id", st->args[1]);
    headers = json_object();

    for (i = 2; rc == 0 && obj && headers && i < st->nargs; i++) {
        rc = wh_conf_source_kv(obj, headers, st->args[i], &ws);

        if (rc != 0) {
            json_decref(obj);
            json_decref(headers);
            return wh_conf_error(err, st, rc == -2 ? "unknown source "
                                 "argument \"%s\"" : "invalid source "
                                 "argument \"%s\"", st->args[i]);
        }
    }

    if (obj == NULL || headers == NULL
        || json_object_set_new(obj, "headers", headers) != 0)
    {
        json_decref(obj);
        return wh_err(err, 1, "out of memory");
    }

    if (ws == NULL) {
        json_decref(obj);
        return wh_conf_error(err, st, "%s", "\"source\" needs "
                             "workspace=");
    }

    rc = wh_source_def_json(&defs[cf->nsources], wh_cstr(ws), obj, 1, msg,
                            sizeof(msg));
    json_decref(obj);

    if (rc != 0) {
        wh_source_def_free(&defs[cf->nsources]);
        return wh_conf_error(err, st, "source: %s", msg);
    }

    cf->nsources++;

    return 0;
}


static int
wh_conf_egress(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    char  msg[200];

    if (wh_egress_parse(&cf->egress, st->args + 1, st->nargs - 1, msg,
                        sizeof(msg)) != 0)
    {
        return wh_conf_error(err, st, "%s", msg);
    }

    return 0;
}


/* a quota value: "unlimited", a size for history_bytes, "N/s" for
 * publish_rate, else a count */
static int
wh_conf_quota_value(wh_quota_kind_e kind, const char *v, uint64_t *out)
{
    char                *end;
    size_t               n;
    unsigned long long   u;

    if (strcmp(v, "unlimited") == 0) {
        *out = WH_QUOTA_UNLIMITED;
        return 0;
    }

    if (kind == WH_QUOTA_HISTORY_BYTES) {
        if (wh_config_size(v, &n) != 0) {
            return -1;
        }

        *out = n;
        return 0;
    }

    if (!isdigit((unsigned char) v[0])) {
        return -1;
    }

    errno = 0;
    u = strtoull(v, &end, 10);

    if (kind == WH_QUOTA_PUBLISH_RATE) {
        if (strcmp(end, "/s") != 0 || u < 1 || u > WH_QUOTA_RATE_MAX) {
            return -1;
        }

    } else if (*end != '\0' || errno != 0 || u >= WH_QUOTA_UNLIMITED) {
        return -1;
    }

    *out = u;

    return 0;
}


static int
wh_conf_quota_arg(wh_quota_rule_t *r, wh_stmt_t *st, const char *arg,
    wh_err_t *err)
{
    int          kind;
    const char  *eq;

    eq = strchr(arg, '=');

    if (eq == NULL) {
        return wh_conf_error(err, st, "invalid quota parameter \"%s\"",
                             arg);
    }

    if (strncmp(arg, "workspace=", 10) == 0) {
        if (r->workspace != NULL) {
            return wh_conf_error(err, st, "%s", "quota names one "
                                 "workspace=");
        }

        if (strcmp(eq + 1, "*") != 0
            && !wh_workspace_valid(eq + 1, strlen(eq + 1)))
        {
            return wh_conf_error(err, st, "invalid quota workspace \"%s\"",
                                 eq + 1);
        }

        return wh_conf_strdup(&r->workspace, eq + 1, err);
    }

    kind = wh_quota_kind(arg, eq - arg);

    if (kind < 0) {
        return wh_conf_error(err, st, "unknown quota parameter \"%s\"",
                             arg);
    }

    if (wh_conf_quota_value(kind, eq + 1, &r->limits.limit[kind]) != 0) {
        return wh_conf_error(err, st, kind == WH_QUOTA_PUBLISH_RATE
                             ? "invalid publish_rate \"%s\" (1/s to "
                               "1000000/s, or unlimited)"
                             : "invalid quota value \"%s\" (a number, or "
                               "unlimited)", arg);
    }

    r->set |= 1u << kind;

    return 0;
}


static int
wh_conf_quota(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int               i;
    wh_quota_rule_t  *rules, *r;

    rules = realloc(cf->quota, (cf->nquota + 1) * sizeof(*rules));

    if (rules == NULL) {
        return wh_err(err, 1, "out of memory");
    }

    cf->quota = rules;
    r = &rules[cf->nquota++];
    memset(r, 0, sizeof(wh_quota_rule_t));

    for (i = 1; i < st->nargs; i++) {
        if (wh_conf_quota_arg(r, st, st->args[i], err) != 0) {
            return -1;
        }
    }

    if (r->workspace == NULL || r->set == 0) {
        return wh_conf_error(err, st, "%s", "quota needs workspace=NAME "
                             "(or *) and at least one limit");
    }

    return 0;
}


/* finds the next token: ";" is a token of its own, "#" starts a comment
 * only where a token would start ("a/#" is a topic filter), and a token
 * in double quotes may hold anything but a quote or a line end (a lone
 * "#" filter); returns its length, quotes included, 0 at the end */
static size_t
wh_conf_token(char **pos, int *line, char **start)
{
    char  *p = *pos;

    for ( ;; ) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            *line += *p == '\n';
            p++;
        }

        if (*p != '#') {
            break;
        }

        while (*p != '\0' && *p != '\n') {
            p++;
        }
    }

    *start = p;

    if (*p == ';') {
        p++;

    } else if (*p == '"') {
        for (p++; *p != '\0' && *p != '"' && *p != '\n'; p++) {
            /* void */
        }

        p += *p == '"';

    } else {
        /* a quoted part (key="a value") may hold blanks and ";" */
        while (*p != '\0' && *p != ';' && !isspace((unsigned char) *p)) {
            if (*p == '"') {
                for (p++; *p != '\0' && *p != '"' && *p != '\n'; p++) {
                    /* void */
                }

                if (*p != '"') {
                    break;
                }
            }

            p++;
        }
    }

    *pos = p;

    return p - *start;
}


static int
wh_conf_run(wh_config_t *cf, wh_directive_t *dirs, wh_stmt_t *st,
    wh_err_t *err)
{
    wh_directive_t  *d;

    for (d = dirs; d->name != NULL; d++) {
        if (strcmp(d->name, st->args[0]) != 0) {
            continue;
        }

        if (d->seen && !d->repeatable) {
            return wh_conf_error(err, st, "duplicate directive \"%s\"",
                                 d->name);
        }

        d->seen = 1;

        return d->handler(cf, st, err);
    }

    return wh_conf_error(err, st, "unknown directive \"%s\"",
                         st->args[0]);
}


static void
wh_conf_stmt_free(wh_stmt_t *st)
{
    while (st->nargs > 0) {
        free(st->args[--st->nargs]);
    }
}


/* hiredis resolves a host name with a blocking getaddrinfo(): Redis
 * and its sentinels are named by address */
static int
wh_conf_ip(wh_stmt_t *st, const char *host, wh_err_t *err)
{
    unsigned char  buf[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, host, buf) == 1
        || inet_pton(AF_INET6, host, buf) == 1)
    {
        return 0;
    }

    return wh_conf_error(err, st, "\"%s\" is not an IP address (Redis "
                         "and its sentinels are named by address)", host);
}


/* "host:port" of a sentinel */
static int
wh_conf_sentinel(wh_config_t *cf, wh_stmt_t *st, char *list, wh_err_t *err)
{
    int               port;
    char             *item, *save = NULL, *colon;
    wh_redis_conf_t  *rc = &cf->engine.redis;

    for (item = strtok_r(list, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save))
    {
        colon = strrchr(item, ':');

        if (colon == NULL || colon == item
            || wh_conf_int(colon + 1, 1, 65535, &port) != 0)
        {
            return wh_conf_error(err, st, "invalid sentinel \"%s\" "
                                 "(HOST:PORT)", item);
        }

        if (rc->nsentinels == WH_REDIS_MAX_SENTINELS) {
            return wh_conf_error(err, st, "%s", "more than 8 sentinels");
        }

        *colon = '\0';

        if (wh_conf_ip(st, item, err) != 0
            || wh_conf_strdup(&rc->sentinel_host[rc->nsentinels], item,
                              err) != 0)
        {
            return -1;
        }

        rc->sentinel_port[rc->nsentinels++] = port;
    }

    return 0;
}


static int
wh_conf_engine_arg(wh_config_t *cf, wh_stmt_t *st, char *arg,
    wh_err_t *err)
{
    int               n;
    int64_t           ms;
    const char       *v;
    wh_redis_conf_t  *rc = &cf->engine.redis;

    if ((v = wh_conf_key(arg, "host")) != NULL) {
        return wh_conf_ip(st, v, err) != 0 ? -1
               : wh_conf_strdup(&rc->host, v, err);
    }

    if ((v = wh_conf_key(arg, "port")) != NULL) {
        return wh_conf_int(v, 1, 65535, &rc->port) == 0 ? 0
               : wh_conf_error(err, st, "invalid port \"%s\"", v);
    }

    if ((v = wh_conf_key(arg, "sentinel")) != NULL) {
        return wh_conf_sentinel(cf, st, arg + strlen("sentinel="), err);
    }

    if ((v = wh_conf_key(arg, "master")) != NULL) {
        return wh_conf_strdup(&rc->master, v, err);
    }

    if ((v = wh_conf_key(arg, "password_file")) != NULL) {
        return wh_conf_password(&rc->password, st, v, err);
    }

    if ((v = wh_conf_key(arg, "db")) != NULL) {
        return wh_conf_int(v, 0, 15, &rc->db) == 0 ? 0
               : wh_conf_error(err, st, "invalid db \"%s\" (0 to 15)", v);
    }

    if ((v = wh_conf_key(arg, "replicas_ack")) != NULL) {
        if (wh_conf_int(v, 0, 16, &n) != 0) {
            return wh_conf_error(err, st, "invalid replicas_ack \"%s\" "
                                 "(0 to 16)", v);
        }

        cf->engine.replicas_ack = (unsigned) n;
        return 0;
    }

    if ((v = wh_conf_key(arg, "node_lease")) != NULL) {
        if (wh_config_duration(v, &ms) != 0 || ms < 1000 || ms > 600000) {
            return wh_conf_error(err, st, "invalid node_lease \"%s\" (1s "
                                 "to 10m)", v);
        }

        cf->engine.node_lease_ms = ms;
        return 0;
    }

    if ((v = wh_conf_key(arg, "ack_timeout")) != NULL
        || (v = wh_conf_key(arg, "connect_timeout")) != NULL
        || (v = wh_conf_key(arg, "command_timeout")) != NULL)
    {
        if (wh_config_duration(v, &ms) != 0 || ms < 1 || ms > 60000) {
            return wh_conf_error(err, st, "invalid timeout \"%s\" (1ms "
                                 "to 60s)", arg);
        }

        if (strncmp(arg, "ack_", 4) == 0) {
            cf->engine.ack_timeout_ms = ms;
        } else if (strncmp(arg, "connect_", 8) == 0) {
            rc->connect_timeout_ms = ms;
        } else {
            rc->command_timeout_ms = ms;
        }

        return 0;
    }

    return wh_conf_error(err, st, "unknown engine parameter \"%s\"", arg);
}


/* engine lmdb; or engine redis host=|sentinel= ... (DESIGN.md "Cluster
 * mode") */
static int
wh_conf_engine(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    int               i;
    char              why[64];
    wh_redis_conf_t  *rc = &cf->engine.redis;

    if (st->nargs < 2) {
        return wh_conf_error(err, st, "%s", "engine needs lmdb or redis");
    }

    if (strcmp(st->args[1], "lmdb") == 0) {
        if (st->nargs > 2) {
            return wh_conf_error(err, st, "%s", "engine lmdb takes no "
                                 "parameters (see storage)");
        }

        cf->engine.redis_on = 0;
        return 0;
    }

    if (strcmp(st->args[1], "redis") != 0) {
        return wh_conf_error(err, st, "unknown engine \"%s\" (lmdb or "
                             "redis)", st->args[1]);
    }

    cf->engine.redis_on = 1;
    rc->port = 0;
    rc->connect_timeout_ms = 1000;
    rc->command_timeout_ms = 2000;
    rc->reconnect_min_ms = 100;
    rc->reconnect_max_ms = 5000;
    cf->engine.ack_timeout_ms = 200;
    cf->engine.node_lease_ms = 10000;

    for (i = 2; i < st->nargs; i++) {
        if (wh_conf_engine_arg(cf, st, st->args[i], err) != 0) {
            return -1;
        }
    }

    if (rc->nsentinels && rc->master == NULL) {
        return wh_conf_error(err, st, "%s", "sentinel= needs master=");
    }

    if (rc->nsentinels && (rc->host || rc->port)) {
        return wh_conf_error(err, st, "%s", "host= and port= name one "
                             "Redis, sentinel= the sentinels: not both");
    }

    /* a WAIT that may last ack_timeout, and the commit sent before it,
     * must answer before the command counts as a lost connection */
    if (cf->engine.replicas_ack
        && cf->engine.ack_timeout_ms >= rc->command_timeout_ms)
    {
        snprintf(why, sizeof(why), "%" PRId64 "ms, command_timeout %"
                 PRId64 "ms", cf->engine.ack_timeout_ms,
                 rc->command_timeout_ms);

        return wh_conf_error(err, st, "ack_timeout must be shorter than "
                             "command_timeout (ack_timeout %s)", why);
    }

    if (rc->nsentinels == 0 && rc->host == NULL
        && wh_conf_strdup(&rc->host, "127.0.0.1", err) != 0)
    {
        return -1;
    }

    if (rc->nsentinels == 0 && rc->port == 0) {
        rc->port = 6379;
    }

    return 0;
}


static int
wh_conf_node_id(wh_config_t *cf, wh_stmt_t *st, wh_err_t *err)
{
    size_t       n;
    const char  *v;

    if (st->nargs != 2) {
        return wh_conf_error(err, st, "%s", "node_id takes one name");
    }

    v = st->args[1];
    n = strlen(v);

    if (n == 0 || n > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_.-") != n)
    {
        return wh_conf_error(err, st, "invalid node_id \"%s\" (1 to 64 "
                             "of A-Za-z0-9_.-)", v);
    }

    return wh_conf_strdup(&cf->node_id, v, err);
}


/* key="value" -> key=value */
static void
wh_conf_unquote(char *arg)
{
    char    *q;
    size_t   len = strlen(arg);

    q = strstr(arg, "=\"");

    if (q && len >= 2 && arg[len - 1] == '"' && q + 1 < arg + len - 1) {
        memmove(q + 1, q + 2, arg + len - 1 - (q + 2));
        arg[len - 2] = '\0';
    }
}


static int
wh_conf_statements(wh_config_t *cf, char *text, wh_stmt_t *st,
    wh_err_t *err)
{
    int              line = 1;
    char            *pos = text, *tok;
    size_t           len;
    wh_directive_t   dirs[] = {
        { "listen", wh_conf_listen, 0, 0 },
        { "storage", wh_conf_storage, 0, 0 },
        { "history", wh_conf_history, 0, 0 },
        { "stats", wh_conf_stats, 0, 0 },
        { "commands", wh_conf_commands, 0, 0 },
        { "log", wh_conf_log, 0, 0 },
        { "mqtt", wh_conf_mqtt, 0, 0 },
        { "ingest", wh_conf_ingest, 1, 0 },
        { "egress", wh_conf_egress, 0, 0 },
        { "quota", wh_conf_quota, 1, 0 },
        { "engine", wh_conf_engine, 0, 0 },
        { "node_id", wh_conf_node_id, 0, 0 },
        { "source", wh_conf_source, 1, 0 },
        { NULL, NULL, 0, 0 }
    };

    for ( ;; ) {
        len = wh_conf_token(&pos, &line, &tok);

        if (len == 0) {
            break;
        }

        if (st->nargs == 0) {
            st->line = line;
        }

        if (*tok == ';') {
            if (st->nargs == 0) {
                return wh_conf_error(err, st, "unexpected \"%s\"", ";");
            }

            if (wh_conf_run(cf, dirs, st, err) != 0) {
                return -1;
            }

            wh_conf_stmt_free(st);
            continue;
        }

        if (st->nargs == WH_CONF_MAX_ARGS) {
            return wh_conf_error(err, st, "too many arguments to \"%s\"",
                                 st->args[0]);
        }

        if (len >= 2 && tok[0] == '"' && tok[len - 1] == '"') {
            tok++;
            len -= 2;
        }

        st->args[st->nargs] = strndup(tok, len);

        if (st->args[st->nargs] == NULL) {
            return wh_err(err, 1, "out of memory");
        }

        wh_conf_unquote(st->args[st->nargs]);

        st->nargs++;
    }

    if (st->nargs != 0) {
        return wh_conf_error(err, st, "directive \"%s\" is not "
                             "terminated by \";\"", st->args[0]);
    }

    return 0;
}


static int
wh_conf_parse(wh_config_t *cf, char *text, wh_err_t *err)
{
    int        rc;
    wh_stmt_t  st;

    st.file = cf->file;
    st.line = 1;
    st.nargs = 0;

    rc = wh_conf_statements(cf, text, &st, err);
    wh_conf_stmt_free(&st);

    return rc;
}


static int
wh_conf_read(const char *file, char **text, wh_err_t *err)
{
    FILE    *f;
    size_t   n;
    char    *buf;

    f = fopen(file, "r");

    if (f == NULL) {
        return wh_err(err, 1, "cannot open \"%s\": %s", file,
                      strerror(errno));
    }

    buf = malloc(WH_CONF_MAX_FILE + 1);

    if (buf == NULL) {
        fclose(f);
        return wh_err(err, 1, "out of memory");
    }

    n = fread(buf, 1, WH_CONF_MAX_FILE + 1, f);

    if (ferror(f) || n > WH_CONF_MAX_FILE) {
        fclose(f);
        free(buf);
        return wh_err(err, 1, "cannot read \"%s\" (or larger than 1m)",
                      file);
    }

    fclose(f);

    if (memchr(buf, '\0', n) != NULL) {
        free(buf);
        return wh_err(err, 1, "\"%s\" contains a NUL byte", file);
    }

    buf[n] = '\0';
    *text = buf;

    return 0;
}


/* the defaults, and the names that are set before anything is read */
static int
wh_conf_init(wh_config_t *cf, const char *file, wh_err_t *err)
{
    memset(cf, 0, sizeof(wh_config_t));
    cf->map_size = 1024UL * 1024 * 1024;
    cf->listen_gid = (gid_t) -1;
    cf->listen_mode = 0660;
    cf->history_length = 1000;
    cf->replay_page = 500;
    cf->history_ttl_ms = 24LL * 3600 * 1000;
    cf->stats_interval_ms = 5000;
    cf->cmd_ttl_ms = 10 * 60000;
    cf->cmd_ack_timeout_ms = 30000;
    cf->cmd_max_attempts = 5;
    cf->cmd_retention_ms = 30LL * 86400000;
    cf->log_level = WH_LOG_INFO;
    cf->log_format = WH_LOG_TEXT;

    if (wh_conf_strdup(&cf->file, file, err) != 0
        || wh_conf_strdup(&cf->listen, WH_DEFAULT_LISTEN, err) != 0
        || wh_conf_strdup(&cf->storage, WH_DEFAULT_STORAGE, err) != 0)
    {
        return -1;
    }

    return 0;
}


/* the statements of text, then what must hold across them */
static int
wh_conf_text(wh_config_t *cf, char *text, wh_err_t *err)
{
    unsigned     i;
    const char  *file = cf->file;

    if (wh_conf_parse(cf, text, err) != 0) {
        return -1;
    }

    if (cf->max_map_size == 0) {
        cf->max_map_size = cf->map_size > 64UL << 30 ? cf->map_size
                                                     : 64UL << 30;
    }

    if (cf->max_map_size < cf->map_size) {
        return wh_err(err, 1, "%s: max_map_size is below map_size", file);
    }

    if ((cf->ningest || cf->egress.topic.text) && cf->mqtt.host == NULL) {
        return wh_err(err, 1, "%s: \"ingest\" and \"egress\" need an "
                      "\"mqtt\" directive", file);
    }

    for (i = 0; i < cf->nsources; i++) {
        if (cf->sources[i].mqtt.text && cf->mqtt.host == NULL) {
            return wh_err(err, 1, "%s: source \"%s\": mqtt= needs an "
                          "\"mqtt\" directive", file, cf->sources[i].id);
        }
    }

    return 0;
}


int
wh_config_load(wh_config_t *cf, const char *file, wh_err_t *err)
{
    int    rc;
    char  *text = NULL;

    if (wh_conf_init(cf, file, err) != 0
        || wh_conf_read(file, &text, err) != 0)
    {
        return -1;
    }

    rc = wh_conf_text(cf, text, err);
    free(text);

    return rc;
}


int
wh_config_parse(wh_config_t *cf, const char *file, char *text,
    wh_err_t *err)
{
    if (wh_conf_init(cf, file, err) != 0) {
        return -1;
    }

    return wh_conf_text(cf, text, err);
}


static void
wh_conf_mqtt_free(wh_mqtt_conf_t *mq)
{
    free(mq->host);
    free(mq->client_id);
    free(mq->shared);
    free(mq->username);

    if (mq->password) {
        memset(mq->password, 0, strlen(mq->password));
        free(mq->password);
    }

    free(mq->cafile);
    free(mq->certfile);
    free(mq->keyfile);
}


static void
wh_conf_engine_free(wh_engine_conf_t *ec)
{
    unsigned  i;

    free(ec->redis.host);
    free(ec->redis.master);

    if (ec->redis.password) {
        memset(ec->redis.password, 0, strlen(ec->redis.password));
        free(ec->redis.password);
    }

    for (i = 0; i < ec->redis.nsentinels; i++) {
        free(ec->redis.sentinel_host[i]);
    }
}


void
wh_config_free(wh_config_t *cf)
{
    unsigned  i;

    free(cf->file);
    free(cf->listen);
    free(cf->storage);
    free(cf->log_path);
    wh_conf_mqtt_free(&cf->mqtt);
    wh_conf_engine_free(&cf->engine);
    free(cf->node_id);

    for (i = 0; i < cf->ningest; i++) {
        wh_ingest_rule_free(&cf->ingest[i]);
    }

    free(cf->ingest);
    wh_egress_free(&cf->egress);

    for (i = 0; i < cf->nquota; i++) {
        free(cf->quota[i].workspace);
    }

    free(cf->quota);

    for (i = 0; i < cf->nsources; i++) {
        wh_source_def_free(&cf->sources[i]);
    }

    free(cf->sources);
    free(cf->peers);
    memset(cf, 0, sizeof(wh_config_t));
}
