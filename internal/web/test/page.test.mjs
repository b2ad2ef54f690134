// The page: DOM events, the compat aliases, Herald.connect's single
// connection, the status element and the polling manager.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import Herald from '../herald.mjs';
import { harness, flush, ev, succeeded } from '../testdata/fakes.mjs';

const NAMES = ['connected', 'disconnected', 'message'];

test('herald:connected, herald:message and herald:disconnected are dispatched on window', async () => {
  const h = harness();
  h.record(...NAMES.map((n) => 'herald:' + n), ...NAMES.map((n) => 'websocket:' + n));
  const client = await h.live();
  client.subscribe('orders', { since: 'E:1' });
  h.ws.recv(ev('orders', 'order.created', { id: 2 }, 'E', 2));
  h.ws.drop(1006);
  assert.deepEqual(h.seen['herald:connected'], [{ socketId: '1.1', transport: 'websocket' }]);
  assert.deepEqual(h.seen['herald:message'], [
    { channel: 'orders', event: 'order.created', epoch: 'E', offset: 2, user_id: undefined, data: { id: 2 } },
  ]);
  assert.deepEqual(h.seen['herald:disconnected'], [{ code: 1006, reason: '' }]);
  for (const n of NAMES) assert.deepEqual(h.seen['websocket:' + n], [], 'no websocket:* without compat');
  assert.equal(h.window.subscribeToChannel, undefined);
});

test('compat: websocket:* events and the window functions of the marketplace bootstrap', async () => {
  const h = harness();
  h.record(...NAMES.map((n) => 'websocket:' + n));
  const client = h.connect({ compat: true });
  const w = h.window;
  assert.deepEqual(w.getWebSocketState(), { connected: false, socketId: null, state: 'connecting', transport: null });
  h.ws.establish('4.2');
  await flush();
  assert.deepEqual(w.getWebSocketState(), { connected: true, socketId: '4.2', state: 'live', transport: 'websocket' });
  const ch = w.subscribeToChannel('company.1.marketplace.2.orders');
  assert.equal(w.subscribeToChannel('company.1.marketplace.2.orders'), ch, 'subscribing twice is one subscription');
  client.subscribe('company.1.marketplace.2.orders'); // the page's own reference
  await flush();
  assert.equal(h.ws.frames('pusher:subscribe').length, 1);
  h.ws.recv(succeeded('company.1.marketplace.2.orders'));
  h.ws.recv(ev('company.1.marketplace.2.orders', 'orders.updated', { new_orders_count: 3 }, 'E', 1));
  assert.deepEqual(h.seen['websocket:connected'], [{ socketId: '4.2', transport: 'websocket' }]);
  assert.equal(h.seen['websocket:message'][0].event, 'orders.updated');
  assert.deepEqual(h.seen['websocket:message'][0].data, { new_orders_count: 3 });
  w.unsubscribeFromChannel('company.1.marketplace.2.orders');
  w.unsubscribeFromChannel('company.1.marketplace.2.orders');
  assert.equal(h.ws.frames('pusher:unsubscribe').length, 0, 'the page still holds a reference');
  client.unsubscribe('company.1.marketplace.2.orders');
  assert.equal(h.ws.frames('pusher:unsubscribe').length, 1);
  assert.equal(w.pollingManager, client.polling);
  h.ws.drop(4200);
  assert.deepEqual(h.seen['websocket:disconnected'], [{ code: 4200, reason: '' }]);
  assert.equal(w.getWebSocketState().connected, false);
});

test('Herald.connect keeps one connection per page until it is disconnected', async () => {
  const h = harness();
  const a = Herald.connect({ key: 'k', host: 'h', _env: h.env });
  assert.equal(Herald.connect({ key: 'other' }), a);
  assert.equal(h.sockets.length, 1);
  a.disconnect();
  const b = Herald.connect({ key: 'k', host: 'h', _env: h.env });
  assert.notEqual(b, a);
  b.disconnect();
});

function element() {
  const classes = new Set();
  return {
    textContent: '',
    classes,
    classList: { toggle: (k, on) => (on ? classes.add(k) : classes.delete(k)) },
  };
}

test('Herald.status keeps an element at live, reconnecting, polling or offline', async () => {
  const h = harness();
  const el = element();
  const client = h.connect();
  const stop = Herald.status(el, { client });
  const shows = () => [el.textContent, [...el.classes].join(' ')];
  assert.deepEqual(shows(), ['connecting', 'reconnecting'], 'connecting: its own text, the reconnecting class');
  h.ws.establish();
  assert.deepEqual(shows(), ['live', 'live']);
  client.subscribe('orders', { since: 'E:1' });
  await flush();
  h.ws.drop(1006);
  assert.deepEqual(shows(), ['reconnecting', 'reconnecting']);
  for (let i = 0; i < 3; i++) {
    await h.clock.tick(h.clock.delays()[0]);
    h.ws.drop(1006);
  }
  (await h.waitRequest('/channels/orders/events')).respond(200, { epoch: 'E', offset: 1, events: [] });
  await flush();
  assert.deepEqual(shows(), ['polling', 'polling']);
  await h.clock.tick(h.clock.delays()[0]);
  h.ws.drop(4001);
  assert.deepEqual(shows(), ['offline', 'offline']);
  stop();
  h.connect().disconnect();
  assert.deepEqual(shows(), ['offline', 'offline']);
});

