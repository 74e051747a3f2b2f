/*
 * Unit tests of the wirehub package (its CommonJS build, web/dist/) in
 * Node against a scripted fake WebSocket and node:test's mocked timers:
 * backoff and jitter bounds, close codes, subscription states, resume
 * with `since`, ref matching, refresh before exp, rpc, command_result,
 * heartbeat timeout.
 *
 *   node --test t/web/unit/
 */

'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const Wirehub = require(path.join(__dirname, '..', '..', '..', 'web',
                                  'dist', 'wirehub.cjs'));

/* A WebSocket the test plays the server of. */
function fakeSocketClass() {
    const sockets = [];

    class FakeSocket {
        constructor(url) {
            this.url = url;
            this.readyState = 0;
            this.sent = [];
            this.closed = null;
            sockets.push(this);
        }

        send(text) {
            assert.equal(this.readyState, 1, 'send on a socket not open');
            this.sent.push(JSON.parse(text));
        }

        close(code, reason) {
            this.readyState = 3;
            this.closed = { code, reason };
        }

        serverOpen() {
            this.readyState = 1;
            this.onopen({});
        }

        serverSend(msg) {
            this.onmessage({ data: JSON.stringify(msg) });
        }

        serverClose(code, reason) {
            this.readyState = 3;
            if (this.onclose) {
                this.onclose({ code, reason: reason || '' });
            }
        }

        sentOfType(type) {
            return this.sent.filter((m) => m.type === type);
        }
    }

    FakeSocket.sockets = sockets;
    FakeSocket.last = () => sockets[sockets.length - 1];

    return FakeSocket;
}

function status(session) {
    return {
        type: 'connection_status',
        data: { status: 'connected', client_id: 'pc-7', workspace: 'acme',
                session: session || 's-1', active_clients: 1 },
        timestamp: '2026-11-21T10:00:00.000Z'
    };
}

function reading(channel, id, epoch, moisture) {
    return { type: 'sensor_reading', channel, id, epoch,
             data: { sensor_id: channel.split('/')[1], moisture },
             timestamp: '2026-11-21T10:00:00.000Z' };
}

/*
 * A client connected to a fresh fake socket, past connection_status; it
 * is closed when the test ends, pass or fail, so no timer outlives it.
 */
function connected(t, options) {
    const FakeSocket = fakeSocketClass();
    const hub = new Wirehub('ws://gw.test/ws/', Object.assign({
        token: 'tok.en+/=', WebSocket: FakeSocket
    }, options));

    t.after(() => hub.close());
    hub.connect();
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status());

    return { hub, FakeSocket, ws: FakeSocket.last() };
}

function flush() {
    return new Promise((resolve) => setImmediate(resolve));
}

test('backoff grows exponentially and jitter stays in [step/2, step]',
     () => {
    const opts = { backoffInitial: 500, backoffMax: 30000,
                   backoffFactor: 2 };

    for (let attempt = 0; attempt < 12; attempt++) {
        const step = Math.min(30000, 500 * Math.pow(2, attempt));

        assert.equal(Wirehub.backoffDelay(attempt, opts, () => 0),
                     step / 2);
        assert.equal(Wirehub.backoffDelay(attempt, opts, () => 0.999999),
                     step);

        for (let i = 0; i < 200; i++) {
            const d = Wirehub.backoffDelay(attempt, opts);

            assert.ok(d >= step / 2 && d <= step,
                      'attempt ' + attempt + ': ' + d);
        }
    }

    /* the random draw really spreads clients out */
    const seen = new Set();

    for (let i = 0; i < 50; i++) {
        seen.add(Wirehub.backoffDelay(6, opts));
    }
    assert.ok(seen.size > 10, 'jitter draws only ' + seen.size + ' values');
});

test('reconnects after the backoff delay, which resets once connected',
     (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
    const states = [];

    hub.on('state', (s, d) => states.push([s, d.delay]));
    ws.serverClose(1006);

    assert.deepEqual(states, [['reconnecting', 250]]);
    t.mock.timers.tick(249);
    assert.equal(FakeSocket.sockets.length, 1, 'reconnected too early');
    t.mock.timers.tick(1);
    assert.equal(FakeSocket.sockets.length, 2);
    assert.equal(hub.state, 'connecting');

    /* the handshake fails twice: 500 ms, then 1000 ms */
    FakeSocket.last().serverClose(1006);
    t.mock.timers.tick(500);
    FakeSocket.last().serverClose(1006);
    assert.equal(states[states.length - 1][1], 1000);
    t.mock.timers.tick(1000);
    assert.equal(FakeSocket.sockets.length, 4);

    /* connection_status resets the attempt counter */
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status('s-2'));
    assert.equal(hub.state, 'open');
    FakeSocket.last().serverClose(1001);
    assert.equal(states[states.length - 1][1], 250);
    hub.close();
});

