/* import of the installed package: prints what it found */
import Wirehub, { Subscription, WirehubError } from 'wirehub';
import { createRequire } from 'node:module';

const client = new Wirehub('ws://127.0.0.1:9/ws/', {
    token: 't', autoConnect: false, WebSocket: class {}
});
const sub = client.subscribe('a/b');

console.log(JSON.stringify({
    kind: 'esm', type: typeof Wirehub, same: Wirehub.Wirehub === Wirehub,
    sub: sub instanceof Subscription, state: sub.state,
    error: new WirehubError('x').code,
    file: import.meta.resolve
        ? (await import.meta.resolve('wirehub')).split('node_modules/')[1]
        : null,
    cjsOther: createRequire(import.meta.url)('wirehub') !== Wirehub
}));