test('Herald.status follows the page connection, with labels', async () => {
  const h = harness();
  const el = element();
  const client = Herald.connect({ key: 'k', _env: h.env });
  const stop = Herald.status(el, { labels: { live: 'Live', reconnecting: 'Reconnecting…', connecting: 'Connecting…' } });
  assert.equal(el.textContent, 'Connecting…');
  assert.ok(el.classes.has('reconnecting'));
  h.ws.establish();
  assert.equal(el.textContent, 'Live');
  assert.deepEqual([...el.classes], ['live']);
  stop();
  client.disconnect();
});

test('pollingManager: interval, last_check carried, bearer token, hidden pause, stop', async () => {
  const h = harness();
  const pm = Herald.polling({ token: 'tok', _env: h.env });
  const got = [];
  pm.start('orders', '/api/orders?page=1', (d) => got.push(d.n), 1000);
  let req = await h.waitRequest('/api/orders');
  assert.equal(req.url, '/api/orders?page=1');
  assert.equal(req.headers.Authorization, 'Bearer tok');
  assert.equal(req.headers.Accept, 'application/json');
  req.respond(200, { n: 1, last_check: '2026-01-10T10:00:00Z' });
  await flush();
  assert.deepEqual(got, [1]);
  assert.deepEqual(h.clock.delays(), [1000]);
  await h.clock.tick(1000);
  req = await h.waitRequest('/api/orders');
  assert.equal(req.query.get('last_check'), '2026-01-10T10:00:00Z', 'the server-provided timestamp');
  assert.equal(req.query.get('page'), '1');
  req.respond(200, { n: 2 });
  await h.clock.tick(1000);
  req = await h.waitRequest('/api/orders');
  assert.equal(req.query.get('last_check'), new Date(1000).toISOString(), 'the client timestamp of the previous poll');
  req.respond(500, {});
  await flush();
  assert.deepEqual(h.clock.delays(), [2000], 'errors slow it down');
  await h.clock.tick(2000);
  req = await h.waitRequest('/api/orders');
  assert.equal(req.query.get('last_check'), new Date(1000).toISOString(), 'a failed poll does not move last_check');
  req.respond(200, { n: 3 });
  await flush();
  assert.deepEqual(got, [1, 2, 3]);
  // hidden: the due poll waits for the tab to be visible
  h.setHidden(true);
  await h.clock.tick(5000);
  assert.equal(h.pending.length, 0);
  h.setHidden(false);
  req = await h.waitRequest('/api/orders');
  req.respond(200, { n: 4 });
  await flush();
  pm.stop('orders');
  await h.clock.tick(10_000);
  assert.equal(h.pending.length, 0);
  assert.deepEqual(got, [1, 2, 3, 4]);
});

test('pollingManager: stopAll, headers, a throwing callback keeps polling', async (t) => {
  const h = harness();
  t.mock.method(console, 'error', () => {});
  const saved = globalThis.reportError;
  globalThis.reportError = undefined;
  try {
    const pm = Herald.polling({ headers: () => ({ 'X-Team': '7' }), _env: h.env });
    pm.start('a', '/a', () => {
      throw new Error('page bug');
    }, 500);
    pm.start('b', '/b', () => {}, 700);
    const a = await h.waitRequest('/a');
    assert.equal(a.headers['X-Team'], '7');
    assert.equal(a.headers.Authorization, undefined);
    a.respond(200, {});
    (await h.waitRequest('/b')).respond(200, {});
    await flush();
    assert.deepEqual(h.clock.delays(), [500, 700]);
    pm.stopAll();
    assert.deepEqual(h.clock.delays(), []);
    pm.start('a', '/a', () => {}, 500);
    pm.start('a', '/a2', () => {}, 500); // restarting a key replaces its job
    await flush();
    assert.deepEqual(
      h.pending.map((r) => r.url),
      ['/a', '/a2'],
    );
    h.pending[0].respond(200, {});
    await flush();
    assert.deepEqual(h.clock.delays(), [], 'the replaced job does not continue');
  } finally {
    globalThis.reportError = saved;
  }
});

test('the connection polling manager uses the connect headers', async () => {
  const h = harness();
  const client = h.connect({ headers: { Authorization: 'Bearer page' } });
  client.polling.start('x', '/x', () => {}, 1000);
  assert.equal((await h.waitRequest('/x')).headers.Authorization, 'Bearer page');
  client.polling.stopAll();
});
