// The Laravel Echo plugin (internal/web/herald-echo.mjs) on the real
// laravel-echo 2.5.0 + pusher-js 8.6.0 (Node build) against the real binary.
// Clients connect through a TCP proxy the test controls: it cuts their
// sockets and holds their reconnects while events are published, then lets
// pusher-js reconnect by itself. A stock Echo on the same channels, without
// the plugin, shows what the plugin saved.

import assert from 'node:assert/strict';
import { describe } from 'node:test';

import HeraldEcho from '../../internal/web/herald-echo.mjs';
import {
  APPS, Echo, PusherClient, test, useHerald, useAuthServer, publisher, sdkResult,
  uid, track, withTimeout, waitFor, WAIT,
} from '../lib/herald.js';
import { tcpProxy } from '../lib/proxy.js';

// History deep enough for every test here but the one that outruns it.
const MAIN = { ...APPS.main, history: { channels: ['*'], max_events: 1000 } };
const SMALL = { id: 'small-app', key: 'small-key', secret: 'small-secret', history: { channels: ['*'], max_events: 5 } };
const OFF = { id: 'off-app', key: 'off-key', secret: 'off-secret', history: 'off' };
const h = useHerald({ apps: [MAIN, SMALL, OFF] });
const auth = useAuthServer(h); // signs with APPS.main: the same key and secret as MAIN

const LONG = { timeout: 40000 };
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

// ---------------------------------------------------------------------------
// Helpers

/** A Laravel Echo connecting through proxy, as a page configures it (not yet connected). */
function echoVia(proxy, app, { broadcaster = 'reverb', headers = {}, transport = 'ws' } = {}) {
  const echo = new Echo({
    broadcaster,
    key: app.key,
    Pusher: PusherClient,
    wsHost: '127.0.0.1', wsPort: proxy.port, wssPort: proxy.port,
    httpHost: '127.0.0.1', httpPort: proxy.port,
    forceTLS: false, enabledTransports: [transport], disableStats: true,
    ...(broadcaster === 'pusher' ? { cluster: 'mt1' } : {}),
    authEndpoint: auth.channelEndpoint('main'),
    auth: { headers },
  });
  track({ close: () => echo.disconnect() });
  return echo;
}

/** An Echo with the plugin installed right after it is created, recording resyncs. */
function pluginEcho(proxy, app, opts) {
  const echo = echoVia(proxy, app, opts);
  const resyncs = [];
  const herald = HeraldEcho.install(echo, { onResync: (name, info) => resyncs.push(info) });
  return { echo, herald, resyncs };
}

/**
 * Listens to `.event` on an Echo channel and records every event any
 * app-level listener can see: Echo's listenToAll, the pusher-js channel's
 * and the Pusher's bind_global.
 */
function listen(channel, event, pick = (e) => e.id) {
  const got = [];
  const seen = [];
  channel.listen(`.${event}`, (e) => got.push(pick(e)));
  channel.listenToAll((name) => seen.push(`echo:${name}`));
  channel.subscription.bind_global((name) => seen.push(`channel:${name}`));
  channel.pusher.bind_global((name) => seen.push(`pusher:${name}`));
  return { got, seen };
}

const subscribed = (channel, what) => withTimeout(new Promise((resolve, reject) => {
  if (channel.subscription.subscribed) return resolve();
  channel.subscribed(resolve);
  channel.error((e) => reject(new Error(`${what}: ${JSON.stringify(e)}`)));
}), WAIT, `Echo subscription to ${what}`);

/** Resolves when pusher-js, having left "connected", is connected again. */
function reconnected(echo) {
  const pusher = echo.connector.pusher;
  let left = false;
  return withTimeout(new Promise((resolve) => {
    const cb = ({ current }) => {
      if (current !== 'connected') left = true;
      else if (left) { pusher.connection.unbind('state_change', cb); resolve(); }
    };
    pusher.connection.bind('state_change', cb);
  }), WAIT + 15000, 'pusher-js to reconnect by itself');
}

