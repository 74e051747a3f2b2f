
/*
 * wsload: WebSocket load for loopback benchmarks; see bench/README.md.
 *
 *   wsload connect|idle|fanout|many --url ws://127.0.0.1:PORT/PATH [...]
 *
 * The coordinator (this file) parses options, forks the client processes
 * and the publisher, steps the shared phase (setup, warmup, measure, stop),
 * reads the server's CPU and memory from /proc around the measured window,
 * merges the per-process histograms and prints one JSON object.
 */


#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "wsl.h"


#define WSL_POLL_MS         20
#define WSL_STOP_GRACE_S    10.0
#define WSL_READY_SHARE     0.99


typedef struct {
    pid_t               pids[WSL_MAX_PROCS + 1];
    unsigned            npids;
    double              started;
    wsl_usage_t         before;
    wsl_usage_t         after;
    double              loadgen_cpu_s;  /* its processes, in the window */
    uint64_t            delivered[2];
    uint64_t            published[2];
    uint64_t            handshakes[2];
    uint64_t            ready;          /* subscribers during the window */
    double              window_s;
    const char         *label;
} wsl_run_t;


static volatile sig_atomic_t  wsl_stop_requested;


static void
wsl_on_signal(int signo)
{
    (void) signo;
    wsl_stop_requested = 1;
}


static double
wsl_now_s(void)
{
    return (double) wsl_now_us() / 1e6;
}


static void
wsl_usage(void)
{
    fprintf(stderr,
        "usage: wsload connect|idle|fanout|many|commands --url URL\n"
        "  --proto json|path|mqtt\n"
        "                       json: Wirehub protocol (subscribe message,\n"
        "                       POST {type,data}); path: channel in the URL;\n"
        "                       mqtt: MQTT 3.1.1 over WebSocket (or over TCP\n"
        "                       with --url mqtt://127.0.0.1:P/)\n"
        "  --sub-topic T        what a subscriber names ({ch}: its channel)\n"
        "  --pub URL            http://127.0.0.1:P/PATH to POST to, or\n"
        "                       mqtt://127.0.0.1:P/TOPIC ({ch}: the channel)\n"
        "  --conns N            subscribers, or handshakes in flight\n"
        "  --channels N         channels (many), NAME-0 .. NAME-N-1\n"
        "  --channel NAME       channel name (default bench)\n"
        "  --procs N            client processes (default 2)\n"
        "  --ramp R             new connections per second (default 5000)\n"
        "  --inflight N         handshakes in flight per process (256)\n"
        "  --rate R             publishes per second, 0: as fast as the\n"
        "                       --window of messages in flight allows\n"
        "  --window N           (default 8)\n"
        "  --pub-conns N        publisher connections, one request in flight\n"
        "                       on each (default 4, at most 256)\n"
        "  --size B             message data bytes (default 100)\n"
        "  --warmup S --duration S --settle S --ready-timeout S\n"
        "  --limit S            hard limit for the whole run (default 120)\n"
        "  --alg HS256|ES256 --key FILE [--kid K] [--workspace W]\n"
        "  --token-file FILE    one token for every client\n"
        "  --new-tokens         connect: a token minted for each handshake\n"
        "                       (default: 1,024 a process, used in turn,\n"
        "                       as reconnecting clients bring theirs)\n"
        "  --server-pid PID     server process (children included), repeat\n"
        "  --sources N          client source addresses 127.0.1.1.. (8)\n"
        "  --label TEXT         echoed in the result\n");
}


