/*
 * The wirehub package in a real browser: Debian's chromium driven by
 * playwright-core loads its ES module build (/wirehub.esm.js, served by
 * nginx like the dashboard) into a page and runs it against nginx +
 * wirehubd, started by t/test_web.py with wirehub_jwt_leeway 1s.
 *
 * The page's getToken mints 3-second tokens (here, in Node, through an
 * exposed function), so the session only survives by in-band refresh.
 * Checked: subscription states and `await sub.ready`, per-type handlers,
 * publish answers and refusals, a refused subscription, resume after the
 * server drops the connection (4409 retry_after=2: the wait is kept and
 * the messages published meanwhile arrive once, in order), refresh
 * before exp without a reconnect (and a fixed-token client beside it
 * closed 4401), no reconnect after 4403 (the client deleted over the API).
 *
 * Environment: WH_BASE_URL, WH_SERVICE_TOKEN (role service, for the API),
 * WH_HS256_SECRET (hex), WH_ISS, WH_AUD, WH_WORKSPACE, WH_ARTIFACTS.
 */

'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE = process.env.WH_BASE_URL;
const SERVICE_TOKEN = process.env.WH_SERVICE_TOKEN;
const SECRET = Buffer.from(process.env.WH_HS256_SECRET || '', 'hex');
const CHROMIUM = process.env.WH_CHROMIUM || '/usr/bin/chromium';
const CLIENT = 'browser-1';
const FIXED_CLIENT = 'browser-fixed';
const TOKEN_TTL = 3;
const CHANNEL = 'chat/room1';

const CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'
];

function log(...args) {
    process.stdout.write(args.join(' ') + '\n');
}

