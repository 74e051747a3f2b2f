
/*
 * Wirehub: channels in a worker.  The worker subscribes to a channel at
 * wirehubd once, however many of its clients want it, and frames each
 * message once for all of them.  It remembers the last id it delivered so
 * that after losing wirehubd it resumes from there: no gap, no duplicate.
 * A client subscribing with "since" gets the missing range replayed from
 * history, held back until the replay is complete so that order holds.
 */


#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_cursor.h"
#include "ngx_http_wirehub_deflate.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_reply.h"
#include "wh_channel.h"


#define NGX_HTTP_WIREHUB_MAX_SUBS      256   /* names in one subscribe */
#define NGX_HTTP_WIREHUB_MAX_EPOCH     16


static ngx_http_wirehub_channel_t *ngx_http_wirehub_channel_get(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_str_t *ws, const char *name,
    size_t len, ngx_uint_t create);
static void ngx_http_wirehub_channel_free(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_channel_t *ch);
static ngx_int_t ngx_http_wirehub_channel_send(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_http_wirehub_channel_t *ch,
    uint8_t type);
static ngx_int_t ngx_http_wirehub_subscribe_one(ngx_http_wirehub_session_t *s,
    json_t *name, json_t *since, json_t *ref);
static void ngx_http_wirehub_sub_activate(ngx_http_wirehub_sub_t *sub);
static void ngx_http_wirehub_sub_page(ngx_http_wirehub_sub_t *sub,
    uint64_t after);