/* ws:// or http:// to a loopback address only; "{ch}" may be in the path */
static int
wsl_parse_url(const char *url, const char *scheme, struct sockaddr_in *sa,
    char *host, size_t hostlen, char *path, size_t pathlen)
{
    int          port;
    char         addr[64];
    size_t       n;
    const char  *p, *colon, *slash;

    n = strlen(scheme);

    if (strncmp(url, scheme, n) != 0) {
        return -1;
    }

    p = url + n;
    colon = strchr(p, ':');
    slash = strchr(p, '/');

    if (colon == NULL || slash == NULL || colon > slash
        || (size_t) (colon - p) >= sizeof(addr))
    {
        return -1;
    }

    memcpy(addr, p, (size_t) (colon - p));
    addr[colon - p] = '\0';
    port = atoi(colon + 1);

    if (strcmp(addr, "localhost") == 0) {
        strcpy(addr, "127.0.0.1");
    }

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t) port);

    if (port <= 0 || port > 65535 || inet_pton(AF_INET, addr, &sa->sin_addr)
        != 1 || (ntohl(sa->sin_addr.s_addr) >> 24) != 127)
    {
        fprintf(stderr, "wsload: %s: only 127.0.0.0/8 is allowed\n", url);
        return -1;
    }

    if ((size_t) (slash - p) >= hostlen || strlen(slash) >= pathlen) {
        return -1;
    }

    memcpy(host, p, (size_t) (slash - p));
    host[slash - p] = '\0';
    strcpy(path, slash);

    return 0;
}


static void
wsl_conf_defaults(wsl_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));

    conf->proto = WSL_PROTO_JSON;
    conf->conns = 1000;
    conf->channels = 1;
    conf->channel = "bench";
    conf->procs = 2;
    conf->ramp = 5000;
    conf->inflight = 256;
    conf->window = 8;
    conf->pub_conns = 4;
    conf->size = 100;
    conf->warmup = 2;
    conf->duration = 10;
    conf->settle = 3;
    conf->ready_timeout = 60;
    conf->limit = 120;
    conf->workspace = "bench";
    conf->nsources = 8;
    strcpy(conf->sub_topic, "{ch}");
}


static int
wsl_conf_mode(wsl_conf_t *conf, const char *mode)
{
    static const char  *names[] = { "connect", "idle", "fanout", "many",
                                    "commands" };
    unsigned            i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(mode, names[i]) == 0) {
            conf->mode = (wsl_mode_e) i;
            return 0;
        }
    }

    return -1;
}


static int
wsl_conf_proto(wsl_conf_t *conf, const char *name)
{
    if (strcmp(name, "json") == 0) {
        conf->proto = WSL_PROTO_JSON;

    } else if (strcmp(name, "path") == 0) {
        conf->proto = WSL_PROTO_PATH;

    } else if (strcmp(name, "mqtt") == 0) {
        conf->proto = WSL_PROTO_MQTT;

    } else {
        return -1;
    }

    return 0;
}


static int
wsl_conf_option(wsl_conf_t *conf, int opt, const char *arg)
{
    switch (opt) {
    case 'u':
        conf->sub_tcp = strncmp(arg, "mqtt://", 7) == 0;
        return wsl_parse_url(arg, conf->sub_tcp ? "mqtt://" : "ws://",
                             &conf->server, conf->host, sizeof(conf->host),
                             conf->ws_path, sizeof(conf->ws_path));
    case 'P':
        conf->pub_mqtt = strncmp(arg, "mqtt://", 7) == 0;
        return wsl_parse_url(arg, conf->pub_mqtt ? "mqtt://" : "http://",
                             &conf->pub_server, conf->pub_host,
                             sizeof(conf->pub_host), conf->pub_path,
                             sizeof(conf->pub_path));
    case 'o':
        return wsl_conf_proto(conf, arg);
    case 't':
        if (strlen(arg) >= sizeof(conf->sub_topic)) {
            return -1;
        }
        strcpy(conf->sub_topic, arg);
        return 0;
    case 'n': conf->conns = (unsigned) atoi(arg); return 0;
    case 'c': conf->channels = (unsigned) atoi(arg); return 0;
    case 'C': conf->channel = arg; return 0;
    case 'p': conf->procs = (unsigned) atoi(arg); return 0;
    case 'r': conf->ramp = atof(arg); return 0;
    case 'i': conf->inflight = (unsigned) atoi(arg); return 0;
    case 'R': conf->rate = atof(arg); return 0;
    case 'w': conf->window = (unsigned) atoi(arg); return 0;
    case 'k': conf->pub_conns = (unsigned) atoi(arg); return 0;
    case 's': conf->size = (unsigned) atoi(arg); return 0;
    case 'W': conf->warmup = atof(arg); return 0;
    case 'd': conf->duration = atof(arg); return 0;
    case 'S': conf->settle = atof(arg); return 0;
    case 'T': conf->ready_timeout = atof(arg); return 0;
    case 'L': conf->limit = atof(arg); return 0;
    case 'a': conf->alg = arg; return 0;
    case 'K': conf->key_file = arg; return 0;
    case 'I': conf->kid = arg; return 0;
    case 'y': conf->workspace = arg; return 0;
    case 'f': conf->token_file = arg; return 0;
    case 'N': conf->new_tokens = 1; return 0;
    case 'x':
        if (conf->nserver_pids == WSL_MAX_PIDS) {
            return -1;
        }
        conf->server_pids[conf->nserver_pids++] = (pid_t) atoi(arg);
        return 0;
    case 'A': conf->nsources = (unsigned) atoi(arg); return 0;
    default:
        return -1;
    }
}


