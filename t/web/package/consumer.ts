/*
 * A TypeScript consumer of the wirehub package: t/test_web_package.py
 * compiles it with `tsc --noEmit --strict` against the installed tarball.
 * It is never run; what it checks is that the declarations type it.
 */

import Wirehub, { Subscription, WirehubError, ChannelMessage, Published,
                  SubscriptionState, Session } from 'wirehub';

interface Reading {
    sensor_id: string;
    moisture: number;
}

async function fetchToken(): Promise<string> {
    return 'header.payload.signature';
}

async function main(): Promise<void> {
    const client = new Wirehub('wss://hub.example/ws/', {
        getToken: fetchToken,
        clientType: 'dashboard',
        refreshMargin: 30000
    });

    client.on('open', (session: Session) => {
        const exp: number | undefined = session.exp;
        console.log(session.client_id, exp);
    });
    client.on('closed', (detail) => console.log(detail.code, detail.final));

    const sub: Subscription = client.subscribe('sensors/V1',
                                               { since: { id: 40,
                                                          epoch: 'k3x9a2bq' } });
    const off = sub.on<Reading>('sensor_reading',
                                (msg: ChannelMessage<Reading>) => {
        const m: number = msg.data.moisture;
        console.log(m, msg.id, msg.epoch);
    });
    sub.on('*', (msg) => console.log(msg.type));
    sub.onState((state: SubscriptionState, err: WirehubError | null) => {
        console.log(state, err ? err.code : '');
    });

    const head = await sub.ready;
    const last: number = head.id;
    console.log(last, head.recovered);

    try {
        const done: Published = await client.publish('chat/room1',
                                                     'chat_message',
                                                     { text: 'hi' });
        console.log(done.id);
        const stats = await client.rpc<{ connections: number }>(
            'stats', { detail: true }, { timeout: 5000 });
        console.log(stats.connections);
    } catch (err) {
        if (err instanceof WirehubError) {
            console.log(err.code);
        }
    }

    client.onCommand(async (cmd) => ({ ran: cmd.command }));
    off();
    sub.unsubscribe();
    client.close();

    /* the options-only form, and the fixed-token form */
    new Wirehub({ url: 'ws://127.0.0.1/ws/', token: 'abc',
                  autoConnect: false }).connect();
}

main();