async function trigger(app, channel, event, data) {
  const r = await sdkResult(publisher(h, app).trigger(channel, event, data));
  assert.equal(r.status, 200, r.text);
}

async function publish(app, channel, ids, event = 'order.created') {
  for (const id of ids) await trigger(app, channel, event, { id });
}

/**
 * Cuts every client's socket and holds their reconnects while during()
 * publishes; then lets pusher-js reconnect by itself and waits until every
 * given channel is subscribed again.
 */
async function outage(proxy, echos, channels, during) {
  const back = echos.map(reconnected);
  proxy.hold();
  proxy.cut();
  await waitFor(() => echos.every((e) => e.connector.pusher.connection.state !== 'connected'), { what: 'the clients to notice the cut' });
  await during();
  await waitFor(() => proxy.waiting >= echos.length, { timeout: WAIT + 5000, what: 'every client to try again' });
  proxy.release();
  await Promise.all(back);
  await waitFor(() => channels.every((c) => c.subscription.subscribed), { what: 'the channels to be subscribed again' });
}

const noHerald = (seen) => assert.deepEqual(seen.filter((s) => /herald/.test(s)), [], 'app listeners never see herald:* events');

// ---------------------------------------------------------------------------

describe('Echo plugin: resume after pusher-js reconnects by itself', () => {
  for (const broadcaster of ['reverb', 'pusher']) {
    test(`broadcaster ${broadcaster}: 50 events, the socket cut while they are published; the plugin's listener has all 50 once and in order, a stock Echo misses the outage`, LONG, async () => {
      const channel = uid('orders-');
      const proxy = await tcpProxy(h.port);
      const { echo, herald, resyncs } = pluginEcho(proxy, MAIN, { broadcaster });
      const stock = echoVia(proxy, MAIN, { broadcaster });
      const mine = echo.channel(channel);
      const theirs = stock.channel(channel);
      const a = listen(mine, 'order.created');
      const b = listen(theirs, 'order.created');
      await Promise.all([subscribed(mine, 'plugin'), subscribed(theirs, 'stock')]);
      await waitFor(() => herald.position(channel) !== null, { what: 'herald:position' });
      assert.equal(herald.position(channel), ':0', 'a channel never published to: the empty position');

      await publish(MAIN, channel, range(1, 10));
      await waitFor(() => a.got.length === 10 && b.got.length === 10, { what: 'events 1-10 on both' });
      await outage(proxy, [echo, stock], [mine, theirs], () => publish(MAIN, channel, range(11, 40)));
      await publish(MAIN, channel, range(41, 50));
      await waitFor(() => a.got.length >= 50 && b.got.includes(50), { what: `event 50 on both (plugin has ${a.got.length})` });
      // a marker: nothing more (a late duplicate) comes before it
      let marked = 0;
      mine.listen('.marker', () => marked++);
      await trigger(MAIN, channel, 'marker', {});
      await waitFor(() => marked === 1, { what: 'the marker' });

      assert.deepEqual(a.got, range(1, 50), 'with the plugin: every event once, in order');
      assert.deepEqual(b.got, [...range(1, 10), ...range(41, 50)], 'without it: what was published during the outage is lost');
      assert.deepEqual(resyncs, []);
      assert.match(herald.position(channel), /^[A-Za-z0-9_.-]+:51$/);
      noHerald(a.seen);
      assert.equal(echo.connector.pusher.connection.state, 'connected');
    });
  }

  test('pusher-js on its HTTP fallback (xhr_streaming): the same resume', LONG, async () => {
    const channel = uid('orders-');
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, MAIN, { transport: 'xhr_streaming' });
    const stock = echoVia(proxy, MAIN, { transport: 'xhr_streaming' });
    const mine = echo.channel(channel);
    const theirs = stock.channel(channel);
    const a = listen(mine, 'order.created');
    const b = listen(theirs, 'order.created');
    await Promise.all([subscribed(mine, 'plugin'), subscribed(theirs, 'stock')]);
    assert.equal(echo.connector.pusher.connection.connection.transport.name, 'xhr_streaming');
    await waitFor(() => herald.position(channel) !== null, { what: 'herald:position' });
    await publish(MAIN, channel, range(1, 5));
    await waitFor(() => a.got.length === 5 && b.got.length === 5, { what: 'events 1-5 on both' });
    await outage(proxy, [echo, stock], [mine, theirs], () => publish(MAIN, channel, range(6, 15)));
    await publish(MAIN, channel, range(16, 20));
    await waitFor(() => a.got.length >= 20 && b.got.includes(20), { what: `event 20 on both (plugin has ${a.got.length})` });
    assert.deepEqual(a.got, range(1, 20));
    assert.deepEqual(b.got, [...range(1, 5), ...range(16, 20)]);
    assert.deepEqual(resyncs, []);
    noHerald(a.seen);
  });

  test('quiet channels (no event seen before the cut) resume from their herald:position: one never published to, one with history', LONG, async () => {
    const fresh = uid('quiet-');
    const older = uid('quiet-');
    await publish(MAIN, older, [1, 2, 3]); // before anyone subscribes
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, MAIN);
    const stock = echoVia(proxy, MAIN);
    const chans = [echo.channel(fresh), echo.channel(older), stock.channel(fresh), stock.channel(older)];
    const [a1, a2, b1, b2] = chans.map((c) => listen(c, 'order.created'));
    await Promise.all(chans.map((c, i) => subscribed(c, `channel ${i}`)));
    await waitFor(() => herald.position(fresh) && herald.position(older), { what: 'both herald:position events' });
    assert.equal(herald.position(fresh), ':0');
    assert.match(herald.position(older), /:3$/);

    await outage(proxy, [echo, stock], chans, async () => {
      await publish(MAIN, fresh, range(1, 5));
      await publish(MAIN, older, range(4, 8));
    });
    await publish(MAIN, fresh, [6]);
    await publish(MAIN, older, [9]);
    await waitFor(() => a1.got.includes(6) && a2.got.includes(9) && b1.got.includes(6) && b2.got.includes(9), { what: 'the live events' });
    assert.deepEqual(a1.got, range(1, 6));
    assert.deepEqual(a2.got, range(4, 9), 'from the position the subscription started at; nothing before it');
    assert.deepEqual(b1.got, [6]);
    assert.deepEqual(b2.got, [9]);
    assert.deepEqual(resyncs, []);
    noHerald([...a1.seen, ...a2.seen]);
  });
});