static int
wsl_conf_check(wsl_conf_t *conf)
{
    unsigned  i;

    if (conf->host[0] == '\0') {
        fprintf(stderr, "wsload: --url is required\n");
        return -1;
    }

    if (conf->mode >= WSL_MODE_FANOUT && conf->pub_host[0] == '\0')
    {
        fprintf(stderr, "wsload: --pub is required for this mode\n");
        return -1;
    }

    if (conf->procs == 0 || conf->procs > WSL_MAX_PROCS || conf->conns == 0
        || conf->channels == 0 || conf->inflight == 0 || conf->ramp <= 0
        || conf->pub_conns == 0 || conf->pub_conns > WSL_PUB_MAX_CONNS
        || conf->nsources == 0
        || conf->nsources > WSL_SOURCE_ADDRS || conf->size > 60000
        || conf->window == 0 || conf->window > WSL_ACK_RING / 2
        || (conf->alg && conf->key_file == NULL))
    {
        fprintf(stderr, "wsload: an option is out of range\n");
        return -1;
    }

    if (conf->sub_tcp) {
        conf->proto = WSL_PROTO_MQTT;
    }

    if (conf->mode == WSL_MODE_CONNECT && conf->proto == WSL_PROTO_MQTT) {
        fprintf(stderr, "wsload: connect mode speaks JSON or path only\n");
        return -1;
    }

    if (conf->conns < conf->procs) {
        conf->procs = conf->conns;
    }

    for (i = 0; i < conf->nsources; i++) {
        conf->sources[i].s_addr = htonl(0x7f000101 + i);
    }

    return 0;
}