test('token rides in the query string, URL-encoded', (t) => {
    const { hub, ws } = connected(t);

    assert.equal(ws.url, 'ws://gw.test/ws/?token=tok.en%2B%2F%3D');
    hub.close();
});

test('4403 and 4408 end the connection for good; close() too', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    for (const code of [4403, 4408]) {
        const { hub, FakeSocket, ws } = connected(t);

        ws.serverClose(code, 'replaced');
        assert.equal(hub.state, 'closed');
        t.mock.timers.tick(60000);
        assert.equal(FakeSocket.sockets.length, 1, 'close ' + code);
    }

    const { hub, FakeSocket, ws } = connected(t);

    hub.close();
    assert.deepEqual(ws.closed, { code: 1000, reason: 'client closed' });
    assert.equal(hub.state, 'closed');
    t.mock.timers.tick(60000);
    assert.equal(FakeSocket.sockets.length, 1);
});

test('resubscribes every channel with since after a reconnect', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
    const got = [];

    hub.subscribe('sensors/V1').on('*', (m) => got.push(m.id));
    hub.subscribe('sensors/V2').on('*', (m) => got.push('V2:' + m.id));
    assert.deepEqual(ws.sentOfType('subscribe').map((m) => m.channels),
                     [['sensors/V1'], ['sensors/V2']]);
    assert.equal(ws.sentOfType('subscribe')[0].since, undefined);

    ws.serverSend({ type: 'subscribed', channel: 'sensors/V1', id: 40,
                    epoch: 'h3k2', recovered: true });
    ws.serverSend({ type: 'subscribed', channel: 'sensors/V2', id: 0,
                    epoch: 'e2', recovered: true });
    ws.serverSend(reading('sensors/V1', 41, 'h3k2', 45.2));
    ws.serverSend(reading('sensors/V1', 42, 'h3k2', 45.3));

    ws.serverClose(1006);
    t.mock.timers.tick(250);

    const ws2 = FakeSocket.last();

    ws2.serverOpen();
    assert.equal(ws2.sentOfType('subscribe').length, 0,
                 'subscribed before connection_status');
    ws2.serverSend(status('s-2'));

    const sub = ws2.sentOfType('subscribe');

    assert.equal(sub.length, 1, 'one subscribe for every channel');
    assert.deepEqual(sub[0].channels.sort(), ['sensors/V1', 'sensors/V2']);
    assert.deepEqual(sub[0].since, {
        'sensors/V1': { id: 42, epoch: 'h3k2' },
        'sensors/V2': { id: 0, epoch: 'e2' }
    });

    /* the server answers, replays 43, and a duplicate 42 is dropped */
    ws2.serverSend({ type: 'subscribed', channel: 'sensors/V1', id: 43,
                     epoch: 'h3k2', recovered: true });
    ws2.serverSend(reading('sensors/V1', 42, 'h3k2', 45.3));
    ws2.serverSend(reading('sensors/V1', 43, 'h3k2', 45.4));
    ws2.serverSend(reading('sensors/V1', 44, 'h3k2', 45.5));
    assert.deepEqual(got, [41, 42, 43, 44]);
    hub.close();
});

