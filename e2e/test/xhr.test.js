// pusher-js's HTTP fallback transports (xhr_streaming, xhr_polling) against
// the real binary: the Node build of pusher-js and Laravel Echo forced onto
// each of them, side by side with WebSocket clients (socket ids, presence
// lists and member_added/removed both ways, client events both ways, HTTP
// API events byte-identical to the socket's with their history positions,
// unsubscribe, more than 256 KiB of events, disconnect → member_removed after
// server.xhr_session_timeout, 4001); the raw framing (o, a[…], c[code,
// "reason"]) with node:http and fetch: refusals (4001, 4004, 4007, 4009),
// 1009, a slow poller cut off with 4100, 4200 at shutdown, 4201 for a
// poller that never pongs; and the fallback for real: a proxy that refuses
// WebSocket upgrades, with pusher-js's default transport order.

import assert from 'node:assert/strict';
import http from 'node:http';
import { describe } from 'node:test';
import {
  APPS, WAIT, Echo, PusherClient, test, track, useHerald, startHerald, useAuthServer, rawConnect, dataOf,
  isEvent, subscribePrivate, subscribePresence, publisher, signedFetch, waitFor, withTimeout,
  pusherClient, pusherSubscribe, waitState, nextOn, echoClient, clientOptions, uid, SSEReader,
} from '../lib/herald.js';

// A small xhr_session_timeout, so that a client that goes away without a
// word (pusher.disconnect() over HTTP) is seen leaving within the test.
const SESSION_TIMEOUT_MS = 1000;
const h = useHerald({ server: { xhr_session_timeout: `${SESSION_TIMEOUT_MS}ms` } });
const auth = useAuthServer(h);
// Default settings (xhr_session_timeout 10 s): the slow poller must be able
// to stay away while thousands of events are published.
const slow = useHerald();

const TRANSPORTS = ['xhr_streaming', 'xhr_polling'];
const MAIN = APPS.main;

// ---------------------------------------------------------------------------
// Helpers

/** pusher-js options sending its HTTP transports to `hh` (or a proxy). */
function httpOptions(hh, transports) {
  return {
    wsHost: '127.0.0.1', wsPort: hh.port, wssPort: hh.port,
    httpHost: '127.0.0.1', httpPort: hh.port, httpsPort: hh.port,
    forceTLS: false, enabledTransports: transports,
  };
}

/** The transport a connected pusher-js client is using ("ws", "xhr_streaming", …). */
const transportOf = (p) => p.connection.connection?.transport?.name;

/**
 * A pusher-js client forced onto `transport`, connected; `p.wire` collects
 * the raw text of every Pusher message it receives from then on (the frame
 * as the server sent it, with epoch/offset, before pusher-js decodes it).
 */
async function xhrClient(transport, { app = MAIN, headers, hh = h } = {}) {
  const p = await pusherClient(hh, app, { auth, headers, ...httpOptions(hh, [transport]) });
  assert.equal(transportOf(p), transport, 'pusher-js is connected over the forced transport');
  p.wire = [];
  p.connection.connection.transport.bind('message', (m) => p.wire.push(m.data));
  return p;
}

/** Publishes through the signed HTTP API and asserts 200. */
async function publish(channel, name, data, hh = h) {
  const r = await signedFetch(hh, MAIN, 'POST', `/apps/${MAIN.id}/events`, { body: { name, channel, data: typeof data === 'string' ? data : JSON.stringify(data) } });
  assert.equal(r.status, 200, r.text);
}

/** Subscription count of a channel as the HTTP API reports it. */
async function subscriptionCount(channel) {
  const r = await signedFetch(h, MAIN, 'GET', `/apps/${MAIN.id}/channels/${channel}`, { params: { info: 'subscription_count' } });
  assert.equal(r.status, 200, r.text);
  return r.body.subscription_count;
}

/** User ids of a presence channel as the HTTP API reports them. */
async function presenceUsers(channel) {
  const r = await signedFetch(h, MAIN, 'GET', `/apps/${MAIN.id}/channels/${channel}/users`);
  assert.equal(r.status, 200, r.text);
  return r.body.users.map((u) => u.id).sort();
}

/** Resolves with the first n `event`s on a pusher-js channel, in order. */
function collect(ch, event, n, timeout = WAIT) {
  const got = [];
  return withTimeout(new Promise((resolve) => {
    ch.bind(event, (d) => { got.push(d); if (got.length === n) resolve(got); });
  }), timeout, `${n} "${event}" events on ${ch.name}`);
}

/** pusher-js presence members as {id: info}. */
function membersOf(ch) {
  const m = {};
  ch.members.each((x) => { m[x.id] = x.info; });
  return m;
}

/** The history position (epoch, offset) at the end of a raw frame's text. */
function positionOf(text) {
  const m = /,"epoch":"([0-9A-Za-z_.-]+)","offset":(\d+)\}$/.exec(text);
  assert.ok(m, `frame carries its position as its last two fields: ${text}`);
  return { epoch: m[1], offset: Number(m[2]) };
}

const echoSubscribed = (channel, what) => withTimeout(new Promise((resolve, reject) => {
  channel.subscribed(resolve);
  channel.error((e) => reject(new Error(`${what}: ${JSON.stringify(e)}`)));
}), WAIT, `Echo subscription to ${what}`);

// -- raw HTTP sessions -------------------------------------------------------

const QUERY = 'protocol=7&client=js&version=8.4.0&flash=false';
let sessionSeq = 0;

/** A name for a new HTTP session ({server}/{session}) below `prefix`. */
function sessionBase(hh, key = MAIN.key, { prefix = '/pusher' } = {}) {
  sessionSeq += 1;
  return `${hh.httpURL}${prefix}/app/${encodeURIComponent(key)}/${sessionSeq % 1000}/${uid('s')}`;
}

