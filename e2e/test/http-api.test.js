// The Pusher HTTP API, through the `pusher` SDK and hand-signed requests.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, rawConnect, isEvent, subscribePrivate, subscribePresence,
  publisher, sdkResult, signedFetch, waitFor, uid,
} from '../lib/herald.js';

const h = useHerald();
const api = (app = APPS.main) => `/apps/${app.id}`;

/** Asserts a JSON error answer: `{"error": "..."}` with the given status. */
function assertError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.body && typeof r.body === 'object', `error body must be JSON: ${r.text}`);
  assert.deepEqual(Object.keys(r.body), ['error'], `error body must be {"error": …}: ${r.text}`);
  assert.equal(typeof r.body.error, 'string');
  assert.ok(r.body.error.length > 0);
}

describe('events', () => {
  test('trigger to one channel → 200 {} and delivery', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('orders-');
    await c.subscribe(channel);
    const r = await sdkResult(publisher(h, APPS.main).trigger(channel, 'created', { id: 1 }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, {});
    assert.deepEqual(await c.nextEvent('created', channel), { event: 'created', channel, data: '{"id":1}' });
  });

  test('trigger to many channels delivers on each', async () => {
    const chans = [uid('m-'), uid('m-'), uid('m-')];
    const clients = await Promise.all(chans.map(async (ch) => {
      const c = await rawConnect(h, APPS.main);
      await c.subscribe(ch);
      return c;
    }));
    const r = await sdkResult(publisher(h, APPS.main).trigger(chans, 'fanout', { n: 3 }));
    assert.equal(r.status, 200, r.text);
    for (const [i, c] of clients.entries()) {
      assert.deepEqual(await c.nextEvent('fanout', chans[i]), { event: 'fanout', channel: chans[i], data: '{"n":3}' });
    }
  });

  test('info=user_count,subscription_count is answered per channel', async () => {
    const presence = uid('presence-room-');
    const pub = uid('public-');
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const b2 = await rawConnect(h, APPS.main);
    await subscribePresence(a, APPS.main, presence, '1', {});
    await subscribePresence(b, APPS.main, presence, '2', {});
    await subscribePresence(b2, APPS.main, presence, '2', {});
    await a.subscribe(pub);
    const one = await sdkResult(publisher(h, APPS.main).trigger(presence, 'x', {}, { info: 'user_count,subscription_count' }));
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.body, { channels: { [presence]: { user_count: 2, subscription_count: 3 } } });
    const many = await sdkResult(publisher(h, APPS.main).trigger([presence, pub], 'y', {}, { info: 'subscription_count' }));
    assert.equal(many.status, 200, many.text);
    assert.deepEqual(many.body, { channels: { [presence]: { subscription_count: 3 }, [pub]: { subscription_count: 1 } } });
  });

  test('socket_id excludes that socket only', async () => {
    const channel = uid('excl-');
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    await a.subscribe(channel);
    await b.subscribe(channel);
    const sdk = publisher(h, APPS.main);
    const r = await sdkResult(sdk.trigger(channel, 'not-for-a', {}, { socket_id: a.socketId }));
    assert.equal(r.status, 200, r.text);
    await b.nextEvent('not-for-a', channel);
    await sdk.trigger(channel, 'marker', {});
    await a.nextEvent('marker', channel);
    assert.ok(!a.seen(isEvent('not-for-a')), 'the excluded socket must not receive the event');
  });

  test('triggerBatch delivers every event (with per-event socket_id)', async () => {
    const ch1 = uid('batch-');
    const ch2 = uid('private-batch-');
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    await a.subscribe(ch1);
    await subscribePrivate(a, APPS.main, ch2);
    await b.subscribe(ch1);
    const r = await sdkResult(publisher(h, APPS.main).triggerBatch([
      { channel: ch1, name: 'one', data: { n: 1 }, socket_id: b.socketId },
      { channel: ch2, name: 'two', data: 'two' },
    ]));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await a.nextEvent('one', ch1), { event: 'one', channel: ch1, data: '{"n":1}' });
    assert.deepEqual(await a.nextEvent('two', ch2), { event: 'two', channel: ch2, data: 'two' });
    await publisher(h, APPS.main).trigger(ch1, 'marker', {});
    await b.nextEvent('marker', ch1);
    assert.ok(!b.seen(isEvent('one')));
  });

  test('batch larger than max_batch_events → 400', async () => {
    const sdk = publisher(h, APPS.limits);
    const batch = [1, 2, 3].map((n) => ({ channel: `b${n}`, name: 'e', data: {} }));
    assertError(await sdkResult(sdk.triggerBatch(batch)), 400);
    const ok = await sdkResult(sdk.triggerBatch(batch.slice(0, 2)));
    assert.equal(ok.status, 200, ok.text);
  });

  test('more channels than max_channels_per_event → 400', async () => {
    const sdk = publisher(h, APPS.limits);
    assertError(await sdkResult(sdk.trigger(['a', 'b', 'c', 'd'], 'e', {})), 400);
    const ok = await sdkResult(sdk.trigger(['a', 'b', 'c'], 'e', {}));
    assert.equal(ok.status, 200, ok.text);
  });

  test('default app: more than 100 channels → 400', async () => {
    const channels = Array.from({ length: 101 }, (_, i) => `ch${i}`);
    const r = await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body: { name: 'e', data: '{}', channels } });
    assertError(r, 400);
  });

  test('data over max_event_payload_bytes → 413', async () => {
    const sdk = publisher(h, APPS.limits);
    assertError(await sdkResult(sdk.trigger('big', 'e', 'x'.repeat(101))), 413);
    const ok = await sdkResult(sdk.trigger('big', 'e', 'x'.repeat(100)));
    assert.equal(ok.status, 200, ok.text);
  });

  test('body over max_request_bytes → 413', async () => {
    // Every field valid and the data under the payload limit; only the whole
    // body (padded with JSON whitespace) is over the app's 3000 bytes.
    const event = JSON.stringify({ name: 'e', channels: ['big-request'], data: 'y'.repeat(50) });
    const padded = event.replace('{', '{' + ' '.repeat(4000));
    assertError(await signedFetch(h, APPS.limits, 'POST', `/apps/${APPS.limits.id}/events`, { rawBody: padded }), 413);
    // the same event without the padding is accepted
    const ok = await signedFetch(h, APPS.limits, 'POST', `/apps/${APPS.limits.id}/events`, { rawBody: event });
    assert.equal(ok.status, 200, ok.text);
  });

  test('an invalid channel name → 400', async () => {
    for (const channel of ['bad name!', 'a'.repeat(165), '']) {
      const r = await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body: { name: 'e', data: '{}', channels: [channel] } });
      assertError(r, 400);
    }
  });

  test('missing name or channels → 400', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body: { data: '{}', channels: ['c'] } }), 400);
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body: { name: 'e', data: '{}' } }), 400);
  });

  test('malformed JSON body → 400', async () => {
    const r = await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { rawBody: '{"name": "e", "data": ' });
    assertError(r, 400);
  });
});