static int
wsl_conf_parse(wsl_conf_t *conf, int argc, char **argv)
{
    int                         opt;
    static const struct option  options[] = {
        { "url", required_argument, NULL, 'u' },
        { "pub", required_argument, NULL, 'P' },
        { "proto", required_argument, NULL, 'o' },
        { "sub-topic", required_argument, NULL, 't' },
        { "conns", required_argument, NULL, 'n' },
        { "channels", required_argument, NULL, 'c' },
        { "channel", required_argument, NULL, 'C' },
        { "procs", required_argument, NULL, 'p' },
        { "ramp", required_argument, NULL, 'r' },
        { "inflight", required_argument, NULL, 'i' },
        { "rate", required_argument, NULL, 'R' },
        { "window", required_argument, NULL, 'w' },
        { "pub-conns", required_argument, NULL, 'k' },
        { "size", required_argument, NULL, 's' },
        { "warmup", required_argument, NULL, 'W' },
        { "duration", required_argument, NULL, 'd' },
        { "settle", required_argument, NULL, 'S' },
        { "ready-timeout", required_argument, NULL, 'T' },
        { "limit", required_argument, NULL, 'L' },
        { "alg", required_argument, NULL, 'a' },
        { "key", required_argument, NULL, 'K' },
        { "kid", required_argument, NULL, 'I' },
        { "workspace", required_argument, NULL, 'y' },
        { "token-file", required_argument, NULL, 'f' },
        { "new-tokens", no_argument, NULL, 'N' },
        { "server-pid", required_argument, NULL, 'x' },
        { "sources", required_argument, NULL, 'A' },
        { "label", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 }
    };

    wsl_conf_defaults(conf);

    if (argc < 2 || wsl_conf_mode(conf, argv[1]) != 0) {
        wsl_usage();
        return -1;
    }

    optind = 2;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt == 'l') {
            continue;
        }

        if (wsl_conf_option(conf, opt, optarg) != 0) {
            fprintf(stderr, "wsload: bad value for option %s\n",
                    argv[optind - 1]);
            return -1;
        }
    }

    return wsl_conf_check(conf);
}


static const char *
wsl_label(int argc, char **argv)
{
    int  i;

    for (i = 2; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--label") == 0) {
            return argv[i + 1];
        }
    }

    return "";
}


static pid_t
wsl_spawn(const wsl_conf_t *conf, wsl_shared_t *sh, unsigned proc,
    unsigned first, unsigned count)
{
    int    rc;
    pid_t  pid;

    pid = fork();

    if (pid != 0) {
        return pid;
    }

    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    alarm((unsigned) conf->limit + 15);

    rc = (proc == conf->procs) ? wsl_run_publisher(conf, sh, proc)
                               : wsl_run_clients(conf, sh, proc, first,
                                                 count);
    if (rc != 0 && sh->error[0] == '\0') {
        snprintf(sh->error, sizeof(sh->error), "process %u failed: %s",
                 proc, strerror(errno));
    }

    atomic_fetch_add(&sh->procs_done, 1);
    _exit(rc == 0 ? 0 : 1);
}


static int
wsl_start(const wsl_conf_t *conf, wsl_shared_t *sh, wsl_run_t *run)
{
    unsigned  i, first, count;

    first = 0;

    for (i = 0; i < conf->procs; i++) {
        count = conf->conns / conf->procs
                + (i < conf->conns % conf->procs ? 1 : 0);

        run->pids[run->npids] = wsl_spawn(conf, sh, i, first, count);
        if (run->pids[run->npids] == -1) {
            return -1;
        }

        run->npids++;
        first += count;
    }

    if (conf->mode >= WSL_MODE_FANOUT) {
        run->pids[run->npids] = wsl_spawn(conf, sh, conf->procs, 0, 0);
        if (run->pids[run->npids] == -1) {
            return -1;
        }
        run->npids++;
    }

    return 0;
}


/* a child that ended before the stop is an error of the whole run */
static int
wsl_children_alive(wsl_shared_t *sh)
{
    return atomic_load(&sh->procs_done) == 0;
}


static int
wsl_sleep(const wsl_conf_t *conf, wsl_shared_t *sh, wsl_run_t *run,
    double seconds)
{
    double           until;
    struct timespec  ts;

    until = wsl_now_s() + seconds;
    ts.tv_sec = 0;
    ts.tv_nsec = WSL_POLL_MS * 1000000L;

    while (wsl_now_s() < until) {
        if (wsl_stop_requested || !wsl_children_alive(sh)
            || wsl_now_s() - run->started > conf->limit)
        {
            return -1;
        }
        nanosleep(&ts, NULL);
    }

    return 0;
}


