// Connection lifecycle: handshake, heartbeat, refusals with their close codes,
// malformed frames.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, WAIT, test, useHerald, startHerald, rawConnect, dataOf, isEvent, isError, errorCode,
  pusherClient, waitState, waitFor, withTimeout, uid,
} from '../lib/herald.js';

const h = useHerald();

/** Asserts the exact shape of a pusher:error frame and returns its data. */
function assertErrorFrame(frame, code) {
  assert.equal(frame.event, 'pusher:error', `expected pusher:error, got ${JSON.stringify(frame)}`);
  assert.deepEqual(Object.keys(frame).sort(), ['data', 'event'], `pusher:error frame has extra fields: ${JSON.stringify(frame)}`);
  assert.equal(typeof frame.data, 'string', 'pusher:error data must be a JSON-encoded string');
  const data = JSON.parse(frame.data);
  assert.deepEqual(Object.keys(data).sort(), ['code', 'message']);
  assert.equal(data.code, code);
  assert.equal(typeof data.message, 'string');
  assert.ok(data.message.length > 0, 'error message should not be empty');
  return data;
}

/**
 * The refusal sequence: a pusher:error with `code` as the first frame (no
 * connection_established), then a WebSocket close with the same code.
 */
async function expectRefused(c, code) {
  if (c.closeInfo?.httpStatus !== undefined) {
    assert.fail(`upgrade refused with ${c.closeInfo.reason}; expected a WebSocket pusher:error and close ${code}`);
  }
  const f = await c.next(() => true, WAIT, `pusher:error ${code}`);
  assertErrorFrame(f, code);
  const closed = await c.waitClose();
  assert.equal(closed.code, code, `close code: got ${closed.code} ${closed.reason}`);
  assert.ok(!c.seen(isEvent('pusher:connection_established')), 'must not be established');
}

describe('handshake', () => {
  test('connection_established carries a JSON-string data with socket_id and activity_timeout 30', async () => {
    const c = await rawConnect(h, APPS.main);
    const f = c.established;
    assert.deepEqual(Object.keys(f).sort(), ['data', 'event']);
    assert.equal(f.event, 'pusher:connection_established');
    assert.equal(typeof f.data, 'string', 'data must be double-encoded (a JSON string)');
    const data = JSON.parse(f.data);
    assert.deepEqual(Object.keys(data).sort(), ['activity_timeout', 'socket_id']);
    assert.match(data.socket_id, /^\d+\.\d+$/);
    assert.equal(data.activity_timeout, 30);
    assert.equal(c.frames[0], f, 'connection_established is the first frame');
  });

  test('activity_timeout comes from the app config', async () => {
    const c = await rawConnect(h, APPS.all);
    assert.equal(dataOf(c.established).activity_timeout, 45);
  });

  test('socket ids are unique', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => rawConnect(h, APPS.main)));
    const ids = clients.map((c) => c.socketId);
    assert.equal(new Set(ids).size, ids.length, `duplicate socket ids: ${ids}`);
  });

  for (const protocol of [5, 6, 7]) {
    test(`protocol=${protocol} is accepted`, async () => {
      const c = await rawConnect(h, APPS.main, { protocol });
      assert.match(c.socketId, /^\d+\.\d+$/);
      const pong = await c.ping();
      assert.equal(pong.event, 'pusher:pong');
    });
  }

  test('pusher:ping is answered with {"event":"pusher:pong","data":"{}"}', async () => {
    const c = await rawConnect(h, APPS.main);
    const pong = await c.ping();
    assert.deepEqual(pong, { event: 'pusher:pong', data: '{}' });
  });

  test('GET /up answers 200', async () => {
    const res = await fetch(`${h.httpURL}/up`);
    assert.equal(res.status, 200);
  });
});

