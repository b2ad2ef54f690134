// Reading over HTTP while the socket cannot connect: long-polling and SSE from
// the same positions, 410, hidden tabs, reader sessions, and back to the socket.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { harness, flush, ev, succeeded } from '../testdata/fakes.mjs';

const EVENTS = 'http://herald.test:8080/app/app-key/channels/';

/** Fails connects until the fallback starts (fallbackAfter = 3). */
async function failConnects(h, n = 3) {
  for (let i = 0; i < n; i++) {
    h.ws.drop(1006);
    if (i < n - 1) await h.clock.tick(h.clock.delays()[0]);
  }
  await flush();
}

/** A client that saw orders up to E:7 on a socket, then lost it for good. */
async function lostAtSeven(h, options) {
  const client = await h.live(options);
  const orders = client.subscribe('orders', { since: 'E:7' });
  const got = [];
  const resyncs = [];
  orders.bind('order.created', (d, meta) => got.push(meta.offset));
  orders.bind('resync', (r) => resyncs.push([r.reason, r.epoch, r.offset]));
  orders.bind('error', () => {});
  orders.bind('*', () => {});
  await flush();
  h.ws.recv(succeeded('orders'));
  h.ws.drop(1006);
  await h.clock.tick(h.clock.delays()[0]);
  await failConnects(h);
  return { client, orders, got, resyncs };
}

test('after fallbackAfter failed connects, long-polls from the last position', async () => {
  const h = harness();
  const { client, got, orders } = await lostAtSeven(h);
  const req = await h.waitRequest(EVENTS + 'orders/events');
  assert.equal(req.method, 'GET');
  assert.equal(req.query.get('since'), 'E:7');
  assert.equal(req.query.get('wait'), '25');
  assert.equal(client.state, 'reconnecting');
  req.respond(200, {
    epoch: 'E',
    offset: 9,
    events: [ev('orders', 'order.created', { id: 8 }, 'E', 8), ev('orders', 'order.created', { id: 9 }, 'E', 9)],
  });
  const next = await h.waitRequest(EVENTS + 'orders/events');
  assert.deepEqual(got, [8, 9]);
  assert.equal(client.state, 'polling');
  assert.deepEqual(client.getState(), { connected: false, socketId: null, state: 'polling', transport: 'poll' });
  assert.equal(next.query.get('since'), 'E:9');
  // a long-poll that times out answers no events and the same position
  next.respond(200, { epoch: 'E', offset: 9, events: [] });
  const third = await h.waitRequest(EVENTS + 'orders/events');
  assert.equal(third.query.get('since'), 'E:9');
  // a replayed duplicate is dropped here too
  third.respond(200, { epoch: 'E', offset: 10, events: [ev('orders', 'order.created', {}, 'E', 9), ev('orders', 'order.created', {}, 'E', 10)] });
  await h.waitRequest(EVENTS + 'orders/events');
  assert.deepEqual(got, [8, 9, 10]);
  assert.equal(orders.position, 'E:10');
});

test('a 410 is a resync, and polling continues from the position it gives', async () => {
  const h = harness();
  const { resyncs } = await lostAtSeven(h);
  const req = await h.waitRequest(EVENTS + 'orders/events');
  req.respond(410, { error: 'history cannot resume', epoch: 'F', offset: 20 });
  const next = await h.waitRequest(EVENTS + 'orders/events');
  assert.deepEqual(resyncs, [['resume_failed', 'F', 20]]);
  assert.equal(next.query.get('since'), 'F:20');
});