static int
wsl_wait_ready(const wsl_conf_t *conf, wsl_shared_t *sh, wsl_run_t *run)
{
    double    until;
    uint64_t  ready, failed;

    if (conf->mode == WSL_MODE_CONNECT) {
        return 0;
    }

    until = wsl_now_s() + conf->ready_timeout;

    for ( ;; ) {
        ready = atomic_load(&sh->ready);
        failed = atomic_load(&sh->failed);

        if (ready + failed >= conf->conns || wsl_now_s() > until) {
            break;
        }

        if (wsl_sleep(conf, sh, run, WSL_POLL_MS / 1000.0) != 0) {
            return -1;
        }
    }

    if ((double) ready < WSL_READY_SHARE * conf->conns) {
        if (sh->error[0] == '\0') {
            snprintf(sh->error, sizeof(sh->error),
                     "only %llu of %u connections got ready "
                     "(%llu failed)", (unsigned long long) ready,
                     conf->conns, (unsigned long long) failed);
        }
        return conf->mode == WSL_MODE_IDLE ? 0 : -1;
    }

    return 0;
}


static void
wsl_snapshot(wsl_shared_t *sh, wsl_run_t *run, int end)
{
    run->delivered[end] = atomic_load(&sh->delivered);
    run->published[end] = atomic_load(&sh->published);
    run->handshakes[end] = atomic_load(&sh->handshakes);
}


/* the CPU time of this generator's own processes so far */
static double
wsl_loadgen_cpu_s(const wsl_run_t *run)
{
    unsigned      i;
    wsl_conf_t   *own;
    wsl_usage_t   u;

    own = calloc(1, sizeof(wsl_conf_t));
    if (own == NULL) {
        return 0.0;
    }

    for (i = 0; i < run->npids && i < WSL_MAX_PIDS; i++) {
        own->server_pids[own->nserver_pids++] = run->pids[i];
    }

    (void) wsl_usage_read(own, &u);
    free(own);

    return u.cpu_s;
}


static int
wsl_measure(const wsl_conf_t *conf, wsl_shared_t *sh, wsl_run_t *run)
{
    double  t0;

    if (conf->mode == WSL_MODE_IDLE) {
        if (wsl_sleep(conf, sh, run, conf->settle) != 0) {
            return -1;
        }
        (void) wsl_usage_read(conf, &run->after);
        run->ready = atomic_load(&sh->ready);
        /* memory is compared with the server before the first client */
        run->window_s = wsl_now_s() - run->started;
        return 0;
    }

    atomic_store(&sh->phase, WSL_PHASE_WARMUP);

    if (wsl_sleep(conf, sh, run, conf->warmup) != 0) {
        return -1;
    }

    (void) wsl_usage_read(conf, &run->before);
    run->loadgen_cpu_s = -wsl_loadgen_cpu_s(run);
    wsl_snapshot(sh, run, 0);
    t0 = wsl_now_s();
    atomic_store(&sh->phase, WSL_PHASE_MEASURE);

    /* a wrapper (bench.py --perf) starts a profiler on this line */
    fprintf(stderr, "wsload: measuring for %.1f s\n", conf->duration);

    if (wsl_sleep(conf, sh, run, conf->duration) != 0) {
        return -1;
    }

    (void) wsl_usage_read(conf, &run->after);
    run->loadgen_cpu_s += wsl_loadgen_cpu_s(run);
    wsl_snapshot(sh, run, 1);
    run->window_s = wsl_now_s() - t0;
    run->ready = atomic_load(&sh->ready);

    return 0;
}


static void
wsl_stop(wsl_shared_t *sh, wsl_run_t *run)
{
    int       status;
    double    until;
    unsigned  i, left;

    atomic_store(&sh->phase, WSL_PHASE_STOP);
    until = wsl_now_s() + WSL_STOP_GRACE_S;

    do {
        left = 0;

        for (i = 0; i < run->npids; i++) {
            if (run->pids[i] > 0) {
                if (waitpid(run->pids[i], &status, WNOHANG) == run->pids[i])
                {
                    run->pids[i] = 0;
                } else {
                    left++;
                }
            }
        }

        if (left) {
            usleep(WSL_POLL_MS * 1000);
        }

    } while (left && wsl_now_s() < until);

    for (i = 0; i < run->npids; i++) {
        if (run->pids[i] > 0) {
            kill(run->pids[i], SIGKILL);
            (void) waitpid(run->pids[i], &status, 0);
        }
    }
}


