// herald-echo.js, the Laravel Echo plugin, on a model of pusher-js 8.x
// (testdata/pusherjs.mjs): subscribes with since / position, positions read
// from raw frames, duplicates dropped, resync, herald:* hidden from the app,
// private/presence/encrypted channels, unsubscribe, uninstall; and the
// generated classic script.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

import HeraldEcho from '../herald-echo.mjs';
import { generated } from '../build.mjs';
import { Echo, Pusher, ev, frame, succeeded, positionAt, resumeFailed, flush } from '../testdata/pusherjs.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (name) => readFileSync(join(dir, name), 'utf8');

/**
 * An Echo on the pusher-js model with the plugin installed before it
 * connects (as a page does), recording resyncs, every event any app-level
 * listener can see (channel bind_global, pusher bind_global), and the DOM
 * events on a fake window.
 */
function setup(options = {}) {
  const echo = new Echo();
  const pusher = echo.connector.pusher;
  const resyncs = [];
  const window = new EventTarget();
  const dom = [];
  window.addEventListener('herald:resync', (e) => dom.push(e.detail));
  const herald = HeraldEcho.install(echo, {
    onResync: (name, info) => resyncs.push([name, info]),
    _env: { window, CustomEvent },
    ...options,
  });
  const global = [];
  pusher.bind_global((event, data) => global.push(event));
  return { echo, pusher, herald, resyncs, dom, global };
}

/** Subscribes an Echo channel, listens to `event`, collects [data, metadata]. */
function listen(echo, name, event = 'order.created', kind = 'channel') {
  const ch = echo[kind](name);
  const got = [];
  const all = [];
  ch.listen('.' + event, (data, meta) => got.push(data));
  ch.listenToAll((e) => all.push(e));
  ch.subscription.bind_global((e) => all.push('global:' + e));
  return { ch, got, all };
}

const subscribes = (t) => t.frames('pusher:subscribe').map((f) => f.data);

test('install: finds the Pusher behind Echo or takes one; installing twice is one install', () => {
  const echo = new Echo();
  const a = HeraldEcho.install(echo);
  assert.equal(a.pusher, echo.connector.pusher);
  assert.equal(HeraldEcho.install(echo.connector.pusher), a);
  assert.equal(typeof HeraldEcho.version, 'string');
  assert.throws(() => HeraldEcho.install({ connector: {} }), TypeError);
  assert.throws(() => HeraldEcho.install(undefined), TypeError);
  a.uninstall();
});

test('a first subscribe asks for the position; herald:position is swallowed and the next subscribe resumes from it', () => {
  const { echo, pusher, herald, resyncs, global } = setup();
  const { got, all } = listen(echo, 'orders');
  let t = pusher.connect();
  assert.deepEqual(subscribes(t), [{ auth: '', channel: 'orders', position: true }]);
  t.recv(succeeded('orders'));
  t.recv(positionAt('orders', 'E', 5));
  assert.equal(herald.position('orders'), 'E:5');
  assert.deepEqual(resyncs, []);
  assert.deepEqual(all, ['global:pusher:subscription_succeeded'], 'no herald:* reaches the channel');
  assert.deepEqual(global, [], 'nor pusher.bind_global');
  pusher.drop();
  t = pusher.connect();
  assert.deepEqual(subscribes(t), [{ auth: '', channel: 'orders', since: { epoch: 'E', offset: 5 } }]);
  t.recv(succeeded('orders'));
  t.recv(ev('orders', 'order.created', { id: 6 }, 'E', 6));
  assert.deepEqual(got, [{ id: 6 }]);
  assert.deepEqual(resyncs, []);
});