/** POSTs with fetch and reads the whole answer (held polls included). */
async function post(url, body) {
  const res = await fetch(url, {
    method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(WAIT),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * A raw xhr_polling session, as pusher-js drives it: `poll()` is one
 * receive request (POST …/xhr), `send(...msgs)` one xhr_send (a JSON array
 * of messages, each a Pusher frame as a JSON string).
 */
function rawSession(hh, key = MAIN.key, opts = {}) {
  const base = sessionBase(hh, key, opts);
  let n = 0;
  return {
    base,
    poll: () => post(`${base}/xhr?${QUERY}&t=${Date.now()}&n=${++n}`),
    send: (...msgs) => post(`${base}/xhr_send?t=${Date.now()}&n=${++n}`, JSON.stringify(msgs.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))))),
  };
}

/** Splits an answer into its frames (lines), each ending in "\n". */
function linesOf(text) {
  assert.ok(text.endsWith('\n'), `every frame ends with a newline: ${JSON.stringify(text)}`);
  return text.slice(0, -1).split('\n');
}

/** The messages (Pusher frames' text) of an "a[…]" line. */
function batchOf(line) {
  assert.equal(line[0], 'a', `an "a" frame: ${line}`);
  const msgs = JSON.parse(line.slice(1));
  assert.ok(Array.isArray(msgs) && msgs.every((m) => typeof m === 'string'), `a JSON array of strings: ${line}`);
  return msgs;
}

/** [code, reason] of a "c[…]" line. */
function closeOf(line) {
  assert.equal(line[0], 'c', `a "c" frame: ${line}`);
  const c = JSON.parse(line.slice(1));
  assert.ok(Array.isArray(c) && c.length === 2 && Number.isInteger(c[0]) && typeof c[1] === 'string', `c[code,"reason"]: ${line}`);
  return c;
}

/** Polls until `n` messages came; returns them (and the raw answers). */
async function pollMessages(s, n) {
  const msgs = [];
  const texts = [];
  while (msgs.length < n) {
    const r = await s.poll();
    assert.equal(r.status, 200, r.text);
    texts.push(r.text);
    for (const line of linesOf(r.text)) msgs.push(...batchOf(line));
  }
  assert.equal(msgs.length, n, `exactly ${n} messages: ${texts.join('')}`);
  return { msgs, texts };
}

/** Opens a raw polling session: "o", then a[connection_established]; returns it with its socket id. */
async function openSession(hh, key = MAIN.key, opts = {}) {
  const s = rawSession(hh, key, opts);
  const o = await s.poll();
  assert.equal(o.status, 200, o.text);
  assert.equal(o.text, 'o\n');
  const { msgs } = await pollMessages(s, 1);
  const est = JSON.parse(msgs[0]);
  assert.equal(est.event, 'pusher:connection_established', msgs[0]);
  s.established = msgs[0];
  s.socketId = JSON.parse(est.data).socket_id;
  return s;
}

/** A raw xhr_streaming receive request kept open (see SSEReader). */
const TextStream = class extends SSEReader {
  constructor(url, { localAddress } = {}) {
    super(url, { 'content-type': 'application/json' }, { method: 'POST', localAddress, body: '' });
  }
};

const lineCount = (n) => (t) => t.split('\n').length > n;

// -- a proxy that refuses WebSocket upgrades ----------------------------------

/**
 * An HTTP proxy in front of `target` that passes plain requests (streamed
 * both ways, as nginx with buffering off does) and refuses WebSocket
 * upgrades the way a misconfigured nginx does: it forwards the request
 * without its Upgrade/Connection headers, so Herald answers 426, and that
 * answer goes back instead of a 101. `log` records every request.
 */
