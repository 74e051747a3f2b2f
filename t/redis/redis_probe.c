/*
 * redis_probe: worker/redis.c alone on the loop, for
 * t/test_redis_link.py.  Every --interval ms it sends INCR probe (and
 * WAIT N 200 with --wait N) and PUBLISHes "tick-N" on --channel, which
 * it subscribes to; it prints one JSON object a line per event:
 *
 *   start, state, up, failover, down, subscribed, message, reply,
 *   refused, stats (every second and at exit, with max_turn_ms: the
 *   longest a 10 ms timer of the loop was late, which is how long the
 *   loop was kept from turning)
 *
 * "ts" is the wall clock in ms, to set beside the test's own times.
 * SIGTERM or SIGINT: closes the connection (every callback runs) and
 * exits 0; the last line, exit, counts the commands sent and the
 * callbacks run.  --close-on-down closes it from inside down() instead,
 * then exits.
 *
 *   redis_probe (--redis HOST:PORT | --sentinel HOST:PORT... --master NAME)
 *       [--password-file PATH] [--db N] [--interval MS] [--channel NAME]
 *       [--wait N] [--connect-timeout MS] [--command-timeout MS]
 *       [--reconnect-min MS] [--reconnect-max MS] [--log-level LEVEL]
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redis.h"


typedef struct {
    wh_loop_t         loop;
    wh_log_t          log;
    wh_redis_t       *redis;
    wh_timer_t        send_timer;
    wh_timer_t        lag_timer;
    wh_redis_conf_t   conf;
    const char       *channel;
    int               wait;
    uint64_t          ticks;
    uint64_t          sent;         /* commands accepted ... */
    uint64_t          replied;      /* ... and their callbacks run */
    int               close_on_down;
    int               closed;
    int64_t           max_lag;
    int64_t           last_stats;
    wh_redis_state_e  state;
    char              primary[64];
} probe_t;

static probe_t  probe;


static long long
probe_ts(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* a JSON string of s */
static void
probe_json_str(const char *s, size_t len)
{
    size_t  i;

    putchar('"');

    for (i = 0; i < len; i++) {
        unsigned char  ch = (unsigned char) s[i];

        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);

        } else if (ch < 0x20 || ch >= 0x7f) {
            printf("\\u%04x", ch);

        } else {
            putchar(ch);
        }
    }

    putchar('"');
}


static void
probe_begin(const char *ev)
{
    printf("{\"ev\":\"%s\",\"ts\":%lld", ev, probe_ts());
}


static void
probe_field(const char *name, const char *s)
{
    printf(",\"%s\":", name);
    probe_json_str(s, strlen(s));
}


static void
probe_end(void)
{
    printf("}\n");
    fflush(stdout);
}


static void
probe_stats(void)
{
    wh_redis_stats_t  st;

    if (probe.redis == NULL) {
        return;
    }

    wh_redis_stats(probe.redis, &st);

    probe_begin("stats");
    probe_field("state", wh_redis_state_name(st.state));
    probe_field("primary", st.primary);
    printf(",\"max_turn_ms\":%lld,\"failovers\":%llu,\"reconnects\":%llu,"
           "\"commands\":%llu,\"failed\":%llu,\"timeouts\":%llu,"
           "\"inflight\":%u",
           (long long) probe.max_lag, (unsigned long long) st.failovers,
           (unsigned long long) st.reconnects,
           (unsigned long long) st.commands,
           (unsigned long long) st.failed,
           (unsigned long long) st.timeouts, st.inflight);
    probe_end();
}


/* ------------------------------------------------------------ handler */

static void
probe_up(void *ctx)
{
    wh_redis_stats_t  st;

    (void) ctx;

    wh_redis_stats(probe.redis, &st);

    probe_begin("up");
    probe_field("primary", st.primary);
    probe_end();

    if (probe.primary[0] && strcmp(probe.primary, st.primary) != 0) {
        probe_begin("failover");
        probe_field("from", probe.primary);
        probe_field("primary", st.primary);
        probe_end();
    }

    snprintf(probe.primary, sizeof(probe.primary), "%s", st.primary);
}


static void
probe_down(void *ctx, const char *why)
{
    (void) ctx;

    probe_begin("down");
    probe_field("why", why);
    probe_end();

    if (probe.close_on_down && !probe.closed) {
        /* from inside its own callback: freed by its timer later */
        probe.closed = 1;
        wh_redis_close(probe.redis);
        probe.redis = NULL;
    }
}


static void
probe_message(void *ctx, wh_str_t channel, wh_str_t payload)
{
    (void) ctx;

    probe_begin("message");
    printf(",\"channel\":");
    probe_json_str(channel.data, channel.len);
    printf(",\"payload\":");
    probe_json_str(payload.data, payload.len);
    probe_end();
}