test('the socket keeps being retried and takes over from where polling got', async () => {
  const h = harness();
  h.record('herald:connected');
  const { client, got } = await lostAtSeven(h);
  const req = await h.waitRequest(EVENTS + 'orders/events');
  req.respond(200, { epoch: 'E', offset: 8, events: [ev('orders', 'order.created', {}, 'E', 8)] });
  const held = await h.waitRequest(EVENTS + 'orders/events');
  assert.equal(client.state, 'polling');
  const before = h.sockets.length;
  await h.clock.tick(h.clock.delays()[0]);
  assert.equal(h.sockets.length, before + 1, 'a background attempt');
  h.ws.drop(1006);
  assert.equal(client.state, 'polling', 'a failed background attempt does not change the state');
  const [d] = h.clock.delays();
  assert.ok(d > 1000 && d <= 15000, `background retries slow down while polling delivers: ${d}`);
  await h.clock.tick(d);
  h.ws.establish('9.9');
  await flush();
  assert.equal(held.aborted, true);
  assert.equal(client.state, 'live');
  assert.deepEqual(h.ws.frames('pusher:subscribe')[0].data, { channel: 'orders', since: { epoch: 'E', offset: 8 } });
  assert.equal(h.pending.length, 0);
  assert.equal(h.seen['herald:connected'].length, 2);
  h.ws.recv(succeeded('orders'));
  h.ws.recv(ev('orders', 'order.created', {}, 'E', 8));
  h.ws.recv(ev('orders', 'order.created', {}, 'E', 9));
  assert.deepEqual(got, [8, 9]);
});

test('polling pauses while the tab is hidden and resumes with since', async () => {
  const h = harness();
  await lostAtSeven(h);
  const req = await h.waitRequest(EVENTS + 'orders/events');
  req.respond(200, { epoch: 'E', offset: 8, events: [ev('orders', 'order.created', {}, 'E', 8)] });
  const held = await h.waitRequest(EVENTS + 'orders/events');
  const count = h.requests.length;
  h.setHidden(true);
  await flush();
  assert.equal(held.aborted, true);
  await h.clock.tick(120_000);
  assert.equal(h.requests.filter((r) => r.url.startsWith(EVENTS)).length, count);
  h.setHidden(false);
  const resumed = await h.waitRequest(EVENTS + 'orders/events');
  assert.equal(resumed.query.get('since'), 'E:8');
});

test('a channel whose position is unknown first asks for it, then long-polls from it', async () => {
  const h = harness();
  const client = h.connect();
  client.subscribe('news');
  await failConnects(h);
  const req = await h.waitRequest(EVENTS + 'news/events');
  assert.equal(req.query.get('since'), null);
  req.respond(200, { epoch: 'N', offset: 4, events: [] });
  const next = await h.waitRequest(EVENTS + 'news/events');
  assert.equal(next.query.get('since'), 'N:4');
});

test('channels subscribed during the fallback are read at once', async () => {
  const h = harness();
  const client = h.connect();
  await failConnects(h);
  client.subscribe('late', { since: 'L:1' });
  const req = await h.waitRequest(EVENTS + 'late/events');
  assert.equal(req.query.get('since'), 'L:1');
  client.unsubscribe('late');
  await flush();
  assert.equal(req.aborted, true);
});

test('network errors back off; 404 (no history) ends the reader with an error', async () => {
  const h = harness();
  const { orders } = await lostAtSeven(h);
  const errors = [];
  orders.bind('error', (e) => errors.push(e.status));
  const req = await h.waitRequest(EVENTS + 'orders/events');
  req.fail();
  await flush();
  assert.equal(h.pending.length, 0);
  await h.clock.tick(375); // backoff(0, 500, 5000) with random 0.5
  const again = await h.waitRequest(EVENTS + 'orders/events');
  again.respond(404, { error: 'no history' });
  await h.clock.tick(60_000);
  assert.deepEqual(errors, [404]);
  assert.equal(h.pending.filter((r) => r.url.startsWith(EVENTS)).length, 0);
});

test('private channels are read with a reader session and the auth endpoint', async () => {
  const h = harness();
  let sessions = 0;
  h.routes.push((req) => {
    if (req.url === 'http://herald.test:8080/app/app-key/sessions') {
      assert.equal(req.method, 'POST');
      return [200, { socket_id: `77.${++sessions}`, expires_in: 86400 }];
    }
    if (req.url === '/broadcasting/auth') return [200, { auth: 'app-key:sig-' + new URLSearchParams(req.body).get('socket_id') }];
  });
  const client = h.connect();
  client.subscribe('private-orders.7', { since: 'P:2' });
  await failConnects(h);
  let req = await h.waitRequest(EVENTS + 'private-orders.7/events');
  assert.equal(req.query.get('socket_id'), '77.1');
  assert.equal(req.query.get('auth'), 'app-key:sig-77.1');
  assert.equal(req.query.get('since'), 'P:2');
  req.respond(200, { epoch: 'P', offset: 2, events: [] });
  req = await h.waitRequest(EVENTS + 'private-orders.7/events');
  assert.equal(req.query.get('socket_id'), '77.1', 'the session is kept');
  req.respond(401, { error: 'session expired' });
  await h.clock.tick(1000);
  req = await h.waitRequest(EVENTS + 'private-orders.7/events');
  assert.equal(req.query.get('socket_id'), '77.2', 'a new session after a 401');
  assert.equal(sessions, 2);
});