describe('refusals: pusher:error then close with the same code', () => {
  test('unknown app key → 4001', async () => {
    const c = await rawConnect(h, 'no-such-key', { established: false });
    await expectRefused(c, 4001);
  });

  test('disabled app → 4003', async () => {
    const c = await rawConnect(h, APPS.disabled, { established: false });
    await expectRefused(c, 4003);
  });

  test('over max_connections → 4004, and the slot frees when the first socket leaves', async () => {
    const first = await rawConnect(h, APPS.maxconn);
    const second = await rawConnect(h, APPS.maxconn, { established: false });
    await expectRefused(second, 4004);
    assert.ok(first.isOpen, 'the first socket stays open');
    await first.ping();
    await first.close();
    // The server learns of the close asynchronously: retry until admitted.
    const third = await waitFor(async () => {
      const c = await rawConnect(h, APPS.maxconn, { established: false });
      const f = await c.next(() => true);
      if (f.event === 'pusher:connection_established') return c;
      await c.close();
      return false;
    }, { what: 'a new socket admitted after the first closed' });
    assert.ok(third.isOpen);
  });

  test('WebSocket upgrade to another path (/foo) → 4005', async () => {
    const c = await rawConnect(h, APPS.main, { established: false, path: '/foo' });
    await expectRefused(c, 4005);
  });

  test('protocol=abc → 4006', async () => {
    const c = await rawConnect(h, APPS.main, { established: false, protocol: 'abc' });
    await expectRefused(c, 4006);
  });

  test('protocol=3 → 4007', async () => {
    const c = await rawConnect(h, APPS.main, { established: false, protocol: 3 });
    await expectRefused(c, 4007);
  });

  test('protocol=8 → 4007', async () => {
    const c = await rawConnect(h, APPS.main, { established: false, protocol: 8 });
    await expectRefused(c, 4007);
  });

  test('no protocol parameter → 4008', async () => {
    const c = await rawConnect(h, APPS.main, { established: false, protocol: null });
    await expectRefused(c, 4008);
  });

  test('Origin not in allowed_origins → 4009', async () => {
    const c = await rawConnect(h, APPS.origin, { established: false, origin: 'http://evil.example.com' });
    await expectRefused(c, 4009);
  });

  test('Origin in allowed_origins is accepted', async () => {
    const c = await rawConnect(h, APPS.origin, { origin: 'http://good.example.com' });
    assert.match(c.socketId, /^\d+\.\d+$/);
    const c2 = await rawConnect(h, APPS.origin, { origin: 'https://good.example.com' });
    assert.match(c2.socketId, /^\d+\.\d+$/);
  });

  test('a "*.trusted.test" pattern admits subdomains and nothing else', async () => {
    const ok = await rawConnect(h, APPS.origin, { origin: 'https://app.trusted.test' });
    assert.match(ok.socketId, /^\d+\.\d+$/);
    const bad = await rawConnect(h, APPS.origin, { established: false, origin: 'https://trusted.test.evil.com' });
    await expectRefused(bad, 4009);
  });
});

describe('heartbeat', () => {
  test('server sends pusher:ping after ping_interval of silence and closes with 4201 without a pong', async () => {
    const c = await rawConnect(h, APPS.ping);
    const ping = await c.nextEvent('pusher:ping', undefined, 5000);
    assert.equal(ping.event, 'pusher:ping');
    assert.deepEqual(dataOf(ping) ?? {}, {});
    const closed = await c.waitClose(6000);
    assert.equal(closed.code, 4201, `close code: got ${closed.code} ${closed.reason}`);
    const err = c.frames.find(isError());
    assert.ok(err, 'a pusher:error precedes the close');
    assert.equal(errorCode(err), 4201);
  });

  test('a client answering pings (pusher-js) stays connected across several server pings', async () => {
    const p = await pusherClient(h, APPS.ping);
    const states = [];
    p.connection.bind('state_change', ({ current }) => states.push(current));
    const socketId = p.connection.socket_id;
    await waitFor(() => p.frames.filter((m) => m.event === 'pusher:ping').length >= 3,
      { timeout: 10000, interval: 50, what: 'three pusher:ping frames from the server' });
    assert.equal(p.connection.state, 'connected');
    assert.deepEqual(states, [], `pusher-js changed state: ${states}`);
    assert.equal(p.connection.socket_id, socketId, 'same socket throughout');
    await waitState(p, 'connected');
  });
});