test('recovered:false is reported as a gap, and the new epoch adopted',
     (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
    const gaps = [];
    const got = [];

    hub.on('gap', (g) => gaps.push(g));
    hub.subscribe('jobs', { since: { id: 7, epoch: 'old' } })
        .on('*', (m) => got.push(m.id));
    assert.deepEqual(ws.sentOfType('subscribe')[0].since,
                     { jobs: { id: 7, epoch: 'old' } });

    ws.serverSend({ type: 'subscribed', channel: 'jobs', id: 3,
                    epoch: 'new', recovered: false });
    assert.deepEqual(gaps, [{ channel: 'jobs', id: 3, epoch: 'new',
                              reason: 'not recovered' }]);
    ws.serverSend({ type: 'job_progress', channel: 'jobs', id: 4,
                    epoch: 'new', data: {} });
    assert.deepEqual(got, [4]);
    assert.equal(gaps.length, 1, 'the next id is not a gap');

    /* a fresh subscription (no since) is never a gap */
    hub.subscribe('other');
    ws.serverSend({ type: 'subscribed', channel: 'other', id: 9,
                    epoch: 'x', recovered: true });
    assert.equal(gaps.length, 1);

    /* missing ids on a live channel are a gap too */
    ws.serverSend({ type: 'job_progress', channel: 'jobs', id: 6,
                    epoch: 'new', data: {} });
    assert.equal(gaps[1].reason, 'missing ids');

    ws.serverClose(1006);
    t.mock.timers.tick(250);
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status());
    assert.deepEqual(FakeSocket.last().sentOfType('subscribe')[0].since.jobs,
                     { id: 6, epoch: 'new' });
    hub.close();
});

test('unsubscribe closes one subscription, the last one the channel',
     (t) => {
    const { hub, ws } = connected(t);
    const a = [];
    const b = [];
    const subA = hub.subscribe('chat');
    const subB = hub.subscribe('chat');
    const offA = () => subA.unsubscribe();
    const offB = () => subB.unsubscribe();

    subA.on('*', (m) => a.push(m.id));
    subB.on('*', (m) => b.push(m.id));
    /* the second asks again: the server answers subscribed again */
    assert.equal(ws.sentOfType('subscribe').length, 2);
    ws.serverSend({ type: 'chat_message', channel: 'chat', id: 1,
                    epoch: 'e', data: {} });
    offA();
    assert.equal(ws.sentOfType('unsubscribe').length, 0);
    ws.serverSend({ type: 'chat_message', channel: 'chat', id: 2,
                    epoch: 'e', data: {} });
    offB();
    assert.deepEqual(ws.sentOfType('unsubscribe'),
                     [{ type: 'unsubscribe', channels: ['chat'] }]);
    assert.equal(subA.state, 'closed');
    assert.equal(subA.error.code, 'unsubscribed');
    ws.serverSend({ type: 'chat_message', channel: 'chat', id: 3,
                    epoch: 'e', data: {} });
    assert.deepEqual(a, [1]);
    assert.deepEqual(b, [1, 2]);
    hub.close();
});

test('publish is resolved by the reply with the same ref', async (t) => {
    const { hub, ws } = connected(t);
    const first = hub.publish('chat/room1', 'chat_message', { text: 'a' });
    const second = hub.publish('chat/room1', null, { text: 'b' });
    const [m1, m2] = ws.sentOfType('publish');

    assert.equal(m1.event, 'chat_message');
    assert.equal(m2.event, undefined);
    assert.deepEqual(m1.data, { text: 'a' });
    assert.notEqual(m1.ref, m2.ref);

    /* answers out of order, plus one for a ref nobody waits for */
    ws.serverSend({ type: 'published', channel: 'chat/room1', id: 2,
                    epoch: 'e', ref: m2.ref });
    ws.serverSend({ type: 'published', channel: 'chat/room1', id: 99,
                    epoch: 'e', ref: 'nobody' });
    ws.serverSend({ type: 'error', code: 'forbidden', message: 'no',
                    channel: 'chat/room1', ref: m1.ref });

    assert.equal((await second).id, 2);
    await assert.rejects(first, (err) => {
        assert.equal(err.code, 'forbidden');
        assert.equal(err.channel, 'chat/room1');
        return true;
    });
    hub.close();
});

test('requests: in flight fail on a drop, made offline wait, closed fail',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { requestTimeout: 1000,
                                                   random: () => 0 });
    const dropped = hub.publish('a', null, 1);
    const late = hub.refresh('new-token');

    ws.serverClose(1006);
    await assert.rejects(dropped, { code: 'disconnected' });
    await assert.rejects(late, { code: 'disconnected' });

    /* made while reconnecting: sent once connected, then answered */
    const queued = hub.publish('a', 'x', 2);

    t.mock.timers.tick(250);
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status('s-2'));
    const sent = FakeSocket.last().sentOfType('publish');

    assert.equal(sent.length, 1, 'only the queued one is sent');
    assert.equal(sent[0].data, 2);
    FakeSocket.last().serverSend({ type: 'published', channel: 'a', id: 1,
                                   epoch: 'e', ref: sent[0].ref });
    assert.equal((await queued).id, 1);
    hub.close();
    await assert.rejects(hub.publish('a', null, 1), { code: 'closed' });

    const again = connected(t, { requestTimeout: 1000 });
    const unanswered = again.hub.publish('a', null, 1);

    t.mock.timers.tick(1000);
    await assert.rejects(unanswered, { code: 'timeout' });
    again.hub.close();
});

