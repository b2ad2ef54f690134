// The socket: URL, connection_established, reconnect classes and backoff,
// page events (online, visibility), heartbeat, disconnect.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { harness, flush } from '../testdata/fakes.mjs';

test('connects to /app/{key} with protocol 7 and goes live on connection_established', async () => {
  const h = harness();
  const states = [];
  const client = h.connect();
  client.bind('state', (s) => states.push(s));
  const connected = [];
  client.bind('connected', (d) => connected.push(d));
  assert.equal(h.ws.url, 'ws://herald.test:8080/app/app-key?protocol=7&client=herald-js&version=0.1.0');
  assert.equal(client.state, 'connecting');
  h.ws.establish('123.456');
  assert.equal(client.state, 'live');
  assert.equal(client.socketId, '123.456');
  assert.deepEqual(states, ['live']);
  assert.deepEqual(connected, [{ socketId: '123.456', transport: 'websocket' }]);
});

test('the URL follows scheme, port and path, and defaults to the page', () => {
  const h = harness();
  h.connect({ scheme: 'https', port: undefined, path: '/ws' });
  assert.equal(h.ws.url, 'wss://herald.test:443/ws/app/app-key?protocol=7&client=herald-js&version=0.1.0');
  h.window.location = { protocol: 'https:', hostname: 'shop.test', port: '8443' };
  h.connect({ host: undefined, port: undefined });
  assert.match(h.ws.url, /^wss:\/\/shop\.test:8443\/app\/app-key\?/);
});

test('a 4000-4099 close does not reconnect', async () => {
  for (const code of [4000, 4001, 4009, 4099]) {
    const h = harness();
    const client = await h.live();
    const errors = [];
    client.bind('error', (e) => errors.push(e));
    h.ws.drop(code, 'no');
    await h.clock.tick(600_000);
    assert.equal(h.sockets.length, 1, `code ${code}`);
    assert.equal(client.state, 'offline');
    assert.deepEqual(errors, [{ code, reason: 'no' }]);
    h.window.dispatchEvent(new Event('online')); // not even when the network comes back
    assert.equal(h.sockets.length, 1);
    client.connect(); // but on request
    assert.equal(h.sockets.length, 2);
  }
});

test('a 4100-4199 close reconnects after at least a second, with jitter', async () => {
  for (const [random, want] of [
    [0, 1100],
    [0.999, 1200],
  ]) {
    const h = harness();
    h.random = random;
    await h.live();
    h.ws.drop(4100);
    assert.equal(h.clock.delays().length, 1);
    const d = h.clock.delays()[0];
    assert.ok(Math.abs(d - want) < 1, `delay ${d}, want ${want}`);
    await h.clock.tick(999);
    assert.equal(h.sockets.length, 1);
    await h.clock.tick(d - 999);
    assert.equal(h.sockets.length, 2);
  }
});

test('a 4200-4299 close reconnects at once', async () => {
  for (const code of [4200, 4201, 4202]) {
    const h = harness();
    const client = await h.live();
    h.ws.drop(code);
    assert.equal(client.state, 'reconnecting');
    await h.clock.tick(0);
    assert.equal(h.sockets.length, 2, `code ${code}`);
  }
});

test('an abnormal close backs off exponentially from a quick first retry, capped near a second', async () => {
  for (const random of [0, 0.5, 0.999]) {
    const h = harness();
    h.random = random;
    const client = await h.live();
    h.ws.drop(1006);
    const delays = [];
    for (let i = 0; i < 8; i++) {
      const [d] = h.clock.delays();
      delays.push(d);
      await h.clock.tick(d);
      assert.equal(h.sockets.length, i + 2);
      h.ws.drop(1006);
    }
    assert.equal(client.state, 'reconnecting');
    // base 200 ms doubling, capped at 1000 ms; the upper half of each is random
    const caps = [200, 400, 800, 1000, 1000, 1000, 1000, 1000];
    delays.forEach((d, i) => {
      assert.ok(d >= caps[i] / 2 && d <= caps[i], `attempt ${i}: ${d} not in [${caps[i] / 2}, ${caps[i]}]`);
      assert.ok(Math.abs(d - (caps[i] / 2) * (1 + random)) < 1e-6);
    });
    assert.ok(delays[0] <= 200, 'the first retry is quick');
  }
});

test('a live socket resets the backoff', async () => {
  const h = harness();
  h.random = 1;
  await h.live();
  for (let i = 0; i < 3; i++) {
    h.ws.drop(1006);
    await h.clock.tick(h.clock.delays()[0]);
  }
  h.ws.establish();
  h.ws.drop(1006);
  assert.deepEqual(h.clock.delays(), [200]);
});

