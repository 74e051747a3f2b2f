/*
 * The dashboard in a real browser: Debian's chromium driven by
 * playwright-core.  t/test_web.py starts nginx + wirehubd and runs this
 * script; steps that need the servers restarted are asked for with a line
 * "@control {"action": ...}" on stdout and answered "ok" on stdin.
 *
 * Environment: WH_BASE_URL (http://127.0.0.1:PORT), WH_TOKEN (a service
 * token of the test workspace), WH_CLIENT_ID (its sub), WH_AGENT_TOKEN and
 * WH_AGENT_ID (a client token of the same workspace and its sub, for the
 * simulated desktop agent), WH_ARTIFACTS (where screenshots go).
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');
const { log, apiClient } = require('./testlib');

const BASE = process.env.WH_BASE_URL;
const TOKEN = process.env.WH_TOKEN;
const CLIENT_ID = process.env.WH_CLIENT_ID;
const AGENT_TOKEN = process.env.WH_AGENT_TOKEN;
const AGENT_ID = process.env.WH_AGENT_ID;
const ARTIFACTS = process.env.WH_ARTIFACTS;
const CHROMIUM = process.env.WH_CHROMIUM || '/usr/bin/chromium';
const api = apiClient(BASE, TOKEN);

const CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'
];

const stdinLines = readline.createInterface({ input: process.stdin })
    [Symbol.asyncIterator]();

async function control(action) {
    process.stdout.write('@control ' + JSON.stringify({ action }) + '\n');

    const { value, done } = await stdinLines.next();

    if (done || value !== 'ok') {
        throw new Error('control ' + action + ' failed: ' + value);
    }
}

/* publishes a reading; while wirehubd comes back, 503 is retried */
async function publishReading(sensor, moisture, retryFor) {
    const until = Date.now() + (retryFor || 0);

    for (;;) {
        const t0 = performance.now();
        const res = await api('POST', '/api/channels/sensors/' + sensor
                              + '/messages', {
            type: 'sensor_reading',
            data: { sensor_id: sensor, moisture, temperature: 21.5 }
        });

        if (res.status === 202) {
            return { t0, id: res.doc.id };
        }

        if (res.status !== 503 || Date.now() > until) {
            throw new Error('publish answered ' + res.status + ' '
                            + JSON.stringify(res.doc));
        }

        await new Promise((r) => setTimeout(r, 100));
    }
}

/* milliseconds from just before the POST until the tile shows the value */
async function readingShows(page, sensor, moisture, retryFor) {
    const sent = await publishReading(sensor, moisture, retryFor);

    await page.waitForSelector('[data-sensor="' + sensor + '"] '
                               + '.value[data-value="' + moisture + '"]',
                               { timeout: 1000 });

    return performance.now() - sent.t0;
}

function points(page, sensor) {
    return page.$eval('[data-sensor="' + sensor + '"] svg.spark',
                      (svg) => Number(svg.dataset.points));
}

/*
 * The simulated desktop agent: web/wirehub.js in a tab of its own (a real
 * WebSocket, no Origin rule in the test's nginx), registered as type
 * "agent".  It completes every command but format-disk, which it fails.
 */
async function startAgent(context) {
    const agent = await context.newPage();

    await agent.goto(BASE + '/wirehub.js');
    await agent.addScriptTag({ url: BASE + '/wirehub.js' });
    await agent.evaluate((token) => new Promise((resolve, reject) => {
        const hub = new Wirehub({ token, clientType: 'agent',
                                  clientName: 'Desk 4 agent' });

        window.received = [];
        hub.onCommand((cmd) => {
            window.received.push(cmd);

            if (cmd.command === 'format-disk') {
                throw new Error('refused by the test agent');
            }

            return { rebooted: true };
        });
        hub.on('open', () => resolve());
        hub.on('closed', (detail) => reject(new Error(
            'agent closed ' + JSON.stringify(detail))));
        hub.connect();
    }), AGENT_TOKEN);

    return agent;
}

async function badgeState(page, state, timeout) {
    await page.waitForSelector('#badge[data-state="' + state + '"]',
                               { timeout });
}

