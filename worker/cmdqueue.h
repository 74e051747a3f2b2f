/*
 * The open commands (pending or sent) held in memory: per client one
 * FIFO list per priority, so that delivery order (higher priority
 * first, then oldest first) costs nothing to keep, and one min-heap of
 * the time each command next needs attention (ack deadline or ttl).
 *
 * The store (commands.c) is the truth; this is its index of what is
 * still open.  Nothing here touches LMDB, so the rules of the queue
 * (what a command needs now, how long an attempt waits for its result)
 * are plain functions, tested by t/unit/test_commands.c.
 */

#ifndef WH_CMDQUEUE_H
#define WH_CMDQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "wh_channel.h"
#include "wh_link.h"
#include "map.h"


#define WH_CMD_PRIORITIES     10
#define WH_CMD_CLIENT_MAX     256   /* bytes of a client id */
#define WH_CMD_ID_MAX         64    /* bytes of a command id */
#define WH_CMD_IDEM_MAX       128   /* bytes of an idempotency key */
#define WH_CMD_PRIORITY_DEF   5
/* the ack window doubles per attempt, up to 2^this times ack_timeout */
#define WH_CMD_BACKOFF_SHIFT  10
/* commands sent to a client and not answered yet, at most: a client
 * coming back to a long backlog gets it in steps, not in one burst that
 * would overrun its connection's send limit */
#define WH_CMD_WINDOW         64

#define WH_CMDQ_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX)

typedef enum {
    WH_CMD_PENDING = 0,     /* stored, never delivered */
    WH_CMD_SENT,            /* delivered, no result yet */
    WH_CMD_COMPLETED,
    WH_CMD_FAILED,
    WH_CMD_EXPIRED,
    WH_CMD_CANCELLED,
    WH_CMD_SUPERSEDED,      /* a newer one with its supersede_key came
                             * while it was pending */
    WH_CMD_NSTATUS
} wh_cmd_status_e;

typedef enum {
    WH_CMD_WAIT = 0,        /* nothing to do now */
    WH_CMD_DELIVER,         /* send (again) to the newest session */
    WH_CMD_EXPIRE,          /* the ttl passed */
    WH_CMD_GIVE_UP          /* the last attempt went unanswered */
} wh_cmd_action_e;

typedef struct {
    int64_t      ttl_ms;
    int64_t      ack_timeout_ms;
    unsigned     max_attempts;
    unsigned     window;        /* sent and unanswered, per client */
} wh_cmd_policy_t;

/* what the rules look at; times are wall-clock ms */
typedef struct {
    wh_cmd_status_e  status;
    unsigned         attempt;       /* deliveries so far */
    int64_t          expires_ms;
    int64_t          deadline_ms;   /* sent: the result is due by then */
    int64_t          not_before_ms; /* pending: not sent earlier; 0 */
    uint32_t         lane;          /* the hash of its lane; 0 none */
} wh_cmd_state_t;

typedef struct wh_qcmd_s     wh_qcmd_t;
typedef struct wh_qclient_s  wh_qclient_t;

struct wh_qcmd_s {
    wh_qcmd_t       *next, *prev;   /* in its client's priority list */
    wh_qclient_t    *client;
    size_t           heap;          /* position + 1 in the heap, 0 none */
    int64_t          due_ms;
    uint64_t         seq;           /* creation order */
    unsigned         priority;
    unsigned         queued;        /* an op will decide it: no other */
    wh_cmd_state_t   state;
    wh_str_t         ws, id;        /* point into the map key */
};

struct wh_qclient_s {
    wh_qcmd_t       *head[WH_CMD_PRIORITIES];
    wh_qcmd_t       *tail[WH_CMD_PRIORITIES];
    size_t           count;
    size_t           sent;          /* of them in status sent */
    wh_str_t         ws, client_id; /* point into the map key */
};

typedef struct {
    wh_map_t         cmds;          /* ws "\0" id -> wh_qcmd_t */
    wh_map_t         clients;       /* ws "\0" client -> wh_qclient_t */
    wh_map_t         workspaces;    /* ws -> its open commands, as a
                                     * number (the queued_commands
                                     * quota asks at every create) */
    wh_qcmd_t      **heap;
    size_t           nheap, cap;

    /* told of every due time set: the timer that pops them runs by
     * then (a due time may only come nearer through here) */
    void           (*due_set)(void *ctx, int64_t due_ms);
    void            *due_ctx;
} wh_cmdq_t;


