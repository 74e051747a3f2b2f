
/*
 * Wirehub: no token in any log.  The error-log writer, the request line
 * and the $wirehub_* variables for access-log formats.
 */


#ifndef _NGX_HTTP_WIREHUB_LOG_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_LOG_H_INCLUDED_


#include "ngx_http_wirehub.h"


void ngx_http_wirehub_log_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_wirehub_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_wirehub_post_read(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_log_phase(ngx_http_request_t *r);


#endif /* _NGX_HTTP_WIREHUB_LOG_H_INCLUDED_ */