test('events carry their position; a resume replays from it and duplicates are dropped (counted as activity)', () => {
  const { echo, pusher, herald, resyncs, global } = setup();
  const { got, all } = listen(echo, 'orders');
  let t = pusher.connect();
  t.recv(succeeded('orders'));
  for (const i of [1, 2, 3]) t.recv(ev('orders', 'order.created', { id: i }, 'E', i));
  assert.equal(herald.position('orders'), 'E:3');
  pusher.drop();
  t = pusher.connect();
  assert.deepEqual(subscribes(t)[0].since, { epoch: 'E', offset: 3 });
  t.recv(succeeded('orders'));
  const before = pusher.connection.activity;
  for (const i of [2, 3, 4, 5, 5]) t.recv(ev('orders', 'order.created', { id: i }, 'E', i));
  assert.deepEqual(got.map((d) => d.id), [1, 2, 3, 4, 5]);
  assert.equal(pusher.connection.activity - before, 5, 'every frame resets the activity check, dropped ones too');
  assert.deepEqual(resyncs, []);
  assert.equal(all.filter((e) => e === 'order.created').length, 5);
  assert.equal(global.filter((e) => e === 'order.created').length, 5);
});

test('herald:resume_failed: onResync and herald:resync on window, the new position kept, nothing shown to the app', () => {
  const { echo, pusher, herald, resyncs, dom, global } = setup();
  const { got, all } = listen(echo, 'orders');
  herald.setPosition('orders', 'E:7');
  const t = pusher.connect();
  assert.deepEqual(subscribes(t)[0].since, { epoch: 'E', offset: 7 });
  t.recv(succeeded('orders'));
  t.recv(resumeFailed('orders', 'F', 97));
  const info = { channel: 'orders', reason: 'resume_failed', epoch: 'F', offset: 97 };
  assert.deepEqual(resyncs, [['orders', info]]);
  assert.deepEqual(dom, [info]);
  assert.equal(herald.position('orders'), 'F:97');
  t.recv(ev('orders', 'order.created', { id: 98 }, 'F', 98));
  assert.deepEqual(got, [{ id: 98 }]);
  assert.equal(resyncs.length, 1);
  assert.ok(!all.some((e) => /herald/.test(e)), all.join());
  assert.ok(!global.some((e) => /herald/.test(e)), global.join());
});

test('a gap or a new epoch is delivered and reported; from the empty position, offset 1 is no gap', () => {
  const { echo, pusher, resyncs } = setup();
  const { got } = listen(echo, 'orders');
  const t = pusher.connect();
  t.recv(succeeded('orders'));
  t.recv(ev('orders', 'order.created', { id: 1 }, 'E', 1));
  t.recv(ev('orders', 'order.created', { id: 3 }, 'E', 3));
  t.recv(ev('orders', 'order.created', { id: 1 }, 'G', 1));
  assert.deepEqual(got.map((d) => d.id), [1, 3, 1]);
  assert.deepEqual(resyncs.map(([, i]) => [i.reason, i.epoch, i.offset]), [['gap', 'E', 3], ['epoch', 'G', 1]]);

  const quiet = listen(echo, 'quiet');
  t.recv(succeeded('quiet'));
  t.recv(positionAt('quiet', '', 0));
  t.recv(ev('quiet', 'order.created', { id: 1 }, 'H', 1));
  assert.equal(resyncs.length, 2);
  assert.deepEqual(quiet.got, [{ id: 1 }]);
  const gappy = listen(echo, 'gappy');
  t.recv(succeeded('gappy'));
  t.recv(positionAt('gappy', '', 0));
  t.recv(ev('gappy', 'order.created', {}, 'H', 3));
  assert.deepEqual(resyncs.at(-1), ['gappy', { channel: 'gappy', reason: 'gap', epoch: 'H', offset: 3 }]);
});

test('herald:position for an event this socket was excluded from (toOthers, its own whisper) moves the position: no gap', () => {
  const { echo, pusher, resyncs } = setup();
  const { got } = listen(echo, 'orders');
  const t = pusher.connect();
  t.recv(succeeded('orders'));
  t.recv(positionAt('orders', 'E', 4));
  t.recv(positionAt('orders', 'E', 5)); // offset 5 went to everyone else
  t.recv(ev('orders', 'order.created', { id: 6 }, 'E', 6));
  assert.deepEqual(got.map((d) => d.id), [6]);
  assert.deepEqual(resyncs, []);
});

