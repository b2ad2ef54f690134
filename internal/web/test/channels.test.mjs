// Channels: subscribe frames, reference counting, resume with since,
// de-duplication, resync, authorization, presence, typed messages.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { harness, flush, ev, succeeded, resumeFailed } from '../testdata/fakes.mjs';

/** herald:position, Herald's answer to a subscribe with position: true. */
const positionAt = (channel, epoch, offset) => ({ event: 'herald:position', channel, data: JSON.stringify({ epoch, offset }) });

/** A live client subscribed to `orders`, which has seen E:7. */
async function atSeven(h, options) {
  const client = await h.live(options);
  const orders = client.subscribe('orders', { since: 'E:7' });
  const got = [];
  orders.bind('order.created', (data, meta) => got.push([data, meta.offset]));
  await flush();
  h.ws.recv(succeeded('orders'));
  return { client, orders, got };
}

test('subscribe sends pusher:subscribe once the socket is live', async () => {
  const h = harness();
  const client = h.connect();
  const ch = client.subscribe('orders');
  assert.equal(ch.subscribed, false);
  assert.equal(h.ws.sent.length, 0);
  h.ws.establish();
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe'), [
    { event: 'pusher:subscribe', data: { channel: 'orders', position: true } },
  ]);
  h.ws.recv(succeeded('orders'));
  assert.equal(ch.subscribed, true);
});

test('a first subscribe asks for its position and learns it from herald:position without a resync', async () => {
  const h = harness();
  const client = await h.live();
  const ch = client.subscribe('orders');
  const resyncs = [];
  ch.bind('resync', (r) => resyncs.push(r));
  await flush();
  assert.equal(h.ws.frames('pusher:subscribe')[0].data.position, true);
  assert.equal(h.ws.frames('pusher:subscribe')[0].data.since, undefined);
  h.ws.recv(succeeded('orders'));
  h.ws.recv(positionAt('orders', 'E', 5));
  assert.equal(ch.position, 'E:5');
  assert.deepEqual(resyncs, []);
  // and the next resume starts there
  h.ws.drop(1006);
  await h.clock.tick(200);
  h.ws.establish();
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe')[0].data.since, { epoch: 'E', offset: 5 });
});

test('on a cache channel the cached event gives the position; herald:position after it changes nothing', async () => {
  const h = harness();
  const client = await h.live();
  const ch = client.subscribe('cache-prices');
  const got = [];
  ch.bind('price', (d) => got.push(d));
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe')[0].data, { channel: 'cache-prices', position: true });
  h.ws.recv(succeeded('cache-prices'));
  h.ws.recv(ev('cache-prices', 'price', { v: 1 }, 'E', 4));
  h.ws.recv(positionAt('cache-prices', 'E', 4));
  assert.equal(ch.position, 'E:4');
  assert.deepEqual(got, [{ v: 1 }]);
});

test('subscriptions are reference-counted', async () => {
  const h = harness();
  const client = await h.live();
  const a = client.subscribe('orders');
  const b = client.subscribe('orders');
  assert.equal(a, b);
  await flush();
  assert.equal(h.ws.frames('pusher:subscribe').length, 1);
  a.unsubscribe();
  assert.equal(h.ws.frames('pusher:unsubscribe').length, 0);
  assert.equal(client.channel('orders'), a);
  client.unsubscribe('orders');
  assert.deepEqual(h.ws.frames('pusher:unsubscribe'), [{ event: 'pusher:unsubscribe', data: { channel: 'orders' } }]);
  assert.equal(client.channel('orders'), undefined);
  a.unsubscribe(); // a stale handle does nothing more
  client.subscribe('orders').unsubscribe();
  assert.equal(h.ws.frames('pusher:unsubscribe').length, 2);
});

test('events are delivered with parsed data; a non-JSON string stays a string', async () => {
  const h = harness();
  const { orders } = await atSeven(h);
  const all = [];
  orders.bind('*', (data, meta) => all.push([meta.event, data]));
  h.ws.recv(ev('orders', 'order.created', { id: 1 }, 'E', 8));
  h.ws.recv(ev('orders', 'note', 'plain text', 'E', 9));
  h.ws.recv(ev('orders', 'nums', '[1,2]', 'E', 10));
  assert.deepEqual(all, [
    ['order.created', { id: 1 }],
    ['note', 'plain text'],
    ['nums', [1, 2]],
  ]);
  assert.equal(orders.position, 'E:10');
});

