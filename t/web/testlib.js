/*
 * What the browser scripts of t/web share: a line on stdout, and the
 * HTTP API with a token.
 */

'use strict';

function log(...args) {
    process.stdout.write(args.join(' ') + '\n');
}

/* api(method, path, body) -> { status, doc } against base with token */
function apiClient(base, token) {
    return async function api(method, urlPath, body) {
        const res = await fetch(base + urlPath, {
            method,
            headers: { Authorization: 'Bearer ' + token,
                       'Content-Type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body)
        });

        return { status: res.status,
                 doc: await res.json().catch(() => null) };
    };
}

module.exports = { log, apiClient };
