
/*
 * Wirehub: the table that gives wirehubd's frames their meaning.
 */


#ifndef _NGX_HTTP_WIREHUB_LINK_HANDLERS_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_LINK_HANDLERS_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_link.h"


extern const ngx_http_wirehub_link_handlers_t
    ngx_http_wirehub_link_handlers;


#endif /* _NGX_HTTP_WIREHUB_LINK_HANDLERS_H_INCLUDED_ */
