/*
 * The dashboard's health view: what an operator checks first.
 *
 * Two sources, read every HEALTH_MS and on demand: GET /api/stats (the
 * workspace's figures, quotas with their refusals, the MQTT link, the
 * nginx workers that report to wirehubd) with the page's token, and the
 * Prometheus scrape at /metrics (engine state, LMDB map use, queue
 * depths), which carries no token and may not be exposed to browsers:
 * then those cards say so and the rest still works.
 *
 * Also here: the $presence feed (who connected, who left and why), and
 * a live tail of any channel, resumed from an id and epoch (`since`).
 */

const HEALTH_MS = 5000;
const METRICS_RETRY_MS = 60000;
const PRESENCE_ROWS = 12;
const TAIL_ROWS = 50;

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

/* ---------------------------------------------------------- metrics */

/*
 * Prometheus text format, the part a health view needs: samples as
 * {name, labels, value}; comments, timestamps and histogram buckets
 * don't matter here.
 */
export function parseMetrics(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

    for (const row of text.split('\n')) {
        const m = row.startsWith('#') ? null : line.exec(row);

        if (!m) {
            continue;
        }

        const labels = {};

        for (const l of (m[3] || '').matchAll(label)) {
            labels[l[1]] = l[2].replace(/\\(.)/g,
                                        (_, c) => (c === 'n' ? '\n' : c));
        }

        samples.push({ name: m[1], labels, value: Number(m[4]) });
    }

    return samples;
}

function metric(samples, name, labels) {
    const want = Object.entries(labels || {});
    const s = samples.find((x) => x.name === name
        && want.every(([k, v]) => x.labels[k] === v));

    return s ? s.value : null;
}

/* ---------------------------------------------------------- formats */

export function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;

    if (typeof n !== 'number' || !isFinite(n)) {
        return '\u2013';
    }

    while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
    }

    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

export function duration(s) {
    if (typeof s !== 'number') {
        return '\u2013';
    }

    const d = Math.floor(s / 86400);
    const h = Math.floor(s / 3600) % 24;
    const m = Math.floor(s / 60) % 60;

    return d ? d + 'd ' + h + 'h' : h ? h + 'h ' + m + 'm'
           : m ? m + 'm ' + (s % 60) + 's' : s + 's';
}

function num(v) {
    return typeof v === 'number' ? String(v) : '\u2013';
}

/* ---------------------------------------------------------- cards */

/* a card: title, a state dot (ok, warn, bad, off) and rows */
function card(id, title, state, rows) {
    const node = $(id);
    const head = el('div', 'hcard-head');
    const list = el('dl', 'hcard-rows');

    node.dataset.state = state;
    node.replaceChildren(head, list);
    head.appendChild(el('span', 'hdot'));
    head.appendChild(el('h3', '', title));

    for (const [k, v] of rows) {
        list.appendChild(el('dt', '', k));
        const dd = el('dd', '');

        if (v instanceof Node) {
            dd.appendChild(v);
        } else {
            dd.textContent = v;
        }
        list.appendChild(dd);
    }
}

function meter(used, size, max) {
    const wrap = el('div', 'meter');
    const bar = el('div', 'meter-bar');
    const fill = el('div', 'meter-fill');
    const share = max ? used / max : 0;

    fill.style.width = Math.min(100, Math.max(share * 100, 0.5)).toFixed(1)
                       + '%';
    wrap.dataset.level = share > 0.85 ? 'bad' : share > 0.6 ? 'warn' : 'ok';
    bar.appendChild(fill);
    wrap.appendChild(bar);
    wrap.appendChild(el('span', 'meter-text', bytes(used) + ' of '
                        + bytes(max) + ' (map ' + bytes(size) + ')'));

    return wrap;
}

function table(headers, rows) {
    const t = el('table', 'htable');
    const tr = el('tr');

    for (const h of headers) {
        tr.appendChild(el('th', '', h));
    }
    t.appendChild(tr);

    for (const row of rows) {
        const r = el('tr');

        for (const c of row) {
            r.appendChild(el('td', '', c));
        }
        t.appendChild(r);
    }

    return t;
}

function showWorkers(stats, samples) {
    const ngx = stats.nginx || {};
    const workers = ngx.workers || [];
    const total = samples ? metric(samples, 'wirehub_workers') : null;
    const up = typeof ngx.links_up === 'number' ? ngx.links_up : null;
    const state = up === null ? 'off'
                  : total !== null && up < total ? 'warn'
                  : up > 0 ? 'ok' : 'bad';

    card('health-workers', 'nginx workers', state, [
        ['links up', num(up) + (total !== null ? ' of ' + total : '')],
        ['reconnects', num(ngx.link_reconnects)],
        ['module', ngx.module_version || '\u2013'],
        ['', table(['worker pid', 'link', 'sessions'],
                   workers.map((w) => [String(w.pid), 'up',
                                       num(w.sessions)]))]
    ]);
}

