/*
 * LMDB store.  The history environment runs with MDB_NOSYNC (the
 * daemon syncs it every second when something was committed, and at
 * exit) and MDB_WRITEMAP (a commit writes no page: they are in the file
 * already, written through the map); the state environment with
 * MDB_NOMETASYNC: every commit syncs its data pages, so the environment
 * stays whole, and its meta page is synced by the next commit or by
 * wh_store_sync(), which the writes that must be durable (a command,
 * before it is answered) ask for.  A commit nobody waits for (a client's
 * last_seen) then costs one sync, not two.  Both run with MDB_NOTLS
 * (read txns are not tied to threads, so one reset read txn is reused
 * for every read).
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wh_channel.h"
#include "engine_lmdb_store.h"


#define WH_META_SIZE     (3 * WH_BE64_LEN + WH_EPOCH_LEN)
#define WH_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CHANNEL_MAX + 1 \
                          + WH_BE64_LEN)
/* ws "\0" name: a channel or a client id */
#define WH_NAME_KEY_MAX  (WH_WORKSPACE_MAX + 1 + WH_CHANNEL_MAX \
                          + WH_CMD_CLIENT_MAX)
#define WH_STORE_FORMAT  "1"
/* channels, history, info, and the commands' and clients' databases */
#define WH_STORE_MAX_DBS  16
/* the disk a map-written store keeps allocated past what LMDB uses: a
 * write's new pages land there (wh_store_reserve) */
#define WH_STORE_AHEAD    (64 * 1024 * 1024)
/* what the info DB says a store holds: a state directory opened as
 * history (or the reverse) is refused, not filled */
static const char  *wh_store_roles[] = { "state", "history" };

/* an entry of a scan by name; 0 goes on, 1 stops, -1 (err set) fails */
typedef int (*wh_store_name_pt)(void *ctx, wh_str_t name, const MDB_val *v,
    wh_err_t *err);


/* an LMDB error as the API reports it: 507 when the map is full */
int
wh_mdb_error(int rc, const char *what, wh_err_t *err)
{
    int  status = rc == MDB_MAP_FULL ? 507 : 503;

    if (what == NULL) {
        return wh_err(err, status, "%s", mdb_strerror(rc));
    }

    return wh_err(err, status, "%s: %s", what, mdb_strerror(rc));
}


static void
wh_meta_encode(unsigned char *p, const wh_chan_meta_t *m)
{
    wh_be64_put(p, m->last_id);
    wh_be64_put(p + WH_BE64_LEN, m->first_id);
    wh_be64_put(p + 2 * WH_BE64_LEN, (uint64_t) m->created_ms);
    memcpy(p + 3 * WH_BE64_LEN, m->epoch, WH_EPOCH_LEN);
}


static int
wh_meta_decode(const MDB_val *v, wh_chan_meta_t *m, wh_err_t *err)
{
    const unsigned char  *p = v->mv_data;

    if (v->mv_size != WH_META_SIZE) {
        return wh_err(err, 503, "corrupt channel record (%zu bytes)",
                      v->mv_size);
    }

    m->last_id = wh_be64_get(p);
    m->first_id = wh_be64_get(p + WH_BE64_LEN);
    m->created_ms = (int64_t) wh_be64_get(p + 2 * WH_BE64_LEN);
    memcpy(m->epoch, p + 3 * WH_BE64_LEN, WH_EPOCH_LEN);
    m->epoch[WH_EPOCH_LEN] = '\0';

    return 0;
}


static int
wh_store_fail(wh_store_t *st, int rc, const char *what, wh_err_t *err)
{
    if (rc == MDB_MAP_FULL) {
        st->map_full = 1;
        return wh_err(err, 507, "%s: storage map is full (%zu bytes)",
                      what, st->map_size);
    }

    return wh_err(err, 503, "%s: %s", what, mdb_strerror(rc));
}


/* the role of a new store is written; an existing one must match */
static int
wh_store_role(wh_store_t *st, MDB_txn *txn, MDB_dbi info, wh_err_t *err)
{
    int          rc;
    size_t       len;
    MDB_val      k, v;
    const char  *role = wh_store_roles[st->kind];

    k.mv_data = "role";
    k.mv_size = 4;
    len = strlen(role);
    rc = mdb_get(txn, info, &k, &v);

    if (rc == MDB_NOTFOUND) {
        v.mv_data = (void *) role;
        v.mv_size = len;
        rc = mdb_put(txn, info, &k, &v, 0);
        return rc ? wh_store_fail(st, rc, "writing the role", err) : 0;
    }

    if (rc != 0) {
        return wh_store_fail(st, rc, "reading the role", err);
    }

    if (v.mv_size != len || memcmp(v.mv_data, role, len) != 0) {
        return wh_err(err, 503, "this environment holds \"%.*s\", not "
                      "\"%s\"", (int) (v.mv_size > 16 ? 16 : v.mv_size),
                      (char *) v.mv_data, role);
    }

    return 0;
}