static void
probe_subscribed(void *ctx, wh_str_t channel)
{
    (void) ctx;

    probe_begin("subscribed");
    printf(",\"channel\":");
    probe_json_str(channel.data, channel.len);
    probe_end();
}


typedef struct {
    const char  *cmd;
    int64_t      sent;
} probe_req_t;


static void
probe_reply(void *data, redisReply *reply, const char *why)
{
    probe_req_t  *req = data;

    probe_begin("reply");
    probe_field("cmd", req->cmd);
    printf(",\"ms\":%lld", (long long) (wh_loop_now() - req->sent));

    if (reply == NULL) {
        printf(",\"ok\":false");
        probe_field("why", why);

    } else if (reply->type == REDIS_REPLY_ERROR) {
        printf(",\"ok\":false");
        probe_field("error", reply->str);

    } else if (reply->type == REDIS_REPLY_INTEGER) {
        printf(",\"ok\":true,\"value\":%lld", reply->integer);

    } else {
        printf(",\"ok\":true");
    }

    probe_end();
    probe.replied++;
    free(req);
}


static void
probe_send(const char *name, int argc, const char **argv)
{
    size_t        lens[4];
    int           i;
    probe_req_t  *req;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    req = malloc(sizeof(probe_req_t));

    if (req == NULL) {
        return;
    }

    req->cmd = name;
    req->sent = wh_loop_now();

    if (probe.redis == NULL) {
        free(req);
        return;
    }

    if (wh_redis_command(probe.redis, probe_reply, req, argc, argv, lens)
        != 0)
    {
        free(req);
        probe_begin("refused");
        probe_field("cmd", name);
        probe_end();
        return;
    }

    probe.sent++;
}


/* ------------------------------------------------------------- timers */

static void
probe_tick(wh_timer_t *t)
{
    char         tick[32], wait[16];
    const char  *argv[3];

    (void) t;

    snprintf(tick, sizeof(tick), "tick-%llu",
             (unsigned long long) ++probe.ticks);

    argv[0] = "INCR";
    argv[1] = "probe";
    probe_send("INCR", 2, argv);

    if (probe.wait > 0) {
        snprintf(wait, sizeof(wait), "%d", probe.wait);
        argv[0] = "WAIT";
        argv[1] = wait;
        argv[2] = "200";
        probe_send("WAIT", 3, argv);
    }

    argv[0] = "PUBLISH";
    argv[1] = probe.channel;
    argv[2] = tick;
    probe_send("PUBLISH", 3, argv);
}


static void
probe_lag(wh_timer_t *t)
{
    int64_t           now, lag;
    wh_redis_stats_t  st;

    now = wh_loop_now();

    /* t->next is still when this run was due */
    lag = now - t->next;

    if (lag > probe.max_lag) {
        probe.max_lag = lag;
    }

    if (probe.redis == NULL) {
        /* closed in down(): a few turns for its timer to free it */
        if (probe.closed++ > 3) {
            probe.loop.stop = 1;
        }

        return;
    }

    wh_redis_stats(probe.redis, &st);

    if (st.state != probe.state) {
        probe.state = st.state;
        probe_begin("state");
        probe_field("state", wh_redis_state_name(st.state));
        probe_end();
    }

    if (now - probe.last_stats >= 1000) {
        probe.last_stats = now;
        probe_stats();
    }
}


/* --------------------------------------------------------------- main */

static void
probe_signal(int sig)
{
    (void) sig;

    probe.loop.stop = 1;
}


static int
probe_addr(const char *s, char **host, int *port)
{
    const char  *colon = strrchr(s, ':');

    if (colon == NULL || colon == s) {
        return -1;
    }

    *host = strndup(s, (size_t) (colon - s));
    *port = atoi(colon + 1);

    return *host && *port > 0 ? 0 : -1;
}