function showDaemon(stats, samples) {
    const d = stats.daemon || {};
    const paused = samples ? metric(samples, 'wirehubd_link_peers_paused')
                           : null;

    card('health-daemon', 'wirehubd', stats.links > 0 ? 'ok' : 'bad', [
        ['instance', d.instance || '\u2013'],
        ['up', duration(d.uptime_s)],
        ['links', num(stats.links)],
        ['paused links', num(paused)]
    ]);
}

function showMqtt(stats) {
    const m = stats.mqtt || {};

    if (!m.configured) {
        card('health-mqtt', 'MQTT', 'off', [['broker', 'not configured']]);
        return;
    }

    card('health-mqtt', 'MQTT', m.connected ? 'ok' : 'bad', [
        ['broker', (m.broker || '') + ' ' + (m.state || '')],
        ['in / ingested / out', num(m.messages_in) + ' / '
                                + num(m.ingested) + ' / '
                                + num(m.messages_out)],
        ['egress queued', num(m.egress_queued)],
        ['dropped', num(m.dropped)],
        ['reconnects', num(m.reconnects)],
        ['last error', m.last_error || 'none']
    ]);
}

function showEngine(samples) {
    if (!samples) {
        card('health-engine', 'Engine', 'off',
             [['metrics', 'not exposed at /metrics']]);
        return;
    }

    const states = samples.filter((s) => s.name === 'wirehubd_engine_state');
    const now = states.find((s) => s.value === 1);
    const rows = [['engine', now ? now.labels.engine : '\u2013'],
                  ['state', now ? now.labels.state : 'unknown']];

    for (const space of ['state', 'history']) {
        const used = metric(samples, 'wirehubd_lmdb_used_bytes', { space });

        if (used !== null) {
            rows.push(['LMDB ' + space, meter(used,
                metric(samples, 'wirehubd_lmdb_map_size_bytes', { space }),
                metric(samples, 'wirehubd_lmdb_map_max_bytes', { space }))]);
        }
    }

    card('health-engine', 'Engine', !now ? 'warn'
         : now.labels.state === 'ok' ? 'ok' : 'bad', rows);
}

function showQueues(stats, samples) {
    const m = samples || [];
    const pending = metric(m, 'wirehubd_commands', { status: 'pending' });
    const sent = metric(m, 'wirehubd_commands', { status: 'sent' });

    card('health-queues', 'Queues', 'ok', [
        ['commands (workspace)', num(stats.queued_commands)],
        ['pending / sent (all)', num(pending) + ' / ' + num(sent)],
        ['deepest client queue', num(metric(m,
            'wirehubd_command_queue_depth_max'))],
        ['MQTT events unacked', num(metric(m,
            'wirehubd_mqtt_events_queued'))],
        ['history messages', num(metric(m, 'wirehubd_history_messages'))]
    ]);
}

function showQuota(stats) {
    const quota = stats.quota || {};
    const rows = Object.entries(quota).map(([kind, q]) => [
        kind, q.used === undefined ? '\u2013' : String(q.used),
        q.limit === null || q.limit === undefined ? 'unlimited'
                                                  : String(q.limit),
        num(q.refused)]);
    const refused = Object.values(quota)
        .reduce((n, q) => n + (q.refused || 0), 0);

    $('health-quota').classList.add('wide');
    card('health-quota', 'Quota refusals', refused ? 'warn' : 'ok', [
        ['refused since start', String(refused)],
        ['', table(['quota', 'used', 'limit', 'refused'], rows)]
    ]);
}

/* ---------------------------------------------------------- presence */

const PRESENCE_EVENTS = {
    client_connected: 'connected',
    client_updated: 'updated',          /* a `register`: type and name */
    client_disconnected: 'disconnected'
};

class PresenceFeed {
    constructor(list) {
        this.list = list;
    }

    add(msg) {
        const d = msg.data || {};
        const row = el('li', 'presence-row');
        const event = PRESENCE_EVENTS[msg.type] || msg.type;
        const what = { connected: 'connected', updated: 'registered',
                       disconnected: 'left' }[event] || event;

        row.dataset.event = event;
        row.appendChild(el('span', 'presence-dot'));
        row.appendChild(el('span', 'presence-client', d.client_id || '?'));
        /* the reason when it tells more than the event: resumed, or why
           a session closed */
        row.appendChild(el('span', 'presence-what',
                           what + ' \u00b7 ' + (d.client_type || 'unknown')
                           + (d.reason && d.reason !== 'connected'
                              && d.reason !== 'register'
                              ? ' \u00b7 ' + d.reason : '')));
        row.appendChild(el('time', 'presence-time',
                           new Date(msg.timestamp || Date.now())
                               .toLocaleTimeString()));

        const empty = this.list.querySelector('.empty');

        if (empty) {
            empty.remove();
        }

        this.list.prepend(row);

        while (this.list.children.length > PRESENCE_ROWS) {
            this.list.lastChild.remove();
        }
    }
}

