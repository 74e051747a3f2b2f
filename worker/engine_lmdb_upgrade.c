/*
 * The upgrade of a store of the one-environment layout (data.mdb and
 * lock.mdb in the storage directory itself, MDB_NOSYNC over history
 * and commands alike) to the layout of engine_lmdb.h: state/ and
 * history/, each an environment of its own.
 *
 * The new environments are built in upgrade.tmp/, closed (which syncs
 * them), then renamed into place, history/ first: state/ appearing is
 * the commit point.  Only after it is the old data.mdb renamed to
 * data.mdb.pre-split (kept for the operator to delete) and its
 * lock.mdb removed.  A crash before the commit point leaves the old
 * store as it was and the next start does it all again; one after it
 * leaves data.mdb beside state/, and the next start only moves it
 * aside.  The old environment is opened read-only and never written.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_lmdb.h"


#define WH_UPGRADE_TMP    "upgrade.tmp"
#define WH_UPGRADE_ASIDE  "data.mdb.pre-split"


/* the databases of each store (engine_lmdb.h); here, below
 * engine_lmdb.c, which calls the upgrade */
const char  *wh_lmdb_state_dbs[] = {
    "clients", "revoked", "commands", "cmd_open", "cmd_client", "cmd_idem",
    "cmd_meta", "jobs", "job_exec", NULL
};

const char  *wh_lmdb_history_dbs[] = { "channels", "history", NULL };

typedef struct {
    MDB_txn       *src;         /* a read txn of the old environment */
    const char   **names;       /* the databases to copy */
    size_t         records;
} wh_upgrade_copy_t;

/* the paths one upgrade works with */
typedef struct {
    char   data[WH_LMDB_PATH_MAX], lock[WH_LMDB_PATH_MAX];
    char   aside[WH_LMDB_PATH_MAX], tmp[WH_LMDB_PATH_MAX];
    char   tmp_state[WH_LMDB_PATH_MAX], tmp_hist[WH_LMDB_PATH_MAX];
    char   state[WH_LMDB_PATH_MAX], hist[WH_LMDB_PATH_MAX];
    char   state_data[WH_LMDB_PATH_MAX];
} wh_upgrade_paths_t;


/* dir/name into path; -1 with err if it does not fit */
int
wh_lmdb_path(char *path, size_t size, const char *dir, const char *name,
    wh_err_t *err)
{
    int  n;

    n = snprintf(path, size, "%s/%s", dir, name);

    if (n < 0 || (size_t) n >= size) {
        return wh_err(err, 503, "storage path too long: \"%s\"", dir);
    }

    return 0;
}


static int
wh_upgrade_exists(const char *path)
{
    struct stat  sb;

    return stat(path, &sb) == 0;
}


static int
wh_upgrade_paths(wh_upgrade_paths_t *p, const char *dir, wh_err_t *err)
{
    if (wh_lmdb_path(p->data, sizeof(p->data), dir, "data.mdb", err) != 0
        || wh_lmdb_path(p->lock, sizeof(p->lock), dir, "lock.mdb", err)
           != 0
        || wh_lmdb_path(p->aside, sizeof(p->aside), dir, WH_UPGRADE_ASIDE,
                        err) != 0
        || wh_lmdb_path(p->tmp, sizeof(p->tmp), dir, WH_UPGRADE_TMP, err)
           != 0
        || wh_lmdb_path(p->tmp_state, sizeof(p->tmp_state), p->tmp,
                        "state", err) != 0
        || wh_lmdb_path(p->tmp_hist, sizeof(p->tmp_hist), p->tmp,
                        "history", err) != 0
        || wh_lmdb_path(p->state, sizeof(p->state), dir, "state", err) != 0
        || wh_lmdb_path(p->hist, sizeof(p->hist), dir, "history", err)
           != 0
        || wh_lmdb_path(p->state_data, sizeof(p->state_data), p->state,
                        "data.mdb", err) != 0)
    {
        return -1;
    }

    return 0;
}


/* removes an environment directory that an interrupted upgrade left:
 * its two files, then the directory */
static int
wh_upgrade_rm_env(const char *dir, wh_err_t *err)
{
    char         path[WH_LMDB_PATH_MAX];
    const char  *files[] = { "data.mdb", "lock.mdb" };
    size_t       i;

    for (i = 0; i < 2; i++) {
        if (wh_lmdb_path(path, sizeof(path), dir, files[i], err) != 0) {
            return -1;
        }

        if (unlink(path) == -1 && errno != ENOENT) {
            return wh_err(err, 503, "removing \"%s\": %s", path,
                          strerror(errno));
        }
    }

    if (rmdir(dir) == -1 && errno != ENOENT) {
        return wh_err(err, 503, "removing \"%s\": %s", dir,
                      strerror(errno));
    }

    return 0;
}


