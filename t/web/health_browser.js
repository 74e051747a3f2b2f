/*
 * The dashboard's health view in a real browser (Debian's chromium driven
 * by playwright-core).  t/test_dashboard_health.py starts mosquitto,
 * wirehubd (MQTT on, a channels quota of 2 already hit) and nginx (two
 * workers, /metrics exposed), publishes three messages into TAIL_CHANNEL
 * and runs this script, which checks what the view shows against its own
 * reading of /api/stats and /metrics, follows presence and tails a channel
 * with `since`, then prints "@shown {...}" for the Python side to compare
 * with `wirehubctl stats --json`.  Screenshots go to WH_SCREENSHOTS.
 *
 * Environment: WH_BASE_URL, WH_TOKEN (service token), WH_AGENT_TOKEN
 * (client token of the same workspace), WH_AGENT_ID, WH_TAIL_CHANNEL,
 * WH_BROKER (host:port), WH_SCREENSHOTS, WH_ENGINE (the engine wirehubd
 * runs on: lmdb, the default, or redis).
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE = process.env.WH_BASE_URL;
const TOKEN = process.env.WH_TOKEN;
const AGENT_TOKEN = process.env.WH_AGENT_TOKEN;
const AGENT_ID = process.env.WH_AGENT_ID;
const TAIL_CHANNEL = process.env.WH_TAIL_CHANNEL;
const BROKER = process.env.WH_BROKER;
const SHOTS = process.env.WH_SCREENSHOTS;
const ENGINE = process.env.WH_ENGINE || 'lmdb';
const CHROMIUM = process.env.WH_CHROMIUM || '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'
];

function log(...args) {
    process.stdout.write(args.join(' ') + '\n');
}

async function api(method, urlPath, body) {
    const res = await fetch(BASE + urlPath, {
        method,
        headers: { Authorization: 'Bearer ' + TOKEN,
                   'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body)
    });

    return { status: res.status, doc: await res.json().catch(() => null) };
}

async function publish(channel, n) {
    const res = await api('POST', '/api/channels/' + channel + '/messages',
                          { type: 'note', data: { n } });

    assert.equal(res.status, 202, JSON.stringify(res.doc));

    return res.doc;
}

/* the rows of a card as {label: text} */
function cardRows(page, id) {
    return page.$eval('#' + id, (node) => {
        const rows = {};
        const dts = node.querySelectorAll('dt');

        for (const dt of dts) {
            rows[dt.textContent] = dt.nextElementSibling.textContent;
        }

        return { state: node.dataset.state, rows,
                 table: Array.from(node.querySelectorAll('tr'))
                     .slice(1).map((tr) => Array.from(tr.children)
                         .map((td) => td.textContent)) };
    });
}

async function checkHealth(page) {
    /* a refresh now, so that the view and our reading are of one time */
    await page.evaluate(() => window.wirehub.health.refresh());
    const stats = (await api('GET', '/api/stats')).doc;
    const metrics = await (await fetch(BASE + '/metrics')).text();

    assert.equal(await page.$eval('#health', (n) => n.dataset.state), 'ok');
    assert.equal(await page.$eval('#health', (n) => n.dataset.metrics),
                 'yes');

    const workers = await cardRows(page, 'health-workers');
    const total = Number(/^wirehub_workers (\d+)/m.exec(metrics)[1]);

    assert.equal(workers.state, 'ok');
    assert.equal(workers.rows['links up'],
                 stats.nginx.links_up + ' of ' + total);
    assert.equal(stats.nginx.links_up, 2);
    assert.deepEqual(workers.table.map((r) => Number(r[0])).sort(),
                     stats.nginx.workers.map((w) => w.pid).sort());

    const daemon = await cardRows(page, 'health-daemon');

    assert.equal(daemon.state, 'ok');
    assert.equal(daemon.rows.instance, stats.daemon.instance);
    assert.equal(daemon.rows.links, String(stats.links));

    const mqtt = await cardRows(page, 'health-mqtt');

    assert.equal(mqtt.state, 'ok');
    assert.equal(mqtt.rows.broker, BROKER + ' connected');

    const engine = await cardRows(page, 'health-engine');

    assert.equal(engine.state, 'ok');
    assert.equal(engine.rows.engine, ENGINE);
    assert.equal(engine.rows.state, 'ok');
    /* the Redis engine opens no LMDB map */
    for (const space of ENGINE === 'lmdb' ? ['state', 'history'] : []) {
        const max = Number(new RegExp('^wirehubd_lmdb_map_max_bytes\\{space="'
                                      + space + '"\\} (\\d+)', 'm')
                           .exec(metrics)[1]);

        assert.match(engine.rows['LMDB ' + space], / of /);
        assert.ok(max > 0);
    }

    const quota = await cardRows(page, 'health-quota');
    const channels = quota.table.find((r) => r[0] === 'channels');

    assert.equal(quota.state, 'warn');
    assert.deepEqual(channels, ['channels', String(stats.quota.channels.used),
                                '2', String(stats.quota.channels.refused)]);
    assert.ok(stats.quota.channels.refused >= 1);

    const queues = await cardRows(page, 'health-queues');

    assert.equal(queues.rows['commands (workspace)'],
                 String(stats.queued_commands));

    return { links_up: workers.rows['links up'],
             instance: daemon.rows.instance,
             mqtt: mqtt.rows.broker,
             quota_channels: channels,
             workers: workers.table.map((r) => Number(r[0])) };
}