test('refresh sends the new token and uses it for the next connect',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
    const done = hub.refresh('fresh');
    const msg = ws.sentOfType('refresh')[0];

    assert.equal(msg.token, 'fresh');
    ws.serverSend({ type: 'refreshed', expires: 1, ref: msg.ref });
    assert.equal((await done).type, 'refreshed');

    ws.serverClose(1006);
    t.mock.timers.tick(250);
    assert.equal(FakeSocket.last().url, 'ws://gw.test/ws/?token=fresh');
    hub.close();
});

test('a token provider is asked again for every connect', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const FakeSocket = fakeSocketClass();
    let n = 0;
    const hub = new Wirehub('ws://gw.test/ws/?v=1', {
        WebSocket: FakeSocket, random: () => 0,
        getToken: () => Promise.resolve('t' + (++n))
    });

    const errors = [];

    hub.on('error', (e) => errors.push(e.code));
    hub.connect();
    await flush();
    assert.equal(FakeSocket.last().url, 'ws://gw.test/ws/?v=1&token=t1');
    FakeSocket.last().serverClose(4401, 'token expired');
    assert.deepEqual(errors, ['token_expired']);
    t.mock.timers.tick(250);
    await flush();
    assert.equal(FakeSocket.last().url, 'ws://gw.test/ws/?v=1&token=t2');

    /* close, then connect again before the first token arrives: one
       socket, with the newest token */
    hub.close();
    hub.connect();
    hub.close();
    hub.connect();
    await flush();
    assert.equal(FakeSocket.sockets.length, 3);
    assert.equal(FakeSocket.last().url, 'ws://gw.test/ws/?v=1&token=t4');
    hub.close();
});

test('onCommand answers completed, failed, and repeats without rerunning',
     async (t) => {
    const { hub, ws } = connected(t);
    const runs = [];

    hub.onCommand((cmd) => {
        runs.push(cmd.command_id);
        if (cmd.command === 'reboot') {
            return { rebooted: true };
        }
        if (cmd.command === 'async') {
            return Promise.reject(new Error('no such port'));
        }
        throw new Error('unknown command ' + cmd.command);
    });

    const cmd = (id, command) => ({
        type: 'device_command', command_id: id, command, payload: {},
        priority: 5, attempt: 1
    });

    ws.serverSend(cmd('c-1', 'reboot'));
    ws.serverSend(cmd('c-2', 'async'));
    ws.serverSend(cmd('c-3', 'explode'));
    await flush();

    /* each answer goes out when its handler settles: order by id */
    const results = ws.sentOfType('command_result')
        .sort((a, b) => a.command_id.localeCompare(b.command_id));

    assert.deepEqual(results, [
        { type: 'command_result', command_id: 'c-1', status: 'completed',
          result: { rebooted: true } },
        { type: 'command_result', command_id: 'c-2', status: 'failed',
          error: 'no such port' },
        { type: 'command_result', command_id: 'c-3', status: 'failed',
          error: 'unknown command explode' }
    ]);

    /* at-least-once delivery: c-1 again is answered, not run again */
    ws.serverSend(Object.assign(cmd('c-1', 'reboot'), { attempt: 2 }));
    await flush();
    assert.deepEqual(runs, ['c-1', 'c-2', 'c-3']);
    assert.deepEqual(ws.sentOfType('command_result')[3], results[0]);
    assert.equal(ws.sentOfType('command_result').length, 4);
    hub.close();
});

test('an undefined command result is sent as null', async (t) => {
    const { hub, ws } = connected(t);

    hub.onCommand(() => undefined);
    ws.serverSend({ type: 'device_command', command_id: 'c-9',
                    command: 'noop', payload: {}, attempt: 1 });
    await flush();
    assert.deepEqual(ws.sentOfType('command_result')[0].result, null);
    hub.close();
});

