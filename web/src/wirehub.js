/*
 * wirehub: the Wirehub client (WebSocket protocol v1) for browsers and
 * Node.  This file is the one source of the package; `node build.mjs`
 * writes the ESM build (dist/wirehub.mjs) and the CommonJS build, which
 * also works as a classic <script> (dist/wirehub.cjs), from it.
 *
 *   const client = new Wirehub('wss://host/ws/', { getToken });
 *   const sub = client.subscribe('sensors/V1');
 *   sub.on('sensor_reading', (msg) => draw(msg.data));
 *   await sub.ready;
 *   await client.publish('chat/room1', 'chat_message', { text: 'hi' });
 *
 * It reconnects with exponential backoff and jitter, resumes every channel
 * from the last message it delivered (`since`), refreshes the session in
 * band before the token expires, honours the close codes (none of 4403
 * and 4408 is retried, 4409 waits its retry_after) and sends an
 * application ping every heartbeatInterval: a connection that does not
 * answer within heartbeatTimeout is declared dead and replaced.
 *
 * No dependencies.  In Node 20 pass a WebSocket class (the `ws` package);
 * in a browser, and in Node 22, the global WebSocket is used.
 */

const OPEN = 1;

const DEFAULTS = {
    backoffInitial: 500,
    backoffMax: 30000,
    backoffFactor: 2,
    heartbeatInterval: 25000,
    heartbeatTimeout: 10000,
    requestTimeout: 10000,
    refreshMargin: 60000,
    commandMemory: 200,
    autoConnect: true
};

/*
 * Close codes after which reconnecting would only repeat the refusal:
 * 4403 revoked or deleted client, 4408 replaced by a newer connection
 * (two tabs reconnecting would keep replacing each other).
 */
const FINAL_CLOSE_CODES = [4403, 4408];
const TOKEN_EXPIRED = 4401;
const OPERATOR_DISCONNECT = 4409;

/* per-channel errors after which subscribing again cannot succeed */
const FINAL_CHANNEL_ERRORS = ['forbidden', 'bad_channel', 'bad_request',
                              'quota_exceeded'];

class WirehubError extends Error {
    constructor(code, message, detail) {
        super(message || code);
        this.name = 'WirehubError';
        this.code = code;
        if (detail) {
            if (detail.channel !== undefined) {
                this.channel = detail.channel;
            }
            if (detail.ref !== undefined) {
                this.ref = detail.ref;
            }
            if (detail.status !== undefined) {
                this.status = detail.status;
            }
        }
    }
}

/*
 * "Equal jitter": half of the exponential step is fixed, half random,
 * so clients spread out after a mass disconnect yet never retry
 * sooner than half the step.
 */
function backoffDelay(attempt, options, random) {
    const o = Object.assign({}, DEFAULTS, options);
    const step = Math.min(o.backoffMax,
                          o.backoffInitial * Math.pow(o.backoffFactor,
                                                      attempt));

    return Math.round(step / 2 + (random || Math.random)() * step / 2);
}

/* 4409's reason is "retry_after=N", N in seconds; null when it is not */
function retryAfter(reason) {
    const m = /^retry_after=(\d+)$/.exec(reason || '');

    return m ? Number(m[1]) : null;
}

/*
 * The `exp` claim of a JWT, in seconds, or null.  Read without checking
 * the signature: it only schedules the refresh, the server decides.
 */
function tokenExpiry(token) {
    try {
        const part = String(token).split('.')[1];
        const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
        const json = typeof atob === 'function'
                     ? atob(b64 + '==='.slice((b64.length + 3) % 4))
                     : Buffer.from(b64, 'base64').toString('binary');
        const exp = JSON.parse(json).exp;

        return typeof exp === 'number' ? exp : null;
    } catch (err) {
        return null;
    }
}

/*
 * When to refresh a session that ends at `exp` (seconds): refreshMargin
 * before it, or half way there for a token that lives less than twice
 * the margin (a refresh then comes in time, and not in a loop).
 */
function refreshDelay(exp, now, margin) {
    const left = exp * 1000 - now;

    return Math.max(0, left > 2 * margin ? left - margin : left / 2);
}

