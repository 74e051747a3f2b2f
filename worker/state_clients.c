/*
 * The clients and the revocations (state.h).  A stored client is a
 * JSON object:
 *
 *   {"name":"..","client_type":"..","metadata":"<its JSON text>",
 *    "created":ms,"last_seen":ms}
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmdrec.h"
#include "jsonw.h"
#include "state.h"


typedef struct {
    wh_client_list_t  *out;
    wh_str_t           ws, after;
    size_t             limit;
} wh_state_list_t;

typedef struct {
    wh_engine_revoked_pt   revoked;
    wh_usage_pt            client;
    void                  *ctx;
} wh_state_each_t;


/* a record this short is unescaped on the stack */
#define WH_STATE_CLIENT_SMALL  512

/* the members of a stored client, in the order of its fields */
static const char  *wh_state_client_skeys[] = {
    "name", "client_type", "metadata"
};
static const char  *wh_state_client_ikeys[] = { "created", "last_seen" };


/* the fields of a record the scanner does not read, as jansson reads
 * them: the same answers for any record */
static int
wh_state_client_fields(const wh_kv_val_t *v, wh_str_t *strs, int64_t *ints,
    json_t **obj, json_error_t *je)
{
    size_t  i;

    *obj = json_loadb(v->data, v->len, 0, je);

    if (!json_is_object(*obj)) {
        return -1;
    }

    for (i = 0; i < 3; i++) {
        strs[i] = wh_state_str(*obj, wh_state_client_skeys[i]);
    }

    for (i = 0; i < 2; i++) {
        ints[i] = wh_state_int(*obj, wh_state_client_ikeys[i]);
    }

    return 0;
}


