// Public, private, encrypted and cache channels.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, useAuthServer, rawConnect, dataOf, isEvent, isError,
  channelAuth, subscribePrivate, subscribePresence, publisher, signedFetch, sdkResult,
  pusherClient, pusherSubscribe, nextOn, withTimeout, uid, WAIT,
} from '../lib/herald.js';

const h = useHerald();
const auth = useAuthServer(h);

/** Publishes a marker on `channel` and waits until `c` receives it. */
async function marker(c, channel) {
  const name = uid('marker-');
  const r = await sdkResult(publisher(h, APPS.main).trigger(channel, name, { marker: true }));
  assert.equal(r.status, 200, `marker trigger: ${r.text}`);
  await c.nextEvent(name, channel);
}

describe('public channels', () => {
  test('subscribe → exact subscription_succeeded frame', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    const f = await c.subscribe(channel);
    assert.deepEqual(f, { event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });
  });

  test('events published with the SDK arrive with data as the publisher\'s string, untouched', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    await c.subscribe(channel);
    const payload = { text: 'héllo ✓', n: 1.5, nested: { a: [1, 2, 3] }, html: '<b>&amp;</b>' };
    const r = await sdkResult(publisher(h, APPS.main).trigger(channel, 'my-event', payload));
    assert.equal(r.status, 200, r.text);
    const f = await c.nextEvent('my-event', channel);
    assert.deepEqual(f, { event: 'my-event', channel, data: JSON.stringify(payload) });
    const raw = c.raw.find((s) => s.includes('"my-event"'));
    assert.ok(raw.includes(JSON.stringify(JSON.stringify(payload))), `data string should be byte-identical: ${raw}`);
  });

  test('a non-JSON data string passes through as is', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    await c.subscribe(channel);
    const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, {
      body: { name: 'plain', channel, data: 'just some text, not JSON {' },
    });
    assert.equal(r.status, 200, r.text);
    const f = await c.nextEvent('plain', channel);
    assert.deepEqual(f, { event: 'plain', channel, data: 'just some text, not JSON {' });
  });

  test('pusher-js receives events on a public channel', async () => {
    const p = await pusherClient(h, APPS.main);
    const channel = uid('company.1.marketplace.');
    const ch = await pusherSubscribe(p, channel);
    const got = nextOn(ch, 'thing.happened');
    await publisher(h, APPS.main).trigger(channel, 'thing.happened', { id: 42 });
    assert.deepEqual(await got, { id: 42 });
  });

  test('pusher:unsubscribe stops delivery', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    const other = uid('public-');
    await c.subscribe(channel);
    await c.subscribe(other);
    c.unsubscribe(channel);
    // The unsubscribe is processed before the next frame on the same socket.
    await c.ping();
    await publisher(h, APPS.main).trigger(channel, 'after-unsubscribe', {});
    await marker(c, other);
    assert.ok(!c.seen(isEvent('after-unsubscribe')), 'no event after unsubscribe');
  });

  test('an event on one channel does not reach subscribers of another', async () => {
    const a = await rawConnect(h, APPS.main);
    const chA = uid('public-');
    const chB = uid('public-');
    await a.subscribe(chA);
    await publisher(h, APPS.main).trigger(chB, 'elsewhere', {});
    await marker(a, chA);
    assert.ok(!a.seen(isEvent('elsewhere')));
  });
});