test('a channel subscribed before whose position never came resyncs when it learns it', () => {
  const { echo, pusher, resyncs } = setup();
  listen(echo, 'orders');
  let t = pusher.connect();
  t.recv(succeeded('orders'));
  pusher.drop(); // before herald:position: events may have been missed
  t = pusher.connect();
  assert.equal(subscribes(t)[0].position, true);
  t.recv(succeeded('orders'));
  t.recv(positionAt('orders', 'E', 3));
  assert.deepEqual(resyncs, [['orders', { channel: 'orders', reason: 'resume_failed', epoch: 'E', offset: 3 }]]);
});

test('a subscribe that never succeeded before the drop is no resync', () => {
  const { echo, pusher, resyncs } = setup();
  listen(echo, 'orders');
  pusher.connect();
  pusher.drop();
  const t = pusher.connect();
  t.recv(succeeded('orders'));
  t.recv(positionAt('orders', 'E', 3));
  assert.deepEqual(resyncs, []);
});

test('on a cache channel the cached event gives the position; herald:position after it changes nothing', () => {
  const { echo, pusher, herald, resyncs } = setup();
  const { got } = listen(echo, 'cache-prices', 'price');
  const t = pusher.connect();
  t.recv(succeeded('cache-prices'));
  t.recv(ev('cache-prices', 'price', { p: 1 }, 'E', 4));
  t.recv(positionAt('cache-prices', 'E', 4));
  assert.equal(herald.position('cache-prices'), 'E:4');
  assert.deepEqual(got, [{ p: 1 }]);
  assert.deepEqual(resyncs, []);
});

test('a channel without history: de-duplicated by data.message_id / event_id within a bounded window', () => {
  const { echo, pusher, resyncs } = setup({ dedupeWindow: 2 });
  const { got } = listen(echo, 'plain', 'm');
  const t = pusher.connect();
  t.recv(succeeded('plain'));
  for (const d of [{ message_id: 'a' }, { message_id: 'a' }, { event_id: 'b' }, { n: 1 }, { n: 1 }, 'text', { message_id: 'b' }]) {
    t.recv(frame('m', 'plain', d));
  }
  assert.deepEqual(got, [{ message_id: 'a' }, { event_id: 'b' }, { n: 1 }, { n: 1 }, 'text']);
  t.recv(frame('m', 'plain', { message_id: 'c' })); // 'a' leaves the window of 2
  t.recv(frame('m', 'plain', { message_id: 'a' }));
  assert.equal(got.length, 7);
  assert.deepEqual(resyncs, []);
  pusher.drop();
  assert.equal(subscribes(pusher.connect())[0].position, true, 'still no position to resume from');
});

test('messageId option', () => {
  const { echo, pusher } = setup({ messageId: (d) => d.uuid });
  const { got } = listen(echo, 'plain', 'm');
  const t = pusher.connect();
  t.recv(frame('m', 'plain', { uuid: 1, message_id: 'x' }));
  t.recv(frame('m', 'plain', { uuid: 1, message_id: 'y' }));
  t.recv(frame('m', 'plain', { uuid: 2, message_id: 'x' }));
  assert.equal(got.length, 2);
});

test('a resume refused at the empty position from the empty position: the channel keeps no history, no resync', () => {
  const { echo, pusher, herald, resyncs } = setup();
  listen(echo, 'orders');
  herald.setPosition('orders', ':0');
  let t = pusher.connect();
  assert.deepEqual(subscribes(t)[0].since, { epoch: '', offset: 0 });
  t.recv(succeeded('orders'));
  t.recv(resumeFailed('orders', '', 0));
  assert.deepEqual(resyncs, []);
  assert.equal(herald.position('orders'), null);
  pusher.drop();
  t = pusher.connect();
  assert.equal(subscribes(t)[0].position, true);
  // From a real position it is a resync (history switched off, say).
  herald.setPosition('orders', 'E:4');
  pusher.drop();
  t = pusher.connect();
  t.recv(resumeFailed('orders', '', 0));
  assert.deepEqual(resyncs.map(([, i]) => i.reason), ['resume_failed']);
});