/* a stored client into out; -1 if it is corrupt */
static int
wh_state_client_decode(wh_str_t ws, wh_str_t id, const wh_kv_val_t *v,
    wh_client_t *out, wh_err_t *err)
{
    int            rc;
    char          *scratch, small[WH_STATE_CLIENT_SMALL];
    json_t        *obj = NULL;
    int64_t        ints[2];
    wh_str_t       strs[5], *dst[5];
    json_error_t   je;

    /* what the scanner unescapes is never longer than the text; a record
     * is read at every connect and disconnect, and most are small */
    scratch = v->len < sizeof(small) ? small : malloc(v->len + 1);

    if (scratch == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    rc = wh_cmdrec_scan_flat(v->data, v->len, wh_state_client_skeys, 3,
                             &strs[2], wh_state_client_ikeys, 2, ints,
                             scratch);

    if (rc != 0 && wh_state_client_fields(v, &strs[2], ints, &obj, &je)
                   != 0)
    {
        if (scratch != small) {
            free(scratch);
        }

        json_decref(obj);
        return wh_err(err, 503, "corrupt client %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    strs[0] = ws;
    strs[1] = id;
    dst[0] = &out->ws;
    dst[1] = &out->id;
    dst[2] = &out->name;
    dst[3] = &out->client_type;
    dst[4] = &out->metadata;
    out->created_ms = ints[0];
    out->last_seen_ms = ints[1];

    rc = wh_strs_copy(&out->mem, dst, strs, 5);
    json_decref(obj);

    if (scratch != small) {
        free(scratch);
    }

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


int
wh_state_client_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_client_t *out, wh_err_t *err)
{
    int            rc;
    wh_kv_val_t    v;

    rc = wh_state_get_rec(t, WH_KV_CLIENTS, ws, id, WH_CMD_CLIENT_MAX, &v,
                          "reading a client", err);

    if (rc <= 0 || out == NULL) {
        return rc;
    }

    return wh_state_client_decode(ws, id, &v, out, err) ? -1 : 1;
}


/* written straight into one buffer: a client is saved at each of its
 * connections and disconnections */
int
wh_state_client_put(wh_etxn_t *t, const wh_client_t *cl, wh_err_t *err)
{
    int        rc;
    wh_buf_t   b;
    wh_str_t   name, type;

    name = wh_state_set(cl->name);
    type = wh_state_set(cl->client_type);

    memset(&b, 0, sizeof(wh_buf_t));

    /* escaping may double the user's texts */
    rc = wh_buf_reserve(&b, 96 + 2 * (name.len + type.len
                                      + cl->metadata.len));
    rc |= wh_jw_open(&b, NULL, '{');
    rc |= wh_jw_str(&b, "name", name.data, name.len);
    rc |= wh_jw_str(&b, "client_type", type.data, type.len);
    rc |= wh_jw_int(&b, "created", cl->created_ms);
    rc |= wh_jw_int(&b, "last_seen", cl->last_seen_ms);

    if (cl->metadata.len) {
        rc |= wh_jw_str(&b, "metadata", cl->metadata.data,
                        cl->metadata.len);
    }

    rc |= wh_jw_close(&b, '}');
    rc |= wh_buf_append(&b, "", 1);

    if (rc != 0) {
        wh_buf_free(&b);
        b.data = NULL;
    }

    return wh_state_save(t, WH_KV_CLIENTS, cl->ws, cl->id, (char *) b.data,
                         0, "writing a client", err);
}


static int
wh_state_client_item(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_str_t           id;
    wh_state_list_t   *l = ctx;
    wh_client_list_t  *out = l->out;

    id.data = (const char *) k->data + l->ws.len + 1;
    id.len = k->len - l->ws.len - 1;

    /* the cursor itself, and the "ws \0" key of nobody */
    if (id.len == 0
        || (id.len == l->after.len
            && memcmp(id.data, l->after.data, id.len) == 0))
    {
        return 0;
    }

    if (out->n == l->limit) {
        out->more = 1;
        return 1;
    }

    memset(&out->items[out->n], 0, sizeof(wh_client_t));

    if (wh_state_client_decode(l->ws, id, v, &out->items[out->n], err)
        != 0)
    {
        return -1;
    }

    out->n++;

    return 0;
}


int
wh_state_client_list(wh_etxn_t *t, wh_str_t ws, wh_str_t after,
    size_t limit, wh_client_list_t *out, wh_err_t *err)
{
    wh_state_list_t  l;
    unsigned char    key[WH_STATE_KEY_MAX];

    memset(out, 0, sizeof(wh_client_list_t));

    if (ws.len + 1 + after.len > sizeof(key)) {
        return wh_err(err, 400, "listing clients: the cursor is too long");
    }

    out->items = calloc(limit ? limit : 1, sizeof(wh_client_t));

    if (out->items == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    l.out = out;
    l.ws = ws;
    l.after = after;
    l.limit = limit;

    return wh_state_scan(t, WH_KV_CLIENTS, key, wh_key_pair(key, ws, after),
                         ws.len + 1, wh_state_client_item, &l,
                         "listing clients", err);
}


int
wh_state_client_revoke(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    uint64_t before_s, wh_err_t *err)
{
    int            rc;
    size_t         klen;
    unsigned char  key[WH_STATE_KEY_MAX], val[WH_BE64_LEN];

    klen = wh_key_pair(key, ws, id);
    rc = wh_state_del(t, WH_KV_CLIENTS, key, klen, "deleting a client",
                      err);

    if (rc <= 0) {
        /* the caller found the client in this txn */
        return rc ? rc : wh_state_fail(WH_KV_NOTFOUND, "deleting a client",
                                       err);
    }

    wh_be64_put(val, before_s);

    return wh_state_put(t, WH_KV_REVOKED, key, klen, val, WH_BE64_LEN,
                        "storing a revocation", err);
}


static int
wh_state_revoked_item(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_str_t          ws, id;
    wh_state_each_t  *e = ctx;

    if (v->len != WH_BE64_LEN || wh_key_unpair(k->data, k->len, &ws, &id))
    {
        return 0;
    }

    if (e->revoked(e->ctx, ws, id, wh_be64_get(v->data)) != 0) {
        return wh_err(err, 503, "cannot load the revocations");
    }

    return 0;
}


int
wh_state_revocations(wh_etxn_t *t, wh_engine_revoked_pt cb, void *ctx,
    wh_err_t *err)
{
    wh_state_each_t  e = { cb, NULL, ctx };

    return wh_state_scan(t, WH_KV_REVOKED, NULL, 0, 0,
                         wh_state_revoked_item, &e, "loading revocations",
                         err);
}


static int
wh_state_client_one(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_str_t          ws, id;
    wh_state_each_t  *e = ctx;

    (void) v;

    if (wh_key_unpair(k->data, k->len, &ws, &id) != 0) {
        return 0;
    }

    if (e->client(e->ctx, ws, id, 0) != 0) {
        return wh_err(err, 503, "cannot count the clients");
    }

    return 0;
}


int
wh_state_client_each(wh_etxn_t *t, wh_usage_pt cb, void *ctx,
    wh_err_t *err)
{
    wh_state_each_t  e = { NULL, cb, ctx };

    return wh_state_scan(t, WH_KV_CLIENTS, NULL, 0, 0, wh_state_client_one,
                         &e, "counting clients", err);
}