static void ngx_http_wirehub_sub_replayed(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);
static ngx_uint_t ngx_http_wirehub_sub_has_room(
    ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_sub_go_live(ngx_http_wirehub_sub_t *sub,
    ngx_uint_t recovered);
static void ngx_http_wirehub_sub_release(ngx_http_wirehub_sub_t *sub,
    ngx_uint_t deliver);
static void ngx_http_wirehub_sub_remove(ngx_http_wirehub_sub_t *sub);
static void ngx_http_wirehub_channels_relink(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_uint_t up);
static ngx_int_t ngx_http_wirehub_send_subscribed(ngx_http_wirehub_sub_t *sub,
    ngx_uint_t recovered);
static ngx_int_t ngx_http_wirehub_hold(ngx_http_wirehub_sub_t *sub,
    ngx_http_wirehub_out_frame_t *frame);
static ngx_int_t ngx_http_wirehub_deliver(ngx_http_wirehub_sub_t *sub,
    ngx_http_wirehub_out_frame_t *frame);
static ngx_http_wirehub_out_frame_t *ngx_http_wirehub_cursor_line(
    ngx_http_wirehub_session_t *s);


void
ngx_http_wirehub_channels_init(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_rbtree_init(&wmcf->channels, &wmcf->channels_sentinel,
                    ngx_str_rbtree_insert_value);
}


static ngx_http_wirehub_channel_t *
ngx_http_wirehub_channel_get(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_str_t *ws, const char *name, size_t len, ngx_uint_t create)
{
    u_char                      *p, buf[WH_WORKSPACE_MAX + WH_CHANNEL_MAX + 1];
    uint32_t                     hash;
    ngx_str_t                    key;
    ngx_http_wirehub_channel_t  *ch;

    if (ws->len > WH_WORKSPACE_MAX || len > WH_CHANNEL_MAX) {
        return NULL;
    }

    /* the key is "workspace NUL channel": the same name in two
       workspaces is two channels */

    p = ngx_cpymem(buf, ws->data, ws->len);
    *p++ = '\0';
    p = ngx_cpymem(p, name, len);

    key.data = buf;
    key.len = p - buf;
    hash = ngx_crc32_short(key.data, key.len);

    ch = (ngx_http_wirehub_channel_t *)
             ngx_str_rbtree_lookup(&wmcf->channels, &key, hash);

    if (ch || !create) {
        return ch;
    }

    ch = ngx_calloc(sizeof(ngx_http_wirehub_channel_t) + key.len,
                    ngx_cycle->log);
    if (ch == NULL) {
        return NULL;
    }

    p = (u_char *) (ch + 1);
    ngx_memcpy(p, key.data, key.len);

    ch->node.str.data = p;
    ch->node.str.len = key.len;
    ch->node.node.key = hash;
    ch->workspace.data = p;
    ch->workspace.len = ws->len;
    ch->name.data = p + ws->len + 1;
    ch->name.len = len;

    ngx_queue_init(&ch->subs);
    ngx_rbtree_insert(&wmcf->channels, &ch->node.node);

    return ch;
}


static void
ngx_http_wirehub_channel_free(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_channel_t *ch)
{
    if (ch->busy) {
        return;
    }

    if (ch->sent) {
        (void) ngx_http_wirehub_channel_send(wmcf, ch, WH_LINK_COUNT);
    }

    ngx_rbtree_delete(&wmcf->channels, &ch->node.node);
    ngx_free(ch);
}


/* SUBSCRIBE (resuming from the last id delivered, if any) or COUNT */

static ngx_int_t
ngx_http_wirehub_channel_send(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_channel_t *ch, uint8_t type)
{
    wh_link_msg_t  m;

    if (type == WH_LINK_SUBSCRIBE) {
        wh_link_subscribe(&m, ngx_http_wirehub_wh_ngx_str(&ch->workspace),
                          ngx_http_wirehub_wh_ngx_str(&ch->name),
                          (uint32_t) ch->nsubs, ch->last_id,
                          ngx_http_wirehub_wh_str(ch->epoch, ch->epoch_len));

    } else {
        wh_link_count(&m, ngx_http_wirehub_wh_ngx_str(&ch->workspace),
                      ngx_http_wirehub_wh_ngx_str(&ch->name),
                      (uint32_t) ch->nsubs);
    }

    return ngx_http_wirehub_link_send(wmcf, &m);
}


ngx_int_t
ngx_http_wirehub_subscribe(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    size_t   i;
    json_t  *channels, *since, *name;

    channels = json_object_get(msg, "channels");
    since = json_object_get(msg, "since");

    if (!json_is_array(channels) || json_array_size(channels) == 0
        || json_array_size(channels) > NGX_HTTP_WIREHUB_MAX_SUBS
        || (since && !json_is_object(since)))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"channels\" is a non-empty array of channel names and "
                   "\"since\" an object", ref);
    }

    for (i = 0; i < json_array_size(channels); i++) {
        name = json_array_get(channels, i);

        if (ngx_http_wirehub_subscribe_one(s, name, since, ref) == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_subscribe_one(ngx_http_wirehub_session_t *s, json_t *name,
    json_t *since, json_t *ref)
{
    size_t                         len;
    json_t                        *from, *id, *epoch;
    const char                    *str;
    ngx_http_wirehub_sub_t        *sub;
    ngx_http_wirehub_channel_t    *ch;
    ngx_http_wirehub_denial_t      denial;
    ngx_http_wirehub_resource_t    res;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = s->main_conf;

    if (!json_is_string(name)
        || !wh_channel_valid(json_string_value(name),
                             json_string_length(name)))
    {
        return ngx_http_wirehub_channel_error(s, "bad_channel",
                   "not a valid channel name", json_is_string(name) ? name
                   : json_null(), ref);
    }

    str = json_string_value(name);
    len = json_string_length(name);

    ngx_memzero(&res, sizeof(ngx_http_wirehub_resource_t));
    res.channel.data = (u_char *) str;
    res.channel.len = len;

    if (ngx_http_wirehub_authorize(wmcf, s->identity,
                                   NGX_HTTP_WIREHUB_ACT_SUBSCRIBE, &res,
                                   &denial, s->connection->log)
        != NGX_OK)
    {
        return ngx_http_wirehub_channel_error(s, denial.code, denial.message,
                                              name, ref);
    }

    for (sub = s->subs; sub; sub = sub->next) {
        ch = sub->channel;

        if (ch->name.len == len && ngx_strncmp(ch->name.data, str, len) == 0)
        {
            /* already subscribed: say so again, change nothing */
            if (ref) {
                if (sub->ref) {
                    json_decref(sub->ref);
                }

                sub->ref = json_incref(ref);
            }

            if (sub->live) {
                return ngx_http_wirehub_send_subscribed(sub, 1);
            }

            return NGX_OK;
        }
    }

    if (!ngx_http_wirehub_link_up(wmcf)) {
        return ngx_http_wirehub_channel_error(s, "unavailable",
                   "wirehubd is not reachable, retry", name, ref);
    }

    if (s->conf->max_subscriptions
        && s->nsubs >= s->conf->max_subscriptions)
    {
        ngx_http_wirehub_stat(wmcf,
                              limited[NGX_HTTP_WIREHUB_LIMIT_SUBSCRIPTIONS], 1);
        return ngx_http_wirehub_channel_error(s, "quota_exceeded",
                   "too many subscriptions on this connection", name, ref);
    }

    from = since ? json_object_get(since, str) : NULL;
    id = from ? json_object_get(from, "id") : NULL;
    epoch = from ? json_object_get(from, "epoch") : NULL;

    if (from && (!json_is_integer(id) || json_integer_value(id) < 0
                 || (epoch && (!json_is_string(epoch)
                               || json_string_length(epoch)
                                  > NGX_HTTP_WIREHUB_MAX_EPOCH))))
    {
        return ngx_http_wirehub_channel_error(s, "bad_request",
                   "\"since\" names {\"id\":N,\"epoch\":\"...\"}", name, ref);
    }

    ch = ngx_http_wirehub_channel_get(wmcf, &s->identity->workspace, str, len,
                                      1);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    if (s->sub_slot && !s->sub_slot_used) {
        sub = ngx_http_wirehub_sub_slot(s);
        ngx_memzero(sub, sizeof(ngx_http_wirehub_sub_t));
        s->sub_slot_used = 1;

    } else {
        sub = ngx_calloc(sizeof(ngx_http_wirehub_sub_t), s->connection->log);
    }

    if (sub == NULL) {
        if (ch->nsubs == 0) {
            ngx_http_wirehub_channel_free(wmcf, ch);
        }

        return NGX_ERROR;
    }

    sub->session = s;
    sub->channel = ch;
    sub->held_last = &sub->held;
    sub->ref = ref ? json_incref(ref) : NULL;

    sub->index = (uint32_t) s->nsubs;

    if (from) {
        sub->has_since = 1;
        sub->next_page = (uint64_t) json_integer_value(id);

        if (epoch) {
            sub->since_epoch_len = (u_char) json_string_length(epoch);
            ngx_memcpy(sub->since_epoch, json_string_value(epoch),
                       sub->since_epoch_len);
        }

        /* until something is sent, the client is where it said it was */
        sub->pos_id = sub->next_page;
        sub->pos_known = 1;
        sub->pos_since = 1;
    }

    sub->next = s->subs;
    s->subs = sub;
    s->nsubs++;

    ngx_queue_insert_tail(&ch->subs, &sub->queue);
    ch->nsubs++;

    ngx_http_wirehub_stat(wmcf, subscriptions, 1);

    if (!ch->sent) {
        ch->sent = 1;
        return ngx_http_wirehub_channel_send(wmcf, ch, WH_LINK_SUBSCRIBE)
               == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    (void) ngx_http_wirehub_channel_send(wmcf, ch, WH_LINK_COUNT);

    if (ch->subscribed) {
        ngx_http_wirehub_sub_activate(sub);
    }

    return NGX_OK;
}


/*
 * The channel is known upstream: answer "subscribed" now, or first fetch
 * what the client missed and hold live messages behind it.
 */

static void
ngx_http_wirehub_sub_activate(ngx_http_wirehub_sub_t *sub)
{
    ngx_uint_t                    same_epoch;
    ngx_http_wirehub_channel_t   *ch;

    ch = sub->channel;

    same_epoch = (sub->since_epoch_len == ch->epoch_len
                  && ngx_memcmp(sub->since_epoch, ch->epoch, ch->epoch_len)
                     == 0);

    /* not paging yet: next_page is still the "since" the client asked */

    if (!sub->has_since || !same_epoch || sub->next_page >= ch->last_id) {
        sub->live = 1;
        (void) ngx_http_wirehub_send_subscribed(sub,
                   !sub->has_since
                   || (same_epoch && sub->next_page == ch->last_id));
        return;
    }

    sub->up_to = ch->last_id;
    sub->paging = 1;

    ngx_http_wirehub_sub_page(sub, sub->next_page);
}


/*
 * Asks for one page of the replay, sized to a quarter of what the session
 * can still queue (live messages held meanwhile need the rest): a replay
 * is paced by the client's reading, never held whole in the worker or in
 * wirehubd.
 */

static void
ngx_http_wirehub_sub_page(ngx_http_wirehub_sub_t *sub, uint64_t after)
{
    size_t                        room, queued;
    wh_link_msg_t                 m;
    ngx_http_wirehub_channel_t   *ch;
    ngx_http_wirehub_session_t   *s;

    ch = sub->channel;
    s = sub->session;

    queued = s->out_bytes + s->held_bytes;
    room = queued < s->conf->send_limit ? s->conf->send_limit - queued : 0;

    wh_link_replay(&m, ngx_http_wirehub_wh_ngx_str(&ch->workspace),
                   ngx_http_wirehub_wh_ngx_str(&ch->name), after, sub->up_to,
                   ngx_http_wirehub_wh_str(ch->epoch, ch->epoch_len),
                   (uint32_t) ngx_min(room / 4 + 1, NGX_MAX_UINT32_VALUE));

    sub->waiting = 0;
    sub->replay = ngx_http_wirehub_link_request(s->main_conf, &m,
                                                ngx_http_wirehub_sub_replayed,
                                                sub);

    if (sub->replay != NULL) {
        return;
    }

    if (!ngx_http_wirehub_link_up(s->main_conf)) {
        /* it goes on once the channel is subscribed again */
        sub->relink = 1;
        return;
    }

    ngx_http_wirehub_sub_go_live(sub, 0);
}


static void
ngx_http_wirehub_sub_replayed(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m)
{
    ngx_uint_t                     recovered;
    ngx_http_wirehub_sub_t        *sub;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_out_frame_t  *frame;

    sub = p->data;
    s = sub->session;

    if (m && m->type == WH_LINK_REPLAY_ITEM) {

        /* items come only while history reaches back: no gap so far */

        if (!sub->announced) {
            sub->announced = 1;
            (void) ngx_http_wirehub_send_subscribed(sub, 1);
        }

        frame = ngx_http_wirehub_session_frame(s, WH_WS_OP_TEXT,
                                               (u_char *) m->body.data,
                                               m->body.len);

        /* an item that cannot be queued for memory is a gap: say so */

        if (frame == NULL) {
            if (!sub->lost) {
                ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                              "wirehub: replayed message %uL of \"%V\" "
                              "lost (memory)", m->id, &sub->channel->name);
            }

            sub->lost = 1;
            return;
        }

        frame->msg_id = m->id;
        (void) ngx_http_wirehub_deliver(sub, frame);
        ngx_http_wirehub_frame_release(frame);

        return;
    }

    sub->replay = NULL;

    /*
     * The link was lost under the replay (wirehubd restarting): it goes
     * on from where it got once the channel is subscribed again, rather
     * than leave the client a gap.
     */

    if (m == NULL) {
        sub->relink = 1;
        return;
    }

    /* REPLAY_END */

    recovered = (m && (m->flag & WH_LINK_REPLAY_RECOVERED) && !sub->lost);

    if (recovered && (m->flag & WH_LINK_REPLAY_MORE)) {

        /* a page that does not move forward would never end: a gap */

        if (m->id2 <= sub->next_page || m->id2 >= sub->up_to) {
            ngx_http_wirehub_sub_go_live(sub, 0);
            return;
        }

        if (!sub->announced) {
            sub->announced = 1;
            (void) ngx_http_wirehub_send_subscribed(sub, 1);
        }

        sub->next_page = m->id2;

        if (ngx_http_wirehub_sub_has_room(s)) {
            ngx_http_wirehub_sub_page(sub, m->id2);

        } else {
            sub->waiting = 1;
            s->drain_wanted = 1;
        }

        return;
    }

    ngx_http_wirehub_sub_go_live(sub, recovered);
}


/*
 * The next page goes once the client has read half of what is queued.
 * Held live messages are left out: they only leave once the replay is
 * over, so waiting for them would stall it (they count in the page's
 * budget and against the send limit instead).
 */

static ngx_uint_t
ngx_http_wirehub_sub_has_room(ngx_http_wirehub_session_t *s)
{
    return s->out_bytes <= s->conf->send_limit / 2;
}


void
ngx_http_wirehub_channels_drained(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_sub_t  *sub;

    for (sub = s->subs; sub; sub = sub->next) {
        if (!sub->waiting || s->closed) {
            continue;
        }

        if (!ngx_http_wirehub_sub_has_room(s)) {
            s->drain_wanted = 1;
            return;
        }

        ngx_http_wirehub_sub_page(sub, sub->next_page);
    }
}


/*
 * The replay is over: "subscribed" if not said yet (or said again with
 * "recovered":false when a gap showed up on the way), then the live
 * messages held behind the replay.
 */

static void
ngx_http_wirehub_sub_go_live(ngx_http_wirehub_sub_t *sub,
    ngx_uint_t recovered)
{
    if (!sub->announced || !recovered) {
        (void) ngx_http_wirehub_send_subscribed(sub, recovered);
    }

    sub->announced = 1;
    sub->paging = 0;
    sub->waiting = 0;
    sub->live = 1;

    ngx_http_wirehub_sub_release(sub, 1);
}


static ngx_int_t
ngx_http_wirehub_hold(ngx_http_wirehub_sub_t *sub,
    ngx_http_wirehub_out_frame_t *frame)
{
    ngx_http_wirehub_out_t        *out;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = sub->session->main_conf;

    /* held messages count against the send limit like queued ones */

    if (ngx_http_wirehub_session_hold(sub->session, frame->len) != NGX_OK) {
        return NGX_DECLINED;
    }

    out = wmcf->free_out;

    if (out) {
        wmcf->free_out = out->next;

    } else {
        out = ngx_alloc(sizeof(ngx_http_wirehub_out_t), ngx_cycle->log);
        if (out == NULL) {
            sub->session->held_bytes -= frame->len;
            return NGX_ERROR;
        }
    }

    frame->refs++;
    out->frame = frame;
    out->sent = 0;
    out->next = NULL;

    *sub->held_last = out;
    sub->held_last = &out->next;

    return NGX_OK;
}


/* hands the held frames to the session, or drops them */

static void
ngx_http_wirehub_sub_release(ngx_http_wirehub_sub_t *sub, ngx_uint_t deliver)
{
    ngx_http_wirehub_out_t        *out, *next;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_main_conf_t  *wmcf;

    s = sub->session;
    wmcf = s->main_conf;

    out = sub->held;
    sub->held = NULL;
    sub->held_last = &sub->held;

    for ( /* void */ ; out; out = next) {
        next = out->next;

        s->held_bytes -= out->frame->len;

        if (deliver && !s->closed) {
            (void) ngx_http_wirehub_deliver(sub, out->frame);
        }

        ngx_http_wirehub_frame_release(out->frame);
        out->next = wmcf->free_out;
        wmcf->free_out = out;
    }
}


/*
 * A channel message to one subscriber.  On an SSE stream it goes behind
 * an "id:" line with the stream's cursor, which moves this channel to the
 * message: both are queued, or neither (a cursor without its event would
 * tell the client it has a message it never got).
 */

static ngx_int_t
ngx_http_wirehub_deliver(ngx_http_wirehub_sub_t *sub,
    ngx_http_wirehub_out_frame_t *frame)
{
    uint64_t                       pos_id;
    ngx_int_t                      rc;
    ngx_uint_t                     pos_known, pos_since;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_out_frame_t  *line;

    s = sub->session;

    if (!ngx_http_wirehub_is_sse(s)) {
        return ngx_http_wirehub_send_frame(s, frame);
    }

    pos_id = sub->pos_id;
    pos_known = sub->pos_known;
    pos_since = sub->pos_since;

    sub->pos_id = frame->msg_id;
    sub->pos_known = 1;
    sub->pos_since = 0;

    line = ngx_http_wirehub_cursor_line(s);
    if (line == NULL) {
        ngx_http_wirehub_session_lost(s);
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_wirehub_send_pair(s, line, frame);
        ngx_http_wirehub_frame_release(line);
    }

    if (rc != NGX_OK) {
        sub->pos_id = pos_id;
        sub->pos_known = pos_known;
        sub->pos_since = pos_since;
    }

    return rc;
}


/* "id: <cursor>": where every channel of the stream is */

static ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_cursor_line(ngx_http_wirehub_session_t *s)
{
    u_char                       buf[NGX_HTTP_WIREHUB_CURSOR_MAX + 8], *p;
    ngx_uint_t                   n;
    ngx_http_wirehub_sub_t      *sub;
    ngx_http_wirehub_position_t  pos[NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS];

    n = 0;

    for (sub = s->subs; sub; sub = sub->next) {
        if (!sub->pos_known || n == NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS
            || sub->index >= NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS)
        {
            continue;
        }

        pos[n].index = sub->index;
        pos[n].id = sub->pos_id;

        if (sub->pos_since) {
            pos[n].epoch_len = sub->since_epoch_len;
            ngx_memcpy(pos[n].epoch, sub->since_epoch, sub->since_epoch_len);

        } else {
            pos[n].epoch_len = sub->channel->epoch_len;
            ngx_memcpy(pos[n].epoch, sub->channel->epoch,
                       sub->channel->epoch_len);
        }

        n++;
    }

    p = ngx_cpymem(buf, "id: ", sizeof("id: ") - 1);
    p += ngx_http_wirehub_cursor_encode(p, pos, n);
    *p++ = '\n';

    return ngx_http_wirehub_sse_raw(s->connection->log, s->framing, buf,
                                    p - buf);
}


static ngx_int_t
ngx_http_wirehub_send_subscribed(ngx_http_wirehub_sub_t *sub,
    ngx_uint_t recovered)
{
    json_t                      *reply, *ref;
    ngx_http_wirehub_channel_t  *ch;

    ch = sub->channel;

    /* with a gap, or from now on, the client is at the id it is told */

    if (!recovered || !sub->pos_known) {
        sub->pos_id = sub->up_to ? sub->up_to : ch->last_id;
        sub->pos_known = 1;
        sub->pos_since = 0;
    }

    reply = json_pack("{s:s,s:s%,s:I,s:s%,s:b,s:o}", "type", "subscribed",
                      "channel", ch->name.data, ch->name.len,
                      "id", (json_int_t) (sub->up_to ? sub->up_to
                                                     : ch->last_id),
                      "epoch", ch->epoch, ch->epoch_len,
                      "recovered", (int) recovered,
                      "timestamp", ngx_http_wirehub_timestamp());

    ref = sub->ref;
    sub->ref = NULL;

    if (reply && ref) {
        json_object_set(reply, "ref", ref);
    }

    if (ref) {
        json_decref(ref);
    }

    return ngx_http_wirehub_reply(sub->session, reply, NULL);
}


ngx_int_t
ngx_http_wirehub_unsubscribe(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    size_t                    i, len;
    json_t                   *channels, *name, *done;
    const char               *str;
    ngx_http_wirehub_sub_t  **prev, *sub;

    channels = json_object_get(msg, "channels");

    if (!json_is_array(channels) || json_array_size(channels) == 0) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"channels\" is a non-empty array of channel names", ref);
    }

    done = json_array();
    if (done == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < json_array_size(channels); i++) {
        name = json_array_get(channels, i);

        if (!json_is_string(name)) {
            continue;
        }

        str = json_string_value(name);
        len = json_string_length(name);

        for (prev = &s->subs, sub = s->subs; sub;
             prev = &sub->next, sub = sub->next)
        {
            if (sub->channel->name.len == len
                && ngx_strncmp(sub->channel->name.data, str, len) == 0)
            {
                *prev = sub->next;
                s->nsubs--;
                ngx_http_wirehub_sub_remove(sub);
                json_array_append(done, name);
                break;
            }
        }
    }

    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:o,s:o}", "type", "unsubscribed",
                         "channels", done,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


