/*
 * The LMDB store: one LMDB environment of the LMDB engine
 * (engine_lmdb.h), which has two.  The state store holds what was
 * promised durable (the databases of kv.h: clients, commands,
 * revocations, jobs, sources, written by state_*.c through kv_lmdb.c)
 * and is synced on every commit.  The history store holds per channel
 * its metadata (last id, first id still in history, epoch, creation
 * time) and its history, and runs with MDB_NOSYNC: lmdb.h warns that a
 * system crash can then corrupt the whole environment, so nothing
 * durable may share it.  It is written through the map (MDB_WRITEMAP),
 * with disk allocated ahead of its pages (wh_store_reserve).  Both have
 * an info DB ("format", "role").  Keys are encoded as keys.h says.
 *
 *   channels DB: key workspace "\0" channel
 *                value be64 last_id, be64 first_id, be64 created_ms,
 *                      8 bytes epoch
 *   history DB:  key workspace "\0" channel "\0" be64 id
 *                value be64 time_ms, then the client-facing JSON text
 *
 * History ids of a channel are contiguous from first_id to last_id
 * (first_id = last_id + 1 when it is empty): trimming only ever
 * removes the oldest entries.  Writes happen in wh_store_write(),
 * which grows the map and retries on MDB_MAP_FULL.
 */

#ifndef WH_ENGINE_LMDB_STORE_H
#define WH_ENGINE_LMDB_STORE_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"
#include "engine.h"
#include "keys.h"
#include "log.h"


/*
 * History is committed without fsync and synced once a second; that
 * fdatasync takes 10-40 ms here and must not stall the event loop, so a
 * thread of its own runs it.  Synced commits (commands) stay in the loop.
 */
typedef struct {
    pthread_t        thread;
    pthread_mutex_t  lock;
    pthread_cond_t   wake;
    int              wanted;        /* a sync was asked for */
    int              stop;
    int              running;       /* the thread exists */
    int              error;         /* the last background sync failed */
} wh_store_syncer_t;

/*
 * The meta of the channel the last append went to, written when the write
 * commits or before another channel's: the messages a write appends to
 * one channel (a batch of command events, an MQTT burst) read and write
 * it once.
 */
typedef struct {
    MDB_txn         *txn;           /* NULL: nothing held back */
    size_t           klen;
    unsigned char    key[WH_WORKSPACE_MAX + 1 + WH_CHANNEL_MAX];
    wh_chan_meta_t   meta;
} wh_store_meta_t;

/* a cursor on the history kept for the write under way: the length
 * bound's trim finds its entry with it and deletes it there, without a
 * second search (LMDB closes it when the txn ends) */
typedef struct {
    MDB_txn         *txn;           /* NULL: none open */
    MDB_cursor      *cur;
} wh_store_trim_t;

typedef enum {
    WH_STORE_STATE = 0,         /* synced on every commit */
    WH_STORE_HISTORY            /* MDB_NOSYNC, synced every second */
} wh_store_kind_e;

typedef struct {
    wh_store_kind_e  kind;
    MDB_env     *env;
    MDB_dbi      chans;         /* the history store only */
    MDB_dbi      hist;
    MDB_txn     *rtxn;          /* a reset read txn, renewed per read */
    size_t       map_size;
    size_t       max_map_size;
    int          fd;            /* the data file's */
    size_t       psize;         /* LMDB's page size */
    size_t       reserved;      /* disk allocated from the file's start
                                 * (wh_store_reserve; history only) */
    uint32_t     hist_len;
    int64_t      ttl_ms;        /* 0: no time limit */
    int          dirty;         /* committed since the last sync (an
                                 * MDB_NOSYNC store only) */
    int          map_full;      /* the last write hit MDB_MAP_FULL */
    int          full;          /* the last write was refused: the map
                                 * is at max_map_size (metrics) */
    int          sync_failed;   /* the last sync failed (metrics) */
    wh_log_t    *log;           /* may be NULL */
    wh_store_syncer_t  syncer;
    wh_store_meta_t    held;    /* the write under way's */
    wh_store_trim_t    trim;    /* the write under way's */
} wh_store_t;

/* the engine's types (engine.h) under the store's names */
typedef wh_hist_range_t  wh_store_range_t;
typedef wh_hist_item_pt  wh_store_item_pt;
typedef wh_chan_item_pt  wh_store_chan_pt;