static int
wh_store_init_dbs(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int       rc;
    MDB_dbi   info;
    MDB_val   k, v;

    (void) ctx;

    if (st->kind == WH_STORE_HISTORY
        && ((rc = mdb_dbi_open(txn, "channels", MDB_CREATE, &st->chans))
            != 0
            || (rc = mdb_dbi_open(txn, "history", MDB_CREATE, &st->hist))
               != 0))
    {
        return wh_store_fail(st, rc, "opening the databases", err);
    }

    if ((rc = mdb_dbi_open(txn, "info", MDB_CREATE, &info)) != 0) {
        return wh_store_fail(st, rc, "opening the databases", err);
    }

    if (wh_store_role(st, txn, info, err) != 0) {
        return -1;
    }

    k.mv_data = "format";
    k.mv_size = 6;
    rc = mdb_get(txn, info, &k, &v);

    if (rc == MDB_NOTFOUND) {
        v.mv_data = WH_STORE_FORMAT;
        v.mv_size = 1;
        rc = mdb_put(txn, info, &k, &v, 0);
        return rc ? wh_store_fail(st, rc, "writing the format", err) : 0;
    }

    if (rc != 0) {
        return wh_store_fail(st, rc, "reading the format", err);
    }

    if (v.mv_size != 1 || memcmp(v.mv_data, WH_STORE_FORMAT, 1) != 0) {
        return wh_err(err, 503, "unknown storage format \"%.*s\"",
                      (int) (v.mv_size > 16 ? 16 : v.mv_size),
                      (char *) v.mv_data);
    }

    return 0;
}


static void *
wh_store_syncer_main(void *data)
{
    int                 rc;
    wh_store_t         *st = data;
    wh_store_syncer_t  *sy = &st->syncer;

    pthread_mutex_lock(&sy->lock);

    for ( ;; ) {
        while (!sy->wanted && !sy->stop) {
            pthread_cond_wait(&sy->wake, &sy->lock);
        }

        if (sy->stop) {
            break;
        }

        sy->wanted = 0;
        pthread_mutex_unlock(&sy->lock);

        /* the data file's descriptor, not mdb_env_sync(): with
         * MDB_WRITEMAP that would msync() the map, which the loop may
         * be remapping (wh_store_grow); fdatasync() writes the pages
         * dirtied through the map all the same, beside the loop's
         * transactions */
        rc = fdatasync(st->fd) == 0 ? 0 : errno;

        pthread_mutex_lock(&sy->lock);

        if (rc != 0) {
            sy->error = rc;
        }
    }

    pthread_mutex_unlock(&sy->lock);

    return NULL;
}


int
wh_store_sync_background(wh_store_t *st, wh_err_t *err)
{
    int                 failed;
    wh_store_syncer_t  *sy = &st->syncer;

    if (!sy->running) {
        return wh_store_sync(st, err);
    }

    pthread_mutex_lock(&sy->lock);

    failed = sy->error;
    sy->error = 0;

    if (st->dirty) {
        st->dirty = 0;
        sy->wanted = 1;
        pthread_cond_signal(&sy->wake);
    }

    pthread_mutex_unlock(&sy->lock);

    /* what the thread found the last time it synced */
    st->sync_failed = failed != 0;

    if (failed) {
        return wh_err(err, 503, "storage sync: %s", mdb_strerror(failed));
    }

    return 0;
}


/* the sync thread of the history store */
static void
wh_store_syncer_start(wh_store_t *st)
{
    sigset_t  all, old;

    pthread_mutex_init(&st->syncer.lock, NULL);
    pthread_cond_init(&st->syncer.wake, NULL);

    /* the thread takes no signal: they belong to the loop's signalfd */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    if (pthread_create(&st->syncer.thread, NULL, wh_store_syncer_main, st)
        == 0)
    {
        st->syncer.running = 1;

    } else if (st->log) {
        /* syncs then happen in the loop, as before: slower, not wrong */
        wh_log_warn(st->log, "storage: no sync thread, syncing in the "
                    "loop");
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);
}