/* the sub is already unlinked from its session's list */

static void
ngx_http_wirehub_sub_remove(ngx_http_wirehub_sub_t *sub)
{
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_channel_t    *ch;
    ngx_http_wirehub_main_conf_t  *wmcf;

    s = sub->session;
    ch = sub->channel;
    wmcf = s->main_conf;

    if (sub->replay) {
        ngx_http_wirehub_pending_cancel(sub->replay);
        sub->replay = NULL;
    }

    ngx_http_wirehub_sub_release(sub, 0);

    if (sub->ref) {
        json_decref(sub->ref);
    }

    ngx_queue_remove(&sub->queue);
    ch->nsubs--;

    ngx_http_wirehub_stat(wmcf, subscriptions, -1);

    if (ch->nsubs == 0) {
        ngx_http_wirehub_channel_free(wmcf, ch);

    } else if (ch->sent) {
        (void) ngx_http_wirehub_channel_send(wmcf, ch, WH_LINK_COUNT);
    }

    if (s->sub_slot && sub == ngx_http_wirehub_sub_slot(s)) {
        s->sub_slot_used = 0;

    } else {
        ngx_free(sub);
    }
}


void
ngx_http_wirehub_session_unsubscribe_all(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_sub_t  *sub, *next;

    for (sub = s->subs; sub; sub = next) {
        next = sub->next;
        ngx_http_wirehub_sub_remove(sub);
    }

    s->subs = NULL;
    s->nsubs = 0;
}


