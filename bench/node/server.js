'use strict';
// What a team writes by hand instead of Wirehub: Node.js + ws, a JWT check
// with node:crypto (HS256, ES256), channels, fan-out, and a publish API.
// It speaks the subset of Wirehub's protocol the benchmark uses.
//   node server.js PORT HS256_SECRET_FILE [ES256_PUBLIC_PEM]
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const { WebSocketServer } = require('ws');

const [port, secretFile, ecFile] = process.argv.slice(2);
const secret = fs.readFileSync(secretFile).toString().replace(/\n$/, '');
const ecKey = ecFile ? crypto.createPublicKey(fs.readFileSync(ecFile)) : null;
const channels = new Map();             // name -> Set of sockets
const lastId = new Map();               // name -> last message id
const b64 = (s) => Buffer.from(s, 'base64url');

function verify(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(b64(parts[0]));
    const input = parts[0] + '.' + parts[1];
    const sig = b64(parts[2]);
    let ok = false;
    if (header.alg === 'HS256') {
      const mac = crypto.createHmac('sha256', secret).update(input).digest();
      ok = mac.length === sig.length && crypto.timingSafeEqual(mac, sig);
    } else if (header.alg === 'ES256' && ecKey) {
      ok = crypto.verify('sha256', Buffer.from(input),
        { key: ecKey, dsaEncoding: 'ieee-p1363' }, sig);
    }
    const claims = ok && JSON.parse(b64(parts[1]));
    if (!claims || typeof claims.sub !== 'string' ||
        typeof claims.workspace !== 'string' ||
        !(claims.exp > Date.now() / 1000)) return null;
    return claims;
  } catch (e) {
    return null;
  }
}

function tokenOf(req) {
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Bearer ')) return auth.slice(7);
  return new URL(req.url, 'http://x').searchParams.get('token');
}

const key = (claims, ch) => claims.workspace + '\0' + ch;
const send = (ws, msg) => ws.send(JSON.stringify(msg));
const now = () => new Date().toISOString();

function onMessage(ws, raw) {
  let msg;
  try { msg = JSON.parse(raw); } catch (e) { msg = null; }
  if (!msg || typeof msg.type !== 'string') {
    return send(ws, { type: 'error', code: 'bad_request' });
  }
  if (msg.type === 'ping') return send(ws, { type: 'pong', timestamp: now() });
  if (msg.type !== 'subscribe' || !Array.isArray(msg.channels)) {
    return send(ws, { type: 'error', code: 'bad_request', ref: msg.ref });
  }
  for (const ch of msg.channels) {
    const k = key(ws.claims, String(ch));
    if (!channels.has(k)) channels.set(k, new Set());
    channels.get(k).add(ws);
    ws.subs.add(k);
    send(ws, { type: 'subscribed', channel: ch, id: lastId.get(k) || 0 });
  }
}

function publish(req, res, ch) {
  const claims = verify(tokenOf(req));
  if (!claims || claims.role !== 'service') {
    res.writeHead(401).end();
    return;
  }
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    let msg;
    try { msg = JSON.parse(body); } catch (e) { msg = null; }
    if (!msg || typeof msg.type !== 'string') return res.writeHead(400).end();
    const k = key(claims, ch);
    const id = (lastId.get(k) || 0) + 1;
    lastId.set(k, id);
    const text = JSON.stringify({ type: msg.type, channel: ch, id,
      data: msg.data, timestamp: now() });
    for (const ws of channels.get(k) || []) ws.send(text);
    res.writeHead(202, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id }));
  });
}

const server = http.createServer((req, res) => {
  const m = /^\/api\/channels\/(.+)\/messages$/.exec(req.url);
  if (req.method === 'POST' && m) return publish(req, res, m[1]);
  res.writeHead(404).end();
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const claims = verify(tokenOf(req));
  if (!claims) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.claims = claims;
    ws.subs = new Set();
    ws.on('message', (raw) => onMessage(ws, raw));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => ws.subs.forEach((k) => channels.get(k).delete(ws)));
    send(ws, { type: 'connection_status', timestamp: now(),
      data: { status: 'connected', client_id: claims.sub,
        workspace: claims.workspace } });
  });
});
server.listen(Number(port), '127.0.0.1');
