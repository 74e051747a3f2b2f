
/*
 * Wirehub: answers that wait for the frames queued before them.  A
 * publish is answered once wirehubd stored it, and a publisher that sends
 * the next one at once would otherwise outrun the worker's fan-out: each
 * message would wait behind more and more earlier ones.  The answer waits
 * until the worker wrote what it had queued when the answer came (the
 * fan-out of the message before, as wirehubd answers a publish before it
 * sends the message out): one fan-out overlaps the next, and no more.
 */


#ifndef _NGX_HTTP_WIREHUB_WRITES_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_WRITES_H_INCLUDED_


#include "ngx_http_wirehub.h"


typedef struct ngx_http_wirehub_waiter_s  ngx_http_wirehub_waiter_t;

struct ngx_http_wirehub_waiter_s {
    ngx_queue_t                      queue;
    void                           (*handler)(ngx_http_wirehub_waiter_t *w);
    void                            *data;
    unsigned                         waiting:1;
};


/*
 * NGX_OK: nothing is queued, go on; NGX_AGAIN: w->handler runs once what
 * is queued now is written; NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_wirehub_writes_wait(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_waiter_t *w);

/* a waiter that goes away before its turn */
void ngx_http_wirehub_writes_unwait(ngx_http_wirehub_waiter_t *w);


#endif /* _NGX_HTTP_WIREHUB_WRITES_H_INCLUDED_ */