/* setTimeout fires at once past this (about 24.8 days) */
const MAX_TIMER = 2147483647;

function defaultUrl() {
    if (typeof location === 'undefined') {
        throw new Error('Wirehub: a URL is required here');
    }

    return (location.protocol === 'https:' ? 'wss://' : 'ws://')
           + location.host + '/ws/';
}

function withToken(url, token) {
    return url + (url.indexOf('?') === -1 ? '?' : '&') + 'token='
           + encodeURIComponent(token);
}

function callEach(fns, args, report) {
    for (const fn of Array.from(fns)) {
        try {
            fn.apply(null, args);
        } catch (err) {
            /* one faulty handler must not break the client */
            report(err);
        }
    }
}

/*
 * One subscription: what client.subscribe() returns.  States: pending
 * (asked, not answered yet), active (messages flow), resuming (the
 * connection dropped; it is subscribed again with `since` on the next
 * one), closed (unsubscribed, refused, or the client ended).
 */
class Subscription {
    constructor(client, channel) {
        this.client = client;
        this.channel = channel;
        this.state = 'pending';
        this.error = null;
        this.handlers = new Map();
        this.stateHandlers = new Set();
        this.ready = new Promise((resolve, reject) => {
            this.resolveReady = resolve;
            this.rejectReady = reject;
        });
        /* handled here so that an unawaited refusal is no unhandled
           rejection; `await sub.ready` still sees it */
        this.ready.catch(() => {});
    }

    on(type, fn) {
        if (!this.handlers.has(type)) {
            this.handlers.set(type, new Set());
        }

        this.handlers.get(type).add(fn);

        return () => this.off(type, fn);
    }

    off(type, fn) {
        const set = this.handlers.get(type);

        if (set) {
            set.delete(fn);
        }
    }

    onState(fn) {
        this.stateHandlers.add(fn);

        return () => this.stateHandlers.delete(fn);
    }

    unsubscribe() {
        if (this.state !== 'closed') {
            this.client.drop(this);
            this.setState('closed', new WirehubError('unsubscribed',
                'unsubscribed from ' + this.channel));
        }
    }

    setState(state, error) {
        if (this.state === state || this.state === 'closed') {
            return;
        }

        this.state = state;

        if (state === 'active') {
            this.resolveReady(this.client.heads.get(this.channel));
        } else if (state === 'closed') {
            this.error = error || null;
            this.rejectReady(error || new WirehubError('closed',
                                                       'subscription closed'));
        }

        callEach(this.stateHandlers, [state, this.error],
                 (err) => this.client.report(err));
    }

    deliver(msg) {
        const report = (err) => this.client.report(err);
        const typed = this.handlers.get(msg.type);
        const any = this.handlers.get('*');

        if (typed) {
            callEach(typed, [msg], report);
        }
        if (any) {
            callEach(any, [msg], report);
        }
    }
}

class Wirehub {
    /*
     * new Wirehub(url, options) or new Wirehub(options): options.url,
     * or in a browser ws(s)://this-host/ws/.
     */
    constructor(url, options) {
        if (url !== null && typeof url === 'object') {
            options = url;
            url = options.url;
        }

        const o = Object.assign({}, DEFAULTS, options);

        this.options = o;
        this.url = url || defaultUrl();
        this.token = o.token;
        this.getToken = o.getToken
                        || (typeof o.token === 'function' ? o.token : null);
        this.WebSocket = o.WebSocket
                         || (typeof WebSocket !== 'undefined'
                             ? WebSocket : null);
        this.random = o.random || Math.random;

        if (!this.WebSocket) {
            throw new Error('Wirehub: pass a WebSocket implementation');
        }
        if (!this.getToken && typeof this.token !== 'string') {
            throw new Error('Wirehub: pass getToken (or a token string)');
        }

        this.state = 'idle';
        this.session = null;
        this.ws = null;
        this.stopped = true;
        this.attempt = 0;
        this.refSeq = 0;
        this.listeners = new Map();
        /* name -> { subs, id, epoch, sentSince } */
        this.channels = new Map();
        /* name -> the last `subscribed` of the channel */
        this.heads = new Map();
        /* ref -> { msg, resolve, reject, timer, sent } */
        this.pending = new Map();
        /* ref of a subscribe -> the channels it asked for */
        this.subscribeRefs = new Map();
        this.commandHandler = null;
        /* command_id -> command_result already sent (or running) */
        this.commands = new Map();
        this.reconnectTimer = null;
        this.refreshTimer = null;
        this.resubscribeTimer = null;
        /* bumped by every open(): a late token ignores stale opens */
        this.generation = 0;
        this.heartbeatTimer = null;
        this.pongTimer = null;
        this.heartbeatRef = null;

        /* after the caller's synchronous set-up (listeners, subscribe)
           and not after a close() */
        if (o.autoConnect) {
            Promise.resolve().then(() => {
                if (this.state === 'idle') {
                    this.connect();
                }
            });
        }
    }