static void
wsl_print_hist(const char *name, const wsl_hist_t *h)
{
    printf("\"%s\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
           "\"p999\":%llu,\"max\":%llu,\"mean\":%.1f},", name,
           (unsigned long long) h->count,
           (unsigned long long) wsl_hist_percentile(h, 50),
           (unsigned long long) wsl_hist_percentile(h, 90),
           (unsigned long long) wsl_hist_percentile(h, 99),
           (unsigned long long) wsl_hist_percentile(h, 99.9),
           (unsigned long long) h->max,
           h->count ? (double) h->sum / (double) h->count : 0.0);
}


/* a process's PSS before the first client; 0 if it was not there yet */
static uint64_t
wsl_pss_before(const wsl_usage_t *before, pid_t pid)
{
    unsigned  i;

    for (i = 0; i < before->nprocs && i < WSL_USAGE_DETAIL; i++) {
        if (before->detail[i].pid == pid) {
            return before->detail[i].pss_kib;
        }
    }

    return 0;
}


/* the PSS growth per connection of each program (nginx, wirehubd) */
static void
wsl_print_by_comm(const wsl_run_t *run, double n)
{
    double                   kib[WSL_USAGE_DETAIL];
    unsigned                 i, j, ncomm;
    const char              *comm[WSL_USAGE_DETAIL];
    const wsl_proc_usage_t  *d;

    ncomm = 0;

    for (i = 0; i < run->after.nprocs && i < WSL_USAGE_DETAIL; i++) {
        d = &run->after.detail[i];

        for (j = 0; j < ncomm && strcmp(comm[j], d->comm) != 0; j++) {
            /* void */
        }

        if (j == ncomm) {
            comm[ncomm] = d->comm;
            kib[ncomm++] = 0.0;
        }

        kib[j] += (double) d->pss_kib
                  - (double) wsl_pss_before(&run->before, d->pid);
    }

    printf("\"pss_per_conn_kib_by_comm\":{");

    for (j = 0; j < ncomm; j++) {
        printf("%s\"%s\":%.3f", j ? "," : "", comm[j], kib[j] / n);
    }

    printf("},");
}


/*
 * The kernel's share: slab caches and TCP buffers grew for both ends of
 * every connection (the clients are on this box too, and their sockets
 * cost what the server's do), so half of it is the server's.  Box-wide:
 * whatever else runs here shows in it.
 */
static void
wsl_print_kernel(const wsl_run_t *run, double n)
{
    double  slab, tcp;

    slab = (double) run->after.slab_kib - (double) run->before.slab_kib;
    tcp = (double) run->after.tcp_buf_kib - (double) run->before.tcp_buf_kib;

    printf("\"kernel\":{\"slab_before_kib\":%llu,\"slab_after_kib\":%llu,"
           "\"tcp_buf_before_kib\":%llu,\"tcp_buf_after_kib\":%llu,"
           "\"both_ends_per_conn_kib\":%.3f,\"per_conn_kib\":%.3f},",
           (unsigned long long) run->before.slab_kib,
           (unsigned long long) run->after.slab_kib,
           (unsigned long long) run->before.tcp_buf_kib,
           (unsigned long long) run->after.tcp_buf_kib,
           (slab + tcp) / n, (slab + tcp) / n / 2);
}


