
/*
 * wsload: a WebSocket load generator for loopback benchmarks.
 *
 * One coordinator process forks client processes (each holds thousands of
 * non-blocking connections in one epoll loop) and, for the publishing
 * modes, one publisher process.  They share one anonymous mapping
 * (wsl_shared_t): phase, counters, per-message delivery counts for the
 * publisher's flow control, and one histogram slot per process that the
 * coordinator merges at the end.
 */

#ifndef WSL_H
#define WSL_H


#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>


#define WSL_MAX_PROCS       32
#define WSL_MAX_PIDS        64
#define WSL_ACK_RING        4096
#define WSL_HIST_BUCKETS    1280
#define WSL_MAX_TOKEN       4096
#define WSL_ERR_LEN         256
#define WSL_SOURCE_ADDRS    16
/* publisher connections, one request in flight on each */
#define WSL_PUB_MAX_CONNS   256


typedef enum {
    WSL_MODE_CONNECT = 0,
    WSL_MODE_IDLE,
    WSL_MODE_FANOUT,
    WSL_MODE_MANY,
    /* durable commands: POST /api/clients/{id}/commands to connected
     * devices, which answer each with command_result */
    WSL_MODE_COMMANDS
} wsl_mode_e;


/* how a server is spoken to beyond RFC 6455 */
typedef enum {
    /* Wirehub protocol v1 (and the Node.js anchor): a first message after
     * the upgrade, {"type":"subscribe"} answered by "subscribed", publish
     * through POST {"type":..,"data":..} with a service token */
    WSL_PROTO_JSON = 0,
    /* Nchan and the floor: the channel is in the URL, publish by POSTing
     * the message body itself */
    WSL_PROTO_PATH,
    /* MQTT 3.1.1 over WebSocket (subprotocol "mqtt", binary frames), or
     * over plain TCP for an mqtt:// URL: CONNECT, SUBSCRIBE, PUBLISH */
    WSL_PROTO_MQTT
} wsl_proto_e;


typedef enum {
    WSL_PHASE_SETUP = 0,
    WSL_PHASE_WARMUP,
    WSL_PHASE_MEASURE,
    WSL_PHASE_STOP
} wsl_phase_e;


typedef struct {
    uint64_t            count;
    uint64_t            min;
    uint64_t            max;
    uint64_t            sum;
    uint64_t            buckets[WSL_HIST_BUCKETS];
} wsl_hist_t;


/* what one process reports; written by that process only */
typedef struct {
    wsl_hist_t          latency;        /* publish -> receive, us */
    wsl_hist_t          handshake;      /* connect -> ready, us */
    wsl_hist_t          publish;        /* request -> 2xx answer, us */
    wsl_hist_t          ack;            /* command sent -> result stored */
    uint64_t            cpu_us;         /* own user + system time */
} wsl_slot_t;


typedef struct {
    _Atomic int         phase;
    _Atomic uint64_t    ready;          /* subscribers ready now */
    _Atomic uint64_t    failed;         /* connections that never got ready */
    _Atomic uint64_t    lost;           /* ready, then closed by the server */
    _Atomic uint64_t    delivered;      /* messages received by clients */
    _Atomic uint64_t    published;      /* publishes answered 2xx */
    _Atomic uint64_t    pub_errors;     /* publishes answered otherwise */
    _Atomic uint64_t    stalls;         /* flow-control waits that timed out */
    _Atomic uint64_t    handshakes;     /* connect mode: completed */
    _Atomic uint64_t    handshake_errors;
    _Atomic uint64_t    results_refused;  /* command_result not accepted */
    _Atomic uint64_t    procs_done;
    _Atomic uint32_t    acks[WSL_ACK_RING];
    char                error[WSL_ERR_LEN];
    wsl_slot_t          slots[WSL_MAX_PROCS + 1];
} wsl_shared_t;