describe('private channels', () => {
  test('raw client with a valid auth → exact subscription_succeeded, then events', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('private-');
    const f = await subscribePrivate(c, APPS.main, channel);
    assert.deepEqual(f, { event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });
    await publisher(h, APPS.main).trigger(channel, 'secret', { ok: true });
    const e = await c.nextEvent('secret', channel);
    assert.deepEqual(e, { event: 'secret', channel, data: '{"ok":true}' });
  });

  test('pusher-js authorized through the auth endpoint subscribes and receives events', async () => {
    const p = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': '7' } });
    const channel = uid('private-App.Models.User.');
    const ch = await pusherSubscribe(p, channel);
    const req = auth.requests.find((r) => r.form.channel_name === channel);
    assert.ok(req, 'the auth endpoint was asked');
    assert.equal(req.form.socket_id, p.connection.socket_id);
    const got = nextOn(ch, 'notify');
    await publisher(h, APPS.main).trigger(channel, 'notify', { msg: 'hi' });
    assert.deepEqual(await got, { msg: 'hi' });
  });

  const refusals = [
    ['a wrong signature', (c, ch) => ({ auth: `${APPS.main.key}:${'0'.repeat(64)}` })],
    ['a signature made with another secret', (c, ch) => ({ auth: channelAuth({ ...APPS.main, secret: 'nope' }, c.socketId, ch) })],
    ['a signature for another socket id', (c, ch) => ({ auth: channelAuth(APPS.main, '1234.5678', ch) })],
    ['a signature for another channel', (c, ch) => ({ auth: channelAuth(APPS.main, c.socketId, `${ch}-other`) })],
    ['another app\'s key in auth', (c, ch) => ({ auth: channelAuth({ ...APPS.all, secret: APPS.main.secret }, c.socketId, ch) })],
    ['no auth at all', () => ({})],
    ['an auth without a colon', () => ({ auth: 'garbage' })],
  ];
  for (const [name, make] of refusals) {
    test(`${name} → pusher:error 4009, not subscribed, socket stays open`, async () => {
      const c = await rawConnect(h, APPS.main);
      const channel = uid('private-');
      const f = await c.subscribe(channel, { ...make(c, channel), allowError: true });
      assert.equal(f.event, 'pusher:error', `expected a refusal, got ${JSON.stringify(f)}`);
      assert.equal(dataOf(f).code, 4009);
      assert.ok(!c.seen(isEvent('pusher_internal:subscription_succeeded', channel)));
      // Not subscribed: events on the channel are not delivered.
      const pub = uid('public-');
      await c.subscribe(pub);
      await publisher(h, APPS.main).trigger(channel, 'leak', {});
      await marker(c, pub);
      assert.ok(!c.seen(isEvent('leak')), 'events must not reach a refused subscriber');
      assert.ok(c.isOpen);
    });
  }

  test('pusher-js given a bad signature by the endpoint gets pusher:error 4009 and stays connected', async () => {
    const p = await pusherClient(h, APPS.main, { auth });
    const errors = [];
    p.connection.bind('error', (e) => errors.push(e));
    const channel = uid('private-badsig-');
    p.subscribe(channel);
    await withTimeout((async () => {
      while (!p.frames.some((m) => m.event === 'pusher:error')) await nextOn(p.connection, 'message');
    })(), WAIT, 'pusher:error at pusher-js');
    const err = p.frames.find((m) => m.event === 'pusher:error');
    assert.equal(err.data.code, 4009);
    assert.equal(p.channel(channel).subscribed, false);
    assert.equal(p.connection.state, 'connected');
  });
});