async function checkPresence(page, context) {
    const agent = await context.newPage();

    await agent.goto(BASE + '/wirehub.js');
    await agent.addScriptTag({ url: BASE + '/wirehub.js' });
    await agent.evaluate((token) => new Promise((resolve, reject) => {
        const hub = new Wirehub({ token, clientType: 'agent',
                                  clientName: 'Health test agent' });

        hub.on('open', () => resolve());
        hub.on('closed', (d) => reject(new Error(JSON.stringify(d))));
        hub.connect();
    }), AGENT_TOKEN);

    await page.waitForSelector('#presence .presence-row'
                               + '[data-event="connected"]'
                               + ':has(.presence-client:text-is("'
                               + AGENT_ID + '"))', { timeout: 10000 });
    await agent.close();
    await page.waitForSelector('#presence .presence-row'
                               + '[data-event="disconnected"]'
                               + ':has(.presence-client:text-is("'
                               + AGENT_ID + '"))', { timeout: 10000 });

    const first = await page.$eval('#presence .presence-row', (n) =>
        n.querySelector('.presence-what').textContent);

    assert.match(first, /^left · agent · closed$/);
    assert.ok(await page.$('#presence .presence-row[data-event="updated"]'
                           + ':has(.presence-what:text-is('
                           + '"registered · agent"))'));
}

async function tail(page, channel, since, epoch) {
    await page.fill('#tail-channel', channel);
    await page.fill('#tail-since', since === null ? '' : String(since));
    await page.fill('#tail-epoch', epoch || '');
    await page.click('#tail-start');
    await page.waitForFunction((ch) => document.getElementById(
        'tail-status').textContent.startsWith('subscribed'), channel);
}

function tailIds(page) {
    return page.$$eval('#tail-list .tail-row',
                       (rows) => rows.map((r) => Number(r.dataset.id)));
}

async function checkTail(page) {
    const history = (await api('GET', '/api/channels/' + TAIL_CHANNEL
                               + '/messages?since=0&limit=1')).doc;
    const epoch = history.items[0].epoch;

    /* after id 1: 2 and 3 replayed, then live ones; newest on top */
    await tail(page, TAIL_CHANNEL, 1, epoch);
    await page.waitForFunction(() => document.querySelectorAll(
        '#tail-list .tail-row').length === 2);
    assert.deepEqual(await tailIds(page), [3, 2]);
    assert.equal(await page.$eval('#tail-status',
                                  (n) => n.dataset.recovered), 'true');

    const live = await publish(TAIL_CHANNEL, 4);

    await page.waitForSelector('#tail-list .tail-row[data-id="'
                               + live.id + '"]');
    assert.deepEqual(await tailIds(page), [4, 3, 2]);
    assert.equal(await page.$eval('#tail-list .tail-row .tail-data',
                                  (n) => n.textContent), '{"n":4}');
    await page.locator('#tail-form').screenshot({
        path: path.join(SHOTS, 'health-tail-form.png') });

    /* another epoch: not recovered, nothing replayed, live goes on */
    await tail(page, TAIL_CHANNEL, 1, 'zzzzzzzz');
    assert.equal(await page.$eval('#tail-status',
                                  (n) => n.dataset.recovered), 'false');
    assert.match(await page.textContent('#tail-status'), /not recovered/);
    assert.deepEqual(await tailIds(page), []);
    await publish(TAIL_CHANNEL, 5);
    await page.waitForSelector('#tail-list .tail-row[data-id="5"]');
    assert.deepEqual(await tailIds(page), [5]);

    /* back to the first view for the screenshot */
    await tail(page, TAIL_CHANNEL, 1, epoch);
    await page.waitForFunction(() => document.querySelectorAll(
        '#tail-list .tail-row').length === 4);
}

async function main() {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wh-chromium-'));
    let context;
    let shown;

    assert.ok(BASE && TOKEN && AGENT_TOKEN && TAIL_CHANNEL && BROKER && SHOTS,
              'environment missing: t/test_dashboard_health.py sets it');
    fs.mkdirSync(SHOTS, { recursive: true });

    try {
        context = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_FLAGS,
            viewport: { width: 1280, height: 900 }
        });

        const page = context.pages()[0] || await context.newPage();

        page.on('pageerror', (err) => log('page error:', err.message));
        await page.goto(BASE + '/#token=' + TOKEN);
        await page.waitForSelector('#badge[data-state="open"]',
                                   { timeout: 10000 });
        await page.waitForSelector('#health[data-state="ok"]',
                                   { timeout: 10000 });

        try {
            shown = await checkHealth(page);
            await checkPresence(page, context);
            await checkTail(page);
            shown = await checkHealth(page);
        } finally {
            /* the sticky top bar at the top, where it belongs */
            await page.evaluate(() => window.scrollTo(0, 0));
            await page.screenshot({
                path: path.join(SHOTS, 'health-view.png'), fullPage: true
            });
            await page.locator('#health').screenshot({
                path: path.join(SHOTS, 'health-cards.png') });
        }

        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(200);
        await page.evaluate(() => window.scrollTo(0, 0));
        assert.ok(await page.evaluate(() => document.documentElement
                                      .scrollWidth <= 390),
                  'the page is wider than a phone');
        await page.screenshot({
            path: path.join(SHOTS, 'health-view-phone.png'), fullPage: true
        });
    } finally {
        if (context) {
            await context.close();
        }
        fs.rmSync(profile, { recursive: true, force: true });
    }

    log('@shown ' + JSON.stringify(shown));
    log('health test passed; screenshots in', SHOTS);
}

main().then(() => process.exit(0), (err) => {
    log('FAILED:', err && err.stack ? err.stack : err);
    process.exit(1);
});