function b64url(obj) {
    return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/* HS256 with the test key, the claims t/wh.py's claims() makes */
function mint(sub, ttl) {
    const now = Math.floor(Date.now() / 1000);
    const input = b64url({ alg: 'HS256', typ: 'JWT' }) + '.' + b64url({
        sub, workspace: process.env.WH_WORKSPACE, iat: now, exp: now + ttl,
        iss: process.env.WH_ISS, aud: process.env.WH_AUD,
        publish: ['chat/#']
    });

    return input + '.' + crypto.createHmac('sha256', SECRET).update(input)
        .digest('base64url');
}

async function api(method, urlPath, body) {
    const res = await fetch(BASE + urlPath, {
        method,
        headers: { Authorization: 'Bearer ' + SERVICE_TOKEN,
                   'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body)
    });

    return { status: res.status, doc: await res.json().catch(() => null) };
}

async function publish(type, data) {
    const res = await api('POST', '/api/channels/' + CHANNEL + '/messages',
                          { type, data });

    assert.equal(res.status, 202, JSON.stringify(res.doc));
    return res.doc.id;
}

/* the page's client, its subscription, and everything they report */
async function setUp(page) {
    let minted = 0;

    await page.exposeFunction('mintToken', (fixed) => {
        minted += fixed ? 0 : 1;
        return mint(fixed ? FIXED_CLIENT : CLIENT, TOKEN_TTL);
    });
    await page.goto(BASE + '/wirehub.esm.js');
    await page.evaluate(async (channel) => {
        const { default: Wirehub, Subscription } =
            await import('/wirehub.esm.js');
        const t = window.t = { states: [], subStates: [], chat: [],
                               typing: [], all: [], gaps: [], errors: [] };
        const client = new Wirehub({ getToken: () => window.mintToken(false),
                                     clientType: 'browser' });

        client.on('state', (s, d) => t.states.push([s, d.code || null,
                                                    Date.now()]));
        client.on('gap', (g) => t.gaps.push(g));
        client.on('error', (e) => t.errors.push(e.code));

        const sub = client.subscribe(channel);

        t.isSubscription = sub instanceof Subscription;
        t.first = sub.state;
        sub.onState((s) => t.subStates.push(s));
        sub.on('chat_message', (m) => t.chat.push(m.id));
        sub.on('typing', (m) => t.typing.push(m.id));
        sub.on('*', (m) => t.all.push([m.id, m.type]));
        window.client = client;
        window.sub = sub;
        const head = await sub.ready;

        t.head = { channel: head.channel, id: head.id,
                   state: sub.state };
    }, CHANNEL);

    return { minted: () => minted };
}

async function statesAndReady(page) {
    const t = await page.evaluate(() => window.t);

    assert.equal(t.isSubscription, true);
    assert.equal(t.first, 'pending');
    assert.deepEqual(t.head, { channel: CHANNEL, id: 0, state: 'active' });
    assert.deepEqual(t.subStates, ['active']);
    assert.deepEqual(t.states.map((s) => s[0]), ['connecting', 'open']);
}

async function handlersAndPublish(page) {
    /* a publish from the page is answered `published`; the API's too */
    const published = await page.evaluate((channel) => window.client
        .publish(channel, 'chat_message', { text: 'hi' }), CHANNEL);

    assert.equal(published.type, 'published');
    assert.equal(published.id, 1);
    await publish('typing', { who: 'ops' });
    await publish('chat_message', { text: 'from the api' });
    await page.waitForFunction(() => window.t.all.length === 3, null,
                               { timeout: 3000 });
    const t = await page.evaluate(() => window.t);

    assert.deepEqual(t.chat, [1, 3]);
    assert.deepEqual(t.typing, [2]);
    assert.deepEqual(t.all, [[1, 'chat_message'], [2, 'typing'],
                             [3, 'chat_message']]);

    /* refusals reject with the server's code */
    assert.equal(await page.evaluate(() => window.client
        .publish('news/today', 'chat_message', {})
        .then(() => 'published', (e) => e.code)), 'forbidden');
    assert.deepEqual(await page.evaluate(async () => {
        const denied = window.client.subscribe('$commands');
        const code = await denied.ready.then(() => 'ready', (e) => e.code);

        return [code, denied.state];
    }), ['forbidden', 'closed']);
}

/*
 * The server drops the connection (an operator's disconnect, 4409 with
 * retry_after=2): the client waits the 2 s, and what was published
 * meanwhile arrives once, in order, before the live messages.
 */
async function resume(page) {
    const res = await api('POST', '/api/clients/' + CLIENT + '/disconnect',
                          { retry_after: 2 });

    assert.equal(res.status, 200, JSON.stringify(res.doc));
    assert.equal(res.doc.disconnected, 1);
    await page.waitForFunction(() => window.sub.state === 'resuming', null,
                               { timeout: 3000 });

    const missed = [];

    for (let i = 0; i < 5; i++) {
        missed.push(await publish('chat_message', { n: i }));
    }
    assert.deepEqual(missed, [4, 5, 6, 7, 8]);
    await page.waitForFunction(() => window.sub.state === 'active', null,
                               { timeout: 6000 });
    assert.equal(await publish('typing', { live: true }), 9);
    await page.waitForFunction(() => window.t.all.length === 9, null,
                               { timeout: 3000 });

    const t = await page.evaluate(() => window.t);
    const closedAt = t.states.find((s) => s[0] === 'reconnecting');
    const reopened = t.states.filter((s) => s[0] === 'connecting')[1];

    assert.equal(closedAt[1], 4409);
    log('4409 retry_after=2: reconnected after', reopened[2] - closedAt[2],
        'ms');
    assert.ok(reopened[2] - closedAt[2] >= 2000, 'retry_after not kept');
    assert.deepEqual(t.all.map((m) => m[0]), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(t.subStates, ['active', 'resuming', 'active']);
    assert.deepEqual(t.gaps, []);
}

/*
 * 3-second tokens, 1 s of leeway: by now the session has lived several
 * lifetimes on refresh alone.  A client with a fixed token beside it is
 * closed 4401 and stops (it has no getToken to ask).
 */
async function refresh(page, minted) {
    const fixed = await page.evaluate(async () => {
        const { default: Wirehub } = await import('/wirehub.esm.js');
        const token = await window.mintToken(true);

        return new Promise((resolve) => {
            const c = new Wirehub({ token });
            const t0 = Date.now();

            c.on('closed', (d) => resolve({ code: d.code, final: d.final,
                                            ms: Date.now() - t0 }));
        });
    });

    log('fixed-token client closed', fixed.code, 'after', fixed.ms, 'ms');
    assert.equal(fixed.code, 4401);
    assert.equal(fixed.final, true);

    /* the second connection (after the 4409) outlives two tokens */
    const opened = await page.evaluate(() => window.t.states
        .filter((s) => s[0] === 'open')[1][2]);
    const need = 2 * (TOKEN_TTL + 1) * 1000;

    await page.waitForFunction(([at, ms]) => Date.now() - at > ms,
                               [opened, need], { timeout: need + 2000 });

    const t = await page.evaluate(() => window.t);
    const opens = t.states.filter((s) => s[0] === 'open').length;

    log('connection lived', ((Date.now() - opened) / 1000).toFixed(1),
        's; tokens minted:', minted(), 'of', TOKEN_TTL, 's each');
    /* one open per connection (2): every other token was a refresh */
    assert.equal(opens, 2);
    assert.equal(t.states[t.states.length - 1][0], 'open');
    assert.ok(minted() >= 2 + 4, 'refreshed ' + (minted() - 2) + ' times');
    assert.equal(t.states.filter((s) => s[1] === 4401).length, 0);
    assert.deepEqual(t.errors.filter((c) => c !== 'forbidden'), []);
}

/* deleted over the API: 4403, closed for good, no new WebSocket */
async function revoked(page, sockets) {
    const before = sockets.length;
    const res = await api('DELETE', '/api/clients/' + CLIENT);

    assert.equal(res.status, 200, JSON.stringify(res.doc));
    await page.waitForFunction(() => window.client.state === 'closed', null,
                               { timeout: 3000 });
    /* the absence of a reconnect can only be waited out: the first
       backoff step is 0.5 s, six of them fit */
    await page.waitForTimeout(3000);

    const t = await page.evaluate(() => window.t);
    const last = t.states[t.states.length - 1];

    assert.deepEqual(last.slice(0, 2), ['closed', 4403]);
    assert.equal(await page.evaluate(() => window.sub.state), 'closed');
    assert.equal(await page.evaluate(() => window.sub.error.code),
                 'closed_by_server');
    assert.equal(sockets.length, before, 'a WebSocket opened after 4403');
}

async function main() {
    assert.ok(BASE && SERVICE_TOKEN && SECRET.length > 0,
              'WH_BASE_URL, WH_SERVICE_TOKEN and WH_HS256_SECRET are '
              + 'required (t/test_web.py sets them)');

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-chromium-'));
    let context;

    try {
        context = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS
        });

        const page = context.pages()[0] || await context.newPage();
        const pageErrors = [];
        const sockets = [];

        page.on('pageerror', (err) => pageErrors.push(err.message));
        page.on('websocket', (ws) => sockets.push(ws.url()));

        const { minted } = await setUp(page);

        await statesAndReady(page);
        log('ok: states and ready');
        await handlersAndPublish(page);
        log('ok: per-type handlers, publish');
        await resume(page);
        log('ok: resume after 4409');
        await refresh(page, minted);
        log('ok: refresh in band');
        await revoked(page, sockets);
        log('ok: no reconnect after 4403');
        assert.ok(sockets.every((u) => u.startsWith(BASE.replace('http',
                                                                 'ws'))));
        assert.deepEqual(pageErrors, []);
    } finally {
        if (context) {
            await context.close();
        }
        fs.rmSync(profile, { recursive: true, force: true });
    }

    log('client test passed');
}

main().then(() => process.exit(0), (err) => {
    log('FAILED:', err && err.stack ? err.stack : err);
    process.exit(1);
});
