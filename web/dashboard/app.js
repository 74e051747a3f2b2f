/*
 * Wirehub demo dashboard: live sensor tiles, connected clients, a command
 * console, fleet jobs with their progress and failures, and workspace
 * stats, over one WebSocket (the wirehub package,
 * its ES module build) and the HTTP API, both with the token from the
 * page's #token=... fragment.
 *
 * The sensor tiles and the command log follow a channel the same way:
 * subscribe, and when the server answers `subscribed` with the channel's
 * head id, load the recent history up to that id.  Live messages and
 * history may arrive in any order, so each panel keeps what it shows
 * keyed by message id (commands: by how far each one got).  The clients
 * panel is the registry (GET /api/clients), read again on every
 * `$presence` event.  The health view, the presence feed and the
 * channel tail are in health.js.
 */

import Wirehub from './wirehub.esm.js';
import { HealthView } from './health.js';

(function () {
    'use strict';

    const SENSORS = ['V1', 'V2', 'V3', 'V4', 'V5'];
    const SPARK_POINTS = 60;
    const STALE_MS = 30000;
    const TOAST_MS = 7000;
    const MAX_TOASTS = 4;
    const MAX_COMMANDS = 30;
    const CLIENT_PAGE = 1000;       /* the API's largest page */
    const CLIENT_PAGES = 10;        /* a demo shows 10,000 clients at most */

    const $ = (id) => document.getElementById(id);

    function el(tag, className, text) {
        const node = document.createElement(tag);

        if (className) {
            node.className = className;
        }
        if (text !== undefined) {
            node.textContent = text;
        }

        return node;
    }

    /* ------------------------------------------------------ token */

    /*
     * The token comes in the fragment (never sent to a server, never in
     * an access log); it moves to sessionStorage so that a reload works,
     * and out of the address bar so that it is not shared by accident.
     */
    function readToken() {
        const params = new URLSearchParams(location.hash.slice(1));
        const token = params.get('token');

        if (token) {
            sessionStorage.setItem('wirehub.token', token);
            history.replaceState(null, '', location.pathname
                                           + location.search);
            return token;
        }

        return sessionStorage.getItem('wirehub.token');
    }

    /* ------------------------------------------------------ toasts */

    function toast(kind, title, text) {
        const box = $('toasts');
        const node = el('div', 'toast ' + kind);
        const key = kind + '\n' + title + '\n' + text;

        /* the same news from five channels is one toast */
        for (const shown of box.children) {
            if (shown.dataset.key === key) {
                return;
            }
        }

        node.dataset.key = key;
        node.setAttribute('role', kind === 'error' ? 'alert' : 'status');
        node.appendChild(el('b', '', title));
        node.appendChild(el('span', '', text));
        box.appendChild(node);

        while (box.children.length > MAX_TOASTS) {
            box.removeChild(box.firstChild);
        }

        setTimeout(() => node.remove(), TOAST_MS);
    }

    /* ------------------------------------------------------ HTTP API */

    class ApiError extends Error {
        constructor(status, code, message) {
            super(message);
            this.status = status;
            this.code = code;
        }
    }

    function channelPath(channel) {
        return '/api/channels/'
               + channel.split('/').map(encodeURIComponent).join('/')
               + '/messages';
    }

    async function api(token, method, path, body) {
        const headers = { Authorization: 'Bearer ' + token };
        let doc = null;

        if (body !== undefined) {
            headers['Content-Type'] = 'application/json';
        }

        const res = await fetch(path, {
            method, headers,
            body: body === undefined ? undefined : JSON.stringify(body)
        });

        try {
            doc = await res.json();
        } catch (err) {
            doc = null;     /* an HTML error page from a plain location */
        }

        if (!res.ok) {
            const e = (doc && doc.error) || {};

            throw new ApiError(res.status, e.code || 'http_' + res.status,
                               e.message || res.statusText || 'failed');
        }

        return doc;
    }

    /* ------------------------------------------------------ badge */

    function showState(state, detail) {
        const badge = $('badge');
        let text;

        switch (state) {
        case 'open':
            text = 'connected';
            break;
        case 'reconnecting':
            text = 'reconnecting in '
                   + (detail.delay / 1000).toFixed(1) + ' s';
            break;
        case 'closed':
            text = detail.final ? 'disconnected (' + detail.code + ')'
                                : 'offline';
            break;
        default:
            text = 'connecting\u2026';
        }

        badge.dataset.state = state;
        $('badge-text').textContent = text;
    }

    /* ------------------------------------------------------ sensors */

    function sparkline(values) {
        const ns = 'http://www.w3.org/2000/svg';
        const svg = document.createElementNS(ns, 'svg');
        const min = Math.min.apply(null, values);
        const max = Math.max.apply(null, values);
        const span = max - min || 1;
        const step = values.length > 1 ? 100 / (values.length - 1) : 0;
        const pts = values.map((v, i) => (i * step).toFixed(2) + ','
                               + (38 - (v - min) / span * 34).toFixed(2));

        svg.setAttribute('viewBox', '0 0 100 40');
        svg.setAttribute('preserveAspectRatio', 'none');
        svg.setAttribute('class', 'spark');
        svg.setAttribute('aria-hidden', 'true');
        svg.dataset.points = String(values.length);

        if (values.length > 1) {
            const area = document.createElementNS(ns, 'polygon');
            const line = document.createElementNS(ns, 'polyline');

            area.setAttribute('points', '0,40 ' + pts.join(' ') + ' 100,40');
            line.setAttribute('points', pts.join(' '));
            svg.appendChild(area);
            svg.appendChild(line);
        }

        return svg;
    }

    /* the value a tile shows big: moisture, else the first number */
    function primaryField(data) {
        if (typeof data.moisture === 'number') {
            return 'moisture';
        }

        return Object.keys(data).find((k) => typeof data[k] === 'number');
    }

    class SensorTile {
        constructor(id) {
            this.id = id;
            this.channel = 'sensors/' + id;
            /* message id -> reading, for the sparkline in id order */
            this.readings = new Map();
            this.latest = null;
            this.node = el('article', 'tile');
            this.node.dataset.sensor = id;
            this.node.dataset.live = 'no';

            const head = el('div', 'tile-head');

            head.appendChild(el('span', 'name', id));
            head.appendChild(el('span', 'live'));
            this.value = el('div', 'value', '\u2013');
            this.extra = el('div', 'extra');
            this.spark = sparkline([]);
            this.updated = el('div', 'updated', 'waiting for data');
            this.node.append(head, this.value, this.extra, this.spark,
                             this.updated);
        }

        reset() {
            this.readings.clear();
            this.latest = null;
        }

        add(msg, live) {
            const data = msg.data || {};
            const field = primaryField(data);

            if (!field || this.readings.has(msg.id)) {
                return;
            }

            this.readings.set(msg.id, { value: data[field], field, data,
                                        at: Date.parse(msg.timestamp)
                                            || Date.now() });

            /* keep the newest points only */
            const ids = Array.from(this.readings.keys()).sort((a, b) => a - b);

            while (ids.length > SPARK_POINTS) {
                this.readings.delete(ids.shift());
            }

            this.latest = this.readings.get(ids[ids.length - 1]);
            this.render(ids);

            if (live) {
                this.node.classList.add('flash');
                setTimeout(() => this.node.classList.remove('flash'), 600);
            }
        }

        render(ids) {
            const r = this.latest;
            const unit = r.field === 'moisture' ? '%' : '';
            const extras = Object.keys(r.data)
                .filter((k) => k !== r.field && k !== 'sensor_id'
                               && typeof r.data[k] === 'number')
                .map((k) => k + ' ' + r.data[k]);

            this.value.textContent = '';
            this.value.append(String(r.value), el('span', 'unit', unit));
            this.value.dataset.value = String(r.value);
            this.extra.textContent = (r.field !== 'moisture' ? r.field + ' '
                                                             : '')
                                     + extras.join(' \u00b7 ');

            const spark = sparkline(ids.map((id) =>
                                            this.readings.get(id).value));

            this.spark.replaceWith(spark);
            this.spark = spark;
            this.tick();
        }

        tick() {
            if (!this.latest) {
                return;
            }

            const age = Math.max(0, Date.now() - this.latest.at);

            this.node.dataset.live = age < STALE_MS ? 'yes' : 'no';
            this.updated.textContent = age < 2000 ? 'just now'
                : 'updated ' + Math.round(age / 1000) + ' s ago';
        }
    }

    /* ------------------------------------------------------ clients */

    /* when a client was last seen: the API gives ISO-8601 (or ms) */
    function lastSeen(value) {
        const at = typeof value === 'number' ? value : Date.parse(value);

        if (!at) {
            return 'never connected';
        }

        const age = Math.max(0, Math.round((Date.now() - at) / 1000));

        return age < 60 ? 'seen ' + age + ' s ago'
             : age < 3600 ? 'seen ' + Math.round(age / 60) + ' min ago'
             : 'seen ' + new Date(at).toLocaleString();
    }

    /*
     * The registry (GET /api/clients), read again whenever $presence says
     * somebody came or went.  Events come in bursts (a worker resuming its
     * sessions), so at most one read runs and one more follows it.
     */
    class ClientList {
        constructor(ctx, onPick) {
            this.ctx = ctx;
            this.onPick = onPick;
            this.items = [];
            this.loading = false;
            this.again = false;
        }

        refresh() {
            if (this.loading) {
                this.again = true;
                return;
            }

            this.loading = true;
            this.load()
                .then((items) => {
                    this.items = items;
                    this.render();
                })
                .catch((err) => toast('warn', 'Clients not loaded',
                                      err.message))
                .finally(() => {
                    this.loading = false;

                    if (this.again) {
                        this.again = false;
                        this.refresh();
                    }
                });
        }

        async load() {
            const items = [];
            let cursor = null;

            for (let page = 0; page < CLIENT_PAGES; page++) {
                const doc = await api(this.ctx.token, 'GET',
                                      '/api/clients?limit=' + CLIENT_PAGE
                                      + (cursor ? '&cursor='
                                         + encodeURIComponent(cursor) : ''));

                items.push(...(doc.items || []));
                cursor = doc.next;

                if (!cursor) {
                    break;
                }
            }

            return items;
        }

        row(c, mine) {
            const li = el('li');
            const pick = el('button', 'pick', 'Command');
            const seen = c.online
                ? c.connections + (c.connections === 1 ? ' connection'
                                                       : ' connections')
                : lastSeen(c.last_seen);

            li.dataset.client = c.id;
            li.dataset.online = c.online ? 'yes' : 'no';
            pick.type = 'button';
            pick.title = 'Queue a command for ' + c.id;
            pick.addEventListener('click', () => this.onPick(c.id));
            li.append(el('span', 'dot'), el('span', 'client-id', c.id),
                      el('span', 'client-type', c.client_type || 'client'),
                      el('span', 'client-name',
                         (c.name && c.name !== c.id ? c.name + ' \u00b7 '
                                                    : '')
                         + seen + (c.id === mine ? ' (this page)' : '')),
                      pick);

            return li;
        }

        render() {
            const list = $('clients');
            const ids = $('client-ids');
            const session = this.ctx.hub.session;
            const mine = session && session.client_id;
            const sorted = this.items.slice().sort((a, b) =>
                (b.online ? 1 : 0) - (a.online ? 1 : 0)
                || String(a.id).localeCompare(String(b.id)));

            list.textContent = '';
            ids.textContent = '';
            $('clients-count').textContent = String(
                sorted.filter((c) => c.online).length);

            if (sorted.length === 0) {
                list.appendChild(el('li', 'empty',
                                    'No client registered yet.'));
            }

            for (const c of sorted) {
                list.appendChild(this.row(c, mine));
                ids.appendChild(Object.assign(el('option'), { value: c.id }));
            }
        }
    }

    /* ------------------------------------------------------ commands */

    const STATUS_RANK = { pending: 0, sent: 1, completed: 2, failed: 2,
                          expired: 2, cancelled: 2 };

    /*
     * Where a command is in its life: a later attempt, then a later
     * status.  The 202 of the API and the $commands events race (the
     * agent may answer before the HTTP response is read), and history
     * may load after live events, so an older view never replaces a
     * newer one.
     */
    function progress(c) {
        return (c.attempt || 1) * 10 + (STATUS_RANK[c.status] || 0);
    }

    class CommandLog {
        constructor() {
            /* command_id -> { seq, status, attempt, client_id, command,
                               trail, note } */
            this.commands = new Map();
            this.seq = 0;
        }

        update(id, fields) {
            const known = this.commands.get(id);

            if (known && progress(fields) < progress(known)) {
                fields = { command: fields.command || known.command };
            }

            const next = Object.assign({ seq: ++this.seq, trail: [] },
                                       known, fields);

            if (next.trail[next.trail.length - 1] !== next.status) {
                next.trail = next.trail.concat(next.status);
            }

            this.commands.set(id, next);
            this.render();
        }

        apply(msg, live) {
            const d = msg.data || {};

            if (msg.type !== 'command_status' || !d.command_id) {
                return;
            }

            this.update(d.command_id, {
                status: d.status, attempt: d.attempt, client_id: d.client_id,
                command: d.command, note: d.error || d.reason
            });

            if (live && (d.status === 'failed' || d.status === 'expired')) {
                toast('error', 'Command ' + d.status,
                      (d.command || d.command_id) + ' \u2192 ' + d.client_id
                      + ((d.error || d.reason) ? ': ' + (d.error || d.reason)
                                               : ''));
            }
        }

        render() {
            const list = $('commands');
            const rows = Array.from(this.commands.entries())
                .sort((a, b) => b[1].seq - a[1].seq)
                .slice(0, MAX_COMMANDS);

            list.textContent = '';

            if (rows.length === 0) {
                list.appendChild(el('li', 'empty', 'No commands yet.'));
            }

            for (const [id, c] of rows) {
                const li = el('li');
                const status = el('span', 'status', c.status || 'pending');
                const detail = [c.command, c.client_id && '\u2192 '
                                + c.client_id,
                                c.attempt > 1 && 'attempt ' + c.attempt,
                                c.note && '(' + c.note + ')']
                    .filter(Boolean).join(' ');

                li.dataset.command = id;
                li.dataset.client = c.client_id || '';
                li.dataset.trail = c.trail.join(' ');
                li.title = c.trail.join(' \u2192 ');
                status.dataset.status = c.status || 'pending';
                li.append(el('span', 'command-id', id),
                          el('span', 'command-detail', detail), status);
                list.appendChild(li);
            }
        }
    }

    /* ------------------------------------------------------ jobs */

    /* the bar's parts, left to right; pending is the empty rest */
    const JOB_PARTS = ['completed', 'failed', 'expired', 'cancelled',
                       'superseded', 'sent', 'pending'];
    const JOB_ENDED = ['completed', 'failed', 'expired', 'cancelled',
                       'superseded'];
    const JOB_EVENTS = ['job_progress', 'job_completed', 'job_aborted',
                        'job_cancelled'];
    const JOB_RANK = { scheduled: 0, in_progress: 1, completed: 2,
                       aborted: 2, cancelled: 2 };
    const MAX_JOBS = 10;
    const FAILURES_PAGE = 200;
    const FAILURES_EVERY_MS = 1000;

    /* how far a job got: events and GET answers race, the newer wins */
    function jobProgress(job) {
        const counts = job.counts || {};

        return JOB_ENDED.reduce((n, k) => n + (counts[k] || 0), 0) * 4
               + (JOB_RANK[job.status] || 0);
    }

    /*
     * The workspace's jobs: read once (GET /api/jobs), then moved by
     * the job events of $commands only.  The selected job (the newest,
     * or the one clicked) shows its failed and expired executions, read
     * from the API at most once a second while its failures grow.
     */
    class JobsPanel {
        constructor(ctx) {
            this.ctx = ctx;
            this.jobs = new Map();      /* job_id -> what we know */
            this.order = 0;
            this.selected = null;
            this.picked = false;        /* chosen by a click */
            this.events = 0;            /* live job events applied */
            this.failures = [];
            this.failuresMore = false;
            this.failuresAt = 0;
            this.failuresTimer = null;
        }

        load() {
            return api(this.ctx.token, 'GET', '/api/jobs?limit=' + MAX_JOBS)
                .then((doc) => {
                    for (const job of (doc.items || []).slice().reverse()) {
                        this.merge(job);
                    }
                    this.render();
                })
                .catch((err) => toast('warn', 'Jobs', err.message));
        }

        merge(job) {
            const known = this.jobs.get(job.job_id);

            if (known && jobProgress(job) < jobProgress(known)) {
                return known;
            }

            const next = Object.assign({ order: ++this.order }, known, job);

            if (known) {
                next.order = known.order;
            }

            this.jobs.set(job.job_id, next);

            if (!this.picked && (!this.selected
                || next.order > this.jobs.get(this.selected).order))
            {
                this.selected = job.job_id;
            }

            return next;
        }

        apply(msg, live) {
            const d = msg.data || {};

            if (!JOB_EVENTS.includes(msg.type) || !d.job_id) {
                return;
            }

            const before = this.jobs.get(d.job_id);
            const failed = (c) => c ? (c.counts.failed || 0)
                                      + (c.counts.expired || 0) : 0;

            if (!before) {
                /* a job made elsewhere: its command and times */
                api(this.ctx.token, 'GET', '/api/jobs/'
                    + encodeURIComponent(d.job_id))
                    .then((job) => {
                        this.merge(job);
                        this.render();
                    })
                    .catch(() => {});
            }

            const after = this.merge(d);

            if (live) {
                this.events++;
            }

            if (live && msg.type === 'job_aborted') {
                toast('error', 'Job aborted', (after.command || d.job_id)
                      + ': ' + failed(after) + ' of ' + d.targets
                      + ' failed');
            }

            if (d.job_id === this.selected
                && (failed(after) !== failed(before)
                    || msg.type !== 'job_progress'))
            {
                this.loadFailures();
            }

            this.render();
        }

        select(id) {
            this.selected = id;
            this.picked = true;
            this.failures = [];
            this.render();
            this.loadFailures();
        }

        /* at most once a second; the last change is always read */
        loadFailures() {
            const wait = this.failuresAt + FAILURES_EVERY_MS - Date.now();

            if (this.failuresTimer) {
                return;
            }

            if (wait > 0) {
                this.failuresTimer = setTimeout(() => {
                    this.failuresTimer = null;
                    this.loadFailures();
                }, wait);
                return;
            }

            const id = this.selected;

            this.failuresAt = Date.now();
            api(this.ctx.token, 'GET', '/api/jobs/' + encodeURIComponent(id)
                + '/executions?status=failed,expired&limit='
                + FAILURES_PAGE)
                .then((doc) => {
                    if (id === this.selected) {
                        this.failures = doc.items || [];
                        this.failuresMore = doc.next !== null;
                        this.renderFailures();
                    }
                })
                .catch((err) => toast('warn', 'Failures', err.message));
        }

        render() {
            const list = $('jobs');
            const jobs = Array.from(this.jobs.values())
                .sort((a, b) => b.order - a.order)
                .slice(0, MAX_JOBS);

            list.textContent = '';

            if (jobs.length === 0) {
                list.appendChild(el('li', 'empty', 'No jobs yet.'));
            }

            for (const job of jobs) {
                list.appendChild(this.row(job));
            }

            this.renderFailures();
        }

        row(job) {
            const li = el('li', 'job');
            const name = el('span', 'job-name', job.command || 'job');
            const bar = el('div', 'progress');
            const counts = job.counts || {};
            const targets = job.targets || 0;
            const text = [];

            li.dataset.job = job.job_id;
            li.dataset.status = job.status;
            li.setAttribute('aria-selected', String(job.job_id
                                                    === this.selected));
            li.addEventListener('click', () => this.select(job.job_id));
            name.appendChild(el('small', '', job.job_id));
            bar.setAttribute('role', 'progressbar');
            bar.setAttribute('aria-valuemin', '0');
            bar.setAttribute('aria-valuemax', String(targets));
            bar.setAttribute('aria-valuenow', String(JOB_ENDED.reduce(
                (n, k) => n + (counts[k] || 0), 0)));

            for (const part of JOB_PARTS) {
                const n = counts[part] || 0;
                const span = el('span');

                span.dataset.part = part;
                span.dataset.count = String(n);
                span.style.width = (targets ? n * 100 / targets : 0) + '%';
                span.title = part + ': ' + n;
                bar.appendChild(span);

                if (n) {
                    text.push(n + ' ' + part);
                }
            }

            const status = el('span', 'job-status',
                              (job.status || '').replace('_', ' '));

            status.dataset.status = job.status;
            li.append(name, bar, status,
                      el('span', 'job-counts', targets + ' targets \u00b7 '
                         + (text.join(' \u00b7 ') || 'nothing yet')));

            return li;
        }

        renderFailures() {
            const box = $('job-failures');
            const list = $('failures-list');

            box.hidden = this.selected === null;
            $('failures-job').textContent = this.selected || '';
            $('failures-count').textContent = this.failures.length
                                              + (this.failuresMore ? '+'
                                                                   : '');
            list.textContent = '';

            if (this.failures.length === 0) {
                list.appendChild(el('li', 'empty', 'None.'));
            }

            for (const x of this.failures) {
                const li = el('li');

                li.dataset.client = x.client_id;
                li.dataset.status = x.status;
                li.append(el('b', '', x.client_id),
                          el('span', '', x.error || x.status));
                list.appendChild(li);
            }
        }
    }

    /* ------------------------------------------------------ wiring */

    /*
     * Subscribes to a channel and, each time the server reports a head
     * in a new epoch (first subscribe, or history lost), loads the recent
     * history up to that head.
     */
    function follow(ctx, channel, count, apply, onNewEpoch) {
        let epoch = null;
        const sub = ctx.hub.subscribe(channel);

        sub.on('*', (msg) => apply(msg, true));
        ctx.hub.on('subscribed', (msg) => {
            if (msg.channel !== channel || msg.epoch === epoch) {
                return;
            }

            if (epoch !== null && onNewEpoch) {
                onNewEpoch();
            }

            epoch = msg.epoch;

            if (msg.id === 0) {
                return;
            }

            const since = Math.max(0, msg.id - count);

            api(ctx.token, 'GET', channelPath(channel) + '?since=' + since
                + '&limit=' + count)
                .then((doc) => {
                    for (const item of doc.items || []) {
                        if (item.id <= msg.id && item.epoch === msg.epoch) {
                            apply(item, false);
                        }
                    }
                })
                .catch((err) => toast('warn', 'History not loaded',
                                      err.message));
        });

        return sub;
    }

    function showStats(data) {
        const set = (id, v) => {
            $(id).textContent = typeof v === 'number' ? String(v) : '\u2013';
        };

        set('stat-connections', data.connections);
        set('stat-channels', data.channels);
        set('stat-subscriptions', data.subscriptions);
    }

    async function queueCommand(ctx, log) {
        const client = $('cmd-client').value.trim();
        const command = $('cmd-name').value.trim();
        const button = $('cmd-send');
        let payload;

        try {
            payload = JSON.parse($('cmd-payload').value || '{}');
        } catch (err) {
            toast('error', 'Payload is not JSON', err.message);
            return;
        }

        button.disabled = true;

        try {
            const doc = await api(ctx.token, 'POST',
                                  '/api/clients/' + encodeURIComponent(client)
                                  + '/commands', {
                                      command, payload,
                                      priority: Number($('cmd-priority').value)
                                  });

            log.update(doc.command_id, { status: doc.status, command,
                                         client_id: client,
                                         attempt: doc.attempt || 1 });
        } catch (err) {
            toast('error', 'Command not queued',
                  err.message + ' (' + (err.status || err.code) + ')');
        } finally {
            button.disabled = false;
        }
    }

    function start() {
        const token = readToken();

        if (!token) {
            $('no-token').hidden = false;
            showState('closed', {});
            $('badge-text').textContent = 'no token';
            return;
        }

        const hub = new Wirehub({ token, clientType: 'dashboard',
                                  clientName: 'Wirehub dashboard',
                                  autoConnect: false });
        const ctx = { hub, token };
        const clients = new ClientList(ctx, (id) => {
            $('cmd-client').value = id;
            $('cmd-name').focus();
        });
        const commands = new CommandLog();
        const tiles = SENSORS.map((id) => new SensorTile(id));

        hub.on('state', (state, detail) => showState(state, detail));
        hub.on('open', (session) => {
            $('workspace').textContent = session.workspace
                                         ? 'workspace ' + session.workspace
                                         : '';
        });
        hub.on('error', (err) => {
            toast('error', err.channel ? err.channel : 'Connection',
                  err.message + (err.code ? ' (' + err.code + ')' : ''));
        });
        hub.on('gap', (gap) => {
            toast('warn', gap.channel, 'some messages could not be '
                  + 'recovered (' + gap.reason + ')');
        });

        for (const tile of tiles) {
            $('tiles').appendChild(tile.node);
            const sub = follow(ctx, tile.channel, SPARK_POINTS,
                               (msg, live) => tile.add(msg, live),
                               () => tile.reset());

            /* pending, active, resuming or closed */
            sub.onState((state) => {
                tile.node.dataset.subscribed = state === 'active'
                                               ? 'yes' : 'no';
                tile.node.dataset.subState = state;
            });
        }

        /* the registry is read on every (re)subscribe and presence event */
        hub.subscribe('$presence').on('*', () => clients.refresh());
        hub.on('subscribed', (msg) => {
            if (msg.channel === '$presence') {
                clients.refresh();
            }
        });
        const jobs = new JobsPanel(ctx);

        follow(ctx, '$commands', MAX_COMMANDS, (msg, live) => {
            commands.apply(msg, live);
            jobs.apply(msg, live);
        });
        jobs.load();
        hub.subscribe('$stats').on('stats_update',
                                   (msg) => showStats(msg.data || {}));

        api(token, 'GET', '/api/stats').then(showStats).catch((err) => {
            toast('warn', 'Stats', err.message);
        });

        $('command-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            queueCommand(ctx, commands);
        });

        setInterval(() => tiles.forEach((t) => t.tick()), 1000);

        const health = new HealthView(ctx, api, toast);

        health.start();

        /* for the browser test and the curious: window.wirehub.hub */
        window.wirehub = { hub, tiles, clients, commands, jobs, health };
        hub.connect();
    }

    start();
}());