async function upgradeRefusingProxy(target) {
  const log = [];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, upgrade: false };
    log.push(entry);
    const up = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (ures) => {
      entry.status = ures.statusCode;
      res.writeHead(ures.statusCode, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket) => {
    const entry = { method: req.method, url: req.url, upgrade: true };
    log.push(entry);
    socket.on('error', () => {});
    const headers = { ...req.headers };
    delete headers.upgrade;
    delete headers.connection;
    const up = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers, agent: false }, (ures) => {
      const chunks = [];
      ures.on('data', (c) => chunks.push(c));
      ures.on('end', () => {
        entry.status = ures.statusCode;
        const body = Buffer.concat(chunks);
        socket.end(`HTTP/1.1 ${ures.statusCode} ${ures.statusMessage}\r\nContent-Type: ${ures.headers['content-type'] ?? 'text/plain'}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      });
    });
    up.on('error', () => { entry.status = 502; socket.destroy(); });
    up.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const p = {
    port: server.address().port,
    log,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  return track(p);
}

// ---------------------------------------------------------------------------

for (const T of TRANSPORTS) {
  describe(`pusher-js over ${T}, side by side with WebSocket clients`, () => {
    test('connects: socket_id like a socket\'s, transport, connection_established over HTTP', async () => {
      const ws = await pusherClient(h, MAIN, httpOptions(h, ['ws']));
      const p = await xhrClient(T);
      assert.match(p.connection.socket_id, /^\d+\.\d+$/);
      assert.match(ws.connection.socket_id, /^\d+\.\d+$/);
      assert.notEqual(p.connection.socket_id, ws.connection.socket_id);
      assert.equal(transportOf(ws), 'ws');
      // pusher-js took the timeout the server announced (activity_timeout 30).
      assert.equal(p.connection.activityTimeout, ws.connection.activityTimeout);
      assert.equal(p.connection.state, 'connected');
      // Still connected after a round trip (pusher-js's own ping over xhr_send).
      const channel = uid('public-hello-');
      await pusherSubscribe(p, channel);
      assert.equal(await subscriptionCount(channel), 1);
    });

    test('public channel: subscription_succeeded; HTTP API events in order, byte-identical to the WebSocket\'s, epoch/offset +1; unsubscribe stops delivery', async () => {
      const channel = uid('public-orders-');
      const control = uid('public-control-');
      const ws = await rawConnect(h, MAIN);
      const wsSub = await ws.subscribe(channel);
      const p = await xhrClient(T);
      await pusherSubscribe(p, control);
      const ch = await pusherSubscribe(p, channel);
      assert.equal(ch.subscribed, true);
      // The subscription_succeeded pusher-js got is the WebSocket's, byte for byte.
      assert.ok(p.wire.includes(ws.raw.at(-1)), `xhr subscription_succeeded ${JSON.stringify(p.wire)} vs ws ${ws.raw.at(-1)}`);
      assert.deepEqual(wsSub, { event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });

      const got = collect(ch, 'order.shipped', 3);
      for (const i of [1, 2, 3]) await publish(channel, 'order.shipped', { id: i, note: `n°${i} "q"` });
      assert.deepEqual(await got, [1, 2, 3].map((i) => ({ id: i, note: `n°${i} "q"` })));
      for (let i = 0; i < 3; i++) await ws.nextEvent('order.shipped', channel);

      const wsText = ws.raw.filter((t) => t.includes('order.shipped'));
      const xhrText = p.wire.filter((t) => t.includes('order.shipped'));
      assert.deepEqual(xhrText, wsText, 'the same frames over HTTP as over the socket');
      const pos = xhrText.map(positionOf);
      assert.deepEqual(pos.map((x) => x.offset), [1, 2, 3]);
      assert.ok(pos.every((x) => x.epoch === pos[0].epoch));

      // Unsubscribe: the server drops the subscription; later events do not come.
      p.unsubscribe(channel);
      await waitFor(async () => (await subscriptionCount(channel)) === 1, { what: 'subscription_count 1 (the socket) after unsubscribe' });
      await publish(channel, 'after', { late: true });
      await ws.nextEvent('after', channel);
      const marker = nextOn(p.channel(control), 'marker');
      await publish(control, 'marker', {});
      await marker;
      assert.ok(!p.wire.some((t) => t.includes('"after"')), `no event after unsubscribe: ${p.wire.join(' | ')}`);
    });

    test('private channel: client events both ways (xhr → ws, ws → xhr), never echoed', async () => {
      const channel = uid('private-chat-');
      const ws = await rawConnect(h, MAIN);
      await subscribePrivate(ws, MAIN, channel);
      const p = await xhrClient(T);
      const ch = await pusherSubscribe(p, channel);

      assert.equal(ch.trigger('client-typing', { who: 'xhr', text: 'héllo' }), true);
      const atWs = await ws.nextEvent('client-typing', channel);
      assert.deepEqual(atWs, { event: 'client-typing', channel, data: { who: 'xhr', text: 'héllo' } });

      const atXhr = nextOn(ch, 'client-reply');
      ws.trigger(channel, 'client-reply', { who: 'ws' });
      assert.deepEqual(await atXhr, { who: 'ws' });

      const marker = nextOn(ch, 'marker');
      await publish(channel, 'marker', {});
      await marker;
      assert.ok(!p.frames.some((f) => f.event === 'client-typing'), 'the xhr sender does not get its own client event');
      assert.ok(!p.frames.some((f) => f.event === 'pusher:error'), JSON.stringify(p.frames));
      assert.ok(!ws.seen(isEvent('client-reply')), 'nor the socket its own');
    });

    test('presence: member lists and member_added/removed across xhr and ws, both ways', async () => {
      const channel = uid('presence-room-');
      const ws1 = await rawConnect(h, MAIN);
      await subscribePresence(ws1, MAIN, channel, 'ws-1', { name: 'Wes' });
      const p = await xhrClient(T, { headers: { 'X-User-Id': 'xhr-1', 'X-User-Info': JSON.stringify({ name: 'Xena' }) } });
      const ch = await pusherSubscribe(p, channel);
      assert.deepEqual(membersOf(ch), { 'ws-1': { name: 'Wes' }, 'xhr-1': { name: 'Xena' } });
      assert.equal(ch.members.count, 2);
      assert.equal(ch.members.me.id, 'xhr-1');
      const added = await ws1.nextEvent('pusher_internal:member_added', channel);
      assert.deepEqual(added, { event: 'pusher_internal:member_added', channel, data: JSON.stringify({ user_id: 'xhr-1', user_info: { name: 'Xena' } }) });

      // A socket joins: the xhr client is told, and is in the socket's list.
      const addedAtXhr = nextOn(ch, 'pusher:member_added');
      const ws2 = await rawConnect(h, MAIN);
      const sub2 = await subscribePresence(ws2, MAIN, channel, 'ws-2', { name: 'Wil' });
      assert.deepEqual(dataOf(sub2).presence.hash, { 'ws-1': { name: 'Wes' }, 'xhr-1': { name: 'Xena' }, 'ws-2': { name: 'Wil' } });
      assert.deepEqual(await addedAtXhr, { id: 'ws-2', info: { name: 'Wil' } });

      // The socket leaves: the xhr client is told.
      const removedAtXhr = nextOn(ch, 'pusher:member_removed');
      await ws2.close();
      assert.deepEqual(await removedAtXhr, { id: 'ws-2', info: { name: 'Wil' } });
      assert.deepEqual(membersOf(ch), { 'ws-1': { name: 'Wes' }, 'xhr-1': { name: 'Xena' } });

      // The first socket saw the second come and go, like the xhr client.
      const ofUser = (event, id) => (f) => f.event === event && f.channel === channel && dataOf(f).user_id === id;
      await ws1.next(ofUser('pusher_internal:member_added', 'ws-2'));
      await ws1.next(ofUser('pusher_internal:member_removed', 'ws-2'));

      // The xhr client unsubscribes: the socket is told at once.
      p.unsubscribe(channel);
      const removed = await ws1.next(ofUser('pusher_internal:member_removed', 'xhr-1'));
      assert.deepEqual(removed, { event: 'pusher_internal:member_removed', channel, data: JSON.stringify({ user_id: 'xhr-1' }) });
      assert.deepEqual(await presenceUsers(channel), ['ws-1']);
    });

    test('more than 256 KiB of events: every one arrives once, in order (xhr_streaming: across pusher-js\'s stream reopenings on the same session)', async () => {
      const channel = uid('public-big-');
      const p = await xhrClient(T);
      const ch = await pusherSubscribe(p, channel);
      // pusher-js reopens its xhr_streaming request once it has read more
      // than 256 KiB (HTTPRequest MAX_BUFFER_LENGTH, "buffer_too_long"),
      // aborting the old one; the session carries on over the new one.
      const sock = p.connection.connection.transport.socket;
      let reopened = 0;
      const reconnect = sock.reconnect.bind(sock);
      sock.reconnect = () => { reopened += 1; reconnect(); };

      const N = 160;
      const pad = 'x'.repeat(9000); // ~9 KiB a frame: ~1.4 MiB in all
      const got = [];
      ch.bind('big', (d) => got.push(d.i));
      const done = nextOn(ch, 'done', WAIT * 2);
      const sdk = publisher(h, MAIN);
      for (let i = 0; i < N; i++) await sdk.trigger(channel, 'big', { i, pad });
      await sdk.trigger(channel, 'done', {});
      await done;
      if (T === 'xhr_streaming') assert.ok(reopened >= 5, `the stream was reopened ${reopened} times`);
      const missing = [];
      for (let i = 0; i < N; i++) if (!got.includes(i)) missing.push(i);
      assert.deepEqual(missing, [], `events lost (stream reopened ${reopened} times): ${missing.join(', ')}`);
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i), 'each once, in order');
      assert.equal(p.connection.state, 'connected');
    });

    test(`pusher.disconnect(): member_removed seen by the socket once xhr_session_timeout (${SESSION_TIMEOUT_MS} ms) passed, as for a dropped socket`, async () => {
      const channel = uid('presence-gone-');
      const ws = await rawConnect(h, MAIN);
      await subscribePresence(ws, MAIN, channel, 'ws-1', { name: 'Wes' });
      const p = await xhrClient(T, { headers: { 'X-User-Id': 'xhr-gone' } });
      await pusherSubscribe(p, channel);
      await ws.nextEvent('pusher_internal:member_added', channel);

      const t0 = Date.now();
      p.disconnect(); // over HTTP pusher-js just aborts its receive request: nothing tells the server
      await waitState(p, 'disconnected');
      assert.deepEqual(await presenceUsers(channel), ['ws-1', 'xhr-gone'], 'still a member right after the disconnect');
      const removed = await ws.nextEvent('pusher_internal:member_removed', channel, SESSION_TIMEOUT_MS + WAIT);
      const elapsed = Date.now() - t0;
      assert.deepEqual(dataOf(removed), { user_id: 'xhr-gone' });
      assert.ok(elapsed >= SESSION_TIMEOUT_MS * 0.8, `member_removed after ${elapsed} ms: not before the session timeout`);
      assert.ok(elapsed < SESSION_TIMEOUT_MS + 2000, `member_removed after ${elapsed} ms: soon after the session timeout`);
      assert.deepEqual(await presenceUsers(channel), ['ws-1']);
    });

    test('Laravel Echo (reverb broadcaster) over xhr: listen, private whisper both ways, presence here/joining/leaving', async () => {
      const echo = await echoClient(h, MAIN, {
        auth,
        headers: { 'X-User-Id': '7', 'X-Numeric-Id': '1', 'X-User-Info': '{"id":7,"name":"Echo"}' },
        ...httpOptions(h, [T]),
      });
      assert.equal(transportOf(echo.connector.pusher), T);
      assert.match(echo.socketId(), /^\d+\.\d+$/);

      // Public: an HTTP API event reaches the listener.
      const orders = echo.channel(uid('orders.'));
      await echoSubscribed(orders, 'orders');
      const shipped = withTimeout(new Promise((resolve) => orders.listen('.OrderShipped', resolve)), WAIT, 'OrderShipped via Echo');
      await publisher(h, MAIN).trigger(orders.name, 'OrderShipped', { order: { id: 7 } });
      assert.deepEqual(await shipped, { order: { id: 7 } });

      // Private: whisper to a socket and back.
      const room = uid('chat.');
      const priv = echo.private(room);
      await echoSubscribed(priv, `private-${room}`);
      const ws = await rawConnect(h, MAIN);
      await subscribePrivate(ws, MAIN, `private-${room}`);
      priv.whisper('typing', { name: 'Echo' });
      assert.deepEqual(await ws.nextEvent('client-typing', `private-${room}`), { event: 'client-typing', channel: `private-${room}`, data: { name: 'Echo' } });
      const whispered = withTimeout(new Promise((resolve) => priv.listenForWhisper('typing', resolve)), WAIT, 'whisper via Echo');
      ws.trigger(`private-${room}`, 'client-typing', { name: 'Wes' });
      assert.deepEqual(await whispered, { name: 'Wes' });

      // Presence: a socket joins and leaves.
      const lobby = uid('lobby.');
      const pres = echo.join(lobby);
      const here = withTimeout(new Promise((resolve) => pres.here(resolve)), WAIT, 'here()');
      const joining = withTimeout(new Promise((resolve) => pres.joining(resolve)), WAIT, 'joining()');
      const leaving = withTimeout(new Promise((resolve) => pres.leaving(resolve)), WAIT * 2, 'leaving()');
      assert.deepEqual(await here, [{ id: 7, name: 'Echo' }]);
      const member = await rawConnect(h, MAIN);
      await subscribePresence(member, MAIN, `presence-${lobby}`, '8', { id: 8, name: 'Wes' });
      assert.deepEqual(await joining, { id: 8, name: 'Wes' });
      await member.close();
      assert.deepEqual(await leaving, { id: 8, name: 'Wes' });
    });

    test('unknown app key: pusher-js gets 4001 and ends "disconnected", exactly as over a socket', async () => {
      const outcome = async (transports) => {
        const p = await pusherClient(h, { key: 'no-such-key' }, { connect: false, ...httpOptions(h, transports) });
        const errors = [];
        p.connection.bind('error', (e) => errors.push(e));
        const states = [];
        p.connection.bind('state_change', ({ current }) => states.push(current));
        await waitState(p, 'disconnected');
        return { code: errors[0]?.error?.data?.code, states, errors: errors.length };
      };
      const [overWs, overXhr] = await Promise.all([outcome(['ws']), outcome([T])]);
      assert.equal(overWs.code, 4001, JSON.stringify(overWs));
      assert.deepEqual(overXhr, overWs);
      assert.equal(overXhr.states.at(-1), 'disconnected');
      assert.ok(!overXhr.states.includes('connected'), JSON.stringify(overXhr.states));
    });
  });
}

// ---------------------------------------------------------------------------

describe('raw HTTP sessions: the framing pusher-js reads', () => {
  for (const prefix of ['/pusher', '']) {
    test(`polling on ${prefix}/app/{key}/…: o, a[connection_established], xhr_send → a[…] with the WebSocket's frames`, async () => {
      const ws = await rawConnect(h, MAIN);
      const s = rawSession(h, MAIN.key, { prefix });
      const open = await s.poll();
      assert.equal(open.status, 200);
      assert.equal(open.text, 'o\n');
      assert.equal(open.headers.get('content-type'), 'application/javascript; charset=UTF-8');
      assert.match(open.headers.get('cache-control'), /no-store/);

      const est = await s.poll();
      const [estMsg, ...more] = batchOf(est.text.slice(0, -1));
      assert.deepEqual(more, []);
      assert.equal(est.text, `a${JSON.stringify([estMsg])}\n`);
      const socketId = JSON.parse(JSON.parse(estMsg).data).socket_id;
      assert.match(socketId, /^\d+\.\d+$/);
      assert.equal(estMsg, ws.raw[0].replace(ws.socketId, socketId), 'connection_established as a socket gets it');

      // pusher:ping → pusher:pong, as on the socket.
      assert.equal((await s.send({ event: 'pusher:ping', data: {} })).status, 204);
      await ws.ping();
      assert.deepEqual((await pollMessages(s, 1)).msgs, [ws.raw.at(-1)]);

      // Subscribe through xhr_send; events of the HTTP API with their positions.
      const channel = uid('public-wire-');
      await ws.subscribe(channel);
      const sent = await s.send({ event: 'pusher:subscribe', data: { channel } });
      assert.equal(sent.status, 204, sent.text);
      assert.deepEqual((await pollMessages(s, 1)).msgs, [ws.raw.at(-1)]);
      await publish(channel, 'one', { n: 1 });
      await publish(channel, 'two', 'text "quoted" é \u2028');
      await ws.nextEvent('two', channel);
      const { msgs, texts } = await pollMessages(s, 2);
      assert.deepEqual(msgs, ws.raw.slice(-2));
      assert.deepEqual(msgs.map(positionOf).map((x) => x.offset), [1, 2]);
      for (const t of texts) for (const line of linesOf(t)) assert.match(line, /^a\[".*"\]$/);

      // pusher-js's heartbeat is an empty array; a malformed body is a 400.
      assert.equal((await s.send()).status, 204);
      const bad = await post(`${s.base}/xhr_send`, '{"event":"pusher:ping"}');
      assert.equal(bad.status, 400, bad.text);
      // The session is still there and in order.
      await s.send({ event: 'pusher:ping', data: {} });
      assert.deepEqual((await pollMessages(s, 1)).msgs, [ws.raw.find((t) => t.includes('pusher:pong'))]);
    });
  }

  test('streaming: one response carries o and then a[…] lines as they happen; a newer receive request replaces it (pusher-js\'s buffer_too_long reconnect)', async () => {
    const base = sessionBase(h);
    const first = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    const t1 = await first.until(lineCount(2));
    assert.equal(first.status, 200);
    assert.equal(first.headers['content-type'], 'application/javascript; charset=UTF-8');
    assert.equal(first.headers['x-accel-buffering'], 'no');
    const [o, estLine] = linesOf(t1);
    assert.equal(o, 'o');
    const est = JSON.parse(batchOf(estLine)[0]);
    assert.equal(est.event, 'pusher:connection_established');

    const channel = uid('public-stream-');
    const sent = await post(`${base}/xhr_send`, JSON.stringify([JSON.stringify({ event: 'pusher:subscribe', data: { channel } })]));
    assert.equal(sent.status, 204);
    await first.until((t) => t.includes('subscription_succeeded'));
    for (const i of [1, 2, 3]) await publish(channel, 'tick', { i });
    const t2 = await first.until((t) => (t.match(/tick/g) ?? []).length === 3);
    const lines = linesOf(t2);
    assert.ok(lines.slice(1).every((l) => /^a\[".*"\]$/.test(l)), JSON.stringify(t2));
    const ticks = lines.slice(1).flatMap(batchOf).map((m) => JSON.parse(m)).filter((f) => f.event === 'tick');
    assert.deepEqual(ticks.map((f) => JSON.parse(f.data).i), [1, 2, 3]);
    assert.deepEqual(ticks.map((f) => f.offset), [1, 2, 3]);

    // A second receive request for the session ends the first one, without
    // "o" (the session is the same), and gets what follows.
    const second = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    await first.waitEnd();
    assert.equal(first.text, t2, 'nothing more on the replaced stream');
    await publish(channel, 'tock', {});
    const t3 = await second.until((t) => t.includes('tock'));
    assert.equal(second.status, 200);
    assert.deepEqual(linesOf(t3).map((l) => l[0]), ['a']);
    assert.ok(!t3.startsWith('o'), t3);
  });

  test('streaming past 256 KiB: nothing more is written on a stream once its text passed 262,144 characters (where pusher-js stops reading it and reopens); the next receive request gets the rest', async () => {
    // pusher-js (HTTPRequest.isBufferTooLong) aborts its xhr_streaming
    // request as soon as it has read the response up to a frame boundary
    // and the response text is longer than MAX_BUFFER_LENGTH characters,
    // then opens a new receive request on the same session. Whatever the
    // server writes on the old request after that point is never read.
    const MAX = 256 * 1024;
    const base = sessionBase(h);
    const first = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    await first.until(lineCount(2));
    const channel = uid('public-long-');
    await post(`${base}/xhr_send`, JSON.stringify([JSON.stringify({ event: 'pusher:subscribe', data: { channel } })]));
    await first.until((t) => t.includes('subscription_succeeded'));
    const N = 80;
    const pad = 'é'.repeat(4500); // 4,500 characters, 9,000 bytes: the limit counts characters
    for (let i = 0; i < N; i++) await publish(channel, 'big', { i, pad });
    await publish(channel, 'done', {});
    await first.until((t) => t.length > MAX && t.endsWith('\n'));
    // What pusher-js does now: a new receive request on the same session
    // (which ends the old one).
    const second = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    const firstText = await first.waitEnd();
    const eventsOf = (text) => linesOf(text).filter((l) => l[0] === 'a').flatMap(batchOf).map((m) => JSON.parse(m))
      .filter((f) => f.channel === channel && !f.event.startsWith('pusher')).map((f) => (f.event === 'big' ? JSON.parse(f.data).i : f.event));
    // Where pusher-js stops reading: the first frame boundary past MAX.
    let cut = 0;
    for (const line of firstText.split('\n')) { cut += line.length + 1; if (cut > MAX) break; }
    const unread = firstText.slice(cut);
    assert.equal(unread.length, 0, unread.length === 0 ? ''
      : `the server wrote ${unread.length} more characters on the stream after it passed ${MAX} characters (at ${cut}): `
      + `pusher-js never reads events ${JSON.stringify(eventsOf(unread))} written after that point`);
    const secondText = await second.until((t) => t.includes('\\"done\\"'));
    assert.deepEqual([...eventsOf(firstText), ...eventsOf(secondText)], [...Array.from({ length: N }, (_, i) => i), 'done'],
      'every event once, in order, across the two requests');
  });

  test('unknown app key: o, a[pusher:error 4001], c[4001,…], the WebSocket refusal in HTTP framing, for both transports', async () => {
    const ws = await rawConnect(h, 'no-such-key', { established: false });
    const wsError = await ws.next();
    const wsClose = await ws.waitClose();
    assert.equal(wsClose.code, 4001);
    const polled = await rawSession(h, 'no-such-key').poll();
    const base = sessionBase(h, 'no-such-key');
    const streamed = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    await streamed.waitEnd();
    for (const text of [polled.text, streamed.text]) {
      const [o, a, c, ...rest] = linesOf(text);
      assert.equal(o, 'o');
      const [err] = batchOf(a);
      assert.deepEqual(JSON.parse(err), wsError);
      assert.equal(dataOf(JSON.parse(err)).code, 4001);
      assert.deepEqual(closeOf(c), [4001, wsClose.reason]);
      assert.deepEqual(rest, []);
    }
    // The refused session does not exist.
    const sent = await post(`${base}/xhr_send`, '[]');
    assert.equal(sent.status, 404, sent.text);
  });

  test('a message over max_message_bytes: c[1009,…] (no pusher:error), as the socket is closed with 1009', async () => {
    const s = await openSession(h, APPS.limits.key);
    const big = JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'big', pad: 'x'.repeat(3000) } });
    await s.send(big);
    const r = await s.poll();
    const [c, ...rest] = linesOf(r.text);
    assert.deepEqual(rest, []);
    const [code, reason] = closeOf(c);
    assert.equal(code, 1009);
    assert.match(reason, /2000/);
    const after = await s.send({ event: 'pusher:ping', data: {} });
    assert.equal(after.status, 404, 'the closed session is gone');
  });

  test('4100 on a slow poller: > 4,096 events published while it does not poll → a[pusher:error 4100] and c[4100,…]; a socket on the channel gets them all', async () => {
    const channel = uid('public-flood-');
    const ws = await rawConnect(slow, MAIN);
    await ws.subscribe(channel);
    const s = await openSession(slow);
    const sent = await s.send({ event: 'pusher:subscribe', data: { channel } });
    assert.equal(sent.status, 204);
    const { msgs } = await pollMessages(s, 1);
    assert.equal(JSON.parse(msgs[0]).event, 'pusher_internal:subscription_succeeded');

    // 4,100 events, 10 per batch_events request, several requests in flight;
    // the poller does not poll meanwhile.
    const sdk = publisher(slow, MAIN);
    const BATCHES = 410;
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < BATCHES) {
        const b = next++;
        const res = await sdk.triggerBatch(Array.from({ length: 10 }, (_, i) => ({ channel, name: 'flood', data: String(b * 10 + i) })));
        assert.equal(res.status, 200);
      }
    }));
    await publish(channel, 'last', {}, slow);
    await ws.nextEvent('last', channel, WAIT * 2);
    assert.equal(ws.frames.filter(isEvent('flood', channel)).length, 4100, 'the socket got every event');

    const r = await s.poll();
    assert.equal(r.status, 200);
    const [a, c, ...rest] = linesOf(r.text);
    assert.deepEqual(rest, [], r.text.slice(0, 500));
    const errs = batchOf(a);
    assert.equal(errs.length, 1, `only the error: the backlog is dropped (${a.slice(0, 300)})`);
    const err = JSON.parse(errs[0]);
    assert.equal(err.event, 'pusher:error');
    const { code, message } = dataOf(err);
    assert.equal(code, 4100);
    assert.deepEqual(closeOf(c), [4100, message]);
    assert.equal(r.text, `a${JSON.stringify([errs[0]])}\nc${JSON.stringify([4100, message])}\n`);
    const after = await s.send({ event: 'pusher:ping', data: {} });
    assert.equal(after.status, 404, 'the session is closed');
    assert.ok(ws.isOpen, 'the socket is unaffected');
  });

  test('Origin, max_connections, protocol: 4009, 4004, 4007 in HTTP framing; HTTP sessions count as connections and free their slot after xhr_session_timeout', async () => {
    const refusal = async (r, code) => {
      assert.equal(r.status, 200, r.text);
      const [o, a, c, ...rest] = linesOf(r.text);
      assert.deepEqual([o, rest], ['o', []]);
      const err = JSON.parse(batchOf(a)[0]);
      assert.equal(err.event, 'pusher:error');
      assert.equal(dataOf(err).code, code, a);
      assert.deepEqual(closeOf(c), [code, dataOf(err).message]);
    };

    // Origin: refused like a socket, and the answer is readable cross-origin.
    const evil = await fetch(`${sessionBase(h, APPS.origin.key)}/xhr?${QUERY}`, { method: 'POST', headers: { Origin: 'http://evil.example.com' } });
    await refusal({ status: evil.status, text: await evil.text() }, 4009);
    assert.equal(evil.headers.get('access-control-allow-origin'), 'http://evil.example.com');
    const goodBase = sessionBase(h, APPS.origin.key);
    const good = await fetch(`${goodBase}/xhr?${QUERY}`, { method: 'POST', headers: { Origin: 'https://app.trusted.test' } });
    assert.equal(await good.text(), 'o\n');
    assert.equal(good.headers.get('access-control-allow-origin'), 'https://app.trusted.test');
    const pre = await fetch(`${goodBase}/xhr_send`, { method: 'OPTIONS', headers: { Origin: 'https://app.trusted.test', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' } });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /content-type/i);

    // protocol=3, as on a socket.
    const old = await post(`${sessionBase(h)}/xhr?protocol=3&client=js&version=8.4.0`);
    await refusal(old, 4007);

    // max_connections 1: an HTTP session holds the slot against a socket and
    // another session, until it has had no receive request for the timeout.
    const s = await openSession(h, APPS.maxconn.key);
    const t0 = Date.now();
    const ws = await rawConnect(h, APPS.maxconn, { established: false });
    assert.equal(dataOf(await ws.next()).code, 4004);
    await refusal(await rawSession(h, APPS.maxconn.key).poll(), 4004);
    const admitted = await waitFor(async () => {
      const c = await rawConnect(h, APPS.maxconn, { established: false });
      const f = await c.next(() => true);
      if (f.event === 'pusher:connection_established') return c;
      await c.close();
      return false;
    }, { timeout: SESSION_TIMEOUT_MS + WAIT, what: 'a socket admitted once the idle HTTP session expired' });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= SESSION_TIMEOUT_MS * 0.8, `admitted after ${elapsed} ms`);
    assert.ok(admitted.isOpen);
    const gone = await s.send({ event: 'pusher:ping', data: {} });
    assert.equal(gone.status, 404, 'the expired session is gone');
  });

  test('shutdown: a held poll and a stream get a[pusher:error 4200] c[4200,…], as sockets get 4200', async () => {
    const own = await startHerald({ server: { xhr_session_timeout: '1s' } });
    track({ close: () => own.stop() });
    const ws = await rawConnect(own, MAIN);
    const polling = await openSession(own);
    const base = sessionBase(own);
    const stream = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    await stream.until(lineCount(2));
    // Two polls at once: the later one replaces the earlier, which ends
    // empty; the one left is then certainly held by the server.
    const a = polling.poll();
    const b = polling.poll();
    const first = await Promise.race([a.then((r) => ({ r, held: b })), b.then((r) => ({ r, held: a }))]);
    assert.deepEqual([first.r.status, first.r.text], [200, ''], 'a replaced poll ends empty');
    own.terminate();
    const wsClose = await ws.waitClose();
    assert.equal(wsClose.code, 4200);
    for (const text of [(await first.held).text, await stream.waitEnd()]) {
      const [aLine, cLine] = linesOf(text).slice(-2);
      const err = JSON.parse(batchOf(aLine).at(-1));
      assert.equal(dataOf(err).code, 4200, aLine);
      assert.deepEqual(closeOf(cLine), [4200, wsClose.reason]);
    }
    assert.deepEqual(await own.exited, { code: 0, signal: null });
  });

  test('a session is bound to the address that opened it: another one gets 404 for its name', async (t) => {
    const base = sessionBase(h);
    const own = new TextStream(`${base}/xhr_streaming?${QUERY}`);
    await own.until(lineCount(2));
    const other = new TextStream(`${base}/xhr_streaming?${QUERY}`, { localAddress: '127.0.0.2' });
    await other.waitEnd();
    if (other.error?.code === 'EADDRNOTAVAIL' || other.error?.code === 'EINVAL') {
      t.skip('cannot send from 127.0.0.2 here');
      return;
    }
    assert.equal(other.error, undefined, other.error?.message);
    assert.equal(other.status, 404, other.text);
    assert.ok(!own.ended, 'the owner\'s stream goes on');
  });
});