test('private, presence and encrypted channels: authorized subscribes keep auth and channel_data and gain since', async () => {
  const { echo, pusher, resyncs } = setup();
  const priv = listen(echo, 'orders', 'order.created', 'private');
  const pres = listen(echo, 'room', 'said', 'join');
  const enc = listen(echo, 'vault', 'sealed', 'encryptedPrivate');
  const joined = [];
  pres.ch.subscription.bind('pusher:member_added', (m) => joined.push(m.id));
  const said = [];
  pres.ch.subscription.bind('said', (d, meta) => said.push(meta.user_id));
  let t = pusher.connect('1.1');
  await flush();
  const first = Object.fromEntries(subscribes(t).map((d) => [d.channel, d]));
  assert.deepEqual(first['private-orders'], { auth: 'key:sig-1.1-private-orders', channel: 'private-orders', position: true });
  assert.deepEqual(first['presence-room'], {
    auth: 'key:sig-1.1-presence-room',
    channel_data: '{"user_id":"7","user_info":{"name":"U7"}}',
    channel: 'presence-room',
    position: true,
  });
  const seal = (o) => ({ ciphertext: Buffer.from(JSON.stringify(o)).toString('base64'), nonce: 'n' });
  t.recv(succeeded('private-orders'));
  t.recv(succeeded('presence-room', { presence: { ids: ['7'], hash: { 7: { name: 'U7' } }, count: 1 } }));
  t.recv(succeeded('private-encrypted-vault'));
  for (const n of ['private-orders', 'presence-room', 'private-encrypted-vault']) t.recv(positionAt(n, 'E', 10));
  t.recv(ev('private-orders', 'order.created', { id: 11 }, 'E', 11));
  t.recv(frame('pusher_internal:member_added', 'presence-room', { user_id: '8', user_info: {} }));
  t.recv({ ...ev('presence-room', 'said', { hi: 1 }, 'E', 11), user_id: '8' });
  t.recv(ev('private-encrypted-vault', 'sealed', seal({ card: 4242 }), 'E', 11));
  pusher.drop();
  t = pusher.connect('1.2');
  await flush();
  const again = Object.fromEntries(subscribes(t).map((d) => [d.channel, d]));
  assert.deepEqual(again['private-orders'], { auth: 'key:sig-1.2-private-orders', channel: 'private-orders', since: { epoch: 'E', offset: 11 } });
  assert.equal(again['presence-room'].channel_data, first['presence-room'].channel_data);
  assert.deepEqual(again['presence-room'].since, { epoch: 'E', offset: 11 });
  assert.deepEqual(again['private-encrypted-vault'].since, { epoch: 'E', offset: 11 });
  // the replay of 11 is dropped everywhere; 12 gets through
  for (const n of ['private-orders', 'presence-room', 'private-encrypted-vault']) t.recv(succeeded(n, n.startsWith('presence') ? { presence: { hash: {} } } : {}));
  t.recv(ev('private-orders', 'order.created', { id: 11 }, 'E', 11));
  t.recv(ev('private-orders', 'order.created', { id: 12 }, 'E', 12));
  t.recv({ ...ev('presence-room', 'said', { hi: 1 }, 'E', 11), user_id: '8' });
  t.recv(ev('private-encrypted-vault', 'sealed', seal({ card: 4242 }), 'E', 11));
  t.recv(ev('private-encrypted-vault', 'sealed', seal({ card: 4343 }), 'E', 12));
  assert.deepEqual(priv.got, [{ id: 11 }, { id: 12 }]);
  assert.deepEqual(said, ['8'], 'user_id still reaches presence listeners');
  assert.deepEqual(joined, ['8']);
  assert.deepEqual(enc.got, [{ card: 4242 }, { card: 4343 }], 'decrypted by the channel as before');
  assert.deepEqual(resyncs, []);
});