    /* -------------------------------------------------------- events */

    on(event, fn) {
        if (!this.listeners.has(event)) {
            this.listeners.set(event, new Set());
        }

        this.listeners.get(event).add(fn);

        return () => this.off(event, fn);
    }

    off(event, fn) {
        const set = this.listeners.get(event);

        if (set) {
            set.delete(fn);
        }
    }

    emit(event, ...args) {
        const set = this.listeners.get(event);

        if (set) {
            callEach(set, args, (err) => this.report(err));
        }
    }

    report(err) {
        if (typeof console !== 'undefined') {
            console.error('Wirehub: handler failed:', err);
        }
    }

    setState(state, detail) {
        this.state = state;
        this.emit('state', state, detail || {});
        this.emit(state, detail || {});
    }

    /* -------------------------------------------------------- connection */

    connect() {
        if (!this.stopped) {
            return this;
        }

        this.stopped = false;
        this.attempt = 0;
        this.open();

        return this;
    }

    close() {
        this.end(1000, 'client closed', false);
    }

    /* stops for good: by close(), or by a close code not to retry */
    end(code, reason, final) {
        const ws = this.ws;
        const error = new WirehubError(final ? 'closed_by_server' : 'closed',
            'the client is closed (' + code + (reason ? ' ' + reason : '')
            + ')');

        this.stopped = true;
        clearTimeout(this.reconnectTimer);
        clearTimeout(this.resubscribeTimer);
        this.reconnectTimer = this.resubscribeTimer = null;
        this.stopRefresh();

        if (ws) {
            this.ws = null;
            this.detach(ws);
            ws.close(1000, 'client closed');
            this.stopHeartbeat();
            this.session = null;
        }

        this.failPending(true, error.code, error.message);

        for (const ch of this.channels.values()) {
            for (const sub of ch.subs) {
                sub.setState('closed', error);
            }
        }
        this.channels.clear();

        if (this.state !== 'closed') {
            this.setState('closed', final ? { code, reason, final: true }
                                          : { code, reason });
        }
    }

    open() {
        const generation = ++this.generation;

        this.reconnectTimer = null;
        this.setState('connecting', { attempt: this.attempt });

        if (!this.getToken) {
            this.openWith(this.token);
            return;
        }

        /* a fresh token for every (re)connect */
        Promise.resolve().then(() => this.getToken()).then((fresh) => {
            if (!this.stopped && generation === this.generation) {
                this.token = fresh;
                this.openWith(fresh);
            }
        }, (err) => {
            if (this.stopped || generation !== this.generation) {
                return;
            }
            this.emit('error', new WirehubError('token',
                'getToken failed: ' + (err && err.message)));
            this.retry(null, 'no token');
        });
    }

    openWith(token) {
        let ws;

        try {
            ws = new this.WebSocket(withToken(this.url, token));
        } catch (err) {
            /* not err.message: it may quote the URL with the token */
            this.emit('error', new WirehubError('connect',
                'cannot open a WebSocket to ' + this.url));
            this.retry(null, 'cannot connect');
            return;
        }

        this.ws = ws;
        ws.onopen = () => {
            if (this.ws === ws) {
                this.startHeartbeat();
            }
        };
        ws.onmessage = (ev) => {
            if (this.ws === ws) {
                this.receive(ev.data);
            }
        };
        ws.onclose = (ev) => this.lost(ws, ev.code, ev.reason);
        /* an error is always followed by close: handled there */
        ws.onerror = () => {};
    }