test('resubscribes after every reconnect with since = the last offset seen, dropping duplicates', async () => {
  const h = harness();
  const { orders, got } = await atSeven(h);
  assert.deepEqual(h.ws.frames('pusher:subscribe')[0].data.since, { epoch: 'E', offset: 7 });
  h.ws.recv(ev('orders', 'order.created', { id: 8 }, 'E', 8));
  h.ws.recv(ev('orders', 'order.created', { id: 9 }, 'E', 9));
  h.ws.drop(1006);
  assert.equal(orders.subscribed, false);
  await h.clock.tick(200);
  h.ws.establish();
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe'), [
    { event: 'pusher:subscribe', data: { channel: 'orders', since: { epoch: 'E', offset: 9 } } },
  ]);
  h.ws.recv(succeeded('orders'));
  // a replay that overlaps: 9 is a duplicate, 10 and 11 are new
  h.ws.recv(ev('orders', 'order.created', { id: 9 }, 'E', 9));
  h.ws.recv(ev('orders', 'order.created', { id: 10 }, 'E', 10));
  h.ws.recv(ev('orders', 'order.created', { id: 10 }, 'E', 10));
  h.ws.recv(ev('orders', 'order.created', { id: 11 }, 'E', 11));
  assert.deepEqual(
    got.map(([, off]) => off),
    [8, 9, 10, 11],
  );
});

test('herald:resume_failed surfaces as resync and moves the position', async () => {
  const h = harness();
  h.record('herald:resync');
  const { client, orders, got } = await atSeven(h);
  const resyncs = [];
  const clientResyncs = [];
  orders.bind('resync', (r) => resyncs.push(r));
  client.bind('resync', (r) => clientResyncs.push(r));
  h.ws.recv(resumeFailed('orders', 'F', 97));
  const want = { channel: 'orders', reason: 'resume_failed', epoch: 'F', offset: 97 };
  assert.deepEqual(resyncs, [want]);
  assert.deepEqual(clientResyncs, [want]);
  assert.deepEqual(h.seen['herald:resync'], [want]);
  h.ws.recv(ev('orders', 'order.created', { id: 98 }, 'F', 98));
  assert.equal(resyncs.length, 1);
  assert.deepEqual(got, [[{ id: 98 }, 98]]);
});

test('a gap is delivered and surfaces as resync', async () => {
  const h = harness();
  const { orders, got } = await atSeven(h);
  const resyncs = [];
  orders.bind('resync', (r) => resyncs.push(r));
  h.ws.recv(ev('orders', 'order.created', { id: 10 }, 'E', 10));
  assert.deepEqual(got, [[{ id: 10 }, 10]]);
  assert.deepEqual(resyncs, [{ channel: 'orders', reason: 'gap', epoch: 'E', offset: 10 }]);
});

test('herald:position for an event this socket was excluded from (toOthers, its own whisper) moves the position: no gap', async () => {
  const h = harness();
  const { orders, got } = await atSeven(h);
  const resyncs = [];
  orders.bind('resync', (r) => resyncs.push(r));
  h.ws.recv(positionAt('orders', 'E', 8)); // offset 8 went to everyone else
  h.ws.recv(ev('orders', 'order.created', { id: 9 }, 'E', 9));
  assert.deepEqual(got, [[{ id: 9 }, 9]]);
  assert.deepEqual(resyncs, []);
  assert.equal(orders.position, 'E:9');
  h.ws.recv(positionAt('orders', 'E', 5)); // stale: ignored
  assert.equal(orders.position, 'E:9');
});

test('a new epoch is a resync, unless the last position was the empty one', async () => {
  const h = harness();
  const { orders, got } = await atSeven(h);
  const resyncs = [];
  orders.bind('resync', (r) => resyncs.push(r.reason));
  h.ws.recv(ev('orders', 'order.created', { id: 1 }, 'G', 1));
  assert.deepEqual(resyncs, ['epoch']);
  assert.equal(got.length, 1);

  const client = h.client;
  const quiet = client.subscribe('quiet', { since: ':0' });
  const r2 = [];
  quiet.bind('resync', (r) => r2.push(r.reason));
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe').at(-1).data.since, { epoch: '', offset: 0 });
  h.ws.recv(ev('quiet', 'x', {}, 'H', 1));
  assert.deepEqual(r2, []);
  const gap = client.subscribe('gappy', { since: { epoch: '', offset: 0 } });
  gap.bind('resync', (r) => r2.push(r.reason));
  h.ws.recv(ev('gappy', 'x', {}, 'H', 3));
  assert.deepEqual(r2, ['gap']);
});