int
wh_store_open(wh_store_t **out, const char *dir, wh_store_kind_e kind,
    size_t map_size, size_t max_map_size, uint32_t hist_len,
    int64_t ttl_ms, wh_log_t *log, wh_err_t *err)
{
    int           rc, dead;
    unsigned      flags;
    MDB_stat      ms;
    MDB_envinfo   info;
    wh_store_t   *st;

    /* only wirehubd reads its store (DESIGN.md "Failure semantics") */
    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        return wh_err(err, 503, "cannot create storage directory \"%s\": "
                      "%s", dir, strerror(errno));
    }

    st = calloc(1, sizeof(wh_store_t));

    if (st == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    st->kind = kind;
    st->max_map_size = max_map_size;
    st->hist_len = hist_len;
    st->ttl_ms = ttl_ms;
    st->log = log;

    /* MDB_NOSYNC only where a system crash may cost the last second
     * and, lmdb.h warns, the integrity of the environment: history;
     * MDB_NOMETASYNC keeps it ("may undo the last committed
     * transaction"), and the meta page is synced when a write asks */
    flags = MDB_NOTLS | (kind == WH_STORE_HISTORY ? MDB_NOSYNC
                                                  : MDB_NOMETASYNC);

    /* history: LMDB copies no page to write it (a commit of a turn's
     * appends, spread over many channels, was one pwrite() a message);
     * the state store keeps its own writes, which its syncs order */
    if (kind == WH_STORE_HISTORY) {
        flags |= MDB_WRITEMAP;
    }

    if ((rc = mdb_env_create(&st->env)) != 0
        || (rc = mdb_env_set_maxdbs(st->env, WH_STORE_MAX_DBS)) != 0
        || (rc = mdb_env_set_mapsize(st->env, map_size)) != 0
        || (rc = mdb_env_open(st->env, dir, flags, 0600)) != 0)
    {
        wh_err(err, 503, "cannot open storage \"%s\": %s", dir,
               mdb_strerror(rc));
        goto failed;
    }

    /* an existing map larger than map_size (it grew) is kept as is */
    mdb_env_info(st->env, &info);
    st->map_size = info.me_mapsize;

    if ((rc = mdb_env_get_fd(st->env, &st->fd)) != 0
        || (rc = mdb_env_stat(st->env, &ms)) != 0)
    {
        wh_err(err, 503, "cannot open storage \"%s\": %s", dir,
               mdb_strerror(rc));
        goto failed;
    }

    st->psize = ms.ms_psize;

    if (st->max_map_size < st->map_size) {
        st->max_map_size = st->map_size;
    }

    if (wh_store_check_readers(st, &dead, err) != 0
        || wh_store_write(st, wh_store_init_dbs, NULL, err) != 0)
    {
        goto failed;
    }

    if (dead && log) {
        wh_log_warn(log, "storage %s: cleared %d stale reader slots",
                    wh_store_roles[kind], dead);
    }

    if (kind == WH_STORE_HISTORY) {
        wh_store_syncer_start(st);
    }

    *out = st;

    return 0;

failed:

    if (st->env) {
        mdb_env_close(st->env);
    }

    free(st);

    return -1;
}


void
wh_store_close(wh_store_t *st)
{
    wh_err_t  err;

    if (st->syncer.running) {
        pthread_mutex_lock(&st->syncer.lock);
        st->syncer.stop = 1;
        pthread_cond_signal(&st->syncer.wake);
        pthread_mutex_unlock(&st->syncer.lock);
        pthread_join(st->syncer.thread, NULL);
        st->syncer.running = 0;
    }

    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
    }

    /* everything committed is synced before the process goes */
    st->dirty = 1;

    if (wh_store_sync(st, &err) != 0 && st->log) {
        wh_log_error(st->log, "storage %s: %s", wh_store_roles[st->kind],
                     err.msg);
    }

    mdb_env_close(st->env);
    free(st);
}


static int
wh_store_grow(wh_store_t *st, wh_err_t *err)
{
    int     rc;
    size_t  size;

    if (st->map_size >= st->max_map_size) {
        st->full = 1;
        return wh_err(err, 507, "storage full: the %s map reached "
                      "max_map_size (%zu bytes)", wh_store_roles[st->kind],
                      st->max_map_size);
    }

    size = st->map_size > st->max_map_size / 2 ? st->max_map_size
                                               : st->map_size * 2;

    /* no txn may be open, not even a reset one */
    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }

    rc = mdb_env_set_mapsize(st->env, size);

    if (rc != 0) {
        return wh_err(err, 507, "growing the map to %zu bytes: %s", size,
                      mdb_strerror(rc));
    }

    if (st->log) {
        wh_log_warn(st->log, "storage %s: map grown from %zu to %zu bytes",
                    wh_store_roles[st->kind], st->map_size, size);
    }

    st->map_size = size;

    return 0;
}


/* the pages up to the last one written: LMDB reuses freed pages below
 * it, so MDB_MAP_FULL comes when this reaches the map size */
static size_t
wh_store_used(wh_store_t *st)
{
    MDB_envinfo  info;

    mdb_env_info(st->env, &info);

    return ((size_t) info.me_last_pgno + 1) * st->psize;
}


/*
 * Through the map, a store to a page of the file that has no disk block
 * yet allocates one, and on a full disk that store gets SIGBUS instead
 * of an error.  So a map-written store keeps WH_STORE_AHEAD of disk
 * allocated past the pages LMDB uses, topped up before a write once half
 * of it is used: a full disk then refuses the write (503), before it
 * starts, and the process stays up.  Only one write that adds more than
 * half of it at once (32 MiB of new pages in one commit) could still
 * meet a full disk.
 */