describe('Echo plugin: events the page is excluded from', () => {
  test("toOthers (a publish with the page's socket_id) and its own whisper: the position moves past them, no resync", LONG, async () => {
    const name = uid('orders-');
    const channel = `private-${name}`; // Echo's private(name)
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, MAIN);
    const other = pluginEcho(proxy, MAIN).echo;
    const mine = echo.private(name);
    const a = listen(mine, 'order.created');
    const b = listen(other.private(name), 'order.created');
    await Promise.all([subscribed(mine, 'plugin'), subscribed(other.private(name), 'other')]);
    await waitFor(() => herald.position(channel) !== null, { what: 'herald:position' });
    await trigger(MAIN, channel, 'order.created', { id: 1 });
    // Laravel's toOthers: the SDK's socket_id excludes the page.
    const r = await sdkResult(publisher(h, MAIN).trigger(channel, 'order.created', { id: 2 }, { socket_id: echo.socketId() }));
    assert.equal(r.status, 200, r.text);
    mine.whisper('typing', { who: 'me' }); // a client event: the sender is excluded too
    await waitFor(() => b.got.length === 2, { what: 'the other page to get 1 and 2' });
    await trigger(MAIN, channel, 'order.created', { id: 3 });
    await waitFor(() => a.got.length === 2 && b.got.length === 3, { what: 'event 3 on both' });
    assert.deepEqual(a.got, [1, 3], 'the excluded event is not delivered');
    assert.deepEqual(resyncs, [], 'and is no gap');
    assert.match(herald.position(channel), /:4$/, 'offsets 1-4: two events, the excluded one and the whisper');
    noHerald(a.seen);
  });
});