static void
wsl_print_memory(const wsl_run_t *run)
{
    double                   n, cpu;
    unsigned                 i, j;
    const wsl_proc_usage_t  *d;

    n = run->ready ? (double) run->ready : 1.0;

    printf("\"server_procs\":[");

    for (i = 0; i < run->after.nprocs && i < WSL_USAGE_DETAIL; i++) {
        d = &run->after.detail[i];

        /* the CPU it used between the two readings (a process that came
         * meanwhile: all it used) */
        cpu = d->cpu_s;

        for (j = 0; j < run->before.nprocs && j < WSL_USAGE_DETAIL; j++) {
            if (run->before.detail[j].pid == d->pid) {
                cpu -= run->before.detail[j].cpu_s;
                break;
            }
        }

        printf("%s{\"pid\":%d,\"comm\":\"%s\",\"rss_kib\":%llu,"
               "\"pss_kib\":%llu,\"cpu_s\":%.3f}", i ? "," : "",
               (int) d->pid, d->comm, (unsigned long long) d->rss_kib,
               (unsigned long long) d->pss_kib, cpu);
    }

    printf("],");

    printf("\"memory\":{\"procs\":%u,\"rss_before_kib\":%llu,"
           "\"rss_after_kib\":%llu,\"pss_before_kib\":%llu,"
           "\"pss_after_kib\":%llu,\"rss_per_conn_kib\":%.3f,",
           run->after.nprocs,
           (unsigned long long) run->before.rss_kib,
           (unsigned long long) run->after.rss_kib,
           (unsigned long long) run->before.pss_kib,
           (unsigned long long) run->after.pss_kib,
           ((double) run->after.rss_kib - (double) run->before.rss_kib) / n);
    wsl_print_by_comm(run, n);
    wsl_print_kernel(run, n);
    printf("\"pss_per_conn_kib\":%.3f},",
           ((double) run->after.pss_kib - (double) run->before.pss_kib) / n);
}


static void
wsl_print_rates(const wsl_conf_t *conf, const wsl_run_t *run)
{
    double  w, cpu, delivered, published, handshakes, per_channel;

    w = run->window_s > 0 ? run->window_s : 1.0;
    cpu = run->after.cpu_s - run->before.cpu_s;
    delivered = (double) (run->delivered[1] - run->delivered[0]);
    published = (double) (run->published[1] - run->published[0]);
    handshakes = (double) (run->handshakes[1] - run->handshakes[0]);
    /* a wildcard subscriber (fewer subscribers than channels) gets all */
    per_channel = (double) run->ready / conf->channels;
    if (per_channel < 1.0) {
        per_channel = 1.0;
    }

    printf("\"window_s\":%.3f,\"delivered\":%.0f,\"deliveries_per_s\":%.1f,"
           "\"published\":%.0f,\"publishes_per_s\":%.1f,"
           "\"delivery_ratio\":%.4f,\"handshakes\":%.0f,"
           "\"handshakes_per_s\":%.1f,",
           run->window_s, delivered, delivered / w, published, published / w,
           published > 0 ? delivered / (published * per_channel) : 0.0,
           handshakes, handshakes / w);

    printf("\"box_cpu_cores\":%.3f,\"softirqd_cpu_cores\":%.3f,"
           "\"loadgen_cpu_cores\":%.3f,",
           (run->after.box_cpu_s - run->before.box_cpu_s) / w,
           (run->after.softirqd_cpu_s - run->before.softirqd_cpu_s) / w,
           run->loadgen_cpu_s / w);

    printf("\"server\":{\"procs\":%u,\"cpu_s\":%.3f,\"cpu_cores\":%.3f,"
           "\"cpu_us_per_delivery\":%.3f,\"cpu_us_per_handshake\":%.3f,"
           "\"handshakes_per_core_s\":%.1f},",
           run->after.nprocs, cpu, cpu / w,
           delivered > 0 ? cpu * 1e6 / delivered : 0.0,
           handshakes > 0 ? cpu * 1e6 / handshakes : 0.0,
           cpu > 0 ? handshakes / cpu : 0.0);
}


