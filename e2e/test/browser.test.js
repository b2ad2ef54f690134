// herald.js in a real browser: headless Debian Chromium (playwright-core)
// loads /herald.js from the Herald binary and is checked end to end: two
// pages, cut sockets, the HTTP fallback (long-polling and SSE) and the way
// back to the socket, a hidden tab, private and presence channels through a
// same-origin Laravel-like auth endpoint, and a restart on the same port
// (measured against stock pusher-js).
//
// Pages come from a small site (lib/browser.js) that also proxies /app/… to
// Herald, so a test can cut the page's socket, refuse WebSocket upgrades and
// count the /events requests.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, startHerald, publisher, sdkResult, uid, track,
} from '../lib/herald.js';
import { useChromium, useSite, pageUntil, PAGE_WAIT } from '../lib/browser.js';

// History deep enough for every test here (the fallback test paces its
// events one by one until the page is back on the socket).
const APP = {
  ...APPS.main,
  broadcast_token: 'browser-broadcast-token-0123456789',
  history: { channels: ['*'], max_events: 1000 },
};
// CSRF token (the page's meta tag) → the signed-in user, as a Laravel session.
const USERS = { 'csrf-ana': { id: 1, name: 'Ana' }, 'csrf-ben': { id: 2, name: 'Ben' } };

// How long Herald stays down in the restart test.
const DOWN_MS = 12000;

const h = useHerald({ apps: [APP] });
const site = useSite(h, APP, { users: USERS });
const chrome = useChromium();

// ---------------------------------------------------------------------------
// Helpers

/** Publishes through the `pusher` Node SDK (as Laravel does) to server and asserts 200. */
async function trigger(channel, event, data, server = h) {
  const r = await sdkResult(publisher(server, APP).trigger(channel, event, data));
  assert.equal(r.status, 200, r.text);
}