/* makes the entries of a directory (new files, renames) durable */
static int
wh_upgrade_sync_dir(const char *dir, wh_err_t *err)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY);

    if (fd == -1) {
        return wh_err(err, 503, "opening \"%s\": %s", dir, strerror(errno));
    }

    rc = fsync(fd);
    close(fd);

    if (rc == -1) {
        return wh_err(err, 503, "syncing \"%s\": %s", dir, strerror(errno));
    }

    return 0;
}


static int
wh_upgrade_rename(const char *from, const char *to, wh_err_t *err)
{
    if (rename(from, to) == -1) {
        return wh_err(err, 503, "renaming \"%s\" to \"%s\": %s", from, to,
                      strerror(errno));
    }

    return 0;
}


/* one database of the old environment into txn, in key order */
static int
wh_upgrade_copy_db(MDB_txn *src, MDB_txn *dst, const char *name,
    size_t *records, wh_err_t *err)
{
    int          rc;
    MDB_val      k, v;
    MDB_dbi      from, to;
    MDB_cursor  *cur;

    rc = mdb_dbi_open(src, name, 0, &from);

    if (rc == MDB_NOTFOUND) {
        return 0;               /* an old store that never had it */
    }

    if (rc != 0 || (rc = mdb_dbi_open(dst, name, MDB_CREATE, &to)) != 0) {
        return wh_mdb_error(rc, name, err);
    }

    if ((rc = mdb_cursor_open(src, from, &cur)) != 0) {
        return wh_mdb_error(rc, name, err);
    }

    /* the same default order on both sides: every key appends */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        rc = mdb_put(dst, to, &k, &v, MDB_APPEND);

        if (rc != 0) {
            break;
        }

        (*records)++;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, name, err);
}