    detach(ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }

    lost(ws, code, reason) {
        if (this.ws !== ws) {
            return;
        }

        this.ws = null;
        this.session = null;
        this.stopHeartbeat();
        this.stopRefresh();
        clearTimeout(this.resubscribeTimer);
        this.resubscribeTimer = null;
        this.subscribeRefs.clear();
        this.failPending(false, 'disconnected', 'the connection closed');

        if (code === TOKEN_EXPIRED) {
            this.emit('error', new WirehubError('token_expired',
                'the token expired (4401)'
                + (this.getToken ? ': asking getToken for a new one'
                                 : ' and there is no getToken')));
        }

        /* subscriptions go straight to closed, never through resuming */
        if (FINAL_CLOSE_CODES.indexOf(code) !== -1
            || (code === TOKEN_EXPIRED && !this.getToken))
        {
            this.end(code, reason, true);
            return;
        }

        for (const ch of this.channels.values()) {
            ch.sentSince = false;
            for (const sub of ch.subs) {
                if (sub.state === 'active') {
                    sub.setState('resuming');
                }
            }
        }

        if (code === OPERATOR_DISCONNECT && retryAfter(reason) !== null) {
            /* no sooner than told, plus a little spread */
            this.retry(code, reason, retryAfter(reason) * 1000
                                     + Math.round(this.random() * 1000));
            return;
        }

        this.retry(code, reason);
    }

    retry(code, reason, delay) {
        if (delay === undefined) {
            delay = backoffDelay(this.attempt, this.options, this.random);
        }

        this.attempt++;
        this.setState('reconnecting', {
            code, reason, delay, attempt: this.attempt
        });
        this.reconnectTimer = setTimeout(() => this.open(), delay);
    }

    send(msg) {
        if (!this.ws || this.ws.readyState !== OPEN) {
            return false;
        }

        this.ws.send(JSON.stringify(msg));

        return true;
    }

    /* -------------------------------------------------------- heartbeat */

    startHeartbeat() {
        this.stopHeartbeat();
        this.heartbeatTimer = setTimeout(() => this.beat(),
                                         this.options.heartbeatInterval);
    }

    stopHeartbeat() {
        clearTimeout(this.heartbeatTimer);
        clearTimeout(this.pongTimer);
        this.heartbeatTimer = this.pongTimer = null;
        this.heartbeatRef = null;
    }

    beat() {
        const ws = this.ws;

        this.heartbeatRef = 'hb-' + (++this.refSeq);
        this.send({ type: 'ping', ref: this.heartbeatRef });

        /* a half-open TCP connection never fires close: give up here */
        this.pongTimer = setTimeout(() => {
            this.emit('error', new WirehubError('heartbeat_timeout',
                'no pong within ' + this.options.heartbeatTimeout + ' ms'));
            this.detach(ws);
            ws.close(4000, 'heartbeat timeout');
            this.lost(ws, null, 'heartbeat timeout');
        }, this.options.heartbeatTimeout);
    }

    pong(msg) {
        if (msg.ref !== this.heartbeatRef) {
            return;
        }

        clearTimeout(this.pongTimer);
        this.pongTimer = null;
        this.heartbeatRef = null;
        this.heartbeatTimer = setTimeout(() => this.beat(),
                                         this.options.heartbeatInterval);
    }

    /* -------------------------------------------------------- refresh */

    /*
     * The session ends at `exp`: connection_status's (when the server
     * sends it), the last `refreshed`'s, else the token's own claim.
     */
    scheduleRefresh(exp) {
        this.stopRefresh();

        if (!this.getToken || typeof exp !== 'number') {
            return;
        }

        const delay = refreshDelay(exp, Date.now(),
                                   this.options.refreshMargin);

        /* a 30-day token: look again in 24 days */
        this.refreshTimer = delay > MAX_TIMER
            ? setTimeout(() => this.scheduleRefresh(exp), MAX_TIMER)
            : setTimeout(() => this.renew(), delay);
    }

    stopRefresh() {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
    }