/* "pending", ...; NULL for an invalid status */
const char *wh_cmd_status_name(wh_cmd_status_e status);
/* -1 if name is not a status */
int wh_cmd_status_parse(const char *name, size_t len);
/* 1 for pending and sent */
int wh_cmd_is_open(wh_cmd_status_e status);

/* when a command created at created_ms with a ttl of ttl_ms (0: the
 * policy's) expires: the one place a ttl becomes a time */
int64_t wh_cmd_expires_at(const wh_cmd_policy_t *p, int64_t created_ms,
    int64_t ttl_ms);

/* how long the attempt-th delivery (1, 2, ...) waits for a result:
 * ack_timeout, doubled per attempt, at most 2^WH_CMD_BACKOFF_SHIFT
 * times ack_timeout */
int64_t wh_cmd_ack_window(const wh_cmd_policy_t *p, unsigned attempt);

/* 1 if a client with in_flight commands sent and unanswered may get
 * one more */
int wh_cmd_window_open(const wh_cmd_policy_t *p, size_t in_flight);

/* 1 if a sent command's ack window is over at now */
int wh_cmd_ack_overdue(const wh_cmd_state_t *s, int64_t now);

/* the hash of a lane name, never 0; 0 for the empty name */
uint32_t wh_cmd_lane_hash(const char *name, size_t len);

/* what an open command needs at now; online: its client has a
 * session; in_flight: the client's commands sent and unanswered (a
 * pending one waits while they fill the window) */
wh_cmd_action_e wh_cmd_decide(const wh_cmd_policy_t *p,
    const wh_cmd_state_t *s, int64_t now, int online, size_t in_flight);

/* when wh_cmd_decide() may next answer something else than WAIT for
 * an offline client (a connect is an event of its own) */
int64_t wh_cmd_due(const wh_cmd_state_t *s, int64_t now);

/* sets s to the state after delivering once more at now */
void wh_cmd_delivered(const wh_cmd_policy_t *p, wh_cmd_state_t *s,
    int64_t now);


void wh_cmdq_init(wh_cmdq_t *q);

/* ws "\0" name into buf (WH_CMDQ_KEY_MAX bytes): the key of a client
 * or a command; 0 if a part is too long */
size_t wh_cmdq_key(unsigned char *buf, wh_str_t ws, wh_str_t name);
void wh_cmdq_free(wh_cmdq_t *q);

/* adds an open command (or updates the one with that ws and id) due
 * at due_ms.  NULL on ENOMEM or an invalid priority. */
wh_qcmd_t *wh_cmdq_put(wh_cmdq_t *q, wh_str_t ws, wh_str_t client_id,
    wh_str_t id, unsigned priority, uint64_t seq,
    const wh_cmd_state_t *state, int64_t due_ms);

wh_qcmd_t *wh_cmdq_find(wh_cmdq_t *q, wh_str_t ws, wh_str_t id);
wh_qclient_t *wh_cmdq_client(wh_cmdq_t *q, wh_str_t ws,
    wh_str_t client_id);

/* forgets a command (it became final) */
void wh_cmdq_remove(wh_cmdq_t *q, wh_qcmd_t *cmd);

/* moves the command's due time (and puts it back in the heap) */
void wh_cmdq_set_due(wh_cmdq_t *q, wh_qcmd_t *cmd, int64_t due_ms);

/* when the first command falls due (INT64_MAX: none) */
int64_t wh_cmdq_next_due(const wh_cmdq_t *q);

/* takes the command whose due time passed first out of the heap (it
 * stays open); NULL if none is due at now */
wh_qcmd_t *wh_cmdq_pop_due(wh_cmdq_t *q, int64_t now);

/* a client's open commands in delivery order: higher priority first,
 * then oldest first; NULL after the last */
wh_qcmd_t *wh_cmdq_first(wh_qclient_t *qc);
wh_qcmd_t *wh_cmdq_next(wh_qcmd_t *cmd);

/* open commands in all or in one workspace */
size_t wh_cmdq_count(wh_cmdq_t *q);
size_t wh_cmdq_count_ws(wh_cmdq_t *q, wh_str_t ws);

/* the queue over all workspaces (metrics) */
typedef struct {
    size_t           pending;       /* open commands by status */
    size_t           sent;
    size_t           clients;       /* clients with open commands */
    size_t           deepest;       /* open commands of the client with
                                     * the most */
} wh_cmdq_depth_t;

void wh_cmdq_depth(wh_cmdq_t *q, wh_cmdq_depth_t *d);

#endif /* WH_CMDQUEUE_H */
