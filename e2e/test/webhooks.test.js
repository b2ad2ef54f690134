// Webhooks in Pusher's format: what Herald POSTs to an app's endpoints when
// channels are occupied and vacated, members come and go, clients send
// events, cache channels miss and subscription counts change; signatures
// checked as a Laravel controller checks them; batching, filtering per
// endpoint, retries, and endpoints that never answer.
//
// The receivers are node:http servers started before Herald (Herald's
// config names their URLs). Nothing sleeps: a delayed webhook (vacated,
// member_removed) is awaited with a timeout, and "this did not arrive" is
// shown by a later event of the same kind (a marker) that did: a webhook
// that was going to be sent would have been sent before it.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe } from 'node:test';
import {
  test, startHerald, rawConnect, channelAuth, subscribePrivate, subscribePresence,
  publisher, sdkResult, signedFetch, pusherClient, pusherSubscribe, nextOn,
  withTimeout, waitFor, freePort, uid, WAIT,
} from '../lib/herald.js';

const METRICS_TOKEN = 'webhooks-e2e-metrics-token-0123';
/** Herald's default delay of channel_vacated / member_removed is ~3 s. */
const DELAYED = 12000; // generous wait for a delayed webhook
const MIN_DELAY = 2000; // a delayed webhook may not come sooner than this

// ---------------------------------------------------------------------------
// Apps: each with its own endpoints (paths on one receiver, or servers of
// their own), so one test's webhooks never land in another's assertions.

const app = (name, extra = {}) => ({
  id: `wh-${name}-app`, key: `wh-${name}-key`, secret: `wh-${name}-secret`, client_events: 'members', ...extra,
});

const APP = {
  hooks: app('hooks'),
  counted: app('counted', { subscription_count: true }),
  filtered: app('filtered'),
  batch: app('batch'),
  flaky: app('flaky'),
  refused: app('refused'),
  slow: app('slow'),
};

// ---------------------------------------------------------------------------
// The receiver: every request recorded with its raw body; the signature
// checked as Laravel would:
//   hash_equals(hash_hmac('sha256', $request->getContent(), $secret),
//               $request->header('X-Pusher-Signature'))

/** Laravel's check: HMAC-SHA256 of the raw body, hex, constant-time compare. */
function laravelVerifies(secret, rawBody, signature) {
  const expected = Buffer.from(crypto.createHmac('sha256', secret).update(rawBody).digest('hex'));
  const got = Buffer.from(String(signature ?? ''));
  return got.length === expected.length && crypto.timingSafeEqual(got, expected);
}

