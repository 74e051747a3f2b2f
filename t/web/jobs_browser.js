/*
 * The dashboard's jobs panel in headless chromium (playwright-core):
 * a job to every gateway of the workspace, which a stub fleet
 * (t/job_fleet.py, started by t/test_web_jobs.py) answers, failing
 * every fifth execution.  The progress bar moves live from the job
 * events of $commands, the job aborts at its threshold, and the
 * failures list shows exactly the failed executions the API lists.
 *
 * Environment: WH_BASE_URL, WH_TOKEN (a service token of the
 * workspace), WH_TARGETS (how many gateways), WH_SHOT (the screenshot's
 * path).
 */

'use strict';

const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');
const { log, apiClient } = require('./testlib');

const BASE = process.env.WH_BASE_URL;
const TOKEN = process.env.WH_TOKEN;
const TARGETS = Number(process.env.WH_TARGETS);
const SHOT = process.env.WH_SHOT;
const CHROMIUM = process.env.WH_CHROMIUM || '/usr/bin/chromium';
const ENDED = ['completed', 'failed', 'expired', 'cancelled', 'superseded'];
const api = apiClient(BASE, TOKEN);

/* what the page's bar of the job shows: count by part, and the status */
async function shown(page, jobId) {
    return page.evaluate((id) => {
        const li = document.querySelector('#jobs li[data-job="' + id + '"]');

        if (!li) {
            return null;
        }

        const counts = {};

        for (const s of li.querySelectorAll('.progress span')) {
            counts[s.dataset.part] = Number(s.dataset.count);
        }

        return { status: li.dataset.status, counts,
                 width: li.querySelector('[data-part="completed"]')
                     .style.width };
    }, jobId);
}

function ended(counts) {
    return ENDED.reduce((n, k) => n + (counts[k] || 0), 0);
}

async function run(page) {
    const pageErrors = [];

    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await page.goto(BASE + '/#token=' + TOKEN);
    await page.waitForSelector('#badge[data-state="open"]', { timeout: 10000 });
    await page.waitForSelector('#jobs li.empty', { timeout: 5000 });

    /* 20% of the fleet fails: the job aborts once 40 ended */
    const made = await api('POST', '/api/jobs', {
        command: 'firmware_update', payload: { fail_mod: 5 },
        target: { client_type: 'gateway' },
        rollout: { max_per_minute: 600 },
        abort: { failure_percent: 15, min_executed: 40 }
    });
    assert.equal(made.status, 202, JSON.stringify(made.doc));
    assert.equal(made.doc.targets, TARGETS);
    const jobId = made.doc.job_id;
    log('job', jobId, 'of', TARGETS, 'targets');

    await page.waitForSelector('#jobs li[data-job="' + jobId + '"]',
                               { timeout: 5000 });

    /* the bar as it moves: every distinct count of ended executions */
    const seen = [];
    const deadline = Date.now() + 30000;
    let now;

    for (;;) {
        now = await shown(page, jobId);

        if (seen.length === 0 || seen[seen.length - 1] !== ended(now.counts)) {
            seen.push(ended(now.counts));
        }

        if (now.status === 'aborted') {
            break;
        }

        assert.ok(Date.now() < deadline, 'no abort: ' + JSON.stringify(now));
        await new Promise((r) => setTimeout(r, 100));
    }

    log('bar moved through', seen.join(' '), '(ended executions)');
    assert.ok(seen.length >= 3, 'the bar did not move live: ' + seen);
    assert.ok(await page.evaluate(() => window.wirehub.jobs.events) >= 3);

    /* then it settles on what the API says (the sweep cancels the
       pending ones; a last job_progress carries it) */
    let stored;

    for (const until = Date.now() + 10000; ; ) {
        stored = (await api('GET', '/api/jobs/' + jobId)).doc;
        now = await shown(page, jobId);

        const want = Object.assign({}, stored.counts);

        if (JSON.stringify(Object.keys(want).sort().map((k) => [k, want[k]]))
            === JSON.stringify(Object.keys(want).sort().map((k) =>
                [k, now.counts[k]]))
            && stored.counts.pending === 0)
        {
            break;
        }

        assert.ok(Date.now() < until, 'the bar did not settle: page '
                  + JSON.stringify(now.counts) + ' api '
                  + JSON.stringify(stored.counts));
        await new Promise((r) => setTimeout(r, 200));
    }

    assert.equal(stored.status, 'aborted');
    assert.equal(now.counts.completed + now.counts.failed
                 + now.counts.cancelled + (now.counts.expired || 0), TARGETS);
    log('settled', JSON.stringify(now.counts));

    /* the failures list: the failed executions, as the API lists them */
    const failed = (await api('GET', '/api/jobs/' + jobId
                              + '/executions?status=failed,expired'
                              + '&limit=1000')).doc.items;

    assert.ok(failed.length >= 6, 'too few failures: ' + failed.length);
    await page.waitForFunction((n) => document.querySelectorAll(
        '#failures-list li[data-client]').length === n, failed.length,
        { timeout: 5000 });
    const listed = await page.$$eval('#failures-list li[data-client]',
        (lis) => lis.map((li) => [li.dataset.client,
                                  li.querySelector('span').textContent]));

    assert.deepEqual(listed.map((x) => x[0]).sort(),
                     failed.map((x) => x.client_id).sort());
    assert.ok(listed.every((x) => x[1] === 'stub failure'), listed);
    assert.equal(await page.textContent('#failures-job'), jobId);
    await page.waitForSelector('.toast.error:has-text("Job aborted")',
                               { timeout: 2000 });

    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');

    return { seen, counts: now.counts, failures: failed.length };
}

async function main() {
    const browser = await chromium.launch({
        executablePath: CHROMIUM, headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic',
               '--no-first-run', '--disable-background-networking']
    });
    let rc = 0;

    try {
        const page = await browser.newPage({
            viewport: { width: 1280, height: 1000 }
        });

        try {
            const res = await run(page);
            log('jobs panel test passed', JSON.stringify(res));
        } finally {
            /* the panel alone (toasts hidden: they float over it),
               then the whole page as it was */
            await page.screenshot({ path: SHOT.replace(/\.png$/,
                                                       '-page.png'),
                                    fullPage: true });
            await page.addStyleTag({ content: '.toasts { display: none }' });
            await page.locator('.jobs-panel').screenshot({ path: SHOT });
            log('screenshot', SHOT);
        }
    } catch (err) {
        log('FAILED:', err && err.stack ? err.stack : err);
        rc = 1;
    } finally {
        await browser.close();
    }

    process.exit(rc);
}

main();