describe('channels', () => {
  test('GET /channels lists occupied channels, filtered by prefix', async () => {
    const prefix = uid('list') + '-';
    const a = await rawConnect(h, APPS.main);
    await a.subscribe(`${prefix}one`);
    await a.subscribe(`${prefix}two`);
    await subscribePrivate(a, APPS.main, `private-${prefix}x`);
    const r = await sdkResult(publisher(h, APPS.main).get({ path: '/channels', params: { filter_by_prefix: prefix } }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { channels: { [`${prefix}one`]: {}, [`${prefix}two`]: {} } });
    const all = await sdkResult(publisher(h, APPS.main).get({ path: '/channels' }));
    assert.ok(`${prefix}one` in all.body.channels && `private-${prefix}x` in all.body.channels);
  });

  test('GET /channels?filter_by_prefix=presence-…&info=user_count', async () => {
    const prefix = `presence-${uid('lst')}-`;
    const [a, b, b2] = await Promise.all([0, 1, 2].map(() => rawConnect(h, APPS.main)));
    await subscribePresence(a, APPS.main, `${prefix}a`, '1', {});
    await subscribePresence(b, APPS.main, `${prefix}a`, '2', {});
    await subscribePresence(b2, APPS.main, `${prefix}a`, '2', {});
    await subscribePresence(b, APPS.main, `${prefix}b`, '2', {});
    const r = await sdkResult(publisher(h, APPS.main).get({ path: '/channels', params: { filter_by_prefix: prefix, info: 'user_count' } }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { channels: { [`${prefix}a`]: { user_count: 2 }, [`${prefix}b`]: { user_count: 1 } } });
  });

  test('GET /channels?info=user_count without a presence- prefix → 400', async () => {
    assertError(await sdkResult(publisher(h, APPS.main).get({ path: '/channels', params: { info: 'user_count' } })), 400);
    assertError(await sdkResult(publisher(h, APPS.main).get({ path: '/channels', params: { filter_by_prefix: 'private-', info: 'user_count' } })), 400);
  });

  test('GET /channels/{name}: unoccupied → {"occupied":false}', async () => {
    const r = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${uid('empty-')}` }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { occupied: false });
  });

  test('GET /channels/{name}: occupied, with subscription_count', async () => {
    const channel = uid('occ-');
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    await a.subscribe(channel);
    await b.subscribe(channel);
    const plain = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}` }));
    assert.deepEqual(plain.body, { occupied: true });
    const r = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { occupied: true, subscription_count: 2 });
    await b.close();
    await waitFor(async () => {
      const x = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } }));
      return x.body?.subscription_count === 1;
    }, { what: 'subscription_count to drop to 1' });
  });

  test('GET /channels/presence-…: user_count and subscription_count', async () => {
    const channel = uid('presence-info-');
    const [a, b, b2] = await Promise.all([0, 1, 2].map(() => rawConnect(h, APPS.main)));
    await subscribePresence(a, APPS.main, channel, '1', {});
    await subscribePresence(b, APPS.main, channel, '2', {});
    await subscribePresence(b2, APPS.main, channel, '2', {});
    const r = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}`, params: { info: 'user_count,subscription_count' } }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { occupied: true, user_count: 2, subscription_count: 3 });
  });

  test('GET /channels/{non-presence}?info=user_count → 400', async () => {
    const channel = uid('nonpres-');
    const a = await rawConnect(h, APPS.main);
    await a.subscribe(channel);
    assertError(await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}`, params: { info: 'user_count' } })), 400);
  });

  test('GET /channels/cache-…?info=cache reports the cached event', async () => {
    const channel = uid('cache-info-');
    await publisher(h, APPS.main).trigger(channel, 'state', { v: 9 });
    const r = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}`, params: { info: 'cache' } }));
    assert.equal(r.status, 200, r.text);
    assert.equal(typeof r.body.cache, 'object', `cache info missing: ${r.text}`);
    assert.equal(r.body.cache.data, '{"v":9}');
  });

  test('GET /channels/presence-…/users → {"users":[{"id":…}]}', async () => {
    const channel = uid('presence-users-');
    const [a, b, b2] = await Promise.all([0, 1, 2].map(() => rawConnect(h, APPS.main)));
    await subscribePresence(a, APPS.main, channel, '1', { name: 'A' });
    await subscribePresence(b, APPS.main, channel, '2', { name: 'B' });
    await subscribePresence(b2, APPS.main, channel, '2', { name: 'B' });
    const r = await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${channel}/users` }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body), ['users']);
    assert.deepEqual([...r.body.users].sort((x, y) => x.id.localeCompare(y.id)), [{ id: '1' }, { id: '2' }]);
  });

  test('GET /channels/{non-presence}/users → 400', async () => {
    assertError(await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${uid('private-')}/users` })), 400);
    assertError(await sdkResult(publisher(h, APPS.main).get({ path: `/channels/${uid('public-')}/users` })), 400);
  });
});

describe('authentication and routing', () => {
  const body = { name: 'e', channel: 'auth-check', data: '{}' };

  test('a hand-signed request is accepted (same signing as the SDK)', async () => {
    const r = await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, {});
    const g = await signedFetch(h, APPS.main, 'GET', `${api()}/channels`, { params: { filter_by_prefix: 'zz-none-' } });
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body, { channels: {} });
  });

  test('wrong secret → 401', async () => {
    assertError(await sdkResult(publisher(h, { ...APPS.main, secret: 'not-the-secret' }).trigger('c', 'e', {})), 401);
    assertError(await signedFetch(h, APPS.main, 'GET', `${api()}/channels`, { secret: 'nope' }), 401);
  });

  test('missing auth_signature → 401', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, sign: false }), 401);
  });

  test('unknown auth_key → 401', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, key: 'who-is-this' }), 401);
  });

  test('another app\'s key and secret on this app\'s path → 401', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, key: APPS.all.key, secret: APPS.all.secret }), 401);
  });

  test('auth_timestamp 700 s old → 401', async () => {
    const stale = Math.floor(Date.now() / 1000) - 700;
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, timestamp: stale }), 401);
    const future = Math.floor(Date.now() / 1000) + 700;
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, timestamp: future }), 401);
  });

  test('body_md5 that does not match the body → 401', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', `${api()}/events`, { body, bodyMd5: 'd41d8cd98f00b204e9800998ecf8427e' }), 401);
  });

  test('unknown app id → 401, as a wrong signature (app ids cannot be enumerated)', async () => {
    assertError(await signedFetch(h, APPS.main, 'POST', '/apps/no-such-app/events', { body }), 401);
  });

  test('disabled app → 403', async () => {
    assertError(await sdkResult(publisher(h, APPS.disabled).trigger('c', 'e', {})), 403);
  });

  test('unknown path → 404', async () => {
    assertError(await signedFetch(h, APPS.main, 'GET', `${api()}/no-such-endpoint`), 404);
    const res = await fetch(`${h.httpURL}/definitely/not/here`);
    const text = await res.text();
    let parsed;
    try { parsed = JSON.parse(text); } catch { parsed = undefined; }
    assertError({ status: res.status, text, body: parsed }, 404);
  });

  test('wrong method → 405', async () => {
    assertError(await signedFetch(h, APPS.main, 'GET', `${api()}/events`), 405);
  });

  test('terminate_connections by hand-signed request', async () => {
    const r = await signedFetch(h, APPS.main, 'POST', `${api()}/users/${uid('nobody')}/terminate_connections`, { body: {} });
    assert.equal(r.status, 200, r.text);
  });

  test('GET /up → 200', async () => {
    const res = await fetch(`${h.httpURL}/up`);
    assert.equal(res.status, 200);
  });
});
