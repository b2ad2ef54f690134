// Client events (whisper): who may send them, where they go, rate limits.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, useAuthServer, rawConnect, dataOf, isEvent,
  subscribePrivate, subscribePresence, publisher, uid, echoClient, withTimeout, WAIT,
} from '../lib/herald.js';

const h = useHerald();
const auth = useAuthServer(h);

/** HTTP-published marker that `c` must receive on `channel`. */
async function marker(c, channel, app = APPS.main) {
  const name = uid('marker-');
  await publisher(h, app).trigger(channel, name, {});
  await c.nextEvent(name, channel);
}

/** Two raw sockets subscribed to a fresh private channel of `app`. */
async function privatePair(app = APPS.main, prefix = 'private-chat-') {
  const a = await rawConnect(h, app);
  const b = await rawConnect(h, app);
  const channel = uid(prefix);
  await subscribePrivate(a, app, channel);
  await subscribePrivate(b, app, channel);
  return { a, b, channel };
}

describe('client events', () => {
  test('private channel: delivered to the other subscriber exactly, never echoed to the sender', async () => {
    const { a, b, channel } = await privatePair();
    const c = await rawConnect(h, APPS.main);
    await subscribePrivate(c, APPS.main, channel);
    a.trigger(channel, 'client-typing', { who: 'a', text: 'héllo' });
    const got = await b.nextEvent('client-typing', channel);
    assert.deepEqual(got, { event: 'client-typing', channel, data: { who: 'a', text: 'héllo' } });
    const got2 = await c.nextEvent('client-typing', channel);
    assert.deepEqual(got2, got);
    // b answers; a receives b's event, and never its own.
    b.trigger(channel, 'client-reply', { who: 'b' });
    await a.nextEvent('client-reply', channel);
    assert.ok(!a.seen(isEvent('client-typing')), 'the sender must not get its own client event');
    assert.ok(!a.seen((f) => f.event === 'pusher:error'));
  });

  test('a string data payload is relayed as the same string', async () => {
    const { a, b, channel } = await privatePair();
    a.trigger(channel, 'client-raw', 'plain string');
    const got = await b.nextEvent('client-raw', channel);
    assert.deepEqual(got, { event: 'client-raw', channel, data: 'plain string' });
  });

  test('presence channel: client events carry the sender\'s user_id', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('presence-chat-');
    await subscribePresence(a, APPS.main, channel, 'alice', { name: 'Alice' });
    await subscribePresence(b, APPS.main, channel, 'bob', { name: 'Bob' });
    a.trigger(channel, 'client-typing', { typing: true });
    const got = await b.nextEvent('client-typing', channel);
    assert.deepEqual(got, { event: 'client-typing', channel, data: { typing: true }, user_id: 'alice' });
    b.trigger(channel, 'client-typing', { typing: false });
    const back = await a.nextEvent('client-typing', channel);
    assert.deepEqual(back, { event: 'client-typing', channel, data: { typing: false }, user_id: 'bob' });
    assert.equal(a.frames.filter(isEvent('client-typing')).length, 1, 'no echo on presence channels either');
  });

  test('public channel → pusher:error 4301, not delivered', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    await a.subscribe(channel);
    await b.subscribe(channel);
    a.trigger(channel, 'client-nope', { x: 1 });
    const err = await a.nextError();
    assert.equal(dataOf(err).code, 4301);
    await marker(b, channel);
    assert.ok(!b.seen(isEvent('client-nope')));
    assert.ok(a.isOpen);
    await a.ping();
  });

  test('members mode: a socket not subscribed to the channel → 4301, not delivered', async () => {
    const { a, b, channel } = await privatePair();
    const outsider = await rawConnect(h, APPS.main);
    outsider.trigger(channel, 'client-intrude', { x: 1 });
    const err = await outsider.nextError();
    assert.equal(dataOf(err).code, 4301);
    await marker(b, channel);
    await marker(a, channel);
    assert.ok(!b.seen(isEvent('client-intrude')));
    assert.ok(!a.seen(isEvent('client-intrude')));
    assert.ok(outsider.isOpen);
  });

  test('client_events: none → 4301 even for members', async () => {
    const { a, b, channel } = await privatePair(APPS.none);
    a.trigger(channel, 'client-off', { x: 1 });
    const err = await a.nextError();
    assert.equal(dataOf(err).code, 4301);
    await marker(b, channel, APPS.none);
    assert.ok(!b.seen(isEvent('client-off')));
  });

  test('client_events: all → accepted from a socket that is not a member of the private channel', async () => {
    const { a, b, channel } = await privatePair(APPS.all);
    const outsider = await rawConnect(h, APPS.all);
    outsider.trigger(channel, 'client-from-outside', { hello: 1 });
    const got = await b.nextEvent('client-from-outside', channel);
    assert.deepEqual(got, { event: 'client-from-outside', channel, data: { hello: 1 } });
    await a.nextEvent('client-from-outside', channel);
    assert.ok(!outsider.seen((f) => f.event === 'pusher:error'));
  });

  test('client_events: all → still refused on public channels', async () => {
    const a = await rawConnect(h, APPS.all);
    const channel = uid('public-');
    await a.subscribe(channel);
    a.trigger(channel, 'client-public', {});
    const err = await a.nextError();
    assert.equal(dataOf(err).code, 4301);
  });

  test('over client_events_per_second → 4301 and the extra event is not delivered', async () => {
    const { a, b, channel } = await privatePair(APPS.limits);
    // Three in one burst; the limit is two per second.
    a.trigger(channel, 'client-burst', { n: 1 });
    a.trigger(channel, 'client-burst', { n: 2 });
    a.trigger(channel, 'client-burst', { n: 3 });
    const err = await a.nextError();
    assert.equal(dataOf(err).code, 4301);
    await b.nextEvent('client-burst', channel);
    await b.nextEvent('client-burst', channel);
    await marker(b, channel, APPS.limits);
    const got = b.frames.filter(isEvent('client-burst')).map((f) => f.data.n);
    assert.deepEqual(got, [1, 2], 'only the first two are delivered');
    assert.ok(a.isOpen, 'rate limiting does not close the socket');
  });

  test('client event names must start with client- (others are not relayed)', async () => {
    const { a, b, channel } = await privatePair();
    a.trigger(channel, 'not-a-client-event', { x: 1 });
    await a.ping();
    await marker(b, channel);
    assert.ok(!b.seen(isEvent('not-a-client-event')), 'a non-client event from a socket is never broadcast');
  });

  test('Laravel Echo whisper / listenForWhisper', async () => {
    const e1 = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '21' } });
    const e2 = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '22' } });
    const name = uid('chat.');
    const subscribed = (ch) => withTimeout(new Promise((r) => ch.subscribed(r)), WAIT, `Echo subscription to ${name}`);
    const ch1 = e1.private(name);
    const ch2 = e2.private(name);
    await Promise.all([subscribed(ch1), subscribed(ch2)]);
    const heard = withTimeout(new Promise((r) => ch2.listenForWhisper('typing', r)), WAIT, 'whisper at e2');
    const echoed = [];
    ch1.listenForWhisper('typing', (e) => echoed.push(e));
    ch1.whisper('typing', { name: 'Ann', typing: true });
    assert.deepEqual(await heard, { name: 'Ann', typing: true });
    // The whisperer never hears itself: e2 whispers back, e1 gets only that.
    const back = withTimeout(new Promise((r) => ch1.listenForWhisper('seen', r)), WAIT, 'whisper at e1');
    ch2.whisper('seen', { by: 22 });
    assert.deepEqual(await back, { by: 22 });
    assert.deepEqual(echoed, []);
  });
});