/** POST /broadcast with the app's token; returns the parsed answer. */
async function broadcast(body) {
  const res = await fetch(`${h.httpURL}/broadcast`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP.broadcast_token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

/** A page in its own browser context (closed when the test ends), with its uncaught errors in page.errors. */
async function openPage(opts = {}) {
  const context = track(await chrome.browser.newContext());
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  const res = await page.goto(site.pageURL(opts));
  assert.equal(res.status(), 200);
  return page;
}

/** herald.js options: straight to Herald, or through the site's proxy (the page's own origin). */
const direct = (extra = {}) => ({ key: APP.key, host: '127.0.0.1', port: h.port, ...extra });
const proxied = (extra = {}) => ({ key: APP.key, ...extra });

/**
 * Connects herald.js in the page and records `event` (and the `done` marker
 * of assertExactlyOnce) on `channel` (T: see lib/browser.js).
 */
function connect(page, opts, channel, event = 'tick') {
  return page.evaluate(({ opts, channel, event }) => {
    T.connect(opts);
    if (!channel) return;
    T.listen(channel, event);
    T.listen(channel, 'done');
  }, { opts, channel, event });
}

/** The recorded deliveries of event on channel. */
const delivered = (page, channel, event = 'tick') =>
  page.evaluate(({ channel, event }) => rec.events.filter((e) => e.channel === channel && e.event === event), { channel, event });

/** Waits until the page holds at least n deliveries of event on channel. */
const receivedAtLeast = (page, channel, n, event = 'tick', timeout = PAGE_WAIT) =>
  pageUntil(page, ({ channel, n, event }) => rec.events.filter((e) => e.channel === channel && e.event === event).length >= n,
    { channel, n, event }, `${n} "${event}" on ${channel}`, timeout);

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/**
 * Asserts that the page got events {i: 1…n} on channel exactly once and in
 * order, at offsets 1…n of one epoch, with no resync and no error; a `done`
 * marker published after them proves nothing more (a late duplicate) came.
 */
async function assertExactlyOnce(page, channel, n, server = h) {
  await trigger(channel, 'done', {}, server);
  await pageUntil(page, (c) => rec.events.some((e) => e.channel === c && e.event === 'done'), channel, `"done" on ${channel}`);
  const got = await delivered(page, channel);
  assert.deepEqual(got.map((e) => e.data.i), range(1, n), 'event data in order, each once');
  assert.deepEqual(got.map((e) => e.offset), range(1, n), 'offsets 1…n, each once');
  assert.equal(new Set(got.map((e) => e.epoch)).size, 1, 'one epoch');
  const { resyncs, errors } = await page.evaluate(() => rec);
  assert.deepEqual(resyncs, [], 'no resync');
  assert.deepEqual(errors, [], 'no error');
  assert.deepEqual(page.errors, [], 'no uncaught error in the page');
  return got;
}

// ---------------------------------------------------------------------------

describe('herald.js in Chromium', () => {
  test('two pages: POST /broadcast reaches herald.on(type), an SDK trigger reaches channel.bind', async () => {
    const channel = uid('orders-');
    const pages = await Promise.all([openPage(), openPage()]);
    for (const page of pages) {
      await page.evaluate(({ opts, channel }) => {
        T.connect(opts);
        herald.on('ticket_created', (data, meta) => T.record('broadcast', data, meta));
        T.listen(channel, 'order.created');
      }, { opts: direct(), channel });
    }
    for (const page of pages) {
      await pageUntil(page, (c) => herald.getState().connected && herald.channel('broadcast').subscribed && herald.channel(c).subscribed,
        channel, 'live, subscribed to broadcast and the channel');
    }

    const ticket = { id: 7, subject: 'Printer on fire', tags: ['urgent'], html: '<b>é</b>' };
    const r = await broadcast({ message: { type: 'ticket_created', data: ticket } });
    const order = { id: 1, total: 9.5 };
    await trigger(channel, 'order.created', order);

    for (const page of pages) {
      await receivedAtLeast(page, 'broadcast', 1, 'ticket_created');
      await receivedAtLeast(page, channel, 1, 'order.created');
      const tickets = await delivered(page, 'broadcast', 'ticket_created');
      assert.equal(tickets.length, 1);
      assert.deepEqual(tickets[0].data, ticket);
      assert.equal(tickets[0].offset, r.offsets.broadcast);
      const orders = await delivered(page, channel, 'order.created');
      assert.equal(orders.length, 1);
      assert.deepEqual(orders[0].data, order);
      assert.equal(orders[0].offset, 1);
      const state = await page.evaluate(() => ({
        ...herald.getState(), label: document.querySelector('#live').textContent,
        cls: document.querySelector('#live').className, dom: rec.dom,
      }));
      assert.equal(state.connected, true);
      assert.equal(state.state, 'live');
      assert.equal(state.transport, 'websocket');
      assert.match(state.socketId, /^\d+\.\d+$/);
      assert.equal(state.label, 'live');
      assert.equal(state.cls, 'live');
      assert.ok(state.dom.includes('connected') && state.dom.includes('message'), JSON.stringify(state.dom));
      assert.deepEqual(page.errors, []);
    }
  });

  test('cut: the proxy kills the page\'s socket twice during 100 events; every event arrives once, in order, no resync', async () => {
    site.reset();
    const channel = uid('cut-');
    const page = await openPage();
    await connect(page, proxied(), channel);
    // Its position known (herald:position), the channel can resume even if cut before its first event.
    await pageUntil(page, (c) => herald.getState().connected && herald.channel(c).position !== null, channel, 'live with the channel\'s position');

    const publishedAt = [];
    const cutAt = [];
    for (let i = 1; i <= 100; i++) {
      await trigger(channel, 'tick', { i });
      publishedAt.push(Date.now());
      if (i === 30 || i === 70) {
        if (i === 70) {
          // Live again on a new socket (not still live on the cut one, its close not yet seen).
          await pageUntil(page, () => rec.disconnects.length === 1 && herald.getState().connected, null, 'the page live again');
          await site.until((s) => s.upgrades === 2 && s.tunnels === 1, 'the page\'s second socket');
        }
        cutAt.push(Date.now());
        assert.equal(site.cut(), 1, 'one socket to cut');
      }
    }
    await receivedAtLeast(page, channel, 100);
    await assertExactlyOnce(page, channel, 100);
    const { disconnects, states } = await page.evaluate(() => rec);
    assert.equal(disconnects.length, 2, JSON.stringify(disconnects));
    assert.equal(site.upgrades, 3, 'connected three times');
    // Events published while the page was away came by replay (the first
    // retry waits at least 100 ms; a publish takes a millisecond or two).
    const away = cutAt.map((t) => {
      const back = states.find((s) => s.state === 'live' && s.t > t).t;
      return publishedAt.filter((p) => p > t && p < back).length;
    });
    assert.ok(away.every((n) => n > 0), `events published while the page was away: ${away}`);
    console.log(`cut: ${away.join(' and ')} events published while the page was away`);
  });

  for (const mode of ['poll', 'sse']) {
    test(`fallback (${mode}): WebSocket refused → HTTP ${mode === 'sse' ? 'Server-Sent Events' : 'long-polling'}, then back to the socket, no loss or duplicate`, { timeout: 40000 }, async () => {
      site.reset();
      site.blockUpgrades = true;
      const channel = uid(`fallback-${mode}-`);
      const page = await openPage();
      await connect(page, proxied({ fallback: mode, fallbackAfter: 2 }), channel);
      await pageUntil(page, (m) => herald.getState().transport === m, mode, `transport "${mode}"`);
      assert.ok(site.refused >= 2, `refused upgrades: ${site.refused}`);
      assert.equal(await page.evaluate(() => herald.getState().state), 'polling');

      for (let i = 1; i <= 20; i++) await trigger(channel, 'tick', { i });
      await receivedAtLeast(page, channel, 20);
      assert.ok(site.requests.some((r) => r.channel === channel && r.sse === (mode === 'sse')), 'read over HTTP through the proxy');

      // Upgrades allowed again: publish one event at a time (each awaited in
      // the page) until the page is back on the socket, then five more.
      site.blockUpgrades = false;
      let n = 20;
      const switchedAt = Date.now();
      while (await page.evaluate(() => herald.getState().transport !== 'websocket')) {
        assert.ok(Date.now() - switchedAt < 25000, 'back on the socket within 25 s');
        n++;
        await trigger(channel, 'tick', { i: n });
        await receivedAtLeast(page, channel, n);
      }
      const switchN = n;
      for (let k = 0; k < 5; k++) await trigger(channel, 'tick', { i: ++n });
      await receivedAtLeast(page, channel, n);

      const got = await assertExactlyOnce(page, channel, n);
      assert.ok(got.slice(0, 20).every((e) => e.transport === mode), `the first 20 over ${mode}`);
      assert.ok(got.slice(-5).every((e) => e.transport === 'websocket'), 'the last 5 over the socket');
      assert.ok(site.upgrades >= 1);
      const st = await page.evaluate(() => herald.getState());
      assert.equal(st.state, 'live');
      console.log(`fallback ${mode}: ${switchN - 20} events published while switching back (${Date.now() - switchedAt} ms)`);
    });
  }

  // The SSE reader asks for whole frames (format=frames), so an event whose
  // name the page never bound is read too: no gap after it (a spurious
  // resync before the fix), and '*' handlers see it.
  test('SSE fallback: an event whose name the page did not bind is read too: no spurious resync, "*" sees it', async () => {
    site.reset();
    site.blockUpgrades = true;
    const channel = uid('sse-unbound-');
    const page = await openPage();
    await connect(page, proxied({ fallback: 'sse', fallbackAfter: 2 }), channel);
    await page.evaluate((c) => herald.channel(c).bind('*', (data, meta) => rec.members.push(meta.event)), channel);
    await pageUntil(page, () => herald.getState().transport === 'sse', null, 'transport "sse"');
    await trigger(channel, 'tick', { i: 1 });
    await trigger(channel, 'other', { i: 2 }); // not bound by name
    await trigger(channel, 'tick', { i: 3 });
    await receivedAtLeast(page, channel, 2);
    const { resyncs, members: star } = await page.evaluate(() => rec);
    assert.deepEqual(resyncs, [], 'no resync: nothing was missed');
    assert.deepEqual(star, ['tick', 'other', 'tick'], '"*" sees every event');
  });

  test('hidden tab: HTTP reading stops while hidden (no /events request), catches up with since when visible', async () => {
    site.reset();
    site.blockUpgrades = true;
    const channel = uid('hidden-');
    const pages = { a: await openPage({ tab: 'a' }), b: await openPage({ tab: 'b' }) };
    for (const page of Object.values(pages)) {
      await connect(page, proxied({ fallbackAfter: 2 }), channel);
      await pageUntil(page, () => herald.getState().transport === 'poll', null, 'transport "poll"');
    }
    const { a, b } = pages;
    const ofTab = (tab) => (r) => r.channel === channel && r.referer.includes(`tab=${tab}`);
    for (let i = 1; i <= 3; i++) await trigger(channel, 'tick', { i });
    await receivedAtLeast(a, channel, 3);
    await receivedAtLeast(b, channel, 3);
    await site.until((s) => s.requests.some((r) => ofTab('a')(r) && r.open), 'page a holding a long-poll');

    await a.evaluate(() => T.setHidden(true));
    await site.until((s) => !s.requests.some((r) => ofTab('a')(r) && r.open), 'page a to drop its long-poll');
    const aBefore = site.requests.filter(ofTab('a')).length;
    const bBefore = site.requests.filter(ofTab('b')).length;

    // The interval: page b (visible) reads 4…8 one by one, a new long-poll
    // after each; page a fetches nothing meanwhile.
    for (let i = 4; i <= 8; i++) {
      await trigger(channel, 'tick', { i });
      await receivedAtLeast(b, channel, i);
    }
    await site.until((s) => s.requests.filter(ofTab('b')).length >= bBefore + 5 && s.requests.some((r) => ofTab('b')(r) && r.open),
      'page b polling on');
    assert.equal(site.requests.filter(ofTab('a')).length, aBefore, 'no /events request from the hidden page');
    assert.equal((await delivered(a, channel)).length, 3, 'nothing delivered to the hidden page');
    assert.equal(await a.evaluate(() => herald.getState().transport), 'poll');

    await a.evaluate(() => T.setHidden(false));
    await receivedAtLeast(a, channel, 8);
    const resumed = site.requests.filter(ofTab('a'))[aBefore];
    const got = await assertExactlyOnce(a, channel, 8);
    assert.equal(resumed.since, `${got[2].epoch}:3`, 'resumed with since = the last position seen');
    await assertExactlyOnce(b, channel, 8);
  });

  test('private and presence channels through the same-origin Laravel-like /broadcasting/auth (CSRF meta tag)', async () => {
    site.reset();
    const orders = uid('private-orders.');
    const chat = uid('presence-chat.');
    const ana = await openPage({ csrf: 'csrf-ana' });
    await ana.evaluate(({ opts, orders, chat }) => {
      T.connect(opts);
      T.listen(orders, 'order.shipped');
      T.presence(chat);
      T.listen(chat, 'client-typing');
    }, { opts: direct(), orders, chat });
    await pageUntil(ana, (c) => herald.channel(c).subscribed && rec.members.length > 0, orders, 'subscribed to both');
    assert.deepEqual(await ana.evaluate(() => rec.members), [{ kind: 'here', ids: ['1'], info: [{ name: 'Ana' }] }]);

    await trigger(orders, 'order.shipped', { id: 5 });
    await receivedAtLeast(ana, orders, 1, 'order.shipped');
    assert.deepEqual((await delivered(ana, orders, 'order.shipped'))[0].data, { id: 5 });

    const socketId = await ana.evaluate(() => herald.socketId);
    const authOrders = site.authRequests.find((r) => r.form.channel_name === orders);
    assert.deepEqual(
      { ...authOrders, contentType: authOrders.contentType.split(';')[0] },
      { csrf: 'csrf-ana', contentType: 'application/x-www-form-urlencoded', form: { socket_id: socketId, channel_name: orders }, user: 1, status: 200 },
    );

    const ben = await openPage({ csrf: 'csrf-ben' });
    await ben.evaluate(({ opts, chat }) => { T.connect(opts); T.presence(chat); }, { opts: direct(), chat });
    await pageUntil(ben, () => rec.members.length > 0, null, 'here on page ben');
    assert.deepEqual(await ben.evaluate(() => rec.members), [{ kind: 'here', ids: ['1', '2'], info: [{ name: 'Ana' }, { name: 'Ben' }] }]);
    await pageUntil(ana, () => rec.members.some((m) => m.kind === 'joining'), null, 'joining on page ana');

    await ben.evaluate((c) => herald.channel(c).trigger('client-typing', { typing: true }), chat);
    await receivedAtLeast(ana, chat, 1, 'client-typing');
    const [typing] = await delivered(ana, chat, 'client-typing');
    assert.deepEqual({ data: typing.data, user_id: typing.user_id }, { data: { typing: true }, user_id: '2' });

    await ben.close(); // the tab goes: its socket closes
    await pageUntil(ana, () => rec.members.some((m) => m.kind === 'leaving'), null, 'leaving on page ana');
    assert.deepEqual((await ana.evaluate(() => rec.members)).slice(1), [
      { kind: 'joining', id: '2', info: { name: 'Ben' } },
      { kind: 'leaving', id: '2' },
    ]);
    assert.deepEqual(await ana.evaluate((c) => herald.channel(c).members, chat), [{ id: '1', info: { name: 'Ana' } }]);

    // Without the CSRF token the endpoint answers 419, as Laravel: an error on the channel.
    const anon = await openPage();
    await anon.evaluate(({ opts, orders }) => {
      T.connect(opts);
      herald.subscribe(orders).bind('error', (e) => rec.errors.push({ status: e.status }));
    }, { opts: direct(), orders });
    await pageUntil(anon, () => rec.errors.some((e) => e.status === 419), null, 'a 419 error on the channel');
    assert.equal(await anon.evaluate((c) => herald.channel(c).subscribed, orders), false);
    assert.deepEqual([ana.errors, anon.errors], [[], []]);
  });

  // pusher-js's own HTTP fallback (issue #10): a stock Echo page, pusher-js's
  // default transport order, its WebSocket refused by the proxy; HTTP goes
  // straight to Herald on another origin, so the browser's CORS checks run.
  test('stock Echo, WebSocket refused: pusher-js falls back to xhr_streaming (cross-origin) and gets every event once', async () => {
    site.reset();
    site.blockUpgrades = true;
    const channel = uid('orders-');
    const page = await openPage({ echo: true });
    const began = Date.now();
    await page.evaluate(({ key, sitePort, heraldPort, channel }) => T.echo({
      broadcaster: 'reverb', key,
      wsHost: '127.0.0.1', wsPort: sitePort, wssPort: sitePort,
      httpHost: '127.0.0.1', httpPort: heraldPort, httpsPort: heraldPort,
      forceTLS: false, disableStats: true,
      enabledTransports: ['ws', 'wss', 'xhr_streaming', 'xhr_polling'],
    }, channel, 'tick'), { key: APP.key, sitePort: site.port, heraldPort: h.port, channel });
    // pusher-js waits for its WebSocket attempt to fail first (about 5 s).
    await pageUntil(page, (c) => E.connector.pusher.channel(c)?.subscribed, channel, 'the channel subscribed', 20000);
    const connectedIn = Date.now() - began;
    for (let i = 1; i <= 30; i++) await trigger(channel, 'tick', { i });
    await receivedAtLeast(page, channel, 30);
    const got = await delivered(page, channel);
    assert.deepEqual(got.map((e) => e.data.i), range(1, 30), 'every event once, in order');
    assert.deepEqual([...new Set(got.map((e) => e.transport))], ['xhr_streaming']);
    assert.ok(site.refused >= 1, 'the WebSocket was tried and refused');
    assert.deepEqual(page.errors, []);
    console.log(`stock Echo in Chromium, WebSocket refused: connected over xhr_streaming after ${connectedIn} ms`);
  });

  test('coming back after a restart on the same port: herald.js and stock pusher-js (measured)', { timeout: 70000 }, async () => {
    const first = await startHerald({ apps: [APP] });
    let second;
    try {
      const channel = uid('news-');
      const hp = await openPage({ heraldPort: first.port });
      const pp = await openPage({ heraldPort: first.port, pusher: true });
      await connect(hp, direct({ port: first.port }), channel, 'news');
      await pp.evaluate(({ key, port, channel }) => {
        T.pusher(key, { wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], disableStats: true, cluster: 'mt1' });
        P.subscribe(channel).bind('news', (data) => rec.events.push({ channel, event: 'news', data }));
      }, { key: APP.key, port: first.port, channel });
      await pageUntil(hp, (c) => herald.getState().connected && herald.channel(c).position !== null, channel, 'herald.js live');
      await pageUntil(pp, (c) => P.connection.state === 'connected' && P.channel(c).subscribed, channel, 'pusher-js connected');
      await trigger(channel, 'news', { i: 1 }, first);
      await receivedAtLeast(hp, channel, 1, 'news');
      await receivedAtLeast(pp, channel, 1, 'news');

      const downAt = Date.now();
      await first.stop(); // SIGTERM: sockets closed with 4200
      // Down long enough for stock pusher-js to give up for now
      // ('unavailable', 10 s after it began connecting), and DOWN_MS in all:
      // the scenario's outage (a timer by design, not a wait for something).
      await pageUntil(pp, (t) => rec.states.some((s) => s.state === 'unavailable' && s.t >= t), downAt, 'pusher-js "unavailable"', 20000);
      const rest = DOWN_MS - (Date.now() - downAt);
      if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
      const downMs = Date.now() - downAt;
      second = await startHerald({ apps: [APP], port: first.port });
      const upAt = second.listeningAt;
      assert.ok(upAt, 'the restarted Herald logged "herald listening"');

      const liveAt = await pageUntil(hp, (t) => rec.states.find((s) => s.state === 'live' && s.t >= t)?.t, downAt, 'herald.js live again', 30000);
      const connectedAt = await pageUntil(pp, (t) => rec.states.find((s) => s.state === 'connected' && s.t >= t)?.t, downAt, 'pusher-js connected again', 30000);
      console.log(`reconnect after restart: herald.js ${liveAt - upAt} ms, pusher-js ${connectedAt - upAt} ms (down ${downMs} ms)`);

      // History was in memory: herald.js reports the loss as a resync, then both get what follows.
      await pageUntil(hp, (c) => rec.resyncs.some((r) => r.channel === c), channel, 'a resync on herald.js');
      await pageUntil(hp, (c) => herald.channel(c).subscribed, channel, 'herald.js resubscribed');
      await pageUntil(pp, (c) => P.channel(c).subscribed, channel, 'pusher-js resubscribed');
      await trigger(channel, 'news', { i: 2 }, second);
      await receivedAtLeast(hp, channel, 2, 'news');
      await receivedAtLeast(pp, channel, 2, 'news');
      assert.deepEqual((await delivered(hp, channel, 'news')).map((e) => e.data.i), [1, 2]);
      assert.deepEqual((await delivered(pp, channel, 'news')).map((e) => e.data.i), [1, 2]);
      assert.deepEqual([hp.errors, pp.errors], [[], []]);
    } finally {
      await first.stop();
      await second?.stop();
    }
  });
});