async function run(page, timings) {
    const pageErrors = [];

    page.on('pageerror', (err) => pageErrors.push(err.message));

    /* connects, and moves the token out of the address bar */
    let t0 = performance.now();

    await page.goto(BASE + '/#token=' + TOKEN);
    await badgeState(page, 'open', 5000);
    timings.connect_ms = performance.now() - t0;
    assert.equal(await page.textContent('#badge-text'), 'connected');
    assert.ok(!page.url().includes(TOKEN), 'token left in the URL');
    assert.equal(await page.$eval('.topbar', (e) => getComputedStyle(e)
                                  .position), 'sticky',
                 'style.css was not applied (served as text/css?)');

    /* every resume below must be complete: no gap reported, ever */
    await page.evaluate(() => {
        window.gaps = [];
        window.wirehub.hub.on('gap', (g) => window.gaps.push(g));
    });

    for (const s of ['V1', 'V2', 'V3', 'V4', 'V5']) {
        await page.waitForSelector('[data-sensor="' + s
                                   + '"][data-subscribed="yes"]',
                                   { timeout: 5000 });
    }

    /* a reading published over the API shows within a second */
    timings.reading_ms = await readingShows(page, 'V1', 47.3);
    assert.ok(timings.reading_ms < 1000, 'reading took '
              + timings.reading_ms + ' ms');
    assert.equal(await points(page, 'V1'), 1);

    /* the dashboard sees itself on $presence, registered as dashboard */
    await page.waitForSelector('#clients li[data-client="' + CLIENT_ID
                               + '"] .client-type:text("dashboard")',
                               { timeout: 3000 });
    await page.waitForFunction(() => Number(document.getElementById(
        'stat-connections').textContent) >= 1, null, { timeout: 8000 });

    /* wirehubd killed and started again: the page stays connected and
       readings flow again as soon as the link is back */
    await control('restart-wirehubd');
    t0 = performance.now();
    timings.after_wirehubd_restart_ms = await readingShows(page, 'V1', 48.1,
                                                           10000);
    timings.wirehubd_back_ms = performance.now() - t0;
    assert.equal(await points(page, 'V1'), 2);
    assert.equal(await page.getAttribute('#badge', 'data-state'), 'open');

    /* nginx stopped: the badge shows the reconnect; started again: the
       client resumes its channels without a gap or a duplicate */
    await control('stop-nginx');
    await badgeState(page, 'reconnecting', 5000);
    assert.match(await page.textContent('#badge-text'),
                 /^reconnecting in \d+\.\d s$/);
    await control('start-nginx');
    t0 = performance.now();
    await publishReading('V1', 49.4, 10000);
    await badgeState(page, 'open', 20000);
    timings.reconnect_ms = performance.now() - t0;
    await page.waitForSelector('[data-sensor="V1"] .value'
                               + '[data-value="49.4"]', { timeout: 2000 });
    timings.after_nginx_restart_ms = await readingShows(page, 'V1', 50.2);
    assert.equal(await points(page, 'V1'), 4, 'a reading lost or doubled');

    /* a desktop agent comes online in the dashboard's workspace: the
       same wirehub.js in a second tab, answering commands */
    t0 = performance.now();
    const agent = await startAgent(page.context());
    /* the new tab took the front: a hidden page gets no animation
       frames, and playwright's clicks wait for them */
    await page.bringToFront();

    await page.waitForSelector('#clients li[data-client="' + AGENT_ID
                               + '"][data-online="yes"]'
                               + ' .client-type:text("agent")',
                               { timeout: 3000 });
    timings.agent_listed_ms = performance.now() - t0;

    /* reboot queued from the console for the client picked in the
       list: the status moves live from $commands to completed */
    await page.click('#clients li[data-client="' + AGENT_ID + '"] .pick');
    assert.equal(await page.inputValue('#cmd-client'), AGENT_ID);
    await page.fill('#cmd-name', 'reboot');
    await page.fill('#cmd-payload', '{"delay": 5}');
    t0 = performance.now();
    await page.click('#cmd-send');
    await page.waitForSelector('#commands li[data-client="' + AGENT_ID
                               + '"]', { timeout: 5000 });
    timings.command_listed_ms = performance.now() - t0;
    const done = await page.waitForSelector('#commands li[data-client="'
        + AGENT_ID + '"] .status[data-status="completed"]',
        { timeout: 5000 });
    timings.command_completed_ms = performance.now() - t0;

    const row = (await done.evaluateHandle((s) => s.closest('li')))
        .asElement();
    const commandId = await row.getAttribute('data-command');
    const trail = (await row.getAttribute('data-trail')).split(' ');

    log('command trail:', trail.join(' -> '));
    assert.ok(trail.includes('sent'), 'never shown sent: ' + trail);
    assert.equal(trail[trail.length - 1], 'completed');
    assert.match(await row.textContent(), /reboot/);
    assert.deepEqual(await agent.evaluate(() => window.received.map((c) =>
        [c.command_id, c.command, c.payload])),
        [[commandId, 'reboot', { delay: 5 }]]);
    const stored = await api('GET', '/api/commands/'
                             + encodeURIComponent(commandId));
    assert.equal(stored.status, 200);
    assert.equal(stored.doc.status, 'completed');

    /* a command the agent cannot carry out ends failed, with a toast */
    await page.fill('#cmd-name', 'format-disk');
    await page.fill('#cmd-payload', '{}');
    await page.click('#cmd-send');
    await page.waitForSelector('#commands li[data-client="' + AGENT_ID
                               + '"] .status[data-status="failed"]',
                               { timeout: 5000 });
    await page.waitForSelector('.toast.error:has-text("Command failed")'
                               + ':has-text("refused by the test agent")',
                               { timeout: 2000 });

    /* the agent goes away: the list shows it offline */
    await agent.close();
    await page.waitForSelector('#clients li[data-client="' + AGENT_ID
                               + '"][data-online="no"]', { timeout: 3000 });

    /* a client id the registry has never seen: 404, said in a toast */
    await page.fill('#cmd-client', 'no-such-client');
    await page.fill('#cmd-name', 'reboot');
    await page.click('#cmd-send');
    await page.waitForSelector('.toast.error:has-text("Command not queued")'
                               + ':has-text("404")', { timeout: 3000 });

    /* a payload that is not JSON is refused in the page */
    await page.fill('#cmd-payload', '{oops');
    await page.click('#cmd-send');
    await page.waitForSelector('.toast.error:has-text("Payload is not JSON")',
                               { timeout: 2000 });

    /* some life on every tile for the screenshot */
    for (let i = 0; i < 12; i++) {
        for (const [n, s] of ['V2', 'V3', 'V4', 'V5'].entries()) {
            await publishReading(s, Math.round((35 + n * 6
                + 8 * Math.sin(i / 2 + n)) * 10) / 10);
        }
    }
    await page.waitForFunction(() => Array.from(document.querySelectorAll(
        'svg.spark')).every((s) => Number(s.dataset.points) >= 4), null,
        { timeout: 3000 });

    assert.deepEqual(await page.evaluate(() => window.gaps), []);
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
}

