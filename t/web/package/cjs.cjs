/* require() of the installed package: prints what it found */
const Wirehub = require('wirehub');
const { Subscription, WirehubError } = require('wirehub');

const client = new Wirehub('ws://127.0.0.1:9/ws/', {
    token: 't', autoConnect: false, WebSocket: class {}
});
const sub = client.subscribe('a/b');

console.log(JSON.stringify({
    kind: 'cjs', type: typeof Wirehub, same: Wirehub.default === Wirehub,
    sub: sub instanceof Subscription, state: sub.state,
    error: new WirehubError('x').code,
    file: require.resolve('wirehub').split('node_modules/')[1]
}));
