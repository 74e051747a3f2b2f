
/*
 * Wirehub: what wirehubd's frames mean to this worker.  The link is
 * transport only; this table sends each frame type to the feature that
 * owns it, and tells the features when the link comes and goes.
 */


#include "ngx_http_wirehub_link_handlers.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_commands.h"
#include "ngx_http_wirehub_presence.h"


static void ngx_http_wirehub_link_is_up(ngx_http_wirehub_main_conf_t *wmcf);
static void ngx_http_wirehub_link_is_down(
    ngx_http_wirehub_main_conf_t *wmcf);


const ngx_http_wirehub_link_handlers_t  ngx_http_wirehub_link_handlers = {
    ngx_http_wirehub_link_is_up,
    ngx_http_wirehub_link_is_down,
    {
        [WH_LINK_SUBSCRIBED] = ngx_http_wirehub_channel_subscribed,
        [WH_LINK_MESSAGE] = ngx_http_wirehub_channel_message,
        [WH_LINK_SESSION_ACCEPT] = ngx_http_wirehub_session_accepted,
        [WH_LINK_COMMAND] = ngx_http_wirehub_command,
        [WH_LINK_SESSION_KICK] = ngx_http_wirehub_session_kick,
        [WH_LINK_REVOKE] = ngx_http_wirehub_revoke,
        [WH_LINK_BROADCAST] = ngx_http_wirehub_broadcast
    }
};


/* sessions first: wirehubd must know a session before its subscriptions */

static void
ngx_http_wirehub_link_is_up(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_sessions_link_up(wmcf);
    ngx_http_wirehub_channels_link_up(wmcf);
}


static void
ngx_http_wirehub_link_is_down(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_channels_link_down(wmcf);
    ngx_http_wirehub_sessions_link_down(wmcf);
}