test('heartbeat: a ping every interval, dead without a pong', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, {
        heartbeatInterval: 1000, heartbeatTimeout: 500, random: () => 0
    });
    const errors = [];

    hub.on('error', (e) => errors.push(e.code));

    t.mock.timers.tick(999);
    assert.equal(ws.sentOfType('ping').length, 0);
    t.mock.timers.tick(1);

    const ping = ws.sentOfType('ping')[0];

    assert.match(ping.ref, /^hb-/);

    /* an answered ping keeps the connection */
    ws.serverSend({ type: 'pong', ref: ping.ref });
    t.mock.timers.tick(999);
    assert.equal(hub.state, 'open');
    assert.equal(ws.sentOfType('ping').length, 1);
    t.mock.timers.tick(1);
    assert.equal(ws.sentOfType('ping').length, 2);

    /* a pong for another ref does not count */
    ws.serverSend({ type: 'pong', ref: 'r-other' });
    t.mock.timers.tick(499);
    assert.equal(hub.state, 'open');
    t.mock.timers.tick(1);
    assert.deepEqual(errors, ['heartbeat_timeout']);
    assert.equal(ws.closed.code, 4000);
    assert.equal(hub.state, 'reconnecting');
    assert.equal(ws.onclose, null, 'the dead socket is detached');

    t.mock.timers.tick(250);
    assert.equal(FakeSocket.sockets.length, 2);
    hub.close();
});

test('state events in order, and listener errors do not break the client',
     (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    t.mock.method(console, 'error', () => {});

    const FakeSocket = fakeSocketClass();
    const hub = new Wirehub({ url: 'ws://gw.test/ws/', token: 't',
                              WebSocket: FakeSocket, random: () => 0 });
    const states = [];

    hub.on('state', () => {
        throw new Error('faulty listener');
    });
    hub.on('state', (s) => states.push(s));
    hub.connect();
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status());
    FakeSocket.last().serverClose(1001);
    t.mock.timers.tick(250);
    hub.close();
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting',
                              'connecting', 'closed']);
    assert.equal(console.error.mock.callCount(), 5);
});

test('register is sent after connection_status when clientType is set',
     (t) => {
    const { hub, ws } = connected(t, { clientType: 'gui',
                                    clientName: 'Desk 4' });
    const reg = ws.sentOfType('register')[0];

    assert.equal(reg.client_type, 'gui');
    assert.equal(reg.client_name, 'Desk 4');
    assert.equal(hub.session.client_id, 'pc-7');
    hub.close();
});

test('server errors without a ref reach the error event', (t) => {
    const { hub, ws } = connected(t);
    const errors = [];

    hub.on('error', (e) => errors.push([e.code, e.channel]));
    ws.serverSend({ type: 'error', code: 'forbidden', message: 'no',
                    channel: '$commands' });
    ws.onmessage({ data: 'not json' });
    assert.deepEqual(errors, [['forbidden', '$commands'],
                              ['bad_message', undefined]]);
    hub.close();
});

test('a WebSocket that cannot be built: retried, token kept out of errors',
     (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    let built = 0;

    class Refusing {
        constructor(url) {
            built++;
            throw new SyntaxError('invalid URL ' + url);
        }
    }

    const hub = new Wirehub({ url: 'ws://gw.test/ws/', token: 'secret-jwt',
                              WebSocket: Refusing, random: () => 0 });
    const errors = [];

    hub.on('error', (e) => errors.push(e.message));
    hub.connect();
    assert.equal(hub.state, 'reconnecting');
    t.mock.timers.tick(250);
    assert.equal(built, 2);
    assert.equal(errors.length, 2);
    assert.ok(errors.every((m) => !m.includes('secret-jwt')), errors[0]);
    hub.close();
});

/* an unsigned JWT with this exp: the client reads the claim only */
function jwtWithExp(exp, n) {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

    return b64({ alg: 'HS256' }) + '.' + b64({ sub: 'pc-7', exp, n }) + '.sig';
}