/* ---------------------------------------------------------- tail */

/*
 * One channel at a time.  With an id (and the epoch it belongs to) the
 * server replays what came after it, then goes live; `recovered: false`
 * in `subscribed` says the history no longer reaches back that far.
 */
class ChannelTail {
    constructor(hub) {
        this.hub = hub;
        this.sub = null;
        this.channel = null;
        this.off = [];
        this.list = $('tail-list');
        this.status = $('tail-status');

        hub.on('subscribed', (msg) => {
            if (msg.channel !== this.channel) {
                return;
            }

            this.status.dataset.recovered = String(msg.recovered !== false);
            this.status.textContent = 'subscribed at id ' + msg.id
                + ', epoch ' + msg.epoch
                + (msg.recovered === false
                   ? ' \u00b7 not recovered: history does not reach back'
                   : '');
            $('tail-epoch').placeholder = msg.epoch || '';
        });
    }

    start(channel, sinceId, epoch) {
        const options = {};

        this.stop();
        this.channel = channel;
        this.list.replaceChildren();

        if (sinceId !== null) {
            options.since = { id: sinceId, epoch };
        }

        this.status.textContent = 'subscribing to ' + channel + '\u2026';
        delete this.status.dataset.recovered;
        this.sub = this.hub.subscribe(channel, options);
        this.sub.on('*', (msg) => this.add(msg));
        this.sub.ready.catch((err) => {
            this.status.textContent = 'refused: ' + err.message;
        });
    }

    stop() {
        if (this.sub) {
            this.sub.unsubscribe();
            this.sub = null;
        }
    }

    add(msg) {
        const row = el('li', 'tail-row');

        row.dataset.id = String(msg.id);
        row.appendChild(el('span', 'tail-id', '#' + msg.id));
        row.appendChild(el('span', 'tail-type', msg.type || ''));
        row.appendChild(el('code', 'tail-data', JSON.stringify(msg.data)));
        this.list.prepend(row);

        while (this.list.children.length > TAIL_ROWS) {
            this.list.lastChild.remove();
        }
    }
}

/* ---------------------------------------------------------- view */

export class HealthView {
    constructor(ctx, api, toast) {
        this.ctx = ctx;
        this.api = api;
        this.toast = toast;
        this.metricsRetryAt = 0;
        this.presence = new PresenceFeed($('presence'));
        this.tail = new ChannelTail(ctx.hub);
        this.updated = 0;

        ctx.hub.subscribe('$presence').on('*', (msg) => {
            this.presence.add(msg);
        });

        $('tail-form').addEventListener('submit', (ev) => {
            const id = $('tail-since').value.trim();

            ev.preventDefault();
            this.tail.start($('tail-channel').value.trim(),
                            id === '' ? null : Number(id),
                            $('tail-epoch').value.trim());
        });
    }

    /* not exposed (404, or the dashboard's own page): asked again only
       after METRICS_RETRY_MS, not on every refresh into nginx's log */
    async metrics() {
        if (Date.now() < this.metricsRetryAt) {
            return null;
        }

        try {
            const res = await fetch('/metrics');
            const type = res.headers.get('Content-Type') || '';

            if (res.ok && type.startsWith('text/plain')) {
                return parseMetrics(await res.text());
            }
        } catch (err) {
            /* the network: as not exposed */
        }

        this.metricsRetryAt = Date.now() + METRICS_RETRY_MS;

        return null;
    }

    async refresh() {
        let stats;

        const samples = await this.metrics();

        try {
            stats = await this.api(this.ctx.token, 'GET', '/api/stats');
        } catch (err) {
            $('health').dataset.state = 'error';
            $('health-updated').textContent = 'stats: ' + err.message;
            return false;
        }

        showWorkers(stats, samples);
        showDaemon(stats, samples);
        showMqtt(stats);
        showEngine(samples);
        showQueues(stats, samples);
        showQuota(stats);

        this.updated++;
        $('health').dataset.state = 'ok';
        $('health').dataset.metrics = samples ? 'yes' : 'no';
        $('health-updated').textContent = 'updated '
            + new Date().toLocaleTimeString();

        return true;
    }

    start() {
        this.refresh();
        this.timer = setInterval(() => this.refresh(), HEALTH_MS);
    }
}