// ---------------------------------------------------------------------------

describe('server pings over HTTP (ping_interval 1s, pong_timeout 1s)', () => {
  test('pusher-js over both transports answers pusher:ping and stays connected; a raw poller that never answers gets a[pusher:error 4201] c[4201,…]', async () => {
    const stays = async (transport) => {
      const p = await xhrClient(transport, { app: APPS.ping });
      const states = [];
      p.connection.bind('state_change', ({ current }) => states.push(current));
      const socketId = p.connection.socket_id;
      await waitFor(() => p.frames.filter((m) => m.event === 'pusher:ping').length >= 2,
        { timeout: 8000, interval: 50, what: `two pusher:ping frames over ${transport}` });
      assert.deepEqual(states, [], `pusher-js over ${transport} changed state: ${states}`);
      assert.equal(p.connection.socket_id, socketId);
      assert.equal(transportOf(p), transport);
    };
    const silent = async () => {
      const s = await openSession(h, APPS.ping.key);
      const { msgs } = await pollMessages(s, 1); // held until the server pings
      assert.equal(JSON.parse(msgs[0]).event, 'pusher:ping');
      const r = await s.poll(); // held until the server gives up
      const [a, c, ...rest] = linesOf(r.text);
      assert.deepEqual(rest, []);
      const err = JSON.parse(batchOf(a)[0]);
      assert.equal(dataOf(err).code, 4201, a);
      assert.deepEqual(closeOf(c), [4201, dataOf(err).message]);
    };
    await Promise.all([stays('xhr_streaming'), stays('xhr_polling'), silent()]);
  });
});