test('leaving a channel forgets it: subscribing again starts afresh; a cancelled pending subscribe keeps it', async () => {
  const { echo, pusher, herald } = setup();
  listen(echo, 'orders');
  const t = pusher.connect();
  t.recv(succeeded('orders'));
  t.recv(ev('orders', 'order.created', {}, 'E', 3));
  echo.leave('orders');
  assert.deepEqual(t.frames('pusher:unsubscribe').map((f) => f.data), [{ channel: 'orders' }]);
  assert.equal(herald.position('orders'), null);
  t.recv(ev('orders', 'order.created', {}, 'E', 4)); // in flight: pusher-js has no channel for it
  assert.equal(herald.position('orders'), null);
  listen(echo, 'orders');
  assert.equal(subscribes(t).at(-1).position, true);

  // private: unsubscribe while the authorization is pending only cancels
  herald.setPosition('private-x', 'E:9');
  listen(echo, 'x', 'order.created', 'private');
  pusher.unsubscribe('private-x');
  assert.equal(herald.position('private-x'), 'E:9');
  pusher.subscribe('private-x'); // reinstated
  await flush();
  assert.deepEqual(subscribes(t).at(-1).since, { epoch: 'E', offset: 9 });
});

test('installed on a connected Pusher with subscribed channels: those are tracked from their next event', () => {
  const pusher = new Pusher();
  const t = pusher.connect();
  const ch = pusher.subscribe('orders');
  const got = [];
  ch.bind('order.created', (d) => got.push(d.id));
  t.recv(succeeded('orders'));
  const resyncs = [];
  const herald = HeraldEcho.install(pusher, { onResync: (n, i) => resyncs.push(i.reason) });
  t.recv(ev('orders', 'order.created', { id: 5 }, 'E', 5));
  t.recv(ev('orders', 'order.created', { id: 5 }, 'E', 5));
  t.recv(positionAt('orders', 'E', 5)); // hidden even here
  assert.deepEqual(got, [5]);
  assert.equal(herald.position('orders'), 'E:5');
  pusher.drop();
  assert.deepEqual(subscribes(pusher.connect())[0].since, { epoch: 'E', offset: 5 });

  // one subscribed before install that had no event yet: a resync once its position is known
  const p2 = new Pusher();
  const t2 = p2.connect();
  p2.subscribe('quiet');
  t2.recv(succeeded('quiet'));
  const r2 = [];
  HeraldEcho.install(p2, { onResync: (n, i) => r2.push(i.reason) });
  p2.drop();
  const t3 = p2.connect();
  assert.equal(subscribes(t3)[0].position, true);
  t3.recv(positionAt('quiet', 'E', 2));
  assert.deepEqual(r2, ['resume_failed']);
  assert.deepEqual(resyncs, []);
});

test('client events: sent unchanged; others’ carry positions like any event', () => {
  const { echo, pusher, herald } = setup();
  const pres = listen(echo, 'room', 'client-typing', 'join');
  const t = pusher.connect();
  pres.ch.whisper('typing', { on: true });
  assert.deepEqual(t.frames('client-typing'), [{ event: 'client-typing', channel: 'presence-room', data: { on: true } }]);
  t.recv({ ...ev('presence-room', 'client-typing', { on: 1 }, 'E', 2), user_id: '8' });
  assert.equal(herald.position('presence-room'), 'E:2');
  assert.deepEqual(pres.got, [{ on: 1 }]);
});

test('frames pusher-js handles itself pass untouched: no channel, not JSON, protocol events, #server-to-user', () => {
  const { pusher } = setup();
  const t = pusher.connect();
  const errors = [];
  pusher.connection.connection.bind('error', (e) => errors.push(e.type));
  const seen = [];
  pusher.connection.bind('message', (m) => seen.push(m.event));
  t.recv('not json');
  t.recv({ event: 'pusher:error', data: { code: 4301, message: 'x' } });
  t.recv({ event: 'pusher:pong', data: {} });
  t.recv(frame('pusher:cache_miss', 'cache-x', {}));
  assert.deepEqual(errors, ['MessageParseError']);
  assert.deepEqual(seen, ['pusher:error', 'pusher:pong', 'pusher:cache_miss']);
  pusher.send_event('pusher:subscribe', { auth: '', channel: '#server-to-user-1' });
  assert.deepEqual(subscribes(t), [{ auth: '', channel: '#server-to-user-1' }]);
});