test('after an earlier subscription, an unknown position is a resync', async () => {
  const h = harness();
  const client = await h.live();
  const ch = client.subscribe('orders');
  const resyncs = [];
  ch.bind('resync', (r) => resyncs.push(r.reason));
  await flush();
  h.ws.recv(succeeded('orders'));
  h.ws.drop(1006); // before its position arrived: events may be lost
  await h.clock.tick(200);
  h.ws.establish();
  await flush();
  assert.equal(h.ws.frames('pusher:subscribe')[0].data.position, true);
  h.ws.recv(succeeded('orders'));
  h.ws.recv(positionAt('orders', 'E', 3));
  assert.deepEqual(resyncs, ['resume_failed']);
});

test('channels without history are de-duplicated by message id within a bounded window', async () => {
  const h = harness();
  const client = await h.live({ dedupeWindow: 2 });
  const ch = client.subscribe('plain');
  const got = [];
  ch.bind('ping', (d) => got.push(d.message_id ?? d.n));
  h.ws.recv(ev('plain', 'ping', { message_id: 'a' }));
  h.ws.recv(ev('plain', 'ping', { message_id: 'a' })); // duplicate
  h.ws.recv(ev('plain', 'ping', { n: 1 })); // no id: always delivered
  h.ws.recv(ev('plain', 'ping', { n: 1 }));
  h.ws.recv(ev('plain', 'ping', { message_id: 'b' }));
  h.ws.recv(ev('plain', 'ping', { message_id: 'c' })); // 'a' leaves the window
  h.ws.recv(ev('plain', 'ping', { message_id: 'a' }));
  assert.deepEqual(got, ['a', 1, 1, 'b', 'c', 'a']);
});

test('private channels authorize at the auth endpoint with a form body and the CSRF token', async () => {
  const h = harness();
  h.document.csrf = 'csrf-123';
  h.routes.push((req) => (req.url === '/broadcasting/auth' ? [200, { auth: 'app-key:sig', shared_secret: 'x' }] : undefined));
  const client = h.connect({ headers: { Authorization: 'Bearer tok' } });
  h.ws.establish('5.6');
  client.subscribe('private-App.Models.User.1');
  await flush();
  const [req] = h.requests;
  assert.equal(req.method, 'POST');
  assert.equal(req.body, 'socket_id=5.6&channel_name=private-App.Models.User.1');
  assert.equal(req.headers['Content-Type'], 'application/x-www-form-urlencoded');
  assert.equal(req.headers['X-CSRF-TOKEN'], 'csrf-123');
  assert.equal(req.headers.Authorization, 'Bearer tok');
  assert.deepEqual(h.ws.frames('pusher:subscribe'), [
    { event: 'pusher:subscribe', data: { channel: 'private-App.Models.User.1', auth: 'app-key:sig', position: true } },
  ]);
});

test('a custom auth endpoint and headers from a function; no CSRF header without the meta tag', async () => {
  const h = harness();
  h.routes.push(() => [200, { auth: 'k:s' }]);
  const client = await h.live({ authEndpoint: '/api/broadcasting/auth', headers: () => ({ Authorization: 'Bearer fresh' }) });
  client.subscribe('private-a');
  await flush();
  assert.equal(h.requests[0].url, '/api/broadcasting/auth');
  assert.equal(h.requests[0].headers.Authorization, 'Bearer fresh');
  assert.equal('X-CSRF-TOKEN' in h.requests[0].headers, false);
});

test('a refused authorization is an error event and no subscribe', async () => {
  const h = harness();
  h.routes.push(() => [403, { message: 'no' }]);
  const client = await h.live();
  const ch = client.subscribe('private-secret');
  const errors = [];
  ch.bind('error', (e) => errors.push(e.status));
  await flush();
  assert.deepEqual(errors, [403]);
  assert.equal(h.ws.frames('pusher:subscribe').length, 0);
});

test('an authorization that returns after the socket changed is not sent', async () => {
  const h = harness();
  const client = await h.live();
  client.subscribe('private-a');
  await flush();
  h.ws.drop(1006);
  await h.clock.tick(200);
  h.ws.establish('2.2');
  await flush();
  const [first, second] = h.pending;
  assert.equal(first.body, 'socket_id=1.1&channel_name=private-a');
  assert.equal(second.body, 'socket_id=2.2&channel_name=private-a');
  first.respond(200, { auth: 'old' });
  second.respond(200, { auth: 'new' });
  await flush();
  assert.deepEqual(
    h.ws.frames('pusher:subscribe').map((f) => f.data.auth),
    ['new'],
  );
  assert.equal(h.sockets[0].frames('pusher:subscribe').length, 0);
});