static void
wsl_report(const wsl_conf_t *conf, wsl_shared_t *sh, const wsl_run_t *run,
    int ok)
{
    unsigned     i;
    uint64_t     cpu_us;
    wsl_hist_t  *latency, *handshake, *publish, *ack;
    static const char  *modes[] = { "connect", "idle", "fanout", "many",
                                    "commands" };

    latency = calloc(1, sizeof(wsl_hist_t));
    handshake = calloc(1, sizeof(wsl_hist_t));
    publish = calloc(1, sizeof(wsl_hist_t));
    ack = calloc(1, sizeof(wsl_hist_t));
    if (latency == NULL || handshake == NULL || publish == NULL
        || ack == NULL)
    {
        free(latency);
        free(handshake);
        free(publish);
        free(ack);
        return;
    }

    cpu_us = 0;

    for (i = 0; i <= conf->procs; i++) {
        wsl_hist_merge(latency, &sh->slots[i].latency);
        wsl_hist_merge(handshake, &sh->slots[i].handshake);
        wsl_hist_merge(publish, &sh->slots[i].publish);
        wsl_hist_merge(ack, &sh->slots[i].ack);
        cpu_us += sh->slots[i].cpu_us;
    }

    printf("{\"mode\":\"%s\",\"label\":\"%s\",\"ok\":%s,\"conns\":%u,"
           "\"procs\":%u,\"ready\":%llu,\"failed\":%llu,\"lost\":%llu,"
           "\"pub_errors\":%llu,\"stalls\":%llu,\"handshake_errors\":%llu,"
           "\"results_refused\":%llu,",
           modes[conf->mode], run->label, ok ? "true" : "false",
           conf->conns, conf->procs,
           (unsigned long long) run->ready,
           (unsigned long long) atomic_load(&sh->failed),
           (unsigned long long) atomic_load(&sh->lost),
           (unsigned long long) atomic_load(&sh->pub_errors),
           (unsigned long long) atomic_load(&sh->stalls),
           (unsigned long long) atomic_load(&sh->handshake_errors),
           (unsigned long long) atomic_load(&sh->results_refused));

    wsl_print_rates(conf, run);
    wsl_print_memory(run);
    wsl_print_hist("latency_us", latency);
    wsl_print_hist("handshake_us", handshake);
    wsl_print_hist("publish_us", publish);
    wsl_print_hist("ack_us", ack);

    printf("\"loadgen_cpu_s\":%.3f,\"error\":\"", (double) cpu_us / 1e6);

    for (i = 0; sh->error[i]; i++) {
        if (sh->error[i] != '"' && sh->error[i] != '\\') {
            putchar(sh->error[i]);
        }
    }

    printf("\"}\n");
    fflush(stdout);

    free(latency);
    free(handshake);
    free(publish);
    free(ack);
}


static void
wsl_raise_nofile(void)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }
}


int
main(int argc, char **argv)
{
    int            ok;
    wsl_conf_t     conf;
    wsl_run_t      run;
    wsl_shared_t  *sh;

    if (wsl_conf_parse(&conf, argc, argv) != 0) {
        return 2;
    }

    memset(&run, 0, sizeof(run));
    run.label = wsl_label(argc, argv);
    run.started = wsl_now_s();

    sh = mmap(NULL, sizeof(wsl_shared_t), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "wsload: mmap: %s\n", strerror(errno));
        return 1;
    }

    wsl_raise_nofile();
    signal(SIGINT, wsl_on_signal);
    signal(SIGTERM, wsl_on_signal);
    signal(SIGPIPE, SIG_IGN);

    (void) wsl_usage_read(&conf, &run.before);

    ok = wsl_start(&conf, sh, &run) == 0
         && wsl_wait_ready(&conf, sh, &run) == 0
         && wsl_measure(&conf, sh, &run) == 0;

    if (!ok && sh->error[0] == '\0') {
        snprintf(sh->error, sizeof(sh->error), "%s",
                 wsl_stop_requested ? "interrupted" : "time limit reached");
    }

    wsl_stop(sh, &run);
    wsl_report(&conf, sh, &run, ok && sh->error[0] == '\0');

    return ok ? 0 : 1;
}
