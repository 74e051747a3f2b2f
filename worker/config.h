/*
 * wirehubd.conf: "directive arg ... key=value ...;" statements, "#"
 * comments.  Unknown directives and keys are errors.
 */

#ifndef WH_CONFIG_H
#define WH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "egress.h"
#include "ingest.h"
#include "log.h"
#include "quota.h"
#include "redis.h"
#include "sourcedef.h"


#define WH_DEFAULT_LISTEN   "/run/wirehub/wirehubd.sock"
#define WH_DEFAULT_STORAGE  "/var/lib/wirehub"

/* the `mqtt` directive; host NULL: none */
typedef struct {
    char      *host;
    int        numeric;            /* host is an IP address literal */
    int        port;
    char      *client_id;
    int        keepalive;          /* s */
    char      *username;
    char      *password;           /* read from password_file */
    char      *cafile;             /* TLS when set */
    char      *certfile;
    char      *keyfile;
    int        qos;                /* of the ingest subscriptions */
    size_t     max_payload;        /* larger payloads are dropped */
    int64_t    reconnect_min_ms;   /* backoff: first delay ... */
    int64_t    reconnect_max_ms;   /* ... doubling up to this */
    char      *shared;             /* $share/GROUP/ ingest filters */
} wh_mqtt_conf_t;

/* the `engine` directive */
typedef struct {
    int              redis_on;      /* engine redis (else lmdb) */
    wh_redis_conf_t  redis;
    unsigned         replicas_ack;  /* WAIT for that many replicas */
    int64_t          ack_timeout_ms;
    int64_t          node_lease_ms;
} wh_engine_conf_t;

typedef struct {
    char      *file;
    char      *listen;             /* the socket path, without "unix:" */
    gid_t      listen_gid;         /* (gid_t) -1: keep the daemon's */
    unsigned   listen_mode;        /* permission bits of the socket */
    uid_t     *peers;              /* link peers accepted (peers=); */
    unsigned   npeers;             /* 0: wh_config_default_peers() */
    char      *storage;            /* the LMDB directory */
    size_t     map_size;
    size_t     max_map_size;       /* MDB_MAP_FULL grows up to this */
    uint32_t   history_length;     /* messages kept per channel */
    int64_t    history_ttl_ms;     /* 0: no time limit */
    uint32_t   replay_page;        /* messages per REPLAY page */
    int64_t    stats_interval_ms;
    int64_t    cmd_ttl_ms;         /* `commands`: default command ttl */
    int64_t    cmd_ack_timeout_ms; /* first attempt's wait for a result */
    unsigned   cmd_max_attempts;
    int64_t    cmd_retention_ms;   /* ended commands and jobs kept; 0:
                                    * for ever */
    char      *log_path;           /* NULL: stderr */
    int        log_level;
    int        log_format;         /* WH_LOG_TEXT, WH_LOG_JSON */
    wh_mqtt_conf_t     mqtt;
    wh_engine_conf_t   engine;
    char              *node_id;     /* NULL: the host name */
    wh_ingest_rule_t  *ingest;     /* in configuration order */
    unsigned           ningest;
    wh_egress_conf_t   egress;
    wh_quota_rule_t   *quota;      /* in configuration order */
    unsigned           nquota;
    wh_source_def_t   *sources;    /* `source` lines; wirehubd's sources
                                    * take them at start (nsources 0) */
    unsigned           nsources;
} wh_config_t;


/* parses file into cf (defaults for what it does not say); on error
 * err->msg is "FILE:LINE: what is wrong" */
int wh_config_load(wh_config_t *cf, const char *file, wh_err_t *err);
/* the same for text already read (NUL-terminated, no NUL inside), file
 * only naming it in messages: for the fuzzer */
int wh_config_parse(wh_config_t *cf, const char *file, char *text,
    wh_err_t *err);
void wh_config_free(wh_config_t *cf);

/* without peers=, the link peers accepted: root, the daemon's own uid
 * and the users whose primary group is the socket's group= */
int wh_config_default_peers(wh_config_t *cf, wh_err_t *err);

/* "64m" -> bytes; "24h" -> ms; -1 if invalid (exported for tests) */
int wh_config_size(const char *s, size_t *out);
int wh_config_duration(const char *s, int64_t *out);

#endif /* WH_CONFIG_H */