class Receiver {
  constructor() {
    this.requests = []; // {path, method, headers, raw, body, at, verified, status}
    this.waiters = [];
    this.secrets = new Map(); // path → app secret
    this.answers = new Map(); // path → (request index on that path) => status
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const path = new URL(req.url, 'http://x').pathname;
        const secret = this.secrets.get(path);
        let body;
        try { body = JSON.parse(raw.toString('utf8')); } catch { body = undefined; }
        const n = this.requests.filter((r) => r.path === path).length;
        const status = (this.answers.get(path) ?? (() => 200))(n);
        const r = {
          path, method: req.method, headers: req.headers, raw: raw.toString('utf8'), body, at: Date.now(),
          verified: secret !== undefined && laravelVerifies(secret, raw, req.headers['x-pusher-signature']),
          status,
        };
        this.requests.push(r);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '{}' : '{"message":"Server Error"}');
        this._pump();
      });
    });
  }

  async listen(port = 0) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.server.unref();
    this.port = this.server.address().port;
  }

  /** An endpoint URL for `path`, whose requests are signed with app's secret. */
  endpoint(path, theApp) {
    this.secrets.set(path, theApp.secret);
    return `http://127.0.0.1:${this.port}${path}`;
  }

  _pump() {
    for (const w of [...this.waiters]) {
      const v = w.check();
      if (v) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(v); }
    }
  }

  /** Resolves with check()'s first truthy value, re-checked on each request. */
  until(check, what, timeout = WAIT) {
    const v = check();
    if (v) return Promise.resolve(v);
    let w;
    return withTimeout(new Promise((resolve) => {
      w = { check, resolve };
      this.waiters.push(w);
    }), timeout, `${what}; requests so far: ${this.describe()}`).finally(() => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /** Requests to `path`, in arrival order. */
  on(path) { return this.requests.filter((r) => r.path === path); }

  /** Every event posted to `path`, each with its request: {ev, req}. */
  events(path) {
    return this.on(path).flatMap((req) => (req.body?.events ?? []).map((ev) => ({ ev, req })));
  }

  /** Waits for the first event on `path` matching pred; resolves {ev, req}. */
  event(path, pred, what, timeout = WAIT) {
    return this.until(() => this.events(path).find(({ ev }) => pred(ev)), `webhook ${what} at ${path}`, timeout);
  }

  describe() {
    return JSON.stringify(this.requests.slice(-12).map((r) => ({ path: r.path, status: r.status, body: r.raw })));
  }

  close() {
    return new Promise((resolve) => { this.server.closeAllConnections?.(); this.server.close(() => resolve()); });
  }
}

/** Event matchers. */
const named = (name, channel, extra = {}) => (ev) => ev.name === name && ev.channel === channel
  && Object.entries(extra).every(([k, v]) => ev[k] === v);

/** Asserts a request is Pusher's webhook for theApp, signed as Laravel checks. */
function assertPusherRequest(req, theApp) {
  assert.equal(req.method, 'POST');
  assert.match(String(req.headers['content-type']), /^application\/json\b/, 'Content-Type');
  assert.equal(req.headers['x-pusher-key'], theApp.key, 'X-Pusher-Key');
  assert.match(String(req.headers['x-pusher-signature']), /^[0-9a-f]{64}$/, 'X-Pusher-Signature is 64 lowercase hex digits');
  assert.ok(req.verified, `X-Pusher-Signature ${req.headers['x-pusher-signature']} must be HMAC-SHA256(secret, raw body) of ${req.raw}`);
  assert.deepEqual(Object.keys(req.body).sort(), ['events', 'time_ms'], `body keys: ${req.raw}`);
  assert.ok(Number.isInteger(req.body.time_ms), `time_ms is an integer: ${req.raw}`);
  assert.ok(Math.abs(req.body.time_ms - req.at) < 60000, `time_ms ${req.body.time_ms} is unix ms (now ${req.at})`);
  assert.ok(Array.isArray(req.body.events) && req.body.events.length > 0, `events is a non-empty list: ${req.raw}`);
}

// A server that accepts connections and reads requests but never answers.
function blackhole() {
  const sockets = new Set();
  const heads = [];
  const waiters = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n') && !s.counted) { s.counted = true; heads.push(text); for (const w of waiters.splice(0)) w(); }
    });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  return {
    sockets,
    heads,
    /** Resolves once at least n requests arrived. */
    requests(n, timeout = WAIT) {
      return withTimeout(new Promise((resolve) => {
        const check = () => (heads.length >= n ? resolve() : waiters.push(check));
        check();
      }), timeout, `${n} request(s) at the blackhole (got ${heads.length})`);
    },
    async listen() {
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      server.unref();
      this.port = server.address().port;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------
// Setup: receivers first, then Herald configured with their URLs.

const rx = new Receiver();
const hole = blackhole();
let refusedPort;
let refusedRx; // started on refusedPort by the retry test
const h = {};
let started;

before(async () => {
  await rx.listen();
  await hole.listen();
  refusedPort = await freePort(); // nobody listens there until the test starts a receiver
  APP.hooks.webhooks = [{ url: rx.endpoint('/hooks', APP.hooks) }];
  APP.counted.webhooks = [{ url: rx.endpoint('/counted', APP.counted) }];
  APP.filtered.webhooks = [
    { url: rx.endpoint('/filtered/all', APP.filtered) },
    { url: rx.endpoint('/filtered/members', APP.filtered), events: ['member_added'] },
  ];
  APP.batch.webhooks = [{ url: rx.endpoint('/batch', APP.batch) }];
  APP.flaky.webhooks = [{ url: rx.endpoint('/flaky', APP.flaky) }];
  rx.answers.set('/flaky', (n) => (n === 0 ? 500 : 200));
  APP.refused.webhooks = [{ url: `http://127.0.0.1:${refusedPort}/refused` }];
  APP.slow.webhooks = [
    { url: `http://127.0.0.1:${hole.port}/never` },
    { url: rx.endpoint('/slow/other', APP.slow) },
  ];
  started = await startHerald({ apps: Object.values(APP), server: { metrics_token: METRICS_TOKEN } });
  Object.assign(h, started);
}, { timeout: 20000 });

after(async () => {
  await hole.close();
  if (started) await started.stop();
  await rx.close();
  if (refusedRx) await refusedRx.close();
}, { timeout: 20000 });

/** Every request that reached the receiver was Pusher's, correctly signed. */
function assertAllSigned(path, theApp) {
  const reqs = rx.on(path);
  assert.ok(reqs.length > 0, `no request at ${path}`);
  for (const r of reqs) assertPusherRequest(r, theApp);
}

// ---------------------------------------------------------------------------

describe('webhooks', () => {
  test('channel_occupied on the first subscription, not on an API publish; channel_vacated delayed; a reload sends neither', async () => {
    const a = APP.hooks;
    const chA = uid('orders.');
    const chEmpty = uid('nobody.');
    const chM = uid('marker.');
    const count = async (ch) => {
      const r = await signedFetch(h, a, 'GET', `/apps/${a.id}/channels/${ch}`, { params: { info: 'subscription_count' } });
      assert.equal(r.status, 200, r.text);
      return r.body.occupied ? r.body.subscription_count : 0;
    };

    // pusher-js occupies chA: exactly {"name":"channel_occupied","channel":chA}.
    const p1 = await pusherClient(h, a);
    await pusherSubscribe(p1, chA);
    const occ = await rx.event('/hooks', named('channel_occupied', chA), `channel_occupied ${chA}`);
    assert.deepEqual(occ.ev, { name: 'channel_occupied', channel: chA });
    assertPusherRequest(occ.req, a);

    // A second subscriber comes and goes: nothing.
    const p2 = await pusherClient(h, a);
    await pusherSubscribe(p2, chA);
    p2.disconnect();
    await waitFor(async () => (await count(chA)) === 1, { what: `one subscriber left on ${chA}` });

    // An API publish to a channel nobody is subscribed to.
    const pub = await sdkResult(publisher(h, a).trigger(chEmpty, 'x', { n: 1 }));
    assert.equal(pub.status, 200, pub.text);

    // A page reload: the socket goes (the channel is empty for a moment),
    // a new one subscribes at once.
    p1.disconnect();
    await waitFor(async () => (await count(chA)) === 0, { what: `${chA} empty` });
    const p3 = await pusherClient(h, a);
    await pusherSubscribe(p3, chA);

    // The marker: a channel occupied, then vacated after all of the above;
    // chA is left for good at the same moment.
    await pusherSubscribe(p3, chM);
    await rx.event('/hooks', named('channel_occupied', chM), `channel_occupied ${chM}`);
    const leftAt = Date.now();
    p3.unsubscribe(chM);
    p3.unsubscribe(chA);
    const vac = await rx.event('/hooks', named('channel_vacated', chM), `channel_vacated ${chM}`, DELAYED);
    assert.deepEqual(vac.ev, { name: 'channel_vacated', channel: chM });
    assertPusherRequest(vac.req, a);
    assert.ok(vac.req.at - leftAt >= MIN_DELAY, `channel_vacated must be delayed (came ${vac.req.at - leftAt} ms after the unsubscribe)`);
    const vacA = await rx.event('/hooks', named('channel_vacated', chA), `channel_vacated ${chA}`, DELAYED);
    assert.ok(vacA.req.at - leftAt >= MIN_DELAY, `channel_vacated ${chA} after ${vacA.req.at - leftAt} ms`);

    const evs = rx.events('/hooks').map(({ ev }) => ev);
    assert.deepEqual(evs.filter((e) => e.channel === chEmpty), [], 'an API publish to an empty channel occupies nothing');
    assert.deepEqual(evs.filter((e) => e.channel === chA), [
      { name: 'channel_occupied', channel: chA }, { name: 'channel_vacated', channel: chA },
    ], 'one channel_occupied while the channel stays occupied (a reload sends no channel_vacated and no second channel_occupied), one channel_vacated at the end');
    assertAllSigned('/hooks', a);
  });

  test('presence: member_added per user (not per socket), member_removed delayed and cancelled by a quick re-join', async () => {
    const a = APP.hooks;
    const ch = uid('presence-room.');
    const users = async () => {
      const r = await signedFetch(h, a, 'GET', `/apps/${a.id}/channels/${ch}/users`);
      assert.equal(r.status, 200, r.text);
      return r.body.users.map((u) => u.id).sort();
    };

    const s1 = await rawConnect(h, a);
    await subscribePresence(s1, a, ch, 'u1', { name: 'One' });
    const added = await rx.event('/hooks', named('member_added', ch, { user_id: 'u1' }), 'member_added u1');
    assert.deepEqual(added.ev, { name: 'member_added', channel: ch, user_id: 'u1' });
    assertPusherRequest(added.req, a);

    // A second socket of u1: no member_added; closing the first: no member_removed.
    const s2 = await rawConnect(h, a);
    await subscribePresence(s2, a, ch, 'u1', { name: 'One' });
    await s1.close();

    // u2 joins (the marker's member).
    const m = await rawConnect(h, a);
    await subscribePresence(m, a, ch, 'u2', { name: 'Two' });
    await rx.event('/hooks', named('member_added', ch, { user_id: 'u2' }), 'member_added u2');

    // A reload of u1's page: its last socket leaves, a new one joins at once.
    s2.unsubscribe(ch);
    await waitFor(async () => !(await users()).includes('u1'), { what: 'u1 gone from the member list' });
    const s3 = await rawConnect(h, a);
    await subscribePresence(s3, a, ch, 'u1', { name: 'One' });

    // u2 leaves after that: its member_removed comes, delayed.
    const leftAt = Date.now();
    m.unsubscribe(ch);
    const removed = await rx.event('/hooks', named('member_removed', ch, { user_id: 'u2' }), 'member_removed u2', DELAYED);
    assert.deepEqual(removed.ev, { name: 'member_removed', channel: ch, user_id: 'u2' });
    assertPusherRequest(removed.req, a);
    assert.ok(removed.req.at - leftAt >= MIN_DELAY, `member_removed must be delayed (came ${removed.req.at - leftAt} ms after leaving)`);

    const mine = rx.events('/hooks').map(({ ev }) => ev).filter((e) => e.channel === ch);
    assert.deepEqual(mine.filter((e) => e.user_id === 'u1'), [{ name: 'member_added', channel: ch, user_id: 'u1' }],
      'one member_added for two sockets of u1, and no member_removed for a reload');
    assert.deepEqual(mine.filter((e) => e.name === 'channel_vacated'), [], 'the channel was never vacated');
  });

  test('client_event on a private channel (event, data string, socket_id) and on a presence channel (plus user_id)', async () => {
    const a = APP.hooks;
    const priv = uid('private-chat.');
    const [x, y] = await Promise.all([rawConnect(h, a), rawConnect(h, a)]);
    await subscribePrivate(x, a, priv);
    await subscribePrivate(y, a, priv);
    x.trigger(priv, 'client-typing', { who: 'x', text: 'héllo' });
    await y.nextEvent('client-typing', priv);
    const ce = await rx.event('/hooks', named('client_event', priv), `client_event ${priv}`);
    assert.deepEqual(ce.ev, {
      name: 'client_event', channel: priv, event: 'client-typing',
      data: JSON.stringify({ who: 'x', text: 'héllo' }), socket_id: x.socketId,
    });
    assertPusherRequest(ce.req, a);

    // A string payload is posted as that string.
    y.trigger(priv, 'client-raw', 'plain text');
    const ce2 = await rx.event('/hooks', named('client_event', priv, { event: 'client-raw' }), 'client_event client-raw');
    assert.deepEqual(ce2.ev, { name: 'client_event', channel: priv, event: 'client-raw', data: 'plain text', socket_id: y.socketId });

    const pres = uid('presence-chat.');
    await subscribePresence(x, a, pres, 'alice', { name: 'Alice' });
    await subscribePresence(y, a, pres, 'bob', { name: 'Bob' });
    y.trigger(pres, 'client-typing', { typing: true });
    await x.nextEvent('client-typing', pres);
    const ce3 = await rx.event('/hooks', named('client_event', pres), `client_event ${pres}`);
    assert.deepEqual(ce3.ev, {
      name: 'client_event', channel: pres, event: 'client-typing',
      data: '{"typing":true}', socket_id: y.socketId, user_id: 'bob',
    });
  });

  test('cache_miss on subscribing to an empty cache channel, not when an event is cached', async () => {
    const a = APP.hooks;
    const c = await rawConnect(h, a);
    const empty = uid('cache-prices.');
    await c.subscribe(empty);
    await c.nextEvent('pusher:cache_miss', empty);
    const miss = await rx.event('/hooks', named('cache_miss', empty), `cache_miss ${empty}`);
    assert.deepEqual(miss.ev, { name: 'cache_miss', channel: empty });
    assertPusherRequest(miss.req, a);

    const cached = uid('cache-prices.');
    const r = await sdkResult(publisher(h, a).trigger(cached, 'price', { v: 1 }));
    assert.equal(r.status, 200, r.text);
    const d = await rawConnect(h, a);
    await d.subscribe(cached);
    await d.nextEvent('price', cached);
    // Marker: another empty cache channel subscribed afterwards.
    const marker = uid('cache-prices.');
    await d.subscribe(marker);
    await rx.event('/hooks', named('cache_miss', marker), `cache_miss ${marker}`);
    assert.deepEqual(rx.events('/hooks').map(({ ev }) => ev).filter((e) => e.channel === cached),
      [{ name: 'channel_occupied', channel: cached }], 'no cache_miss when an event is cached');
  });

  test('subscription_count for an app with subscription_count: true (and not for others)', async () => {
    const a = APP.counted;
    const ch = uid('counted.');
    const other = uid('uncounted.');
    const [x, y, z] = await Promise.all([rawConnect(h, a), rawConnect(h, a), rawConnect(h, APP.hooks)]);
    await z.subscribe(other);
    await x.subscribe(ch);
    await y.subscribe(ch);
    const two = await rx.event('/counted', named('subscription_count', ch, { subscription_count: 2 }), 'subscription_count 2');
    assert.deepEqual(two.ev, { name: 'subscription_count', channel: ch, subscription_count: 2 });
    assertPusherRequest(two.req, a);
    y.unsubscribe(ch);
    const one = await rx.event('/counted', (e) => named('subscription_count', ch, { subscription_count: 1 })(e)
      && rx.events('/counted').findIndex(({ ev }) => ev === e) > rx.events('/counted').findIndex(({ ev }) => ev === two.ev),
    'subscription_count 1 after one left');
    assert.equal(one.ev.subscription_count, 1);
    // Counts are debounced: a burst of changes is not one webhook per change.
    const counts = rx.events('/counted').map(({ ev }) => ev).filter((e) => e.name === 'subscription_count' && e.channel === ch);
    assert.ok(counts.length <= 3, `debounced counts: ${JSON.stringify(counts)}`);
    // The app without subscription_count posts none (its debounce tick has passed by now).
    assert.deepEqual(rx.events('/hooks').map(({ ev }) => ev).filter((e) => e.name === 'subscription_count'), []);
    assertAllSigned('/counted', a);
  });

  test('an endpoint with events: [member_added] receives only member_added; the other endpoint everything', async () => {
    const a = APP.filtered;
    const ch = uid('presence-team.');
    const x = await rawConnect(h, a);
    await subscribePresence(x, a, ch, 'ann', { name: 'Ann' }); // channel_occupied + member_added ann
    const y = await rawConnect(h, a);
    await subscribePresence(y, a, ch, 'bob', { name: 'Bob' }); // member_added bob
    x.trigger(ch, 'client-hi', { hi: 1 }); // client_event
    await y.nextEvent('client-hi', ch);
    await rx.event('/filtered/all', named('client_event', ch), 'client_event at the unfiltered endpoint');
    // Marker: a third member, after the client event.
    const z = await rawConnect(h, a);
    await subscribePresence(z, a, ch, 'cy', { name: 'Cy' });
    await rx.event('/filtered/members', named('member_added', ch, { user_id: 'cy' }), 'member_added cy (filtered)');
    await rx.event('/filtered/all', named('member_added', ch, { user_id: 'cy' }), 'member_added cy (all)');

    const filtered = rx.events('/filtered/members').map(({ ev }) => ev);
    assert.deepEqual(filtered, ['ann', 'bob', 'cy'].map((u) => ({ name: 'member_added', channel: ch, user_id: u })));
    const all = rx.events('/filtered/all').map(({ ev }) => ev.name);
    for (const n of ['channel_occupied', 'member_added', 'client_event']) assert.ok(all.includes(n), `${n} at the unfiltered endpoint: ${all}`);
    assertAllSigned('/filtered/members', a);
    assertAllSigned('/filtered/all', a);
  });

  test('batching: channels occupied together arrive in fewer POSTs than events', async () => {
    const a = APP.batch;
    const p = await pusherClient(h, a);
    const channels = [1, 2, 3, 4, 5, 6].map(() => uid('batch.'));
    await Promise.all(channels.map((c) => pusherSubscribe(p, c)));
    await rx.until(() => channels.every((c) => rx.events('/batch').some(({ ev }) => named('channel_occupied', c)(ev))),
      'channel_occupied for all six channels');
    const reqs = rx.on('/batch').filter((r) => r.body.events.some((e) => channels.includes(e.channel)));
    assert.ok(reqs.length < channels.length, `six events in ${reqs.length} POSTs: ${reqs.map((r) => r.raw).join(' | ')}`);
    assert.ok(reqs.some((r) => r.body.events.length >= 2), 'at least one POST carries several events');
    for (const r of reqs) assertPusherRequest(r, a);
    // Each event once.
    const occ = rx.events('/batch').map(({ ev }) => ev).filter((e) => channels.includes(e.channel));
    assert.equal(occ.length, channels.length, JSON.stringify(occ));
  });

  test('retries: a 500 is retried with the same body after about a second; a refused connection is retried too', async () => {
    // 500, then 200.
    const a = APP.flaky;
    const c = await rawConnect(h, a);
    const ch = uid('flaky.');
    await c.subscribe(ch);
    await rx.until(() => rx.on('/flaky').length >= 2, 'the retry after a 500', 10000);
    const [first, second] = rx.on('/flaky');
    assert.equal(first.status, 500);
    assert.equal(second.status, 200);
    assert.equal(second.raw, first.raw, 'the retry posts the same body');
    assert.equal(second.headers['x-pusher-signature'], first.headers['x-pusher-signature']);
    assert.ok(first.body.events.some(named('channel_occupied', ch)), first.raw);
    assertPusherRequest(first, a);
    assertPusherRequest(second, a);
    const gap = second.at - first.at;
    assert.ok(gap >= 500 && gap < 5000, `first retry after about 1 s (came after ${gap} ms)`);
    // Delivered: no third attempt of that batch. Marker: a later event.
    const later = uid('flaky.');
    await c.subscribe(later);
    await rx.event('/flaky', named('channel_occupied', later), 'a later channel_occupied');
    assert.equal(rx.on('/flaky').filter((r) => r.raw === first.raw).length, 2, 'a delivered batch is not posted again');

    // A refused connection: nobody listens on the port at first.
    const b = APP.refused;
    const logFrom = h.logText().length;
    const d = await rawConnect(h, b);
    const ch2 = uid('refused.');
    await d.subscribe(ch2);
    // Herald's log tells the attempt failed (the error names the address).
    await waitFor(() => h.logText().slice(logFrom).includes(`127.0.0.1:${refusedPort}`),
      { timeout: 8000, what: `a logged failed delivery to 127.0.0.1:${refusedPort}` });
    refusedRx = new Receiver();
    refusedRx.secrets.set('/refused', b.secret);
    await refusedRx.listen(refusedPort);
    const got = await refusedRx.event('/refused', named('channel_occupied', ch2), `channel_occupied ${ch2} after the refusal`, 15000);
    assertPusherRequest(got.req, b);
  });

  test('an endpoint that never answers delays neither message delivery nor the app\'s other endpoints', async () => {
    const a = APP.slow;
    const p = await pusherClient(h, a);
    const ch = uid('live.');
    const channel = await pusherSubscribe(p, ch);
    // channel_occupied goes to both; the blackhole holds its request.
    await hole.requests(1);
    await rx.event('/slow/other', named('channel_occupied', ch), 'channel_occupied at the healthy endpoint');
    assert.match(hole.heads[0], /^POST \/never HTTP\/1\.1\r\n/);

    // Messages keep flowing while the blackhole holds the request.
    const got = [];
    const all = withTimeout(new Promise((resolve) => {
      channel.bind('tick', (d) => { got.push(d.n); if (got.length === 20) resolve(); });
    }), 10000, '20 ticks at pusher-js');
    for (let i = 0; i < 20; i += 1) {
      const r = await sdkResult(publisher(h, a).trigger(ch, 'tick', { n: i }));
      assert.equal(r.status, 200, r.text);
    }
    await all;
    assert.deepEqual(got, [...Array(20).keys()]);
    assert.ok(hole.sockets.size > 0, 'the blackhole still holds its connection');

    // More webhooks keep reaching the healthy endpoint.
    const x = await rawConnect(h, a);
    const ch2 = uid('live.');
    await x.subscribe(ch2);
    await rx.event('/slow/other', named('channel_occupied', ch2), 'a later channel_occupied at the healthy endpoint');
    const msg = nextOn(channel, 'after');
    await publisher(h, a).trigger(ch, 'after', { ok: true });
    assert.deepEqual(await msg, { ok: true });
    assert.ok(hole.sockets.size > 0, 'the blackhole still holds its connection');
    assertAllSigned('/slow/other', a);
  });

  test('/metrics counts webhooks: events delivered, POSTs failed and retried, events pending while an endpoint holds them', async (t) => {
    const res = await fetch(`${h.httpURL}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    const w = {};
    for (const name of ['delivered_total', 'pending', 'dropped_total']) {
      const m = new RegExp(`^herald_webhook_events_${name} (\\S+)$`, 'm').exec(text);
      assert.ok(m, `herald_webhook_events_${name} in /metrics`);
      w[name] = Number(m[1]);
    }
    for (const name of ['failed_total', 'retried_total']) {
      const m = new RegExp(`^herald_webhook_posts_${name} (\\S+)$`, 'm').exec(text);
      assert.ok(m, `herald_webhook_posts_${name} in /metrics`);
      w[name] = Number(m[1]);
    }
    assert.ok(w.delivered_total > 0, JSON.stringify(w));
    assert.ok(w.failed_total >= 2, `the 500 and the refused connection failed: ${JSON.stringify(w)}`);
    assert.ok(w.retried_total >= 2, `…and were retried: ${JSON.stringify(w)}`);
    assert.ok(w.pending >= 1, `the blackhole's events are still pending: ${JSON.stringify(w)}`);
    assert.equal(w.dropped_total, 0, `nothing dropped: ${JSON.stringify(w)}`);
    // A full queue (10,000 events per endpoint, not configurable) would
    // take 10,000 events held by a dead endpoint: not driven from here.
    t.diagnostic('the bounded queue itself is covered by internal/webhook\'s unit tests');
  });
});