test('subscription states: pending, active, resuming, active, closed',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
    const sub = hub.subscribe('sensors/V1');
    const states = [];

    sub.onState((s) => states.push(s));
    assert.equal(sub.state, 'pending');
    ws.serverSend({ type: 'subscribed', channel: 'sensors/V1', id: 4,
                    epoch: 'e1', recovered: true,
                    ref: ws.sentOfType('subscribe')[0].ref });
    assert.equal(sub.state, 'active');
    assert.deepEqual(await sub.ready, { type: 'subscribed',
        channel: 'sensors/V1', id: 4, epoch: 'e1', recovered: true,
        ref: ws.sentOfType('subscribe')[0].ref });

    ws.serverClose(1013);
    assert.equal(sub.state, 'resuming');
    t.mock.timers.tick(250);
    FakeSocket.last().serverOpen();
    FakeSocket.last().serverSend(status('s-2'));
    FakeSocket.last().serverSend({ type: 'subscribed', channel: 'sensors/V1',
                                   id: 4, epoch: 'e1', recovered: true });
    sub.unsubscribe();
    assert.deepEqual(states, ['active', 'resuming', 'active', 'closed']);
    hub.close();
});

test('per-type handlers and "*", and off()', (t) => {
    const { hub, ws } = connected(t);
    const sub = hub.subscribe('sensors/V1');
    const got = [];
    const off = sub.on('sensor_reading', (m) => got.push('r' + m.id));

    sub.on('alarm', (m) => got.push('a' + m.id));
    sub.on('*', (m) => got.push('*' + m.id));
    ws.serverSend({ type: 'subscribed', channel: 'sensors/V1', id: 0,
                    epoch: 'e', recovered: true });
    ws.serverSend(reading('sensors/V1', 1, 'e', 40));
    ws.serverSend({ type: 'alarm', channel: 'sensors/V1', id: 2,
                    epoch: 'e', data: {} });
    off();
    ws.serverSend(reading('sensors/V1', 3, 'e', 41));
    assert.deepEqual(got, ['r1', '*1', 'a2', '*2', '*3']);
    hub.close();
});

test('a refused subscription closes and rejects ready; unavailable waits',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    const { hub, ws } = connected(t, { random: () => 0 });
    const denied = hub.subscribe('$commands');
    const later = hub.subscribe('jobs');
    const errors = [];

    hub.on('error', (e) => errors.push(e.code));
    ws.serverSend({ type: 'error', code: 'forbidden', message: 'no',
                    channel: '$commands',
                    ref: ws.sentOfType('subscribe')[0].ref });
    assert.equal(denied.state, 'closed');
    await assert.rejects(denied.ready, { code: 'forbidden',
                                         channel: '$commands' });

    ws.serverSend({ type: 'error', code: 'unavailable', message: 'away',
                    channel: 'jobs',
                    ref: ws.sentOfType('subscribe')[1].ref });
    assert.equal(later.state, 'pending');
    t.mock.timers.tick(500);
    assert.deepEqual(ws.sentOfType('subscribe')[2].channels, ['jobs']);
    assert.deepEqual(errors, ['forbidden', 'unavailable']);

    /* a whole subscribe dropped by the message rate is sent again */
    ws.serverSend({ type: 'error', code: 'rate_limited', message: 'slow',
                    ref: ws.sentOfType('subscribe')[2].ref });
    t.mock.timers.tick(500);
    assert.deepEqual(ws.sentOfType('subscribe')[3].channels, ['jobs']);
    hub.close();
    await assert.rejects(later.ready, { code: 'closed' });
});

test('close codes: 4403 and 4408 final, 4409 waits retry_after, 1008 and '
     + '1013 back off, 4401 without getToken ends', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });

    for (const [code, reason, reconnectAt] of [
        [4403, 'client deleted', null],
        [4408, 'replaced by a newer connection', null],
        [4401, 'token expired', null],
        [4409, 'retry_after=7', 7000],
        [4409, 'retry_after=0', 0],
        [1008, 'message rate exceeded', 250],
        [1013, '', 250]
    ]) {
        const { hub, FakeSocket, ws } = connected(t, { random: () => 0 });
        const sub = hub.subscribe('a');
        const what = code + ' ' + reason;
        const subStates = [];

        sub.onState((s) => subStates.push(s));
        ws.serverSend({ type: 'subscribed', channel: 'a', id: 0,
                        epoch: 'e', recovered: true });

        ws.serverClose(code, reason);
        if (reconnectAt === null) {
            assert.equal(hub.state, 'closed', what);
            assert.deepEqual(subStates, ['active', 'closed'], what);
            t.mock.timers.tick(600000);
            assert.equal(FakeSocket.sockets.length, 1, what);
            continue;
        }
        assert.equal(hub.state, 'reconnecting', what);
        assert.deepEqual(subStates, ['active', 'resuming'], what);
        if (reconnectAt > 0) {
            t.mock.timers.tick(reconnectAt - 1);
            assert.equal(FakeSocket.sockets.length, 1, what);
        }
        t.mock.timers.tick(1);
        assert.equal(FakeSocket.sockets.length, 2, what);
        hub.close();
    }
});