/* a write: runs in one txn, may be run again after the map grew */
typedef int (*wh_store_write_pt)(wh_store_t *st, MDB_txn *txn, void *ctx,
    wh_err_t *err);


/* opens (creates) the store of that kind in dir, files 0600; a map
 * that grew earlier keeps its size; the history store starts its sync
 * thread */
int wh_store_open(wh_store_t **out, const char *dir, wh_store_kind_e kind,
    size_t map_size, size_t max_map_size, uint32_t hist_len,
    int64_t ttl_ms, wh_log_t *log, wh_err_t *err);
/* syncs and closes */
void wh_store_close(wh_store_t *st);

int wh_store_write(wh_store_t *st, wh_store_write_pt fn, void *ctx,
    wh_err_t *err);

/* inside a write: the channel's metadata, created (with a new epoch)
 * if it does not exist and create is set; 1 found or created, 0 not
 * found, -1 error */
int wh_store_channel(wh_store_t *st, MDB_txn *txn, wh_str_t ws,
    wh_str_t ch, int64_t now, int create, wh_chan_meta_t *meta,
    wh_err_t *err);

/* inside a write: appends the message with id meta->last_id + 1 and
 * trims the history to its length; meta is updated.  *growth is what
 * the channel's history texts grow by (len minus the trimmed texts);
 * past room nothing changes and it returns 1 */
int wh_store_append(wh_store_t *st, MDB_txn *txn, wh_str_t ws,
    wh_str_t ch, wh_chan_meta_t *meta, int64_t now, const void *json,
    size_t len, int64_t room, int64_t *growth, wh_err_t *err);

/* creates the channel in a write of its own if it does not exist */
int wh_store_ensure(wh_store_t *st, wh_str_t ws, wh_str_t ch, int64_t now,
    wh_chan_meta_t *meta, wh_err_t *err);

/* reads the channel's metadata: 1 found, 0 not, -1 error */
int wh_store_meta(wh_store_t *st, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err);

/* history entries with after < id <= up_to, oldest first, at most
 * limit, skipping those older than the ttl at now */
int wh_store_read(wh_store_t *st, wh_str_t ws, wh_str_t ch, uint64_t after,
    uint64_t up_to, size_t limit, int64_t now, wh_store_item_pt cb,
    void *ctx, wh_store_range_t *r, wh_err_t *err);

/* the channels of a workspace whose name sorts after `after` */
int wh_store_channels(wh_store_t *st, wh_str_t ws, wh_str_t after,
    wh_store_chan_pt cb, void *ctx, wh_err_t *err);

/* removes history entries older than the ttl; after the commit, freed
 * learns the bytes of texts each channel lost */
int wh_store_expire(wh_store_t *st, int64_t now, wh_usage_pt freed,
    void *ctx, size_t *removed, wh_err_t *err);

/* every channel with the bytes of its history texts (quota.h) */
int wh_store_usage(wh_store_t *st, wh_usage_pt cb, void *ctx,
    wh_err_t *err);

/* msyncs if anything was committed since the last call */
int wh_store_sync(wh_store_t *st, wh_err_t *err);

/* an LMDB error: 507 for MDB_MAP_FULL (wh_store_write then grows the
 * map and runs the write again), else 503; "what: " and LMDB's message,
 * or LMDB's message alone if what is NULL (kv_lmdb.c: its callers say
 * what they were doing) */
int wh_mdb_error(int rc, const char *what, wh_err_t *err);

/* asks the sync thread to sync what is committed now, without waiting;
 * -1 with a message if the previous background sync failed */
int wh_store_sync_background(wh_store_t *st, wh_err_t *err);

/* how much of the map is in use, its size and bound, and whether the
 * last write or sync failed */
void wh_store_space(wh_store_t *st, wh_engine_space_stats_t *u);

/* the entries of a database of the store and the bytes of its pages,
 * from the counts LMDB keeps (no scan) */
int wh_store_db_size(wh_store_t *st, MDB_dbi dbi, uint64_t *entries,
    uint64_t *bytes, wh_err_t *err);

/* clears reader slots of dead processes */
int wh_store_check_readers(wh_store_t *st, int *dead, wh_err_t *err);

#endif /* WH_ENGINE_LMDB_STORE_H */