/* a write of the new store; run again from scratch if the map grew */
static int
wh_upgrade_copy_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    size_t              i;
    wh_upgrade_copy_t  *c = ctx;

    (void) st;

    c->records = 0;

    for (i = 0; c->names[i] != NULL; i++) {
        if (wh_upgrade_copy_db(c->src, txn, c->names[i], &c->records, err)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* a new store of that kind in dir, holding the named databases of the
 * old environment; closing it syncs it */
static int
wh_upgrade_build(const char *dir, wh_store_kind_e kind, MDB_txn *src,
    const char **names, size_t map_size, size_t max_map_size,
    size_t *records, wh_log_t *log, wh_err_t *err)
{
    int                 rc;
    wh_store_t         *st;
    wh_upgrade_copy_t   c;

    if (wh_store_open(&st, dir, kind, map_size, max_map_size, 1, 0, log,
                      err) != 0)
    {
        return -1;
    }

    c.src = src;
    c.names = names;
    c.records = 0;

    rc = wh_store_write(st, wh_upgrade_copy_txn, &c, err);
    wh_store_close(st);
    *records = c.records;

    return rc;
}


/* builds upgrade.tmp/state and upgrade.tmp/history from data.mdb */
static int
wh_upgrade_copy(wh_upgrade_paths_t *p, const char *dir, size_t map_size,
    size_t max_map_size, wh_log_t *log, wh_err_t *err)
{
    int           rc;
    size_t        nstate = 0, nhist = 0;
    MDB_env      *env;
    MDB_txn      *txn = NULL;
    MDB_envinfo   info;

    if ((rc = mdb_env_create(&env)) != 0) {
        return wh_mdb_error(rc, "the old store", err);
    }

    /* the size the old map had stays in its file */
    if ((rc = mdb_env_set_maxdbs(env, 16)) != 0
        || (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
    {
        mdb_env_close(env);
        return wh_err(err, 503, "opening the old store: %s",
                      mdb_strerror(rc));
    }

    /* what fitted before fits again, whatever max_map_size says now */
    mdb_env_info(env, &info);

    if (max_map_size < info.me_mapsize) {
        max_map_size = info.me_mapsize;
    }

    rc = -1;

    if (mkdir(p->tmp, 0700) == -1) {
        wh_err(err, 503, "creating \"%s\": %s", p->tmp, strerror(errno));

    } else if (wh_upgrade_build(p->tmp_state, WH_STORE_STATE, txn,
                                wh_lmdb_state_dbs, map_size, max_map_size,
                                &nstate, log, err) == 0
               && wh_upgrade_build(p->tmp_hist, WH_STORE_HISTORY, txn,
                                   wh_lmdb_history_dbs, map_size,
                                   max_map_size, &nhist, log, err) == 0)
    {
        rc = 0;
    }

    mdb_txn_abort(txn);
    mdb_env_close(env);

    if (rc == 0 && log) {
        wh_log_info(log, "storage: copied %zu state and %zu history "
                    "records", nstate, nhist);
    }

    return rc;
}


/* the old files go: data.mdb kept aside (0600: it holds tokens'
 * clients and commands), lock.mdb removed */
static int
wh_upgrade_aside(wh_upgrade_paths_t *p, const char *dir, wh_log_t *log,
    wh_err_t *err)
{
    if (chmod(p->data, 0600) == -1) {
        return wh_err(err, 503, "\"%s\": %s", p->data, strerror(errno));
    }

    if (wh_upgrade_rename(p->data, p->aside, err) != 0) {
        return -1;
    }

    if (unlink(p->lock) == -1 && errno != ENOENT) {
        return wh_err(err, 503, "removing \"%s\": %s", p->lock,
                      strerror(errno));
    }

    /* upgrade.tmp is empty after the renames, unless an upgrade
     * stopped between them and the next start only came here */
    if (wh_upgrade_rm_env(p->tmp_state, err) != 0
        || wh_upgrade_rm_env(p->tmp_hist, err) != 0
        || wh_upgrade_rm_env(p->tmp, err) != 0
        || wh_upgrade_sync_dir(dir, err) != 0)
    {
        return -1;
    }

    if (log) {
        wh_log_warn(log, "storage: upgraded to state/ and history/; the "
                    "old store is kept as %s (delete it once the new one "
                    "is backed up)", p->aside);
    }

    return 0;
}


/* the split itself, up to the commit point and past it */
static int
wh_upgrade_split(wh_upgrade_paths_t *p, const char *dir, size_t map_size,
    size_t max_map_size, wh_log_t *log, wh_err_t *err)
{
    if (log) {
        wh_log_warn(log, "storage: \"%s\" has the one-environment layout; "
                    "upgrading it to state/ and history/", dir);
    }

    /* what an interrupted upgrade left before its commit point */
    if (wh_upgrade_rm_env(p->tmp_state, err) != 0
        || wh_upgrade_rm_env(p->tmp_hist, err) != 0
        || wh_upgrade_rm_env(p->tmp, err) != 0
        || wh_upgrade_rm_env(p->hist, err) != 0)
    {
        return -1;
    }

    if (wh_upgrade_copy(p, dir, map_size, max_map_size, log, err) != 0) {
        return -1;
    }

    if (wh_upgrade_sync_dir(p->tmp, err) != 0
        || wh_upgrade_rename(p->tmp_hist, p->hist, err) != 0
        || wh_upgrade_rename(p->tmp_state, p->state, err) != 0
        || wh_upgrade_sync_dir(dir, err) != 0)
    {
        return -1;
    }

    return wh_upgrade_aside(p, dir, log, err);
}


int
wh_lmdb_upgrade(const char *dir, size_t map_size, size_t max_map_size,
    wh_log_t *log, wh_err_t *err)
{
    char                why[sizeof(err->msg)];
    wh_upgrade_paths_t  p;

    if (wh_upgrade_paths(&p, dir, err) != 0) {
        return -1;
    }

    if (!wh_upgrade_exists(p.data)) {
        return 0;
    }

    if (wh_upgrade_exists(p.aside)) {
        return wh_err(err, 503, "storage \"%s\" has both data.mdb (the "
                      "old layout) and %s: move one of them away",
                      dir, WH_UPGRADE_ASIDE);
    }

    /* past the commit point already: only the old files remain */
    if (wh_upgrade_exists(p.state_data)) {
        return wh_upgrade_aside(&p, dir, log, err);
    }

    if (wh_upgrade_split(&p, dir, map_size, max_map_size, log, err) == 0) {
        return 0;
    }

    snprintf(why, sizeof(why), "%s", err->msg);

    if (wh_upgrade_exists(p.state_data)) {
        return wh_err(err, 503, "storage \"%s\" was upgraded but the old "
                      "files could not be moved aside (%s): fix the cause "
                      "and start again", dir, why);
    }

    return wh_err(err, 503, "upgrading storage \"%s\" to state/ and "
                  "history/ failed (%s); the old store is unchanged: fix "
                  "the cause and start again (docs/operations.md)", dir,
                  why);
}
