
/*
 * Wirehub: what the module puts into nginx and takes out again: its
 * variables, its phase handlers and shared zones, the content handler of
 * each kind of location, and the start and end of a worker.  The file
 * that defines the module object (ngx_http_wirehub_module.c) looks its
 * configuration up and hands it down here, so that the parts installed
 * are called from below the module object, never beside it.
 */


#ifndef _NGX_HTTP_WIREHUB_INSTALL_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_INSTALL_H_INCLUDED_


#include "ngx_http_wirehub.h"


/* preconfiguration: $wirehub_request and the other variables */
ngx_int_t ngx_http_wirehub_install_variables(ngx_conf_t *cf);

/* postconfiguration, when a location uses the module */
ngx_int_t ngx_http_wirehub_install(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf);

/* the content handler of a location of this mode */
ngx_http_handler_pt ngx_http_wirehub_content_handler(
    ngx_http_wirehub_mode_e mode);

/* a new cycle whose locations use the module, before its workers start */
void ngx_http_wirehub_install_cycle(ngx_cycle_t *cycle);

ngx_int_t ngx_http_wirehub_worker_start(ngx_cycle_t *cycle,
    ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_worker_end(ngx_http_wirehub_main_conf_t *wmcf);


#endif /* _NGX_HTTP_WIREHUB_INSTALL_H_INCLUDED_ */