test('a throwing onResync is reported; the frame is still delivered', () => {
  const reported = [];
  const prev = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e.message);
  try {
    const { echo, pusher, herald } = setup({ onResync: () => { throw new Error('boom'); } });
    const { got } = listen(echo, 'orders');
    herald.setPosition('orders', 'E:1');
    const t = pusher.connect();
    t.recv(ev('orders', 'order.created', { id: 5 }, 'E', 5));
    assert.deepEqual(got, [{ id: 5 }]);
    assert.deepEqual(reported, ['boom']);
  } finally {
    if (prev) globalThis.reportError = prev;
    else delete globalThis.reportError;
  }
});

test('a second install adds its onResync', () => {
  const { echo, pusher, herald, resyncs } = setup();
  const more = [];
  assert.equal(HeraldEcho.install(echo, { onResync: (n) => more.push(n) }), herald);
  listen(echo, 'orders');
  herald.setPosition('orders', 'E:1');
  pusher.connect().recv(resumeFailed('orders', 'F', 1));
  assert.equal(resyncs.length, 1);
  assert.deepEqual(more, ['orders']);
});

test('without a transport to hook (another pusher-js), subscribes go out unchanged', (t) => {
  const warned = [];
  t.mock.method(console, 'warn', (m) => warned.push(m));
  const pusher = new Pusher();
  HeraldEcho.install(pusher);
  pusher.subscribe('orders');
  // a connection with no .transport
  const sent = [];
  pusher.connection.connection = { id: '1.1', send_event: (event, data) => sent.push(JSON.parse(JSON.stringify({ event, data }))) };
  pusher.connection.updateState('connected');
  assert.deepEqual(sent, [{ event: 'pusher:subscribe', data: { auth: '', channel: 'orders' } }]);
  assert.equal(warned.length, 1);
});

test('uninstall puts pusher-js back as it was', () => {
  const echo = new Echo();
  const pusher = echo.connector.pusher;
  const t = pusher.connect();
  const herald = HeraldEcho.install(echo);
  assert.ok(Object.hasOwn(pusher, 'send_event') && Object.hasOwn(t, 'emit'));
  herald.uninstall();
  assert.ok(!Object.hasOwn(pusher, 'send_event') && !Object.hasOwn(pusher, 'unsubscribe') && !Object.hasOwn(t, 'emit'));
  const seen = [];
  pusher.bind_global((e) => seen.push(e));
  listen(echo, 'orders');
  assert.deepEqual(subscribes(t), [{ auth: '', channel: 'orders' }]);
  t.recv(positionAt('orders', 'E', 1));
  assert.deepEqual(seen, ['herald:position']);
  assert.notEqual(HeraldEcho.install(echo), herald, 'a new install after uninstall');
});

// ---- the generated classic script and the package

test('herald-echo.js is up to date with herald-echo.mjs (run: node internal/web/build.mjs)', () => {
  assert.ok(read('herald-echo.js') === generated('herald-echo.js'), 'herald-echo.js is out of date: run node internal/web/build.mjs');
});

test('herald-echo.js, run as a classic script, sets HeraldEcho and nothing else', () => {
  const context = vm.createContext({});
  const before = Object.keys(context);
  vm.runInContext(read('herald-echo.js'), context);
  assert.deepEqual(Object.keys(context), [...before, 'HeraldEcho']);
  assert.deepEqual(Object.keys(context.HeraldEcho), Object.keys(HeraldEcho));
  assert.equal(context.HeraldEcho.version, HeraldEcho.version);
});

test('herald-echo.mjs uses no runtime dependency; the package exports it as ./echo', () => {
  const src = read('herald-echo.mjs');
  assert.equal(/^\s*import\b/m.test(src), false);
  assert.equal(/\brequire\(/.test(src), false);
  const pkg = JSON.parse(read('package.json'));
  assert.equal(pkg.exports['./echo'].import, './herald-echo.mjs');
  assert.ok(pkg.files.includes('herald-echo.js') && pkg.files.includes('herald-echo.mjs'));
  assert.equal(HeraldEcho.version, pkg.version);
});