// ---------------------------------------------------------------------------

describe('fallback for real: a proxy that refuses WebSocket upgrades', () => {
  test('stock pusher-js and Echo with enabledTransports [ws, wss, xhr_streaming, xhr_polling] connect over HTTP and get every event of a burst once, in order', async (t) => {
    const proxy = await upgradeRefusingProxy(h);
    const ORDER = ['ws', 'wss', 'xhr_streaming', 'xhr_polling'];
    const CONNECT_WAIT = 15000;

    const t0 = Date.now();
    const p = await pusherClient(proxy, MAIN, { connect: false, auth, ...httpOptions(proxy, ORDER) });
    const echo = new Echo({
      broadcaster: 'reverb',
      key: MAIN.key,
      Pusher: PusherClient,
      ...clientOptions(proxy, { cluster: undefined }),
      ...httpOptions(proxy, ORDER),
      authEndpoint: auth.channelEndpoint('main'),
      auth: { headers: { 'X-User-Id': '9' } },
    });
    track({ close: () => echo.disconnect() });
    const connectedAt = async (pusher) => { await waitState(pusher, 'connected', CONNECT_WAIT); return Date.now() - t0; };
    const [pMs, eMs] = await Promise.all([connectedAt(p), connectedAt(echo.connector.pusher)]);
    t.diagnostic(`time to connected through the upgrade-refusing proxy: pusher-js ${pMs} ms, Echo ${eMs} ms`);

    assert.equal(transportOf(p), 'xhr_streaming');
    assert.equal(transportOf(echo.connector.pusher), 'xhr_streaming');
    const upgrades = proxy.log.filter((r) => r.upgrade);
    assert.ok(upgrades.length >= 2, `both clients tried a WebSocket first: ${JSON.stringify(proxy.log)}`);
    assert.ok(upgrades.every((r) => r.status === 426 || r.status === undefined), JSON.stringify(upgrades));
    assert.ok(upgrades.some((r) => r.url.startsWith(`/app/${MAIN.key}?`) && r.status === 426), JSON.stringify(upgrades));
    const streams = proxy.log.filter((r) => /^\/pusher\/app\/main-key\/\d+\/[^/]+\/xhr_streaming\?/.test(r.url));
    assert.ok(streams.length >= 2, JSON.stringify(proxy.log));

    // Public burst of 50 to both, and a private event to Echo.
    const channel = uid('public-burst-');
    const ch = await pusherSubscribe(p, channel);
    const echoCh = echo.channel(channel);
    await echoSubscribed(echoCh, channel);
    const room = uid('room.');
    const priv = echo.private(room);
    await echoSubscribed(priv, `private-${room}`);

    const N = 50;
    const gotP = collect(ch, 'burst', N);
    const gotE = [];
    const echoDone = withTimeout(new Promise((resolve) => {
      echoCh.listen('.burst', (d) => gotE.push(d.i));
      echoCh.listen('.done', resolve);
    }), WAIT, 'Echo burst');
    const pDone = nextOn(ch, 'done');
    const privGot = withTimeout(new Promise((resolve) => priv.listen('.secret', resolve)), WAIT, 'private event via Echo');
    const sdk = publisher(h, MAIN);
    for (let i = 1; i <= N; i++) await sdk.trigger(channel, 'burst', { i });
    await sdk.trigger(channel, 'done', {});
    await sdk.trigger(`private-${room}`, 'secret', { s: 1 });
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    assert.deepEqual((await gotP).map((d) => d.i), expected);
    await pDone;
    await echoDone;
    assert.deepEqual(p.frames.filter((f) => f.event === 'burst').map((f) => f.data.i), expected, 'pusher-js: each once, in order');
    assert.deepEqual(gotE, expected, 'Echo: each once, in order');
    assert.deepEqual(await privGot, { s: 1 });
    assert.equal(p.connection.state, 'connected');
    assert.equal(echo.connector.pusher.connection.state, 'connected');
  });
});