static char *
probe_read_password(const char *path)
{
    FILE    *f;
    char     buf[512];
    size_t   n;

    f = fopen(path, "r");

    if (f == NULL) {
        fprintf(stderr, "redis_probe: %s: %s\n", path, strerror(errno));
        exit(2);
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    buf[n] = '\0';

    return strdup(buf);
}


static void
probe_usage(void)
{
    fprintf(stderr, "usage: redis_probe (--redis HOST:PORT | "
            "--sentinel HOST:PORT... --master NAME) [--password-file P] "
            "[--db N] [--interval MS] [--channel C] [--wait N] "
            "[--connect-timeout MS] [--command-timeout MS] "
            "[--reconnect-min MS] [--reconnect-max MS] [--log-level L]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int                  opt, level = WH_LOG_INFO;
    unsigned             i;
    wh_err_t             err;
    wh_redis_conf_t     *conf = &probe.conf;
    wh_redis_handler_t   h;
    struct sigaction     sa;
    wh_str_t             channel;
    static const struct option  opts[] = {
        { "redis", required_argument, NULL, 'r' },
        { "sentinel", required_argument, NULL, 's' },
        { "master", required_argument, NULL, 'm' },
        { "password-file", required_argument, NULL, 'p' },
        { "db", required_argument, NULL, 'd' },
        { "interval", required_argument, NULL, 'i' },
        { "channel", required_argument, NULL, 'c' },
        { "wait", required_argument, NULL, 'w' },
        { "connect-timeout", required_argument, NULL, 'C' },
        { "command-timeout", required_argument, NULL, 'T' },
        { "reconnect-min", required_argument, NULL, 'n' },
        { "reconnect-max", required_argument, NULL, 'x' },
        { "log-level", required_argument, NULL, 'l' },
        { "close-on-down", no_argument, NULL, 'X' },
        { NULL, 0, NULL, 0 }
    };

    probe.channel = "probe";
    probe.send_timer.interval = 100;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            if (probe_addr(optarg, &conf->host, &conf->port) != 0) {
                probe_usage();
            }
            break;
        case 's':
            if (conf->nsentinels == WH_REDIS_MAX_SENTINELS
                || probe_addr(optarg,
                              &conf->sentinel_host[conf->nsentinels],
                              &conf->sentinel_port[conf->nsentinels])
                   != 0)
            {
                probe_usage();
            }
            conf->nsentinels++;
            break;
        case 'm':
            conf->master = optarg;
            break;
        case 'p':
            conf->password = probe_read_password(optarg);
            break;
        case 'd':
            conf->db = atoi(optarg);
            break;
        case 'i':
            probe.send_timer.interval = atoi(optarg);
            break;
        case 'c':
            probe.channel = optarg;
            break;
        case 'w':
            probe.wait = atoi(optarg);
            break;
        case 'C':
            conf->connect_timeout_ms = atoi(optarg);
            break;
        case 'T':
            conf->command_timeout_ms = atoi(optarg);
            break;
        case 'n':
            conf->reconnect_min_ms = atoi(optarg);
            break;
        case 'x':
            conf->reconnect_max_ms = atoi(optarg);
            break;
        case 'X':
            probe.close_on_down = 1;
            break;
        case 'l':
            if (wh_log_level(optarg, &level) != 0) {
                probe_usage();
            }
            break;
        default:
            probe_usage();
        }
    }

    if (wh_log_open(&probe.log, NULL, level, WH_LOG_TEXT, &err) != 0
        || wh_loop_init(&probe.loop, &err) != 0)
    {
        fprintf(stderr, "redis_probe: %s\n", err.msg);
        return 1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = probe_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&h, 0, sizeof(h));
    h.up = probe_up;
    h.down = probe_down;
    h.message = probe_message;
    h.subscribed = probe_subscribed;

    if (wh_redis_open(&probe.redis, &probe.loop, conf, &h, NULL, &probe.log,
                      &err)
        != 0)
    {
        fprintf(stderr, "redis_probe: %s\n", err.msg);
        return 2;
    }

    channel.data = probe.channel;
    channel.len = strlen(probe.channel);

    probe.send_timer.handler = probe_tick;
    probe.lag_timer.interval = 10;
    probe.lag_timer.handler = probe_lag;
    probe.last_stats = wh_loop_now();
    probe.state = WH_REDIS_DOWN;

    if (wh_redis_subscribe(probe.redis, channel) != 0
        || wh_loop_timer(&probe.loop, &probe.send_timer, &err) != 0
        || wh_loop_timer(&probe.loop, &probe.lag_timer, &err) != 0)
    {
        fprintf(stderr, "redis_probe: cannot start\n");
        return 1;
    }

    probe_begin("start");
    printf(",\"pid\":%d", (int) getpid());
    probe_end();

    if (wh_loop_run(&probe.loop, &err) != 0) {
        fprintf(stderr, "redis_probe: %s\n", err.msg);
    }

    probe_stats();

    /* every callback in flight runs now */
    wh_redis_close(probe.redis);
    probe.redis = NULL;
    wh_loop_timer_del(&probe.loop, &probe.send_timer);
    wh_loop_timer_del(&probe.loop, &probe.lag_timer);
    wh_loop_free(&probe.loop);

    probe_begin("exit");
    printf(",\"sent\":%llu,\"replied\":%llu",
           (unsigned long long) probe.sent,
           (unsigned long long) probe.replied);
    probe_end();

    free(conf->host);
    free(conf->password);

    for (i = 0; i < conf->nsentinels; i++) {
        free(conf->sentinel_host[i]);
    }

    wh_log_close(&probe.log);

    return 0;
}