describe('inbound message size', () => {
  test('a message over max_message_bytes closes the socket with 1009', async () => {
    const c = await rawConnect(h, APPS.limits);
    // Just under the limit (2000 bytes) is fine.
    const small = JSON.stringify({ event: 'pusher:ping', data: { pad: 'x'.repeat(1800) } });
    assert.ok(small.length < 2000);
    c.sendRaw(small);
    await c.nextEvent('pusher:pong');
    c.sendRaw(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'big', pad: 'x'.repeat(3000) } }));
    const closed = await c.waitClose();
    assert.equal(closed.code, 1009, `close code: got ${closed.code} ${closed.reason}`);
    assert.ok(!c.seen(isEvent('pusher_internal:subscription_succeeded')));
  });
});

describe('malformed frames: pusher:error 4200 and the socket stays usable', () => {
  const cases = [
    ['not JSON', 'this is not json'],
    ['JSON that is not an object', '[1,2,3]'],
    ['JSON without event', JSON.stringify({ data: {} })],
    ['event not a string', JSON.stringify({ event: 5, data: {} })],
    ['subscribe without channel', JSON.stringify({ event: 'pusher:subscribe', data: {} })],
    ['subscribe with a non-string channel', JSON.stringify({ event: 'pusher:subscribe', data: { channel: 42 } })],
    ['subscribe to "bad name!"', JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'bad name!' } })],
    ['subscribe to a 165-character name', JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'a'.repeat(165) } })],
  ];
  for (const [name, text] of cases) {
    test(name, async () => {
      const c = await rawConnect(h, APPS.main);
      c.sendRaw(text);
      const err = await c.nextError();
      assertErrorFrame(err, 4200);
      const channel = uid('after-error-');
      const ok = await c.subscribe(channel);
      assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
      assert.ok(c.isOpen);
      assert.equal(c.closeInfo, undefined);
    });
  }

  test('a 164-character channel name is accepted', async () => {
    const c = await rawConnect(h, APPS.main);
    const name = `n${process.pid}-`.padEnd(164, 'a');
    assert.equal(name.length, 164);
    const ok = await c.subscribe(name);
    assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel: name, data: '{}' });
  });

  test('unknown pusher: events do not close the socket', async () => {
    const c = await rawConnect(h, APPS.main);
    c.send({ event: 'pusher:no_such_thing', data: {} });
    const channel = uid('after-unknown-');
    const ok = await c.subscribe(channel);
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
    const err = c.frames.find(isError());
    if (err) assert.notEqual(errorCode(err), undefined, 'if answered, it is a proper pusher:error');
    assert.ok(c.isOpen);
  });
});

describe('shutdown', () => {
  test('SIGTERM: open sockets are closed with 4200 (reconnect now) and the process exits 0', async () => {
    const own = await startHerald();
    try {
      const a = await rawConnect(own, APPS.main);
      const b = await rawConnect(own, APPS.main);
      await a.subscribe(uid('public-'));
      own.terminate();
      const [ca, cb] = await Promise.all([a.waitClose(8000), b.waitClose(8000)]);
      assert.equal(ca.code, 4200, `close code: ${JSON.stringify(ca)}`);
      assert.equal(cb.code, 4200, `close code: ${JSON.stringify(cb)}`);
      const exit = await withTimeout(own.exited, 8000, 'herald to exit after SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null });
    } finally {
      await own.stop().catch(() => {});
    }
  });
});

describe('server.path prefix', () => {
  test('with path "/realtime" sockets connect at /realtime/app/{key}; /app/{key} is refused with 4005', async () => {
    const own = await startHerald({ server: { path: '/realtime' } });
    try {
      const ok = await rawConnect(own, APPS.main, { path: `/realtime/app/${APPS.main.key}` });
      assert.match(ok.socketId, /^\d+\.\d+$/);
      await ok.ping();
      const bad = await rawConnect(own, APPS.main, { established: false });
      await expectRefused(bad, 4005);
    } finally {
      await own.stop();
    }
  });
});
