
/*
 * Wirehub: the module object, its directives and configuration.  What
 * it installs in nginx and starts in a worker is ngx_http_wirehub_install.c,
 * handed the configuration from here; the layers below are named in
 * ngx_http_wirehub.h.
 */


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_install.h"

static ngx_int_t ngx_http_wirehub_init(ngx_conf_t *cf);
static void *ngx_http_wirehub_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_wirehub_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_wirehub_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_wirehub_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_wirehub_jwt_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_wirehub_daemon(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_wirehub_set_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_wirehub_allowed_origins(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_wirehub_message_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_wirehub_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_wirehub_cleanup_keys(void *data);
static char *ngx_http_wirehub_jwt_sign_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_wirehub_cleanup_signer(void *data);
static char *ngx_http_wirehub_jwt_sign_ttl(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_wirehub_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_wirehub_init_process(ngx_cycle_t *cycle);
static void ngx_http_wirehub_exit_process(ngx_cycle_t *cycle);


/* 40 MiB of entries a worker at most: a million tokens seen again */
static ngx_conf_num_bounds_t  ngx_http_wirehub_jwt_cache_bounds = {
    ngx_conf_check_num_bounds, 0, 1048576
};

/* an entry is its token (2 KiB at most) and its identity */
static ngx_conf_num_bounds_t  ngx_http_wirehub_token_cache_bounds = {
    ngx_conf_check_num_bounds, 0, 65536
};


static ngx_command_t  ngx_http_wirehub_commands[] = {

    { ngx_string("wirehub_daemon"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_wirehub_daemon,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("wirehub_jwt_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_wirehub_jwt_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("wirehub_jwt_sign_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_wirehub_jwt_sign_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("wirehub_jwt_sign_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_wirehub_jwt_sign_ttl,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, sign_ttl),
      NULL },

    { ngx_string("wirehub_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, issuer),
      NULL },

    { ngx_string("wirehub_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, audience),
      NULL },

    { ngx_string("wirehub_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, leeway),
      NULL },

    { ngx_string("wirehub_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, jwt_cache_size),
      &ngx_http_wirehub_jwt_cache_bounds },

    { ngx_string("wirehub_token_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, token_cache_size),
      &ngx_http_wirehub_token_cache_bounds },

    { ngx_string("wirehub_workspace_claim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, workspace_claim),
      NULL },

    { ngx_string("wirehub_client_claim"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, client_claim),
      NULL },

    { ngx_string("wirehub_websocket"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_wirehub_set_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_WIREHUB_MODE_WEBSOCKET,
      NULL },

    { ngx_string("wirehub_echo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_wirehub_set_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_WIREHUB_MODE_ECHO,
      NULL },

    { ngx_string("wirehub_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_wirehub_set_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_WIREHUB_MODE_API,
      NULL },

    { ngx_string("wirehub_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_wirehub_set_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_WIREHUB_MODE_METRICS,
      NULL },

    { ngx_string("wirehub_sse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_wirehub_set_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_WIREHUB_MODE_SSE,
      NULL },

    { ngx_string("wirehub_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, ping_interval),
      NULL },

    { ngx_string("wirehub_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, idle_timeout),
      NULL },

    { ngx_string("wirehub_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("wirehub_send_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, send_limit),
      NULL },

    { ngx_string("wirehub_allowed_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_wirehub_allowed_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("wirehub_max_connections_per_client"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, max_connections_per_client),
      NULL },

    { ngx_string("wirehub_message_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_wirehub_message_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("wirehub_max_subscriptions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, max_subscriptions),
      NULL },

    { ngx_string("wirehub_max_connections_per_workspace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, max_connections_per_workspace),
      NULL },

    { ngx_string("wirehub_rpc_pass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_wirehub_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, rpc_pass),
      NULL },

    { ngx_string("wirehub_event_pass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_wirehub_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, event_pass),
      NULL },

    { ngx_string("wirehub_rpc_max_inflight"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, rpc_max_inflight),
      NULL },

    { ngx_string("wirehub_rpc_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_wirehub_loc_conf_t, rpc_timeout),
      NULL },

    { ngx_string("wirehub_workspace_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_wirehub_main_conf_t, workspace_zone_size),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_wirehub_module_ctx = {
    ngx_http_wirehub_install_variables,    /* preconfiguration */
    ngx_http_wirehub_init,                 /* postconfiguration */

    ngx_http_wirehub_create_main_conf,     /* create main configuration */
    ngx_http_wirehub_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_wirehub_create_loc_conf,      /* create location configuration */
    ngx_http_wirehub_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_wirehub_module = {
    NGX_MODULE_V1,
    &ngx_http_wirehub_module_ctx,          /* module context */
    ngx_http_wirehub_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_wirehub_init_module,          /* init module */
    ngx_http_wirehub_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_wirehub_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_wirehub_init(ngx_conf_t *cf)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_wirehub_module);

    /* loaded but unused: nginx runs exactly as without the module */

    if (!wmcf->locations) {
        return NGX_OK;
    }

    return ngx_http_wirehub_install(cf, wmcf);
}


static ngx_int_t
ngx_http_wirehub_init_module(ngx_cycle_t *cycle)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_wirehub_module);

    if (wmcf && wmcf->locations) {
        ngx_http_wirehub_install_cycle(cycle);
    }

    return NGX_OK;
}


static void *
ngx_http_wirehub_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_wirehub_main_conf_t));
    if (wmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wmcf->keys = NULL;
     *     wmcf->issuer = { 0, NULL };
     *     wmcf->audience = { 0, NULL };
     *     wmcf->daemon = { 0, NULL };
     */

    wmcf->leeway = NGX_CONF_UNSET;
    wmcf->jwt_cache_size = NGX_CONF_UNSET_UINT;
    wmcf->token_cache_size = NGX_CONF_UNSET_UINT;
    wmcf->daemon_off = NGX_CONF_UNSET;
    wmcf->workspace_zone_size = NGX_CONF_UNSET_SIZE;

    ngx_queue_init(&wmcf->sessions);
    ngx_queue_init(&wmcf->workspace_holds);

    return wmcf;
}


static char *
ngx_http_wirehub_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_wirehub_main_conf_t *wmcf = conf;

    ngx_conf_init_value(wmcf->leeway, 30);
    ngx_conf_init_uint_value(wmcf->jwt_cache_size,
                             NGX_HTTP_WIREHUB_JWT_CACHE);
    ngx_conf_init_uint_value(wmcf->token_cache_size,
                             NGX_HTTP_WIREHUB_TOKEN_CACHE);
    ngx_conf_init_value(wmcf->daemon_off, 0);
    ngx_conf_init_size_value(wmcf->workspace_zone_size, 1024 * 1024);

    /* the slab allocator needs a few pages of its own */

    if (wmcf->workspace_zone_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"wirehub_workspace_zone\" of %uz bytes is too "
                           "small, at least %ui", wmcf->workspace_zone_size,
                           8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (wmcf->daemon.len == 0 && !wmcf->daemon_off) {
        ngx_str_set(&wmcf->daemon, "/run/wirehub/wirehubd.sock");
    }

    if (wmcf->workspace_claim.len == 0) {
        ngx_str_set(&wmcf->workspace_claim, "workspace");
    }

    if (wmcf->client_claim.len == 0) {
        ngx_str_set(&wmcf->client_claim, "sub");
    }

    /* the policy keeps C strings: ngx_conf_set_str_slot values end in NUL */

    wmcf->policy.workspace_claim = (char *) wmcf->workspace_claim.data;
    wmcf->policy.client_claim = (char *) wmcf->client_claim.data;
    wmcf->policy.issuer = wmcf->issuer.len ? (char *) wmcf->issuer.data
                                           : NULL;
    wmcf->policy.audience = wmcf->audience.len ? (char *) wmcf->audience.data
                                               : NULL;
    wmcf->policy.leeway = (long) wmcf->leeway;

    return NGX_CONF_OK;
}


static char *
ngx_http_wirehub_daemon(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_wirehub_main_conf_t *wmcf = conf;

    ngx_str_t  *value;

    if (wmcf->daemon.len || wmcf->daemon_off != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        wmcf->daemon_off = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "unix:", 5) != 0 || value[1].len < 7) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"wirehub_daemon\" must be \"unix:/path\" "
                           "or \"off\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    wmcf->daemon.data = value[1].data + 5;
    wmcf->daemon.len = value[1].len - 5;
    wmcf->daemon_off = 0;

    return NGX_CONF_OK;
}


static char *
ngx_http_wirehub_jwt_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_wirehub_main_conf_t *wmcf = conf;

    char                 err[256];
    u_char             *kid, *path;
    ngx_str_t          *value, file;
    ngx_uint_t          i;
    ngx_pool_cleanup_t *cln;

    value = cf->args->elts;

    if (wmcf->keys == NULL) {
        wmcf->keys = ngx_http_wirehub_jwt_keys_create();
        if (wmcf->keys == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            ngx_http_wirehub_jwt_keys_destroy(wmcf->keys);
            wmcf->keys = NULL;
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_wirehub_cleanup_keys;
        cln->data = wmcf->keys;
    }

    kid = NULL;
    path = NULL;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0) {
            file.data = value[i].data + 5;
            file.len = value[i].len - 5;

            if (file.len == 0) {
                return "has an empty \"file=\"";
            }

            if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            path = file.data;
            continue;
        }

        if (ngx_strncmp(value[i].data, "kid=", 4) == 0) {
            if (value[i].len == 4) {
                return "has an empty \"kid=\"";
            }

            kid = value[i].data + 4;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (path == NULL) {
        return "requires \"file=\"";
    }

    if (ngx_http_wirehub_jwt_keys_add_file(wmcf->keys,
                                           (char *) value[1].data,
                                           (char *) kid, (char *) path,
                                           err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "wirehub_jwt_key %V: %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    wmcf->nkeys++;

    return NGX_CONF_OK;
}


static void
ngx_http_wirehub_cleanup_keys(void *data)
{
    ngx_http_wirehub_jwt_keys_destroy(data);
}


/* the key that signs the tokens POST /api/clients hands out */

static char *
ngx_http_wirehub_jwt_sign_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_wirehub_main_conf_t *wmcf = conf;

    char                 err[256];
    u_char              *kid;
    ngx_str_t           *value, file;
    ngx_uint_t           i;
    ngx_pool_cleanup_t  *cln;

    if (wmcf->signer) {
        return "is duplicate";
    }

    value = cf->args->elts;
    kid = NULL;
    file.len = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0 && value[i].len > 5) {
            file.data = value[i].data + 5;
            file.len = value[i].len - 5;

            if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "kid=", 4) == 0 && value[i].len > 4) {
            kid = value[i].data + 4;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (file.len == 0) {
        return "requires \"file=\"";
    }

    wmcf->signer = ngx_http_wirehub_jwt_signer_create_file(
                       (char *) value[1].data, (char *) file.data, err,
                       sizeof(err));
    if (wmcf->signer == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "wirehub_jwt_sign_key %V: %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_wirehub_cleanup_signer;
    cln->data = wmcf->signer;

    if (kid
        && ngx_http_wirehub_jwt_signer_set_kid(wmcf->signer, (char *) kid,
                                               err, sizeof(err))
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "wirehub_jwt_sign_key %V: %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the lifetime of a signed client token: a time, or "off" (no exp) */

static char *
ngx_http_wirehub_jwt_sign_ttl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    time_t     *ttl;
    ngx_str_t  *value;

    ttl = (time_t *) ((char *) conf + cmd->offset);

    if (*ttl != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *ttl = 0;
        return NGX_CONF_OK;
    }

    *ttl = ngx_parse_time(&value[1], 1);

    if (*ttl == (time_t) NGX_ERROR) {
        return "invalid value";
    }

    return NGX_CONF_OK;
}


static void
ngx_http_wirehub_cleanup_signer(void *data)
{
    ngx_http_wirehub_jwt_signer_destroy(data);
}


static char *
ngx_http_wirehub_set_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_wirehub_loc_conf_t *wlcf = conf;

    ngx_str_t                     *value;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    if (wlcf->mode != NGX_HTTP_WIREHUB_MODE_NONE) {
        return "is duplicate";
    }

    wlcf->mode = (ngx_http_wirehub_mode_e) cmd->offset;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strcmp(value[1].data, "auth") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        wlcf->echo_auth = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->handler = ngx_http_wirehub_content_handler(wlcf->mode);

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_wirehub_module);
    wmcf->locations = 1;

    /*
     * The API answers an oversized body itself, in JSON (413 too_large,
     * past 1 MiB); nginx's own check, with its HTML page, only stops
     * bodies far beyond that.
     */

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_API
        && clcf->client_max_body_size == NGX_CONF_UNSET)
    {
        clcf->client_max_body_size = 16 * 1024 * 1024;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_wirehub_allowed_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_wirehub_loc_conf_t *wlcf = conf;

    ngx_str_t   *value, *origin;
    ngx_uint_t   i;

    if (wlcf->allowed_origins == NULL) {
        wlcf->allowed_origins = ngx_array_create(cf->pool, 4,
                                                 sizeof(ngx_str_t));
        if (wlcf->allowed_origins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        origin = ngx_array_push(wlcf->allowed_origins);
        if (origin == NULL) {
            return NGX_CONF_ERROR;
        }

        *origin = value[i];
    }

    return NGX_CONF_OK;
}


/* wirehub_message_rate RATE [burst=N], RATE as limit_req writes it, or off */

/*
 * wirehub_rpc_pass, wirehub_event_pass: a URI prefix, "/" and a method or
 * event type are appended; a trailing "/" is dropped so there is one.
 */

static char *
ngx_http_wirehub_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *field = value[1];

    while (field->len > 1 && field->data[field->len - 1] == '/') {
        field->len--;
    }

    if (field->len < 2 || field->data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" takes a URI prefix such as "
                           "/_wirehub/rpc", &cmd->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_wirehub_message_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_wirehub_loc_conf_t *wlcf = conf;

    uint64_t     n, period, burst;
    ngx_int_t    value;
    ngx_str_t   *args;
    ngx_uint_t   i;

    if (ngx_http_wirehub_rate_is_set(&wlcf->message_rate)) {
        return "is duplicate";
    }

    args = cf->args->elts;
    burst = 0;

    if (ngx_strcmp(args[1].data, "off") == 0) {
        n = 0;
        period = 1000;

    } else if (ngx_http_wirehub_rate_parse((char *) args[1].data, args[1].len,
                                           &n, &period)
               != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\": \"Nr/s\", \"Nr/m\" "
                           "(N at most %d), \"0\" or \"off\"", &args[1],
                           NGX_HTTP_WIREHUB_RATE_MAX);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(args[i].data, "burst=", 6) == 0) {
            value = ngx_atoi(args[i].data + 6, args[i].len - 6);

            if (value <= 0 || value > NGX_HTTP_WIREHUB_RATE_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid burst \"%V\": 1 to %d",
                                   &args[i], NGX_HTTP_WIREHUB_RATE_MAX);
                return NGX_CONF_ERROR;
            }

            burst = (uint64_t) value;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &args[i]);
        return NGX_CONF_ERROR;
    }

    if (n == 0 && burst) {
        return "takes no \"burst=\" when off";
    }

    if (ngx_http_wirehub_rate_init(&wlcf->message_rate, n, period, burst)
        != 0)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_wirehub_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_wirehub_loc_conf_t  *wlcf;

    wlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_wirehub_loc_conf_t));
    if (wlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wlcf->mode = NGX_HTTP_WIREHUB_MODE_NONE;
     *     wlcf->echo_auth = 0;
     *     wlcf->allowed_origins = NULL;
     *     wlcf->message_rate = { 0 }: not set;
     */

    wlcf->ping_interval = NGX_CONF_UNSET_MSEC;
    wlcf->idle_timeout = NGX_CONF_UNSET_MSEC;
    wlcf->max_message_size = NGX_CONF_UNSET_SIZE;
    wlcf->send_limit = NGX_CONF_UNSET_SIZE;
    wlcf->max_connections_per_client = NGX_CONF_UNSET_UINT;
    wlcf->max_subscriptions = NGX_CONF_UNSET_UINT;
    wlcf->max_connections_per_workspace = NGX_CONF_UNSET_UINT;
    wlcf->sign_ttl = NGX_CONF_UNSET;
    wlcf->rpc_max_inflight = NGX_CONF_UNSET_UINT;
    wlcf->rpc_timeout = NGX_CONF_UNSET_MSEC;

    return wlcf;
}


static char *
ngx_http_wirehub_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_wirehub_loc_conf_t *prev = parent;
    ngx_http_wirehub_loc_conf_t *conf = child;

    ngx_http_wirehub_main_conf_t  *wmcf;

    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              30000);
    ngx_conf_merge_msec_value(conf->idle_timeout, prev->idle_timeout, 75000);
    ngx_conf_merge_size_value(conf->max_message_size, prev->max_message_size,
                              64 * 1024);
    ngx_conf_merge_size_value(conf->send_limit, prev->send_limit,
                              1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_connections_per_client,
                              prev->max_connections_per_client, 8);
    ngx_conf_merge_uint_value(conf->max_subscriptions,
                              prev->max_subscriptions, 256);
    ngx_conf_merge_uint_value(conf->max_connections_per_workspace,
                              prev->max_connections_per_workspace, 0);
    ngx_conf_merge_value(conf->sign_ttl, prev->sign_ttl, 30 * 86400);
    ngx_conf_merge_str_value(conf->rpc_pass, prev->rpc_pass, "");
    ngx_conf_merge_str_value(conf->event_pass, prev->event_pass, "");
    ngx_conf_merge_uint_value(conf->rpc_max_inflight, prev->rpc_max_inflight,
                              8);
    ngx_conf_merge_msec_value(conf->rpc_timeout, prev->rpc_timeout, 60000);

    if (!ngx_http_wirehub_rate_is_set(&conf->message_rate)) {
        if (ngx_http_wirehub_rate_is_set(&prev->message_rate)) {
            conf->message_rate = prev->message_rate;

        } else {
            (void) ngx_http_wirehub_rate_init(&conf->message_rate, 50, 1000,
                                              100);
        }
    }

    if (conf->allowed_origins == NULL) {
        conf->allowed_origins = prev->allowed_origins;
    }

    if (conf->ping_interval == 0 || conf->idle_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"wirehub_ping_interval\" and "
                           "\"wirehub_idle_timeout\" must not be zero");
        return NGX_CONF_ERROR;
    }

    wmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_wirehub_module);

    if (conf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET
        || conf->mode == NGX_HTTP_WIREHUB_MODE_SSE
        || conf->mode == NGX_HTTP_WIREHUB_MODE_API
        || conf->mode == NGX_HTTP_WIREHUB_MODE_METRICS)
    {
        /* only these need wirehubd: a server of echo alone links none */
        wmcf->used = 1;
    }

    if ((conf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET
         || conf->mode == NGX_HTTP_WIREHUB_MODE_SSE)
        && conf->max_connections_per_workspace)
    {
        wmcf->workspace_limits = 1;
    }

    if (conf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET
        || conf->mode == NGX_HTTP_WIREHUB_MODE_SSE
        || conf->mode == NGX_HTTP_WIREHUB_MODE_API
        || (conf->mode == NGX_HTTP_WIREHUB_MODE_ECHO && conf->echo_auth))
    {
        if (wmcf->keys == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "wirehub locations need at least one "
                               "\"wirehub_jwt_key\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_wirehub_init_process(ngx_cycle_t *cycle)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_wirehub_module);
    if (wmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_wirehub_worker_start(cycle, wmcf);
}


static void
ngx_http_wirehub_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_wirehub_module);
    if (wmcf == NULL) {
        return;
    }

    ngx_http_wirehub_worker_end(wmcf);
}