/*
 * A message from wirehubd: framed once, and that one frame is queued on
 * every local subscriber.
 */

void
ngx_http_wirehub_channel_message(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    ngx_str_t                      ws;
    ngx_uint_t                     delivered, i;
    ngx_queue_t                   *q, *next;
    ngx_http_wirehub_sub_t        *sub;
    ngx_http_wirehub_channel_t    *ch;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_out_frame_t  *frame, *out;
    ngx_http_wirehub_out_frame_t  *cframes[NGX_HTTP_WIREHUB_DEFLATE_WINDOWS];
    ngx_http_wirehub_out_frame_t  *sframes[NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED
                                           + 1];

    ws.data = (u_char *) m->workspace.data;
    ws.len = m->workspace.len;
    ngx_memzero(cframes, sizeof(cframes));
    ngx_memzero(sframes, sizeof(sframes));
    delivered = 0;

    ch = ngx_http_wirehub_channel_get(wmcf, &ws, m->channel.data,
                                      m->channel.len, 0);
    if (ch == NULL) {
        return;
    }

    if (m->id <= ch->last_id) {
        /* replayed after a reconnect and already delivered */
        return;
    }

    ch->last_id = m->id;

    frame = ngx_http_wirehub_frame_create(ngx_cycle->log,
                                          WH_WS_OP_TEXT,
                                          (u_char *) m->body.data,
                                          m->body.len);
    if (frame) {
        frame->msg_id = m->id;
    }

    if (frame == NULL) {
        /* no subscriber may miss it silently: each resumes from history */
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "wirehub: message %uL of \"%V\" cannot be framed, "
                      "closing its %ui subscribers", m->id, &ch->name,
                      ch->nsubs);

        for (q = ngx_queue_head(&ch->subs);
             q != ngx_queue_sentinel(&ch->subs);
             q = ngx_queue_next(q))
        {
            sub = ngx_queue_data(q, ngx_http_wirehub_sub_t, queue);
            ngx_http_wirehub_session_lost(sub->session);
        }

        return;
    }

    ch->busy = 1;

    for (q = ngx_queue_head(&ch->subs);
         q != ngx_queue_sentinel(&ch->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_http_wirehub_sub_t, queue);

        out = frame;
        s = sub->session;

        if (ngx_http_wirehub_is_sse(s)) {
            /* one event per framing; its cursor line is the stream's */

            if (sframes[s->framing] == NULL) {
                sframes[s->framing] = ngx_http_wirehub_sse_event(
                                          ngx_cycle->log, s->framing,
                                          (u_char *) m->body.data,
                                          m->body.len);

                if (sframes[s->framing] == NULL) {
                    ngx_http_wirehub_session_lost(s);
                    continue;
                }

                sframes[s->framing]->msg_id = m->id;
            }

            out = sframes[s->framing];

        } else if (sub->session->deflate && m->body.len
                                     >= NGX_HTTP_WIREHUB_DEFLATE_MIN)
        {
            /*
             * No context takeover: one compressed frame serves every
             * subscriber with the same server window size.
             */
            i = ngx_http_wirehub_deflate_window(
                                            sub->session->deflate_window);

            if (cframes[i] == NULL) {
                cframes[i] = ngx_http_wirehub_deflate_frame(wmcf,
                                                 ngx_cycle->log,
                                                 sub->session->deflate_window,
                                                 WH_WS_OP_TEXT,
                                                 (u_char *) m->body.data,
                                                 m->body.len);
            }

            out = cframes[i] ? cframes[i] : frame;
        }

        if (sub->live) {
            (void) ngx_http_wirehub_deliver(sub, out);
            delivered++;

        } else if (sub->paging
                   && ngx_http_wirehub_hold(sub, out) == NGX_ERROR)
        {
            ngx_http_wirehub_session_lost(sub->session);
        }
    }

    ch->busy = 0;

    ngx_http_wirehub_stat(wmcf, delivered, delivered);

    if (delivered) {
        ngx_http_wirehub_observe_latency(wmcf, m->id2);
    }

    ngx_http_wirehub_frame_release(frame);

    for (i = 0; i < NGX_HTTP_WIREHUB_DEFLATE_WINDOWS; i++) {
        if (cframes[i]) {
            ngx_http_wirehub_frame_release(cframes[i]);
        }
    }

    for (i = 0; i <= NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED; i++) {
        if (sframes[i]) {
            ngx_http_wirehub_frame_release(sframes[i]);
        }
    }

    if (ch->nsubs == 0) {
        ngx_http_wirehub_channel_free(wmcf, ch);
    }
}