describe('Echo plugin: installed late, and channels without history', () => {
  test('installed on an Echo already connected and subscribed: it hooks the open socket and resumes that channel', LONG, async () => {
    const channel = uid('orders-');
    const proxy = await tcpProxy(h.port);
    const echo = echoVia(proxy, MAIN);
    const mine = echo.channel(channel);
    const a = listen(mine, 'order.created');
    await subscribed(mine, 'plugin');
    const resyncs = [];
    const herald = HeraldEcho.install(echo, { onResync: (n, info) => resyncs.push(info) });
    await publish(MAIN, channel, [1, 2]);
    await waitFor(() => a.got.length === 2, { what: 'events 1-2' });
    assert.match(herald.position(channel), /:2$/);
    await outage(proxy, [echo], [mine], () => publish(MAIN, channel, range(3, 7)));
    await publish(MAIN, channel, [8]);
    await waitFor(() => a.got.includes(8), { what: 'event 8' });
    assert.deepEqual(a.got, range(1, 8));
    assert.deepEqual(resyncs, []);
  });

  test('history off: no position asked for is answered, no resync; a repeated data.message_id is dropped (a stock Echo gets it twice)', LONG, async () => {
    const channel = uid('plain-');
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, OFF);
    const stock = echoVia(proxy, OFF);
    const mine = echo.channel(channel);
    const theirs = stock.channel(channel);
    const pick = (e) => e.message_id;
    const a = listen(mine, 'note', pick);
    const b = listen(theirs, 'note', pick);
    await Promise.all([subscribed(mine, 'plugin'), subscribed(theirs, 'stock')]);
    const notes = async (ids) => { for (const id of ids) await trigger(OFF, channel, 'note', { message_id: id }); };
    await notes(['m1', 'm2', 'm1']);
    await waitFor(() => b.got.length === 3, { what: '3 notes on the stock client' });
    await outage(proxy, [echo, stock], [mine, theirs], async () => {});
    await notes(['m2', 'm3']);
    await waitFor(() => b.got.length === 5 && a.got.includes('m3'), { what: 'the notes after the reconnect' });
    assert.deepEqual(b.got, ['m1', 'm2', 'm1', 'm2', 'm3']);
    assert.deepEqual(a.got, ['m1', 'm2', 'm3'], 'with the plugin: each message id once');
    assert.equal(herald.position(channel), null);
    assert.deepEqual(resyncs, []);
    noHerald(a.seen);
  });
});