test('presence channels: channel_data, here, joining, leaving, members', async () => {
  const h = harness();
  const channelData = JSON.stringify({ user_id: 1, user_info: { name: 'Ann' } });
  h.routes.push(() => [200, { auth: 'k:s', channel_data: channelData }]);
  const client = await h.live();
  const room = client.subscribe('presence-room.1');
  const log = [];
  room.bind('here', (m) => log.push(['here', m]));
  room.bind('joining', (m) => log.push(['joining', m]));
  room.bind('leaving', (m) => log.push(['leaving', m]));
  await flush();
  assert.deepEqual(h.ws.frames('pusher:subscribe')[0].data, {
    channel: 'presence-room.1',
    auth: 'k:s',
    channel_data: channelData,
    position: true,
  });
  assert.deepEqual(room.me, { id: '1', info: { name: 'Ann' } });
  h.ws.recv(
    succeeded('presence-room.1', {
      presence: { ids: ['1', '2'], hash: { 1: { name: 'Ann' }, 2: { name: 'Bob' } }, count: 2 },
    }),
  );
  h.ws.recv({
    event: 'pusher_internal:member_added',
    channel: 'presence-room.1',
    data: JSON.stringify({ user_id: '3', user_info: { name: 'Cy' } }),
  });
  h.ws.recv({ event: 'pusher_internal:member_removed', channel: 'presence-room.1', data: JSON.stringify({ user_id: '2' }) });
  assert.deepEqual(log, [
    [
      'here',
      [
        { id: '1', info: { name: 'Ann' } },
        { id: '2', info: { name: 'Bob' } },
      ],
    ],
    ['joining', { id: '3', info: { name: 'Cy' } }],
    ['leaving', { id: '2', info: { name: 'Bob' } }],
  ]);
  assert.deepEqual(room.members, [
    { id: '1', info: { name: 'Ann' } },
    { id: '3', info: { name: 'Cy' } },
  ]);
});

test('client events are sent on subscribed channels only', async () => {
  const h = harness();
  h.routes.push(() => [200, { auth: 'k:s' }]);
  const client = await h.live();
  const ch = client.subscribe('private-chat');
  assert.equal(ch.trigger('client-typing', { who: 1 }), false);
  await flush();
  h.ws.recv(succeeded('private-chat'));
  assert.equal(ch.trigger('client-typing', { who: 1 }), true);
  assert.deepEqual(h.ws.frames('client-typing'), [{ event: 'client-typing', channel: 'private-chat', data: { who: 1 } }]);
});

test('on(type) subscribes the broadcast channel once and hears the type on every channel', async () => {
  const h = harness();
  const client = await h.live();
  const created = [];
  const assigned = [];
  client.on('ticket_created', (t, meta) => created.push([t.subject, meta.channel]));
  client.on('ticket_assigned', (t) => assigned.push(t.id));
  client.subscribe('tickets');
  await flush();
  assert.deepEqual(
    h.ws.frames('pusher:subscribe').map((f) => f.data.channel),
    ['broadcast', 'tickets'],
  );
  h.ws.recv(ev('broadcast', 'ticket_created', { id: 7, subject: 'Printer on fire' }, 'B', 1));
  h.ws.recv(ev('tickets', 'ticket_created', { id: 8, subject: 'Coffee' }, 'T', 1));
  h.ws.recv(ev('broadcast', 'ticket_assigned', { id: 7 }, 'B', 2));
  h.ws.recv(ev('broadcast', 'ticket_status_changed', { id: 7 }, 'B', 3));
  assert.deepEqual(created, [
    ['Printer on fire', 'broadcast'],
    ['Coffee', 'tickets'],
  ]);
  assert.deepEqual(assigned, [7]);
  client.off('ticket_created');
  h.ws.recv(ev('broadcast', 'ticket_created', { id: 9, subject: 'x' }, 'B', 4));
  assert.equal(created.length, 2);
});

test('on(type) with broadcastChannel false subscribes nothing', async () => {
  const h = harness();
  const client = await h.live({ broadcastChannel: false });
  client.on('x', () => {});
  await flush();
  assert.equal(h.ws.frames('pusher:subscribe').length, 0);
});

test('a throwing handler does not stop the others', async (t) => {
  const h = harness();
  const errors = [];
  t.mock.method(console, 'error', (e) => errors.push(e.message));
  const saved = globalThis.reportError;
  globalThis.reportError = undefined;
  try {
    const { orders } = await atSeven(h);
    const got = [];
    orders.bind('boom', () => {
      throw new Error('handler failed');
    });
    orders.bind('boom', (d) => got.push(d));
    h.ws.recv(ev('orders', 'boom', 1, 'E', 8));
    assert.deepEqual(got, [1]);
    assert.deepEqual(errors, ['handler failed']);
  } finally {
    globalThis.reportError = saved;
  }
});
