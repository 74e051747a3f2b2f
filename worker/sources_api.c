/*
 * The upstream sources' HTTP routes, for a service or admin token of
 * the workspace (api.c checked the role):
 *
 *   POST   /sources        {id, url, channel, ...} -> 201 the source
 *   GET    /sources        -> {items: [...]}
 *   GET    /sources/{id}   -> the source: definition (header names, not
 *                             values) and state
 *   DELETE /sources/{id}   -> {id, deleted: true}; 409 for a source of
 *                             the configuration file
 */

#include <stdlib.h>
#include <string.h>

#include "respond.h"
#include "sources_api.h"
#include "sources_shared.h"


#define WH_SOURCES_BODY_MAX  (64 * 1024)


static void
wh_sources_api_err(wh_peer_t *peer, uint32_t req_id, const wh_err_t *err)
{
    if (err->status == 409) {
        wh_respond_error(peer, req_id, 409, "conflict", err->msg);
        return;
    }

    wh_respond_err(peer, req_id, err);
}


static void
wh_sources_api_list(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    json_t       *items, *item;
    wh_source_t  *src;

    items = json_array();

    for (src = s->head; src && items; src = src->next) {
        if (strlen(src->def.workspace) != m->workspace.len
            || memcmp(src->def.workspace, m->workspace.data,
                      m->workspace.len) != 0)
        {
            continue;
        }

        item = wh_source_json(src);

        if (item == NULL || json_array_append_new(items, item) != 0) {
            json_decref(items);
            items = NULL;
        }
    }

    wh_respond_json(peer, m->req_id, 200,
                        items ? json_pack("{s:o}", "items", items) : NULL);
}


static void
wh_sources_api_create(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    json_t        *body;
    wh_err_t       err;
    wh_source_t   *src;

    body = wh_request_object(peer, m, WH_SOURCES_BODY_MAX,
                             "a source is at most 64 KiB of JSON",
                             "the body must be a JSON object");

    if (body == NULL) {
        return;
    }

    src = wh_sources_create(s, m->workspace, body, &err);
    json_decref(body);

    if (src == NULL) {
        wh_sources_api_err(peer, m->req_id, &err);
        return;
    }

    wh_respond_json(peer, m->req_id, 201, wh_source_json(src));
}


static void
wh_sources_api_one(wh_sources_t *s, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t id)
{
    wh_err_t      err;
    wh_source_t  *src;

    src = wh_sources_find(s, m->workspace, id);

    if (src == NULL) {
        wh_respond_error(peer, m->req_id, 404, "not_found",
                         "no such source");
        return;
    }

    if (wh_method_is(m, "GET")) {
        wh_respond_json(peer, m->req_id, 200, wh_source_json(src));
        return;
    }

    if (wh_sources_delete(s, src, &err) != 0) {
        wh_sources_api_err(peer, m->req_id, &err);
        return;
    }

    wh_respond_json(peer, m->req_id, 200,
                        json_pack("{s:s%,s:b}", "id", id.data, id.len,
                                  "deleted", 1));
}


int
wh_sources_api_path(wh_str_t path)
{
    return (path.len == 8 && memcmp(path.data, "/sources", 8) == 0)
           || (path.len > 9 && memcmp(path.data, "/sources/", 9) == 0);
}


void
wh_sources_api(wh_sources_t *s, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    int       shared = wh_sources_shared(s);
    wh_str_t  id;

    if (path.len == 8) {
        if (wh_method_is(m, "GET")) {
            if (shared) {
                wh_sources_shared_list(s, peer, m);
            } else {
                wh_sources_api_list(s, peer, m);
            }

            return;
        }

        if (wh_method_is(m, "POST")) {
            if (shared) {
                wh_sources_shared_create(s, peer, m);
            } else {
                wh_sources_api_create(s, peer, m);
            }

            return;
        }

    } else if (wh_method_is(m, "GET") || wh_method_is(m, "DELETE")) {
        id.data = path.data + 9;
        id.len = path.len - 9;

        if (memchr(id.data, '/', id.len) == NULL) {
            if (shared) {
                wh_sources_shared_one(s, peer, m, id);
            } else {
                wh_sources_api_one(s, peer, m, id);
            }

            return;
        }
    }

    wh_respond_error(peer, m->req_id, 404, "not_found", "no such resource");
}