static int
wh_store_reserve(wh_store_t *st, wh_err_t *err)
{
    int     rc;
    size_t  used, want;

    used = wh_store_used(st);

    if (used + WH_STORE_AHEAD / 2 <= st->reserved) {
        return 0;
    }

    /* past the map LMDB grows it first (wh_store_grow) */
    want = used + WH_STORE_AHEAD < st->map_size ? used + WH_STORE_AHEAD
                                                 : st->map_size;

    if (want <= st->reserved) {
        return 0;
    }

    rc = posix_fallocate(st->fd, (off_t) st->reserved,
                         (off_t) (want - st->reserved));

    /* as a full disk under a written page is, in the state store */
    if (rc != 0) {
        return wh_err(err, 503, "no disk for the %s store: %s",
                      wh_store_roles[st->kind], strerror(rc));
    }

    st->reserved = want;

    return 0;
}


/* writes the meta the last append held back (wh_store_meta_t) */
static int
wh_store_meta_flush(wh_store_t *st, MDB_txn *txn, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  val[WH_META_SIZE];

    if (st->held.txn != txn) {
        return 0;
    }

    st->held.txn = NULL;
    k.mv_data = st->held.key;
    k.mv_size = st->held.klen;
    wh_meta_encode(val, &st->held.meta);
    v.mv_data = val;
    v.mv_size = WH_META_SIZE;

    rc = mdb_put(txn, st->chans, &k, &v, 0);

    return rc ? wh_store_fail(st, rc, "updating a channel", err) : 0;
}


int
wh_store_write(wh_store_t *st, wh_store_write_pt fn, void *ctx,
    wh_err_t *err)
{
    int       rc;
    MDB_txn  *txn;

    for ( ;; ) {
        st->map_full = 0;
        err->status = 0;

        /* history, written through its map */
        if (st->kind == WH_STORE_HISTORY && wh_store_reserve(st, err) != 0)
        {
            return -1;
        }

        rc = mdb_txn_begin(st->env, NULL, 0, &txn);

        if (rc != 0) {
            return wh_store_fail(st, rc, "beginning a write", err);
        }

        if (fn(st, txn, ctx, err) != 0
            || wh_store_meta_flush(st, txn, err) != 0)
        {
            st->held.txn = NULL;
            st->trim.txn = NULL;
            mdb_txn_abort(txn);

            /* the engine's own databases report MDB_MAP_FULL as 507
             * (wh_mdb_error), the only source of that status */
            if ((st->map_full || err->status == 507)
                && wh_store_grow(st, err) == 0)
            {
                continue;
            }

            return -1;
        }

        rc = mdb_txn_commit(txn);
        st->trim.txn = NULL;

        if (rc == MDB_MAP_FULL) {
            if (wh_store_grow(st, err) == 0) {
                continue;
            }

            return -1;
        }

        if (rc != 0) {
            return wh_store_fail(st, rc, "commit", err);
        }

        /* history: nothing synced; state: all but the meta page */
        st->dirty = 1;
        st->full = 0;

        return 0;
    }
}


int
wh_store_channel(wh_store_t *st, MDB_txn *txn, wh_str_t ws, wh_str_t ch,
    int64_t now, int create, wh_chan_meta_t *meta, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_KEY_MAX], val[WH_META_SIZE];

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, ch);

    if (st->held.txn == txn && st->held.klen == k.mv_size
        && memcmp(st->held.key, key, k.mv_size) == 0)
    {
        *meta = st->held.meta;
        return 1;
    }

    rc = mdb_get(txn, st->chans, &k, &v);

    if (rc == 0) {
        return wh_meta_decode(&v, meta, err) == 0 ? 1 : -1;
    }

    if (rc != MDB_NOTFOUND) {
        return wh_store_fail(st, rc, "reading a channel", err);
    }

    if (!create) {
        return 0;
    }

    meta->last_id = 0;
    meta->first_id = 1;
    meta->created_ms = now;
    wh_epoch_new(meta->epoch);

    wh_meta_encode(val, meta);
    v.mv_data = val;
    v.mv_size = WH_META_SIZE;

    rc = mdb_put(txn, st->chans, &k, &v, 0);

    return rc ? wh_store_fail(st, rc, "creating a channel", err) : 1;
}


static int
wh_store_trim_cursor(wh_store_t *st, MDB_txn *txn, MDB_cursor **cur,
    wh_err_t *err)
{
    int  rc;

    if (st->trim.txn != txn) {
        rc = mdb_cursor_open(txn, st->hist, &st->trim.cur);

        if (rc != 0) {
            return wh_store_fail(st, rc, "opening a cursor", err);
        }

        st->trim.txn = txn;
    }

    *cur = st->trim.cur;

    return 0;
}