test('getToken is asked again before exp and refresh keeps the connection',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1000000 });

    const FakeSocket = fakeSocketClass();
    const now = () => Math.floor(Date.now() / 1000);
    let n = 0;
    const hub = new Wirehub('ws://gw.test/ws/', {
        WebSocket: FakeSocket, refreshMargin: 60000,
        heartbeatInterval: 2e9,
        getToken: () => jwtWithExp(now() + (n++ === 0 ? 600 : 3600), n)
    });

    t.after(() => hub.close());
    await flush();
    const ws = FakeSocket.last();

    ws.serverOpen();
    ws.serverSend(status());
    assert.equal(n, 1);

    /* 600 s token: asked again 60 s before exp */
    t.mock.timers.tick(539999);
    await flush();
    assert.equal(n, 1);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(n, 2);
    const msg = ws.sentOfType('refresh')[0];

    assert.equal(Wirehub.tokenExpiry(msg.token), now() + 3600);
    ws.serverSend({ type: 'refreshed', expires: now() + 3600,
                    ref: msg.ref });
    await flush();

    /* the next one from `expires`, the server's word */
    t.mock.timers.tick(3540000);
    await flush();
    assert.equal(n, 3);
    assert.equal(ws.sentOfType('refresh').length, 2);
    assert.equal(FakeSocket.sockets.length, 1, 'never reconnected');

    /* half way for a short token, the margin before exp for a long one */
    assert.equal(Wirehub.refreshDelay(100, 40000, 60000), 30000);
    assert.equal(Wirehub.refreshDelay(1000, 0, 60000), 940000);
    hub.close();
});

test('connection_status exp schedules getToken for an opaque token',
     async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 2000000 });

    const FakeSocket = fakeSocketClass();
    const now = () => Math.floor(Date.now() / 1000);
    let n = 0;
    const hub = new Wirehub('ws://gw.test/ws/', {
        WebSocket: FakeSocket, refreshMargin: 60000,
        heartbeatInterval: 2e9,
        getToken: () => 'opaque-' + (++n)
    });

    t.after(() => hub.close());
    await flush();
    const ws = FakeSocket.last();

    ws.serverOpen();
    const st = status();
    st.data.exp = now() + 300;      /* the token's exp, as the server says */
    ws.serverSend(st);
    assert.equal(n, 1);

    /* 300 s session, 60 s margin: asked again at 240 s, not before */
    t.mock.timers.tick(239999);
    await flush();
    assert.equal(n, 1);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(n, 2);
    assert.equal(ws.sentOfType('refresh')[0].token, 'opaque-2');
    assert.equal(FakeSocket.sockets.length, 1, 'never reconnected');
    hub.close();
});

test('rpc resolves with rpc_result data, rejects rpc_failed', async (t) => {
    const { hub, ws } = connected(t);
    const ok = hub.rpc('stats', { detail: true });
    const bad = hub.rpc('deploy');
    const [m1, m2] = ws.sentOfType('rpc');

    assert.deepEqual([m1.method, m1.data], ['stats', { detail: true }]);
    assert.deepEqual([m2.method, m2.data], ['deploy', {}]);
    ws.serverSend({ type: 'rpc_result', ref: m1.ref,
                    data: { connections: 3 } });
    ws.serverSend({ type: 'error', code: 'rpc_failed', status: 502,
                    message: 'backend answered 502', ref: m2.ref });
    assert.deepEqual(await ok, { connections: 3 });
    await assert.rejects(bad, { code: 'rpc_failed', status: 502 });
    hub.close();
});

test('tokenExpiry reads the exp claim, null for anything else', () => {
    assert.equal(Wirehub.tokenExpiry(jwtWithExp(1767225600)), 1767225600);
    assert.equal(Wirehub.tokenExpiry('not-a-jwt'), null);
    assert.equal(Wirehub.tokenExpiry('a.b.c'), null);
});
