/*
 * The npm package's rpc() against a real server (t/test_hooks.py starts
 * nginx with wirehub_rpc_pass and the application): Node's own WebSocket
 * (--experimental-websocket), the token from WH_TOKEN, the URL from
 * WH_URL.  Prints one JSON line: what rpc() resolved and rejected with.
 */

import { Wirehub } from '../../web/dist/wirehub.mjs';

const hub = new Wirehub(process.env.WH_URL, {
    token: process.env.WH_TOKEN, WebSocket
});

const out = {};

try {
    out.stats = await hub.rpc('request_stats', { window: '24h' });

    try {
        await hub.rpc('fail');
        out.fail = 'resolved';
    } catch (err) {
        out.fail = { code: err.code, status: err.status };
    }
} finally {
    hub.close();
}

console.log(JSON.stringify(out));
