/*
 * wirehub.js: the Wirehub client (protocol v1) for browsers and Node.
 *
 *   const hub = new Wirehub({ token, url, WebSocket });
 *   hub.on('state', (state) => ...);     connecting | open | reconnecting
 *                                        | closed
 *   const off = hub.subscribe('sensors/V1', (msg) => ...);
 *   await hub.publish('chat/room1', { text: 'hi' }, 'chat_message');
 *   hub.onCommand(async (cmd) => ({ done: true }));
 *   hub.connect();
 *
 * It reconnects with exponential backoff and jitter, resumes every channel
 * from the last message it delivered (`since`), tells the application
 * with a 'gap' event when the server could not fill the gap, and sends an
 * application ping every heartbeatInterval: a connection that does not
 * answer within heartbeatTimeout is declared dead and replaced.
 *
 * No dependencies.  In Node pass a WebSocket class (the `ws` package, or
 * the global one of Node 22); in a browser the global WebSocket is used.
 */

(function (root, factory) {
    if (typeof module === 'object' && module.exports) {
        module.exports = factory();
    } else {
        root.Wirehub = factory();
    }
}(typeof self !== 'undefined' ? self : this, function () {
    'use strict';

    const OPEN = 1;

    const DEFAULTS = {
        backoffInitial: 500,
        backoffMax: 30000,
        backoffFactor: 2,
        heartbeatInterval: 25000,
        heartbeatTimeout: 10000,
        requestTimeout: 10000,
        commandMemory: 200
    };

    /*
     * Close codes after which reconnecting would only repeat the refusal:
     * 4403 revoked or deleted client, 4408 replaced by a newer connection
     * (two tabs reconnecting would keep replacing each other).
     */
    const FINAL_CLOSE_CODES = [4403, 4408];
    const TOKEN_EXPIRED = 4401;

    class WirehubError extends Error {
        constructor(code, message, detail) {
            super(message || code);
            this.name = 'WirehubError';
            this.code = code;
            if (detail) {
                this.channel = detail.channel;
                this.ref = detail.ref;
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
                              o.backoffInitial
                              * Math.pow(o.backoffFactor, attempt));

        return Math.round(step / 2 + (random || Math.random)() * step / 2);
    }

    function defaultUrl() {
        if (typeof location === 'undefined') {
            throw new Error('Wirehub: the "url" option is required here');
        }

        return (location.protocol === 'https:' ? 'wss://' : 'ws://')
               + location.host + '/ws/';
    }

    function withToken(url, token) {
        return url + (url.indexOf('?') === -1 ? '?' : '&') + 'token='
               + encodeURIComponent(token);
    }

    class Wirehub {
        constructor(options) {
            const o = Object.assign({}, DEFAULTS, options);

            this.options = o;
            this.url = o.url || defaultUrl();
            this.token = o.token;
            this.WebSocket = o.WebSocket
                             || (typeof WebSocket !== 'undefined'
                                 ? WebSocket : null);
            this.random = o.random || Math.random;

            if (!this.WebSocket) {
                throw new Error('Wirehub: pass a WebSocket implementation');
            }

            this.state = 'idle';
            this.session = null;
            this.ws = null;
            this.stopped = true;
            this.attempt = 0;
            this.refSeq = 0;
            this.listeners = new Map();
            /* name -> { handlers, id, epoch, sentSince } */
            this.channels = new Map();
            /* ref -> { resolve, reject, timer } */
            this.pending = new Map();
            this.commandHandler = null;
            /* command_id -> command_result already sent (or running) */
            this.commands = new Map();
            this.reconnectTimer = null;
            /* bumped by every open(): a late token ignores stale opens */
            this.generation = 0;
            this.heartbeatTimer = null;
            this.pongTimer = null;
            this.heartbeatRef = null;
        }

        /* ---------------------------------------------------- events */

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

            if (!set) {
                return;
            }

            for (const fn of Array.from(set)) {
                try {
                    fn.apply(this, args);
                } catch (err) {
                    /* one faulty listener must not break the client */
                    this.report(err);
                }
            }
        }

        report(err) {
            if (typeof console !== 'undefined') {
                console.error('Wirehub: listener failed:', err);
            }
        }

        setState(state, detail) {
            this.state = state;
            this.emit('state', state, detail || {});
            this.emit(state, detail || {});
        }

        /* ---------------------------------------------------- connection */

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
            const ws = this.ws;

            this.stopped = true;
            clearTimeout(this.reconnectTimer);
            this.reconnectTimer = null;

            if (ws) {
                this.detach(ws);
                ws.close(1000, 'client closed');
                this.lost(ws, 1000, 'client closed');
            } else if (this.state !== 'closed') {
                this.setState('closed', { code: 1000 });
            }
        }

        open() {
            const token = this.token;
            const generation = ++this.generation;

            this.reconnectTimer = null;
            this.setState('connecting', { attempt: this.attempt });

            if (typeof token !== 'function') {
                this.openWith(token);
                return;
            }

            /* a token provider: a fresh token for every (re)connect */
            Promise.resolve().then(token).then((fresh) => {
                if (!this.stopped && generation === this.generation) {
                    this.openWith(fresh);
                }
            }, (err) => {
                if (this.stopped || generation !== this.generation) {
                    return;
                }
                this.emit('error', new WirehubError('token',
                    'the token provider failed: ' + (err && err.message)));
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
            this.failPending('disconnected', 'the connection closed');

            for (const ch of this.channels.values()) {
                ch.sentSince = false;
            }

            if (this.stopped) {
                this.setState('closed', { code, reason });
                return;
            }

            if (code === TOKEN_EXPIRED) {
                /* a token provider gives a fresh one on the retry */
                this.emit('error', new WirehubError('token_expired',
                    'the token expired (4401): refresh() it in time or '
                    + 'pass a token function'));
            }

            if (FINAL_CLOSE_CODES.indexOf(code) !== -1) {
                this.stopped = true;
                this.setState('closed', { code, reason, final: true });
                return;
            }

            this.retry(code, reason);
        }

        retry(code, reason) {
            const delay = backoffDelay(this.attempt, this.options,
                                       this.random);

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

        /* ---------------------------------------------------- heartbeat */

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
                    'no pong within ' + this.options.heartbeatTimeout
                    + ' ms'));
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

        /* ---------------------------------------------------- requests */

        request(msg, timeout) {
            const ref = 'r' + (++this.refSeq);

            if (this.state !== 'open') {
                return Promise.reject(new WirehubError('not_connected',
                    'not connected (state ' + this.state + ')'));
            }

            return new Promise((resolve, reject) => {
                const timer = setTimeout(() => {
                    this.pending.delete(ref);
                    reject(new WirehubError('timeout', msg.type
                                            + ' was not answered'));
                }, timeout || this.options.requestTimeout);

                this.pending.set(ref, { resolve, reject, timer });
                this.send(Object.assign({}, msg, { ref }));
            });
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

        failPending(code, message) {
            const all = Array.from(this.pending.values());

            this.pending.clear();

            for (const p of all) {
                clearTimeout(p.timer);
                p.reject(new WirehubError(code, message));
            }
        }

        publish(channel, data, event) {
            const msg = { type: 'publish', channel, data };

            if (event) {
                msg.event = event;
            }

            return this.request(msg);
        }

        refresh(token) {
            return this.request({ type: 'refresh', token }).then((reply) => {
                if (typeof this.token !== 'function') {
                    this.token = token;
                }

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

        /* ---------------------------------------------------- channels */

        /*
         * options.since = {id, epoch} resumes after that message (for
         * an application that loaded history first).  Returns a function
         * that removes this handler and unsubscribes after the last one.
         */
        subscribe(channel, handler, options) {
            let ch = this.channels.get(channel);
            const since = options && options.since;

            if (!ch) {
                ch = { handlers: new Set(), id: null, epoch: null,
                       sentSince: false };
                this.channels.set(channel, ch);

                if (since && typeof since.id === 'number') {
                    ch.id = since.id;
                    ch.epoch = since.epoch;
                }

                if (this.state === 'open') {
                    this.sendSubscribe([channel]);
                }
            }

            ch.handlers.add(handler);

            return () => this.unsubscribe(channel, handler);
        }

        unsubscribe(channel, handler) {
            const ch = this.channels.get(channel);

            if (!ch) {
                return;
            }

            ch.handlers.delete(handler);

            if (ch.handlers.size === 0) {
                this.channels.delete(channel);
                this.send({ type: 'unsubscribe', channels: [channel] });
            }
        }

        /* one message for every channel, each resumed where it stopped */
        sendSubscribe(names) {
            const since = {};
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

            const msg = { type: 'subscribe', channels: names };

            if (any) {
                msg.since = since;
            }

            this.send(msg);
        }

        subscribed(msg) {
            const ch = this.channels.get(msg.channel);

            if (!ch) {
                return;
            }

            if (ch.sentSince && msg.recovered === false) {
                this.emit('gap', { channel: msg.channel, id: msg.id,
                                   epoch: msg.epoch,
                                   reason: 'not recovered' });
            }

            /*
             * Same epoch: replayed messages (ids up to msg.id) follow this
             * reply and advance the position themselves.  A new epoch
             * (or a fresh subscription) starts at the server's head.
             */
            if (ch.epoch !== msg.epoch || ch.id === null) {
                ch.id = msg.id;
                ch.epoch = msg.epoch;
            }

            ch.sentSince = false;
            this.emit('subscribed', msg);
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
                                               ? 'new epoch'
                                               : 'missing ids' });
                }
            }

            if (typeof msg.id === 'number') {
                ch.id = msg.id;
                ch.epoch = msg.epoch;
            }

            for (const fn of Array.from(ch.handlers)) {
                try {
                    fn.call(this, msg);
                } catch (err) {
                    this.report(err);
                }
            }
        }

        /* ---------------------------------------------------- commands */

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
                    type: 'command_result', command_id: id,
                    status: 'failed',
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

        /* ---------------------------------------------------- inbound */

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
                if (!this.settle(msg)) {
                    this.emit('error', new WirehubError(msg.code,
                                                        msg.message, msg));
                }
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
        }
    }

    Wirehub.WirehubError = WirehubError;
    Wirehub.backoffDelay = backoffDelay;
    Wirehub.DEFAULTS = DEFAULTS;

    return Wirehub;
}));