async function main() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-chromium-'));
    const timings = {};
    let context;

    assert.ok(BASE && TOKEN && CLIENT_ID && AGENT_TOKEN && AGENT_ID
              && ARTIFACTS, 'WH_BASE_URL, WH_TOKEN, WH_CLIENT_ID, '
              + 'WH_AGENT_TOKEN, WH_AGENT_ID and WH_ARTIFACTS are required '
              + '(t/test_web.py sets them)');
    fs.mkdirSync(ARTIFACTS, { recursive: true });

    try {
        context = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_FLAGS,
            viewport: { width: 1280, height: 860 }
        });

        const page = context.pages()[0] || await context.newPage();

        try {
            await run(page, timings);
        } finally {
            await page.screenshot({
                path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true
            });
        }

        /* the same page on a phone */
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(200);
        assert.ok(await page.evaluate(() => document.documentElement
                                      .scrollWidth <= 390),
                  'the page is wider than a phone');
        await page.screenshot({
            path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true
        });
    } finally {
        if (context) {
            await context.close();
        }
        fs.rmSync(profile, { recursive: true, force: true });
    }

    for (const [k, v] of Object.entries(timings)) {
        log('timing:', k, Math.round(v));
    }
    log('browser test passed; screenshot', path.join(ARTIFACTS,
                                                      'dashboard.png'));
}

main().then(() => process.exit(0), (err) => {
    log('FAILED:', err && err.stack ? err.stack : err);
    process.exit(1);
});