typedef struct {
    wsl_mode_e          mode;
    wsl_proto_e         proto;

    /* ws://127.0.0.1:PORT/PATH, "{ch}" in PATH is the channel */
    struct sockaddr_in  server;
    char                host[64];
    char                ws_path[256];
    int                 sub_tcp;        /* mqtt:// subscribers: no WS */
    char                sub_topic[256]; /* what a subscriber names, {ch} */
    struct sockaddr_in  pub_server;
    char                pub_host[64];
    char                pub_path[256];  /* path or MQTT topic, {ch} */
    int                 pub_mqtt;       /* mqtt:// publisher */

    struct in_addr      sources[WSL_SOURCE_ADDRS];
    unsigned            nsources;

    unsigned            conns;          /* subscribers (idle, fanout, many) */
    unsigned            channels;       /* 1 for fanout and idle */
    const char         *channel;        /* base name */
    unsigned            procs;
    double              ramp;           /* new connections per second */
    unsigned            inflight;       /* handshakes in flight, per proc */

    double              rate;           /* publishes per second, 0 = max */
    unsigned            window;         /* max mode: messages in flight */
    unsigned            pub_conns;      /* <= WSL_PUB_MAX_CONNS */
    unsigned            size;           /* publish body bytes */

    double              warmup;
    double              duration;
    double              settle;         /* idle: wait before reading memory */
    double              ready_timeout;
    double              limit;          /* hard limit for the whole run */

    const char         *alg;            /* NULL: no token */
    const char         *key_file;
    const char         *kid;
    const char         *workspace;
    const char         *token_file;     /* one token for every client */
    int                 new_tokens;     /* connect: never one token twice */

    pid_t               server_pids[WSL_MAX_PIDS];
    unsigned            nserver_pids;
} wsl_conf_t;


/* wsl_hist.c */
void wsl_hist_add(wsl_hist_t *h, uint64_t value);
void wsl_hist_merge(wsl_hist_t *into, const wsl_hist_t *from);
uint64_t wsl_hist_percentile(const wsl_hist_t *h, double pct);

/* wsl_token.c: JWTs minted here (HS256, ES256) or read from a file */
typedef struct wsl_signer_s  wsl_signer_t;

wsl_signer_t *wsl_signer_open(const wsl_conf_t *conf, char *err,
    size_t errlen);
int wsl_signer_mint(wsl_signer_t *s, const char *sub, int service,
    char *out, size_t outlen);
void wsl_signer_close(wsl_signer_t *s);

/* wsl_proc.c: what the server processes use, from /proc */
#define WSL_USAGE_DETAIL  16

typedef struct {
    pid_t               pid;
    char                comm[24];
    uint64_t            rss_kib;
    uint64_t            pss_kib;
    double              cpu_s;          /* utime + stime so far */
} wsl_proc_usage_t;


typedef struct {
    wsl_proc_usage_t    detail[WSL_USAGE_DETAIL];
    double              box_cpu_s;      /* the whole machine, busy */
    double              softirqd_cpu_s; /* ksoftirqd threads */
    double              cpu_s;          /* utime + stime */
    uint64_t            rss_kib;
    uint64_t            pss_kib;
    /* the kernel, box-wide: slab caches of sockets, TCP buffers */
    uint64_t            slab_kib;
    uint64_t            tcp_buf_kib;
    unsigned            nprocs;
} wsl_usage_t;

int wsl_usage_read(const wsl_conf_t *conf, wsl_usage_t *u);
double wsl_self_cpu_s(void);
double wsl_box_cpu_s(void);
double wsl_softirqd_cpu_s(void);

/* wsl_client.c: the per-process event loops */
int wsl_run_clients(const wsl_conf_t *conf, wsl_shared_t *sh,
    unsigned proc, unsigned first, unsigned count);
int wsl_run_publisher(const wsl_conf_t *conf, wsl_shared_t *sh,
    unsigned proc);

/* time */
uint64_t wsl_now_us(void);


#endif /* WSL_H */