describe('encrypted channels', () => {
  test('payloads pass through untouched (raw publish, raw subscriber)', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('private-encrypted-');
    const ok = await subscribePrivate(c, APPS.main, channel);
    assert.deepEqual(ok, { event: 'pusher_internal:subscription_succeeded', channel, data: '{}' });
    const data = JSON.stringify({ ciphertext: 'c2VjcmV0IHN0dWZm+/==', nonce: 'bm9uY2Vub25jZW5vbmNlbm9uY2Vub25j' });
    const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, {
      body: { name: 'sealed', channels: [channel], data },
    });
    assert.equal(r.status, 200, r.text);
    const f = await c.nextEvent('sealed', channel);
    assert.deepEqual(f, { event: 'sealed', channel, data });
  });

  test('SDK-encrypted events decrypt in pusher-js (shared_secret from the auth endpoint)', async () => {
    const p = await pusherClient(h, APPS.main, { auth });
    const channel = uid('private-encrypted-');
    const ch = await pusherSubscribe(p, channel);
    const got = nextOn(ch, 'sealed');
    const r = await sdkResult(publisher(h, APPS.main).trigger(channel, 'sealed', { card: '4242' }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await got, { card: '4242' });
  });

  test('client events on an encrypted channel are refused with 4301', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('private-encrypted-');
    await subscribePrivate(a, APPS.main, channel);
    await subscribePrivate(b, APPS.main, channel);
    a.trigger(channel, 'client-peek', { x: 1 });
    const err = await a.nextError();
    assert.equal(dataOf(err).code, 4301);
    await marker(b, channel);
    assert.ok(!b.seen(isEvent('client-peek')));
    assert.ok(a.isOpen);
  });
});

describe('cache channels', () => {
  const kinds = [
    ['cache-', (c, ch) => c.subscribe(ch)],
    ['private-cache-', (c, ch) => subscribePrivate(c, APPS.main, ch)],
    ['presence-cache-', (c, ch) => subscribePresence(c, APPS.main, ch, 'u1', { name: 'U1' })],
    ['private-encrypted-cache-', (c, ch) => subscribePrivate(c, APPS.main, ch)],
  ];
  for (const [prefix, subscribe] of kinds) {
    test(`${prefix}: a new subscriber gets the last event right after subscription_succeeded`, async () => {
      const channel = uid(prefix);
      const enc = prefix.startsWith('private-encrypted-');
      const first = enc ? JSON.stringify({ ciphertext: 'Zmlyc3Q=', nonce: 'bm9uY2Ux' }) : JSON.stringify({ v: 1 });
      const last = enc ? JSON.stringify({ ciphertext: 'bGFzdA==', nonce: 'bm9uY2Uy' }) : JSON.stringify({ v: 2 });
      for (const data of [first, last]) {
        const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, {
          body: { name: 'price', channels: [channel], data },
        });
        assert.equal(r.status, 200, r.text);
      }
      const c = await rawConnect(h, APPS.main);
      const ok = await subscribe(c, channel);
      assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
      const cached = await c.nextEvent('price', channel);
      assert.deepEqual(cached, { event: 'price', channel, data: last });
      const i = c.frames.indexOf(ok);
      assert.equal(c.frames[i + 1], cached, 'the cached event follows subscription_succeeded immediately');
      assert.ok(!c.seen((f) => f.event === 'price' && f.data === first), 'only the last event is replayed');
      assert.ok(!c.seen(isEvent('pusher:cache_miss')));
    });

    test(`${prefix}: nothing cached → {"event":"pusher:cache_miss","channel":…}`, async () => {
      const channel = uid(prefix);
      const c = await rawConnect(h, APPS.main);
      const ok = await subscribe(c, channel);
      assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
      const miss = await c.nextEvent('pusher:cache_miss', channel);
      assert.deepEqual(miss, { event: 'pusher:cache_miss', channel });
    });
  }

  test('pusher-js on a cache channel gets the cached event', async () => {
    const channel = uid('cache-');
    await publisher(h, APPS.main).trigger(channel, 'state', { level: 3 });
    const p = await pusherClient(h, APPS.main);
    const ch = p.subscribe(channel);
    assert.deepEqual(await nextOn(ch, 'state'), { level: 3 });
  });

  test('a plain public channel gets neither a replay nor cache_miss', async () => {
    const channel = uid('public-');
    await publisher(h, APPS.main).trigger(channel, 'old', {});
    const c = await rawConnect(h, APPS.main);
    await c.subscribe(channel);
    await marker(c, channel);
    assert.ok(!c.seen(isEvent('old')));
    assert.ok(!c.seen(isEvent('pusher:cache_miss')));
    assert.ok(!c.seen(isError()));
  });
});
