
/*
 * Wirehub: answers that wait for the frames queued before them
 * (ngx_http_wirehub_writes.h).  A mark is an event of its own at the tail
 * of the worker's write queue; the slices that write the queue reach it
 * once everything before it is written, and it lets its waiters go.
 * Closing a connection takes its write event off the queue, never a mark,
 * so a mark is always reached.
 */


#include "ngx_http_wirehub_writes.h"


struct ngx_http_wirehub_write_mark_s {
    ngx_event_t                      event;      /* on wmcf->writes */
    ngx_queue_t                      waiters;
    ngx_http_wirehub_main_conf_t    *main_conf;
    ngx_http_wirehub_write_mark_t   *next;       /* wmcf->free_marks */
};


static ngx_http_wirehub_write_mark_t *ngx_http_wirehub_writes_mark(
    ngx_http_wirehub_main_conf_t *wmcf);
static void ngx_http_wirehub_writes_reached(ngx_event_t *ev);


ngx_int_t
ngx_http_wirehub_writes_wait(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_waiter_t *w)
{
    ngx_http_wirehub_write_mark_t  *mark;

    /* a queue that is not empty has its slices posted */

    if (ngx_queue_empty(&wmcf->writes)) {
        return NGX_OK;
    }

    mark = ngx_http_wirehub_writes_mark(wmcf);
    if (mark == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&mark->waiters, &w->queue);
    w->waiting = 1;

    return NGX_AGAIN;
}


void
ngx_http_wirehub_writes_unwait(ngx_http_wirehub_waiter_t *w)
{
    if (w->waiting) {
        ngx_queue_remove(&w->queue);
        w->waiting = 0;
    }
}


/* the mark at the tail of the queue: the one there, or a new one */

static ngx_http_wirehub_write_mark_t *
ngx_http_wirehub_writes_mark(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_event_t                    *ev;
    ngx_http_wirehub_write_mark_t  *mark;

    ev = ngx_queue_data(ngx_queue_last(&wmcf->writes), ngx_event_t, queue);

    if (ev->handler == ngx_http_wirehub_writes_reached) {
        return ev->data;
    }

    mark = wmcf->free_marks;

    if (mark) {
        wmcf->free_marks = mark->next;

    } else {
        mark = ngx_alloc(sizeof(ngx_http_wirehub_write_mark_t),
                         ngx_cycle->log);
        if (mark == NULL) {
            return NULL;
        }
    }

    ngx_memzero(&mark->event, sizeof(ngx_event_t));
    mark->event.handler = ngx_http_wirehub_writes_reached;
    mark->event.data = mark;
    mark->event.log = ngx_cycle->log;
    ngx_queue_init(&mark->waiters);
    mark->main_conf = wmcf;
    mark->next = NULL;

    ngx_post_event(&mark->event, &wmcf->writes);

    return mark;
}


static void
ngx_http_wirehub_writes_reached(ngx_event_t *ev)
{
    ngx_queue_t                    *q;
    ngx_http_wirehub_waiter_t      *w;
    ngx_http_wirehub_main_conf_t   *wmcf;
    ngx_http_wirehub_write_mark_t  *mark;

    mark = ev->data;
    wmcf = mark->main_conf;

    while (!ngx_queue_empty(&mark->waiters)) {
        q = ngx_queue_head(&mark->waiters);
        w = ngx_queue_data(q, ngx_http_wirehub_waiter_t, queue);

        ngx_queue_remove(q);
        w->waiting = 0;
        w->handler(w);
    }

    mark->next = wmcf->free_marks;
    wmcf->free_marks = mark;
}