test('a socket that does not go live within connectTimeout is abandoned and retried', async () => {
  const h = harness();
  const client = h.connect({ fallback: false });
  await h.clock.tick(4999);
  assert.equal(h.ws.closed, false);
  await h.clock.tick(1);
  assert.equal(h.sockets[0].closed, true);
  assert.equal(client.state, 'reconnecting');
  await h.clock.tick(200);
  assert.equal(h.sockets.length, 2);
});

test('online and a visible tab reconnect at once', async () => {
  const h = harness();
  h.random = 1;
  await h.live();
  for (let i = 0; i < 4; i++) {
    h.ws.drop(1006);
    await h.clock.tick(h.clock.delays()[0]);
  }
  h.ws.drop(1006);
  assert.equal(h.sockets.length, 5);
  h.window.dispatchEvent(new Event('online'));
  assert.equal(h.sockets.length, 6);
  h.ws.drop(1006);
  h.setHidden(false);
  assert.equal(h.sockets.length, 7);
  h.window.dispatchEvent(new Event('online')); // already connecting: nothing more
  assert.equal(h.sockets.length, 7);
});

test('offline stops the attempts until the network is back', async () => {
  const h = harness();
  const client = await h.live();
  h.ws.drop(1006);
  h.navigator.onLine = false;
  h.window.dispatchEvent(new Event('offline'));
  assert.equal(client.state, 'offline');
  await h.clock.tick(60_000);
  assert.equal(h.sockets.length, 1);
  h.navigator.onLine = true;
  h.window.dispatchEvent(new Event('online'));
  assert.equal(h.sockets.length, 2);
  h.ws.establish();
  assert.equal(client.state, 'live');
});

test('answers pusher:ping with pusher:pong', async () => {
  const h = harness();
  await h.live();
  h.ws.recv({ event: 'pusher:ping', data: '{}' });
  assert.deepEqual(h.ws.frames('pusher:pong'), [{ event: 'pusher:pong', data: {} }]);
});

test('pings after activity_timeout of silence and reconnects when no pong comes', async () => {
  const h = harness();
  const client = h.connect();
  h.ws.establish('1.1', 30);
  await h.clock.tick(29_000);
  h.ws.recv({ event: 'pusher:pong', data: '{}' }); // any frame is activity
  await h.clock.tick(29_999);
  assert.equal(h.ws.frames('pusher:ping').length, 0);
  await h.clock.tick(1);
  assert.deepEqual(h.ws.frames('pusher:ping'), [{ event: 'pusher:ping', data: {} }]);
  h.ws.recv({ event: 'pusher:pong', data: '{}' });
  await h.clock.tick(30_000);
  assert.equal(h.ws.frames('pusher:ping').length, 2);
  await h.clock.tick(29_999);
  assert.equal(h.sockets.length, 1);
  await h.clock.tick(1); // pong timeout: closed, reconnected at once (as after 4201)
  assert.equal(h.sockets[0].closed, true);
  assert.equal(h.sockets.length, 2);
  assert.equal(client.state, 'reconnecting');
});

test('uses the smaller of its own and the server activity timeout', async () => {
  const h = harness();
  h.connect({ activityTimeout: 120 });
  h.ws.establish('1.1', 600);
  await h.clock.tick(120_000);
  assert.equal(h.ws.frames('pusher:ping').length, 1);
});

test('disconnect closes the socket and stops reconnecting', async () => {
  const h = harness();
  h.record('herald:disconnected');
  const client = await h.live();
  const orders = client.subscribe('orders');
  await flush();
  h.ws.recv({ event: 'pusher_internal:subscription_succeeded', channel: 'orders', data: '{}' });
  assert.equal(orders.subscribed, true);
  client.disconnect();
  assert.equal(orders.subscribed, false, 'a channel is not subscribed while disconnected');
  assert.equal(h.ws.closed, true);
  assert.equal(client.state, 'offline');
  assert.equal(client.socketId, null);
  await h.clock.tick(60_000);
  h.window.dispatchEvent(new Event('online'));
  assert.equal(h.sockets.length, 1);
  assert.equal(h.seen['herald:disconnected'].length, 1);
});

test('pusher:error is reported as an error event', async () => {
  const h = harness();
  const client = await h.live();
  const errors = [];
  client.bind('error', (e) => errors.push(e));
  h.ws.recv({ event: 'pusher:error', data: JSON.stringify({ code: 4301, message: 'slow down' }) });
  h.ws.recv('not json');
  await flush();
  assert.deepEqual(errors, [{ code: 4301, message: 'slow down' }]);
});