describe('Echo plugin: history lost', () => {
  test('more events during the cut than history keeps: herald:resume_failed becomes onResync; listeners go on with the live events', LONG, async () => {
    const channel = uid('small-');
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, SMALL);
    const mine = echo.channel(channel);
    const a = listen(mine, 'order.created');
    await subscribed(mine, 'plugin');
    await publish(SMALL, channel, [1]);
    await waitFor(() => a.got.length === 1, { what: 'event 1' });
    const E = herald.position(channel).split(':')[0];

    await outage(proxy, [echo], [mine], () => publish(SMALL, channel, range(2, 21))); // history keeps 17-21
    await waitFor(() => resyncs.length === 1, { what: 'onResync' });
    assert.deepEqual(resyncs, [{ channel, reason: 'resume_failed', epoch: E, offset: 21 }]);
    assert.equal(herald.position(channel), `${E}:21`);
    await publish(SMALL, channel, [22]);
    await waitFor(() => a.got.includes(22), { what: 'event 22' });
    assert.deepEqual(a.got, [1, 22], 'the app refetches on onResync; live events follow');
    assert.equal(resyncs.length, 1);
    noHerald(a.seen);
  });

  test('a position from another epoch (seeded): resume_failed, onResync with the channel\'s position; a stock Echo alongside is unaffected', LONG, async () => {
    const channel = uid('orders-');
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, MAIN);
    const stock = echoVia(proxy, MAIN);
    const mine = echo.channel(channel);
    const theirs = stock.channel(channel);
    const a = listen(mine, 'order.created');
    const b = listen(theirs, 'order.created');
    await Promise.all([subscribed(mine, 'plugin'), subscribed(theirs, 'stock')]);
    await publish(MAIN, channel, [1, 2]);
    await waitFor(() => a.got.length === 2 && b.got.length === 2, { what: 'events 1-2' });
    const E = herald.position(channel).split(':')[0];
    herald.setPosition(channel, 'not-this-epoch:2');
    await outage(proxy, [echo, stock], [mine, theirs], async () => {});
    await waitFor(() => resyncs.length === 1, { what: 'onResync' });
    assert.deepEqual(resyncs, [{ channel, reason: 'resume_failed', epoch: E, offset: 2 }]);
    await publish(MAIN, channel, [3]);
    await waitFor(() => a.got.includes(3) && b.got.includes(3), { what: 'event 3' });
    assert.deepEqual(a.got, [1, 2, 3]);
    assert.deepEqual(b.got, [1, 2, 3]);
    noHerald([...a.seen, ...b.seen]);
  });
});

describe('Echo plugin: authorized channels', () => {
  test('private, presence and encrypted channels through /broadcasting/auth resume without loss or duplicates', LONG, async () => {
    const name = uid('orders-');
    const room = uid('room-');
    const vault = uid('vault-');
    const proxy = await tcpProxy(h.port);
    const { echo, herald, resyncs } = pluginEcho(proxy, MAIN, { headers: { 'X-User-Id': '7' } });
    const stock = echoVia(proxy, MAIN, { headers: { 'X-User-Id': '8' } });
    const priv = echo.private(name);
    const pres = echo.join(room);
    const enc = echo.encryptedPrivate(vault);
    const stockPriv = stock.private(name);
    const heres = [];
    pres.here((members) => heres.push(members.map((m) => m.id ?? m.name)));
    const a = listen(priv, 'order.created');
    const p = listen(pres, 'said');
    const e = listen(enc, 'sealed', (d) => d.card);
    const b = listen(stockPriv, 'order.created');
    const chans = [priv, pres, enc, stockPriv];
    await Promise.all(chans.map((c) => subscribed(c, c.name)));
    await waitFor(() => heres.length === 1, { what: 'here' });

    const P = `private-${name}`;
    const R = `presence-${room}`;
    const V = `private-encrypted-${vault}`;
    const all = async (ids) => {
      await publish(MAIN, P, ids);
      await publish(MAIN, R, ids, 'said');
      for (const id of ids) await trigger(MAIN, V, 'sealed', { card: id }); // encrypted by the SDK
    };
    await all([1, 2, 3]);
    await waitFor(() => a.got.length === 3 && p.got.length === 3 && e.got.length === 3 && b.got.length === 3, { what: 'events 1-3' });
    assert.match(herald.position(V), /:3$/, 'positions are top-level, visible on an encrypted channel too');

    await outage(proxy, [echo, stock], chans, () => all(range(4, 8)));
    await all([9, 10]);
    await waitFor(() => a.got.length >= 10 && p.got.length >= 10 && e.got.length >= 10 && b.got.includes(10), { what: 'event 10 everywhere' });
    assert.deepEqual(a.got, range(1, 10), 'private');
    assert.deepEqual(p.got, range(1, 10), 'presence');
    assert.deepEqual(e.got, range(1, 10), 'private-encrypted, decrypted by pusher-js');
    assert.deepEqual(b.got, [1, 2, 3, 9, 10], 'the stock client on the private channel lost the outage');
    assert.equal(heres.length, 2, 'presence: here again after the reconnect');
    assert.deepEqual(resyncs, []);
    noHerald([...a.seen, ...p.seen, ...e.seen]);
  });
});