/* the bytes an entry's text takes (the time before it is not counted) */
static uint64_t
wh_store_text_bytes(const MDB_val *v)
{
    return v->mv_size > WH_BE64_LEN ? v->mv_size - WH_BE64_LEN : 0;
}


int
wh_store_append(wh_store_t *st, MDB_txn *txn, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *json, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    uint64_t       first, freed = 0;
    MDB_cursor    *cur = NULL;
    unsigned char  key[WH_KEY_MAX];

    if (meta->last_id + 2 - meta->first_id > st->hist_len
        && wh_store_trim_cursor(st, txn, &cur, err) != 0)
    {
        return -1;
    }

    /* the length bound, counted before anything changes: what the trim
     * frees makes room for the new entry (normally one goes per append) */
    for (first = meta->first_id; meta->last_id + 2 - first > st->hist_len;
         first++)
    {
        /* MDB_SET_KEY points k at the key in the page: set again */
        k.mv_data = key;
        k.mv_size = wh_key_seq(key, ws, ch, first);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);

        if (rc != 0 && rc != MDB_NOTFOUND) {
            return wh_store_fail(st, rc, "trimming history", err);
        }

        freed += rc == 0 ? wh_store_text_bytes(&v) : 0;
    }

    *growth = (int64_t) len - (int64_t) freed;

    if (*growth > room) {
        return 1;
    }

    /* the cursor is at the last entry found: MDB_SET finds one on the
     * page it is at without a search from the root */
    for ( /* void */ ; meta->first_id < first; meta->first_id++) {
        k.mv_data = key;
        k.mv_size = wh_key_seq(key, ws, ch, meta->first_id);
        rc = mdb_cursor_get(cur, &k, NULL, MDB_SET);

        if (rc == 0) {
            rc = mdb_cursor_del(cur, 0);
        }

        if (rc != 0 && rc != MDB_NOTFOUND) {
            return wh_store_fail(st, rc, "trimming history", err);
        }
    }

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, ws, ch, meta->last_id + 1);
    v.mv_size = WH_BE64_LEN + len;

    rc = mdb_put(txn, st->hist, &k, &v, MDB_RESERVE);

    if (rc != 0) {
        return wh_store_fail(st, rc, "appending to history", err);
    }

    wh_be64_put(v.mv_data, (uint64_t) now);
    memcpy((unsigned char *) v.mv_data + WH_BE64_LEN, json, len);
    meta->last_id++;

    k.mv_size = wh_key_pair(key, ws, ch);

    if (st->held.txn == txn
        && (st->held.klen != k.mv_size
            || memcmp(st->held.key, key, k.mv_size) != 0)
        && wh_store_meta_flush(st, txn, err) != 0)
    {
        return -1;
    }

    st->held.txn = txn;
    st->held.klen = k.mv_size;
    memcpy(st->held.key, key, k.mv_size);
    st->held.meta = *meta;

    return 0;
}


typedef struct {
    wh_str_t         ws, ch;
    int64_t          now;
    wh_chan_meta_t  *meta;
} wh_ensure_ctx_t;


static int
wh_store_ensure_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    wh_ensure_ctx_t  *e = ctx;

    return wh_store_channel(st, txn, e->ws, e->ch, e->now, 1, e->meta,
                            err) < 0 ? -1 : 0;
}


int
wh_store_ensure(wh_store_t *st, wh_str_t ws, wh_str_t ch, int64_t now,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    int              rc;
    wh_ensure_ctx_t  e = { ws, ch, now, meta };

    rc = wh_store_meta(st, ws, ch, meta, err);

    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    return wh_store_write(st, wh_store_ensure_txn, &e, err);
}


static int
wh_store_rbegin(wh_store_t *st, wh_err_t *err)
{
    int  rc;

    rc = st->rtxn ? mdb_txn_renew(st->rtxn)
                  : mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);

    if (rc != 0) {
        if (st->rtxn) {
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;
        }

        return wh_store_fail(st, rc, "beginning a read", err);
    }

    return 0;
}


static void
wh_store_rend(wh_store_t *st)
{
    mdb_txn_reset(st->rtxn);
}


int
wh_store_meta(wh_store_t *st, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    int  rc;

    if (wh_store_rbegin(st, err) != 0) {
        return -1;
    }

    rc = wh_store_channel(st, st->rtxn, ws, ch, 0, 0, meta, err);
    wh_store_rend(st);

    return rc;
}


