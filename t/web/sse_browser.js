/*
 * A real EventSource in headless chromium against wirehub_sse: the server
 * drops the stream (an nginx reload, asked for on stdout as in browser.js),
 * the browser reconnects by itself with Last-Event-ID, and the messages
 * published meanwhile arrive exactly once, in order, on both channels.
 *
 * Environment: WH_BASE_URL, WH_TOKEN (a client token), WH_SERVICE_TOKEN
 * (to publish through the API).
 */

'use strict';

const assert = require('node:assert/strict');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const BASE = process.env.WH_BASE_URL;
const TOKEN = process.env.WH_TOKEN;
const SERVICE = process.env.WH_SERVICE_TOKEN;
const CHROMIUM = process.env.WH_CHROMIUM || '/usr/bin/chromium';
const CHANNELS = ['dash/a', 'dash/b'];

const stdinLines = readline.createInterface({ input: process.stdin })
    [Symbol.asyncIterator]();

function log(...args) {
    process.stdout.write(args.join(' ') + '\n');
}

async function control(action) {
    process.stdout.write('@control ' + JSON.stringify({ action }) + '\n');

    const { value, done } = await stdinLines.next();

    if (done || value !== 'ok') {
        throw new Error('control ' + action + ' failed: ' + value);
    }
}

async function publish(channel, k) {
    const res = await fetch(BASE + '/api/channels/' + channel + '/messages', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + SERVICE,
                   'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'reading', data: { k } })
    });
    assert.equal(res.status, 202);
    return (await res.json()).id;
}

/* polls the page until cond(state) holds */
async function until(page, what, cond, timeout = 20000) {
    const deadline = Date.now() + timeout;

    for (;;) {
        const state = await page.evaluate(() => window.wh);

        if (cond(state)) {
            return state;
        }

        if (Date.now() > deadline) {
            throw new Error('timed out waiting for ' + what + ': '
                            + JSON.stringify(state));
        }

        await new Promise((r) => setTimeout(r, 50));
    }
}

function readings(state) {
    return state.events.filter((e) => e.type === 'reading');
}

async function main() {
    const browser = await chromium.launch({
        executablePath: CHROMIUM, headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking']
    });

    try {
        const page = await browser.newPage();

        /* a page of the same origin as the stream */
        await page.goto(BASE + '/healthz');

        const url = BASE + '/sse/?channels=' + CHANNELS.join(',')
                    + '&token=' + TOKEN;

        await page.evaluate((u) => {
            window.wh = { events: [], opens: 0, errors: 0 };
            const es = new EventSource(u);
            es.onopen = () => { window.wh.opens++; };
            es.onerror = () => { window.wh.errors++; };
            for (const t of ['connection_status', 'subscribed', 'reading']) {
                es.addEventListener(t, (e) => {
                    window.wh.events.push({ type: t, id: e.lastEventId,
                                            data: JSON.parse(e.data) });
                });
            }
        }, url);

        await until(page, 'the stream', (s) =>
            s.events.filter((e) => e.type === 'subscribed').length === 2);

        const sent = { 'dash/a': [], 'dash/b': [] };

        for (let k = 0; k < 2; k++) {
            for (const ch of CHANNELS) {
                sent[ch].push(await publish(ch, k));
            }
        }

        await until(page, 'live messages', (s) => readings(s).length === 4);
        log('live messages received; reloading nginx');

        await control('reload');
        await until(page, 'the drop', (s) => s.errors >= 1);

        /* the browser is between two streams: publish meanwhile */
        for (let k = 2; k < 7; k++) {
            for (const ch of CHANNELS) {
                sent[ch].push(await publish(ch, k));
            }
        }

        const state = await until(page, 'the reconnect and the rest',
                                  (s) => s.opens >= 2
                                         && readings(s).length >= 14);

        /* settle: nothing more may come (a duplicate would) */
        await new Promise((r) => setTimeout(r, 1000));
        const final = await page.evaluate(() => window.wh);

        assert.equal(readings(final).length, 14);

        for (const ch of CHANNELS) {
            assert.deepEqual(readings(final)
                                 .filter((e) => e.data.channel === ch)
                                 .map((e) => e.data.id),
                             sent[ch]);
        }

        const again = final.events.filter((e) => e.type === 'subscribed')
                                  .slice(2);
        assert.equal(again.length, 2);
        assert.ok(again.every((e) => e.data.recovered === true));
        assert.equal(final.events.filter(
                         (e) => e.type === 'connection_status').length, 2);
        log('SSE reconnect ok: opens', state.opens, 'errors', state.errors,
            'readings', readings(final).length);
    } finally {
        await browser.close();
    }
}

main().then(() => process.exit(0), (e) => {
    log('FAIL', e && e.stack ? e.stack : e);
    process.exit(1);
});