void
ngx_http_wirehub_channel_subscribed(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    ngx_str_t                    ws;
    ngx_uint_t                   resumed;
    ngx_queue_t                 *q, *next;
    ngx_http_wirehub_sub_t      *sub;
    ngx_http_wirehub_channel_t  *ch;

    ws.data = (u_char *) m->workspace.data;
    ws.len = m->workspace.len;

    ch = ngx_http_wirehub_channel_get(wmcf, &ws, m->channel.data,
                                      m->channel.len, 0);
    if (ch == NULL || m->epoch.len > NGX_HTTP_WIREHUB_MAX_EPOCH) {
        return;
    }

    resumed = (ch->epoch_len != 0);
    ch->subscribed = 1;

    if (!resumed || !m->flag) {
        if (resumed) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "wirehub: history of \"%V\" no longer reaches "
                          "back to id %uL: its clients are told of the gap",
                          &ch->name, ch->last_id);
        }

        ch->last_id = m->id;
        ch->epoch_len = m->epoch.len;
        ngx_memcpy(ch->epoch, m->epoch.data, m->epoch.len);
    }

    ch->busy = 1;

    for (q = ngx_queue_head(&ch->subs);
         q != ngx_queue_sentinel(&ch->subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_http_wirehub_sub_t, queue);

        if (!sub->live && !sub->paging) {
            ngx_http_wirehub_sub_activate(sub);

        } else if (sub->paging && sub->relink) {
            sub->relink = 0;

            if (ngx_http_wirehub_sub_has_room(sub->session)) {
                ngx_http_wirehub_sub_page(sub, sub->next_page);

            } else {
                sub->waiting = 1;
                sub->session->drain_wanted = 1;
            }

        } else if (sub->live && resumed && !m->flag) {
            sub->up_to = 0;
            (void) ngx_http_wirehub_send_subscribed(sub, 0);
        }
    }

    ch->busy = 0;

    if (ch->nsubs == 0) {
        ngx_http_wirehub_channel_free(wmcf, ch);
    }
}


/*
 * The link is back: every channel is subscribed again, from the last id
 * delivered.  The link is gone: nothing is subscribed upstream any more.
 */

void
ngx_http_wirehub_channels_link_up(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_channels_relink(wmcf, 1);
}


void
ngx_http_wirehub_channels_link_down(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_channels_relink(wmcf, 0);
}


static void
ngx_http_wirehub_channels_relink(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_uint_t up)
{
    ngx_rbtree_node_t           *node, *root, *sentinel;
    ngx_http_wirehub_channel_t  *ch;

    root = wmcf->channels.root;
    sentinel = wmcf->channels.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&wmcf->channels, node))
    {
        ch = (ngx_http_wirehub_channel_t *) node;
        ch->sent = up;
        ch->subscribed = 0;

        if (up) {
            (void) ngx_http_wirehub_channel_send(wmcf, ch,
                                                 WH_LINK_SUBSCRIBE);
        }
    }
}