static int
wh_store_scan(wh_store_t *st, MDB_cursor *cur, const unsigned char *prefix,
    size_t plen, uint64_t up_to, size_t limit, int64_t now,
    wh_store_item_pt cb, void *ctx, wh_store_range_t *r, wh_err_t *err)
{
    int       rc;
    uint64_t  id;
    int64_t   t, cutoff;
    MDB_val   k, v;

    cutoff = st->ttl_ms ? now - st->ttl_ms : INT64_MIN;
    k.mv_data = (void *) prefix;
    k.mv_size = plen + WH_BE64_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, prefix, plen) != 0
            || v.mv_size < WH_BE64_LEN)
        {
            break;
        }

        id = wh_be64_get((unsigned char *) k.mv_data + plen);

        if (id > up_to) {
            break;
        }

        t = (int64_t) wh_be64_get(v.mv_data);

        if (t < cutoff) {
            continue;
        }

        if (r->count == limit
            || cb(ctx, id, t, (char *) v.mv_data + WH_BE64_LEN,
                  v.mv_size - WH_BE64_LEN) != 0)
        {
            r->more = 1;
            return 0;
        }

        if (r->count++ == 0) {
            r->first = id;
        }

        r->last = id;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_store_fail(st, rc, "reading history", err);
    }

    return 0;
}


int
wh_store_read(wh_store_t *st, wh_str_t ws, wh_str_t ch, uint64_t after,
    uint64_t up_to, size_t limit, int64_t now, wh_store_item_pt cb,
    void *ctx, wh_store_range_t *r, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_cursor    *cur;
    unsigned char  key[WH_KEY_MAX];

    memset(r, 0, sizeof(wh_store_range_t));

    if (wh_store_rbegin(st, err) != 0) {
        return -1;
    }

    rc = wh_store_channel(st, st->rtxn, ws, ch, 0, 0, &r->meta, err);

    if (rc <= 0 || after >= up_to || after >= r->meta.last_id) {
        r->found = rc > 0;
        wh_store_rend(st);
        return rc < 0 ? -1 : 0;
    }

    r->found = 1;
    rc = mdb_cursor_open(st->rtxn, st->hist, &cur);

    if (rc != 0) {
        wh_store_rend(st);
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    if (after + 1 < r->meta.first_id) {
        after = r->meta.first_id - 1;
    }

    plen = wh_key_seq(key, ws, ch, after + 1) - WH_BE64_LEN;
    rc = wh_store_scan(st, cur, key, plen, up_to, limit, now, cb, ctx, r,
                       err);
    mdb_cursor_close(cur);
    wh_store_rend(st);

    return rc;
}


/* the entries of cur keyed ws "\0" name whose name sorts after
 * `after`, in order (the channels) */
static int
wh_store_scan_names(MDB_cursor *cur, wh_str_t ws, wh_str_t after,
    const char *what, wh_store_name_pt cb, void *ctx, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    wh_str_t       name;
    unsigned char  key[WH_NAME_KEY_MAX];

    if (ws.len + 1 + after.len > sizeof(key)) {
        return wh_err(err, 400, "%s: the cursor is too long", what);
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, after);
    plen = ws.len + 1;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size <= plen || memcmp(k.mv_data, key, plen) != 0) {
            return 0;
        }

        name.data = (const char *) k.mv_data + plen;
        name.len = k.mv_size - plen;

        if (name.len == after.len
            && memcmp(name.data, after.data, after.len) == 0)
        {
            continue;
        }

        rc = cb(ctx, name, &v, err);

        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }
    }

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, what, err);
}


typedef struct {
    wh_store_chan_pt   cb;
    void              *ctx;
} wh_store_list_t;


static int
wh_store_list_item(void *ctx, wh_str_t name, const MDB_val *v,
    wh_err_t *err)
{
    wh_chan_meta_t    meta;
    wh_store_list_t  *l = ctx;

    if (wh_meta_decode(v, &meta, err) != 0) {
        return -1;
    }

    return l->cb(l->ctx, name.data, name.len, &meta) ? 1 : 0;
}