    /* a new token from getToken, sent in band: the connection stays */
    renew() {
        const ws = this.ws;

        this.refreshTimer = null;
        Promise.resolve().then(() => this.getToken())
            .then((token) => {
                if (this.ws !== ws) {
                    return null;
                }
                if (token === this.token) {
                    /* nothing new to send: 4401 and a reconnect will
                       ask getToken again */
                    this.emit('error', new WirehubError('refresh',
                        'getToken gave the same token: not refreshed'));
                    return null;
                }
                return this.refresh(token).then((reply) => {
                    if (this.ws === ws) {
                        this.scheduleRefresh(typeof reply.expires === 'number'
                                             ? reply.expires
                                             : tokenExpiry(token));
                    }
                });
            })
            .catch((err) => {
                if (this.ws !== ws || this.stopped) {
                    return;
                }
                this.emit('error', new WirehubError(err.code || 'refresh',
                    'refresh failed: ' + err.message));
                /* again in a while; at worst 4401 and a reconnect */
                this.refreshTimer = setTimeout(() => this.renew(),
                    backoffDelay(2, this.options, this.random));
            });
    }

    /* -------------------------------------------------------- requests */

    /*
     * A message answered by the reply with the same ref.  Made while
     * (re)connecting it waits for the connection; in flight when the
     * connection drops it fails `disconnected` (it may have been acted
     * on, so it is not sent again).
     */
    request(msg, timeout) {
        const ref = 'r' + (++this.refSeq);

        if (this.stopped && this.state === 'closed') {
            return Promise.reject(new WirehubError('closed',
                'the client is closed'));
        }

        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(ref);
                reject(new WirehubError('timeout', msg.type
                                        + ' was not answered'));
            }, timeout || this.options.requestTimeout);
            const p = { msg: Object.assign({}, msg, { ref }), resolve,
                        reject, timer, sent: false };

            this.pending.set(ref, p);

            if (this.state === 'open') {
                p.sent = this.send(p.msg);
            }
        });
    }

    flushPending() {
        for (const p of this.pending.values()) {
            if (!p.sent) {
                p.sent = this.send(p.msg);
            }
        }
    }

    settle(msg) {
        const p = this.pending.get(msg.ref);

        if (!p) {
            return false;
        }

        this.pending.delete(msg.ref);
        clearTimeout(p.timer);

        if (msg.type === 'error') {
            p.reject(new WirehubError(msg.code, msg.message, msg));
        } else {
            p.resolve(msg);
        }

        return true;
    }

    /* all: the queued ones too (the client ended) */
    failPending(all, code, message) {
        for (const [ref, p] of Array.from(this.pending)) {
            if (all || p.sent) {
                this.pending.delete(ref);
                clearTimeout(p.timer);
                p.reject(new WirehubError(code, message));
            }
        }
    }

    /* resolves with `published` ({channel, id, epoch, timestamp}) */
    publish(channel, type, data) {
        const msg = { type: 'publish', channel, data };

        if (type) {
            msg.event = type;
        }

        return this.request(msg);
    }

    /*
     * Needs the server's `wirehub_rpc_pass`: the module POSTs params to
     * the application and answers `rpc_result`.  Resolves with its data.
     */
    rpc(method, params, options) {
        return this.request({ type: 'rpc', method,
                              data: params === undefined ? {} : params },
                            options && options.timeout)
            .then((reply) => reply.data);
    }

    refresh(token) {
        return this.request({ type: 'refresh', token }).then((reply) => {
            this.token = token;
            return reply;
        });
    }

    register(clientType, clientName) {
        const msg = { type: 'register', client_type: clientType };

        if (clientName) {
            msg.client_name = clientName;
        }

        return this.request(msg);
    }

    /* -------------------------------------------------------- channels */

    /*
     * options.since = {id, epoch} resumes after that message (for an
     * application that loaded history first); it counts for the first
     * subscription of a channel only.
     */
    subscribe(channel, options) {
        const since = options && options.since;
        let ch = this.channels.get(channel);
        const sub = new Subscription(this, channel);

        if (this.stopped && this.state === 'closed') {
            sub.setState('closed', new WirehubError('closed',
                'the client is closed'));
            return sub;
        }

        if (!ch) {
            ch = { subs: new Set(), id: null, epoch: null,
                   sentSince: false };
            this.channels.set(channel, ch);

            if (since && typeof since.id === 'number') {
                ch.id = since.id;
                ch.epoch = since.epoch;
            }
        }

        ch.subs.add(sub);

        /* asked again when already subscribed: the server answers
           `subscribed` again and changes nothing */
        if (this.state === 'open') {
            this.sendSubscribe([channel]);
        }

        return sub;
    }

    /* the last subscription of a channel gone: unsubscribe it */
    drop(sub) {
        const ch = this.channels.get(sub.channel);

        if (!ch || !ch.subs.delete(sub) || ch.subs.size > 0) {
            return;
        }

        this.channels.delete(sub.channel);
        this.heads.delete(sub.channel);
        this.send({ type: 'unsubscribe', channels: [sub.channel] });
    }

    /* one message for every channel, each resumed where it stopped */
    sendSubscribe(names) {
        const since = {};
        const ref = 's' + (++this.refSeq);
        let any = false;

        for (const name of names) {
            const ch = this.channels.get(name);

            if (typeof ch.id === 'number') {
                since[name] = { id: ch.id };
                if (ch.epoch !== null && ch.epoch !== undefined) {
                    since[name].epoch = ch.epoch;
                }
                ch.sentSince = true;
                any = true;
            }
        }

        const msg = { type: 'subscribe', channels: names, ref };

        if (any) {
            msg.since = since;
        }

        this.subscribeRefs.set(ref, new Set(names));
        this.send(msg);
    }

    /* a subscribe dropped whole (rate_limited, unavailable): again later */
    resubscribeLater(names) {
        const live = names.filter((n) => this.channels.has(n));

        if (live.length === 0) {
            return;
        }

        this.resubscribeTimer = setTimeout(() => {
            this.resubscribeTimer = null;
            if (this.state === 'open') {
                this.sendSubscribe(live.filter((n) => this.channels.has(n)));
            }
        }, backoffDelay(1, this.options, this.random));
    }

    answered(ref, channel) {
        const names = this.subscribeRefs.get(ref);

        if (names) {
            names.delete(channel);
            if (names.size === 0) {
                this.subscribeRefs.delete(ref);
            }
        }
    }

    subscribed(msg) {
        const ch = this.channels.get(msg.channel);

        this.answered(msg.ref, msg.channel);

        if (!ch) {
            return;
        }

        if (ch.sentSince && msg.recovered === false) {
            this.emit('gap', { channel: msg.channel, id: msg.id,
                               epoch: msg.epoch, reason: 'not recovered' });
        }

        /*
         * Same epoch: replayed messages (ids up to msg.id) follow this
         * reply and advance the position themselves.  A new epoch (or a
         * fresh subscription) starts at the server's head.
         */
        if (ch.epoch !== msg.epoch || ch.id === null) {
            ch.id = msg.id;
            ch.epoch = msg.epoch;
        }

        ch.sentSince = false;
        this.heads.set(msg.channel, msg);

        for (const sub of Array.from(ch.subs)) {
            sub.setState('active');
        }

        this.emit('subscribed', msg);
    }

    channelError(msg) {
        const ch = this.channels.get(msg.channel);
        const err = new WirehubError(msg.code, msg.message, msg);

        this.answered(msg.ref, msg.channel);

        if (FINAL_CHANNEL_ERRORS.indexOf(msg.code) === -1) {
            /* unavailable (wirehubd away) and the like pass */
            this.resubscribeLater([msg.channel]);
            this.emit('error', err);
            return;
        }

        this.channels.delete(msg.channel);
        for (const sub of ch.subs) {
            sub.setState('closed', err);
        }
        this.emit('error', err);
    }

    deliver(msg) {
        const ch = this.channels.get(msg.channel);

        if (!ch) {
            return;
        }

        if (typeof msg.id === 'number' && ch.id !== null) {
            if (msg.epoch === ch.epoch && msg.id <= ch.id) {
                return;         /* a duplicate after a resume */
            }

            if (msg.epoch !== ch.epoch || msg.id > ch.id + 1) {
                this.emit('gap', { channel: msg.channel, id: msg.id,
                                   epoch: msg.epoch,
                                   reason: msg.epoch !== ch.epoch
                                           ? 'new epoch' : 'missing ids' });
            }
        }

        if (typeof msg.id === 'number') {
            ch.id = msg.id;
            ch.epoch = msg.epoch;
        }

        for (const sub of Array.from(ch.subs)) {
            sub.deliver(msg);
        }
    }

    /* -------------------------------------------------------- commands */

    onCommand(handler) {
        this.commandHandler = handler;

        return () => {
            if (this.commandHandler === handler) {
                this.commandHandler = null;
            }
        };
    }

    command(msg) {
        const id = msg.command_id;
        const known = this.commands.get(id);

        if (!this.commandHandler) {
            return;
        }

        /* delivery is at-least-once: answer a repeat, never rerun */
        if (known) {
            if (known.result) {
                this.send(known.result);
            }
            return;
        }

        const entry = { result: null };

        this.commands.set(id, entry);
        this.forgetOldCommands();

        new Promise((resolve) => resolve(this.commandHandler(msg)))
            .then((value) => ({
                type: 'command_result', command_id: id,
                status: 'completed',
                result: value === undefined ? null : value
            }), (err) => ({
                type: 'command_result', command_id: id, status: 'failed',
                error: String(err && err.message ? err.message : err)
            }))
            .then((result) => {
                entry.result = result;
                this.send(result);
            });
    }

    forgetOldCommands() {
        while (this.commands.size > this.options.commandMemory) {
            this.commands.delete(this.commands.keys().next().value);
        }
    }

    /* -------------------------------------------------------- inbound */

    receive(text) {
        let msg;

        try {
            msg = JSON.parse(text);
        } catch (err) {
            this.emit('error', new WirehubError('bad_message',
                                                'malformed JSON'));
            return;
        }

        if (msg === null || typeof msg !== 'object') {
            return;
        }

        switch (msg.type) {
        case 'connection_status':
            this.welcome(msg);
            return;
        case 'pong':
            this.pong(msg);
            this.settle(msg);
            return;
        case 'subscribed':
            this.subscribed(msg);
            return;
        case 'device_command':
            this.command(msg);
            return;
        case 'error':
            this.serverError(msg);
            return;
        }

        if (msg.ref !== undefined && this.settle(msg)) {
            return;
        }

        if (typeof msg.channel === 'string' && msg.id !== undefined) {
            this.deliver(msg);
            return;
        }

        this.emit('message', msg);
    }

    serverError(msg) {
        if (this.settle(msg)) {
            return;
        }

        if (typeof msg.channel === 'string'
            && this.channels.has(msg.channel))
        {
            this.channelError(msg);
            return;
        }

        /* a whole subscribe dropped (rate_limited): no channel named */
        if (this.subscribeRefs.has(msg.ref)) {
            const names = Array.from(this.subscribeRefs.get(msg.ref));

            this.subscribeRefs.delete(msg.ref);
            this.resubscribeLater(names);
        }

        this.emit('error', new WirehubError(msg.code, msg.message, msg));
    }

    welcome(msg) {
        const o = this.options;

        this.session = msg.data || {};
        this.attempt = 0;
        this.setState('open', this.session);

        if (o.clientType) {
            this.register(o.clientType, o.clientName).catch((err) => {
                this.emit('error', err);
            });
        }

        if (this.channels.size > 0) {
            this.sendSubscribe(Array.from(this.channels.keys()));
        }

        this.flushPending();
        this.scheduleRefresh(typeof this.session.exp === 'number'
                             ? this.session.exp : tokenExpiry(this.token));
    }
}

Wirehub.Wirehub = Wirehub;
Wirehub.Subscription = Subscription;
Wirehub.WirehubError = WirehubError;
Wirehub.backoffDelay = backoffDelay;
Wirehub.tokenExpiry = tokenExpiry;
Wirehub.refreshDelay = refreshDelay;
Wirehub.DEFAULTS = DEFAULTS;

/* exports: build.mjs replaces everything from this line on */
export { Wirehub, Subscription, WirehubError, backoffDelay, tokenExpiry,
         refreshDelay, DEFAULTS };
export default Wirehub;