test('presence channels over HTTP pass channel_data', async () => {
  const h = harness();
  const cd = JSON.stringify({ user_id: 1 });
  h.routes.push((req) => {
    if (req.url.endsWith('/sessions')) return [200, { socket_id: '1.2', expires_in: 86400 }];
    if (req.url === '/broadcasting/auth') return [200, { auth: 'k:s', channel_data: cd }];
  });
  const client = h.connect();
  client.subscribe('presence-room', { since: 'R:1' });
  await failConnects(h);
  const req = await h.waitRequest(EVENTS + 'presence-room/events');
  assert.equal(req.query.get('channel_data'), cd);
});

test('fallback: false never reads over HTTP', async () => {
  const h = harness();
  const client = h.connect({ fallback: false });
  client.subscribe('orders', { since: 'E:1' });
  await failConnects(h, 10);
  assert.equal(h.requests.length, 0);
  assert.equal(client.state, 'reconnecting');
});

test('SSE fallback: whole frames (format=frames) from the same position, any event name, de-duplicated, and back to the socket', async () => {
  const h = harness();
  const { client, orders, got, resyncs } = await lostAtSeven(h, { fallback: 'sse' });
  const typed = [];
  const all = [];
  client.on('ticket_created', (t) => typed.push(t.id));
  orders.bind('*', (d, meta) => all.push(meta.event));
  await flush();
  const es = h.sources.find((s) => s.url.startsWith(EVENTS + 'orders/'));
  const q = new URL(es.url).searchParams;
  assert.equal(q.get('since'), 'E:7');
  assert.equal(q.get('wait'), null);
  assert.equal(q.get('format'), 'frames');
  es.open();
  assert.equal(client.state, 'polling');
  assert.equal(client.getState().transport, 'sse');
  const at = (event, data, offset, epoch = 'E') => ({ event, channel: 'orders', data, epoch, offset });
  es.message(at('order.created', '{"id":8}', 8), 'E:8');
  es.message(at('order.created', '{"id":8}', 8), 'E:8'); // duplicate
  es.message(at('nobody.listens', '{}', 9), 'E:9'); // a name bound nowhere: still read, so no gap after it
  es.message(at('ticket_created', '{"id":5}', 10), 'E:10');
  assert.deepEqual(got, [8]);
  assert.deepEqual(typed, [5]);
  assert.deepEqual(all, ['order.created', 'nobody.listens', 'ticket_created']);
  assert.deepEqual(resyncs, []);
  assert.equal(orders.position, 'E:10');
  es.message({ event: 'herald:resume_failed', channel: 'orders', data: '{"epoch":"F","offset":3}' }, 'F:3');
  assert.deepEqual(resyncs, [['resume_failed', 'F', 3]]);
  es.fail(false); // EventSource reconnects by itself
  assert.equal(client.state, 'reconnecting');
  es.open();
  es.fail(true); // it gave up: a new one after a backoff, from the position
  assert.equal(es.closed, true);
  await h.clock.tick(375);
  const es2 = h.sources.at(-1);
  assert.notEqual(es2, es);
  assert.equal(new URL(es2.url).searchParams.get('since'), 'F:3');
  // the socket comes back
  while (!h.ws.onmessage) await h.clock.tick(h.clock.delays()[0]); // until an attempt is under way
  h.ws.establish();
  await flush();
  assert.equal(es2.closed, true);
  assert.equal(client.state, 'live');
  assert.deepEqual(h.ws.frames('pusher:subscribe').find((f) => f.data.channel === 'orders').data.since, { epoch: 'F', offset: 3 });
});