int
wh_store_channels(wh_store_t *st, wh_str_t ws, wh_str_t after,
    wh_store_chan_pt cb, void *ctx, wh_err_t *err)
{
    int               rc;
    MDB_cursor       *cur;
    wh_store_list_t   l;

    if (wh_store_rbegin(st, err) != 0) {
        return -1;
    }

    rc = mdb_cursor_open(st->rtxn, st->chans, &cur);

    if (rc != 0) {
        wh_store_rend(st);
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    l.cb = cb;
    l.ctx = ctx;
    rc = wh_store_scan_names(cur, ws, after, "listing channels",
                             wh_store_list_item, &l, err);

    mdb_cursor_close(cur);
    wh_store_rend(st);

    return rc;
}


/* what an expiry removed: per channel, records of be64 bytes, u16 key
 * length and the key (workspace "\0" channel), reported after the
 * commit */
typedef struct {
    int64_t    cutoff;
    size_t     removed;
    uint64_t   freed;           /* of the channel being expired */
    wh_buf_t   recs;
    int        nomem;
} wh_expire_ctx_t;


/* drops the expired head of one channel's history; hc is positioned
 * by the caller's key */
static int
wh_store_expire_chan(wh_store_t *st, MDB_cursor *hc, const MDB_val *ck,
    wh_chan_meta_t *meta, wh_expire_ctx_t *x, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    unsigned char  key[WH_KEY_MAX];

    plen = ck->mv_size + 1;
    x->freed = 0;

    if (plen + WH_BE64_LEN > sizeof(key)) {
        return wh_err(err, 503, "corrupt channel key");
    }

    memcpy(key, ck->mv_data, ck->mv_size);
    key[ck->mv_size] = '\0';
    wh_be64_put(key + plen, meta->first_id);
    k.mv_data = key;
    k.mv_size = plen + WH_BE64_LEN;

    for (rc = mdb_cursor_get(hc, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(hc, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0
            || v.mv_size < WH_BE64_LEN
            || (int64_t) wh_be64_get(v.mv_data) >= x->cutoff)
        {
            break;
        }

        meta->first_id = wh_be64_get((unsigned char *) k.mv_data + plen)
                         + 1;
        x->freed += wh_store_text_bytes(&v);

        rc = mdb_cursor_del(hc, 0);

        if (rc != 0) {
            return wh_store_fail(st, rc, "expiring history", err);
        }

        x->removed++;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_store_fail(st, rc, "expiring history", err);
    }

    return 0;
}


/* remembers what the expiry freed in a channel, for after the commit */
static void
wh_expire_note(wh_expire_ctx_t *x, const MDB_val *ck)
{
    uint16_t       klen = (uint16_t) ck->mv_size;
    unsigned char  n[WH_BE64_LEN];

    wh_be64_put(n, x->freed);

    if (wh_buf_append(&x->recs, n, sizeof(n)) != 0
        || wh_buf_append(&x->recs, &klen, sizeof(klen)) != 0
        || wh_buf_append(&x->recs, ck->mv_data, klen) != 0)
    {
        x->nomem = 1;
    }
}


static int
wh_store_expire_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int              rc;
    uint64_t         first;
    MDB_val          k, v;
    MDB_cursor      *cc, *hc;
    wh_chan_meta_t   meta;
    wh_expire_ctx_t *x = ctx;
    unsigned char    val[WH_META_SIZE];

    /* the write may run again: from scratch */
    x->removed = 0;
    x->recs.len = 0;
    x->nomem = 0;

    if (wh_store_meta_flush(st, txn, err) != 0) {
        return -1;
    }

    if ((rc = mdb_cursor_open(txn, st->chans, &cc)) != 0) {
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    if ((rc = mdb_cursor_open(txn, st->hist, &hc)) != 0) {
        mdb_cursor_close(cc);
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cc, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cc, &k, &v, MDB_NEXT))
    {
        if (wh_meta_decode(&v, &meta, err) != 0) {
            rc = -1;
            break;
        }

        if (meta.first_id > meta.last_id) {
            continue;
        }

        first = meta.first_id;

        if (wh_store_expire_chan(st, hc, &k, &meta, x, err) != 0) {
            rc = -1;
            break;
        }

        if (meta.first_id != first) {
            wh_expire_note(x, &k);
            wh_meta_encode(val, &meta);
            v.mv_data = val;
            v.mv_size = WH_META_SIZE;
            rc = mdb_cursor_put(cc, &k, &v, MDB_CURRENT);

            if (rc != 0) {
                wh_store_fail(st, rc, "updating a channel", err);
                rc = -1;
                break;
            }
        }
    }

    mdb_cursor_close(hc);
    mdb_cursor_close(cc);

    if (rc == -1) {
        return -1;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_store_fail(st, rc, "expiring history", err);
    }

    /* a count the quotas would miss is worse than an expiry later */
    return x->nomem ? wh_err(err, 503, "out of memory") : 0;
}


/* a workspace "\0" channel key as its two names */
static void
wh_store_split(const unsigned char *key, size_t len, wh_str_t *ws,
    wh_str_t *ch)
{
    const unsigned char  *nul;

    nul = memchr(key, '\0', len);
    ws->data = (const char *) key;
    ws->len = nul ? (size_t) (nul - key) : len;
    ch->data = nul ? (const char *) nul + 1 : "";
    ch->len = nul ? len - ws->len - 1 : 0;
}


int
wh_store_expire(wh_store_t *st, int64_t now, wh_usage_pt freed, void *ctx,
    size_t *removed, wh_err_t *err)
{
    int               rc;
    size_t            pos;
    uint16_t          klen;
    wh_str_t          ws, ch;
    wh_expire_ctx_t   x;

    *removed = 0;

    if (st->ttl_ms == 0) {
        return 0;
    }

    memset(&x, 0, sizeof(x));
    x.cutoff = now - st->ttl_ms;

    rc = wh_store_write(st, wh_store_expire_txn, &x, err);

    for (pos = 0; rc == 0 && pos < x.recs.len; pos += klen) {
        memcpy(&klen, x.recs.data + pos + WH_BE64_LEN, sizeof(klen));
        wh_store_split(x.recs.data + pos + WH_BE64_LEN + sizeof(klen), klen,
                       &ws, &ch);
        (void) freed(ctx, ws, ch, wh_be64_get(x.recs.data + pos));
        pos += WH_BE64_LEN + sizeof(klen);
    }

    wh_buf_free(&x.recs);

    if (rc != 0) {
        return -1;
    }

    *removed = x.removed;

    return 0;
}


/* the bytes of one channel's history texts, in the read txn */
static int
wh_store_chan_bytes(wh_store_t *st, MDB_cursor *hc, const MDB_val *ck,
    uint64_t *bytes, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    unsigned char  key[WH_KEY_MAX];

    plen = ck->mv_size + 1;
    *bytes = 0;

    if (plen + WH_BE64_LEN > sizeof(key)) {
        return wh_err(err, 503, "corrupt channel key");
    }

    memcpy(key, ck->mv_data, ck->mv_size);
    key[ck->mv_size] = '\0';
    memset(key + plen, 0, WH_BE64_LEN);
    k.mv_data = key;
    k.mv_size = plen + WH_BE64_LEN;

    for (rc = mdb_cursor_get(hc, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(hc, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0)
        {
            return 0;
        }

        *bytes += wh_store_text_bytes(&v);
    }

    return rc == MDB_NOTFOUND ? 0
                              : wh_store_fail(st, rc, "reading history", err);
}


int
wh_store_usage(wh_store_t *st, wh_usage_pt cb, void *ctx, wh_err_t *err)
{
    int          rc;
    MDB_val      k, v;
    uint64_t     bytes;
    wh_str_t     ws, ch;
    MDB_cursor  *cc, *hc;

    if (wh_store_rbegin(st, err) != 0) {
        return -1;
    }

    if ((rc = mdb_cursor_open(st->rtxn, st->chans, &cc)) != 0) {
        wh_store_rend(st);
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    if ((rc = mdb_cursor_open(st->rtxn, st->hist, &hc)) != 0) {
        mdb_cursor_close(cc);
        wh_store_rend(st);
        return wh_store_fail(st, rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cc, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cc, &k, &v, MDB_NEXT))
    {
        if (wh_store_chan_bytes(st, hc, &k, &bytes, err) != 0) {
            rc = -1;
            break;
        }

        wh_store_split(k.mv_data, k.mv_size, &ws, &ch);

        if (cb(ctx, ws, ch, bytes) != 0) {
            rc = wh_err(err, 503, "out of memory");
            break;
        }
    }

    mdb_cursor_close(hc);
    mdb_cursor_close(cc);
    wh_store_rend(st);

    if (rc == -1) {
        return -1;
    }

    return rc == MDB_NOTFOUND ? 0
                              : wh_store_fail(st, rc, "counting history", err);
}


int
wh_store_sync(wh_store_t *st, wh_err_t *err)
{
    int  rc;

    if (!st->dirty) {
        return 0;
    }

    rc = mdb_env_sync(st->env, 1);
    st->sync_failed = rc != 0;

    if (rc != 0) {
        return wh_err(err, 503, "storage sync: %s", mdb_strerror(rc));
    }

    st->dirty = 0;

    return 0;
}


void
wh_store_space(wh_store_t *st, wh_engine_space_stats_t *u)
{
    u->used_bytes = wh_store_used(st);
    u->size_bytes = st->map_size;
    u->max_bytes = st->max_map_size;
    u->full = st->full;
    u->sync_failed = st->sync_failed;
}


int
wh_store_db_size(wh_store_t *st, MDB_dbi dbi, uint64_t *entries,
    uint64_t *bytes, wh_err_t *err)
{
    int       rc;
    MDB_stat  ms;

    if (wh_store_rbegin(st, err) != 0) {
        return -1;
    }

    rc = mdb_stat(st->rtxn, dbi, &ms);
    wh_store_rend(st);

    if (rc != 0) {
        return wh_store_fail(st, rc, "reading the database sizes", err);
    }

    *entries = ms.ms_entries;
    *bytes = (uint64_t) (ms.ms_branch_pages + ms.ms_leaf_pages
                         + ms.ms_overflow_pages) * ms.ms_psize;

    return 0;
}


int
wh_store_check_readers(wh_store_t *st, int *dead, wh_err_t *err)
{
    int  rc;

    *dead = 0;
    rc = mdb_reader_check(st->env, dead);

    if (rc != 0) {
        return wh_err(err, 503, "storage reader check: %s",
                      mdb_strerror(rc));
    }

    return 0;
}
