// Channel history: offsets on the wire, resume after a disconnect, and
// herald:resume_failed — and stock pusher-js unaffected by the new fields.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, rawConnect, channelAuth, signedFetch,
  pusherClient, pusherSubscribe, nextOn, uid,
  positioned,
} from '../lib/herald.js';

// Explicit settings, so the test does not depend on the default: history
// on for the main app (as YAML `history: on`), off for a second one.
const OFF = { ...APPS.all, history: 'off' };
const h = useHerald({ apps: [{ ...APPS.main, history: 'on' }, OFF] });

/** Publishes through the signed HTTP API and asserts 200. */
async function publish(channel, name, data) {
  const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, { body: { name, channel, data } });
  assert.equal(r.status, 200, r.text);
}

/** Subscribes a raw client, optionally resuming, and waits for the answer. */
async function subscribe(c, channel, { since, auth } = {}) {
  const data = { channel };
  if (auth) data.auth = channelAuth(APPS.main, c.socketId, channel);
  if (since) data.since = since;
  c.send({ event: 'pusher:subscribe', data });
  return c.next((f) => (f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel) || f.event === 'pusher:error');
}

/** The channel events (not pusher:*, pusher_internal:*, herald:*) c received on channel. */
const channelEvents = (c, channel) => c.frames.filter((f) => f.channel === channel && !f.event.includes(':'));

describe('history', () => {
  test('events of a history channel carry epoch and offset, +1 per event', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('public-');
    await subscribe(c, channel);
    await publish(channel, 'a', 'one');
    await publish(channel, 'b', 'two');
    const first = await c.nextEvent('a', channel);
    const second = await c.nextEvent('b', channel);
    assert.equal(typeof first.epoch, 'string');
    assert.ok(first.epoch.length > 0 && first.epoch.length <= 16, first.epoch);
    assert.deepEqual(positioned(first), { event: 'a', channel, data: 'one', epoch: first.epoch, offset: 1 });
    assert.deepEqual(positioned(second), { event: 'b', channel, data: 'two', epoch: first.epoch, offset: 2 });
  });

  for (const kind of ['public', 'private']) {
    test(`${kind}: a raw client that reconnects with since gets exactly the missed events, then live ones`, async () => {
      const channel = uid(kind === 'private' ? 'private-' : 'public-');
      const auth = kind === 'private';
      const a = await rawConnect(h, APPS.main);
      await subscribe(a, channel, { auth });
      await publish(channel, 'seen', '0');
      const seen = await a.nextEvent('seen', channel);
      await a.close();

      for (let i = 1; i <= 3; i++) await publish(channel, 'missed', String(i));

      const b = await rawConnect(h, APPS.main);
      const ok = await subscribe(b, channel, { auth, since: { epoch: seen.epoch, offset: seen.offset } });
      assert.equal(ok.event, 'pusher_internal:subscription_succeeded', JSON.stringify(ok));
      for (let i = 1; i <= 3; i++) {
        const f = await b.nextEvent('missed', channel);
        assert.deepEqual(positioned(f), { event: 'missed', channel, data: String(i), epoch: seen.epoch, offset: seen.offset + i });
      }
      await publish(channel, 'live', 'x');
      await b.nextEvent('live', channel);
      assert.deepEqual(channelEvents(b, channel).map((f) => f.offset), [2, 3, 4, 5], 'no gap, no duplicate');
      // The replay came right after subscription_succeeded: nothing in between.
      const i = b.frames.findIndex((f) => f.event === 'pusher_internal:subscription_succeeded');
      assert.equal(b.frames[i + 1].event, 'missed');
      assert.ok(!b.seen((f) => f.event === 'herald:resume_failed'));
    });
  }

  test('a quiet channel: "position": true tells where the subscription starts, and a resume from there misses nothing', async () => {
    const channel = uid('public-');
    await publish(channel, 'before', 'old'); // offset 1: not for this client
    const a = await rawConnect(h, APPS.main);
    a.send({ event: 'pusher:subscribe', data: { channel, position: true } });
    await a.next((f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel);
    const pf = await a.next((f) => f.event === 'herald:position' && f.channel === channel);
    const pos = JSON.parse(pf.data);
    assert.equal(pos.offset, 1);
    assert.equal(typeof pos.epoch, 'string');
    await a.close(); // nothing was published while it was there

    await publish(channel, 'missed', 'm');
    const b = await rawConnect(h, APPS.main);
    await subscribe(b, channel, { since: pos });
    const f = await b.nextEvent('missed', channel);
    assert.deepEqual(positioned(f), { event: 'missed', channel, data: 'm', epoch: pos.epoch, offset: 2 });
    assert.ok(!b.seen((x) => x.event === 'herald:resume_failed' || x.event === 'herald:position'));

    // On a channel never published to, the position is the empty one, and
    // resuming from it replays the channel from its first event.
    const fresh = uid('public-');
    const c = await rawConnect(h, APPS.main);
    c.send({ event: 'pusher:subscribe', data: { channel: fresh, position: true } });
    const empty = await c.next((x) => x.event === 'herald:position' && x.channel === fresh);
    assert.equal(empty.data, '{"epoch":"","offset":0}');
    await c.close();
    await publish(fresh, 'first', '1');
    const d = await rawConnect(h, APPS.main);
    await subscribe(d, fresh, { since: { epoch: '', offset: 0 } });
    assert.equal(positioned(await d.nextEvent('first', fresh)).offset, 1);

    // Pusher's subscribe (no position) gets no herald:position.
    const e = await rawConnect(h, APPS.main);
    await subscribe(e, channel);
    await publish(channel, 'live', 'x');
    await e.nextEvent('live', channel);
    assert.ok(!e.seen((x) => x.event === 'herald:position'));
  });

  test('private: a resume with a bad auth is refused and replays nothing', async () => {
    const channel = uid('private-');
    const a = await rawConnect(h, APPS.main);
    await subscribe(a, channel, { auth: true });
    await publish(channel, 'secret', 's');
    const seen = await a.nextEvent('secret', channel);
    const b = await rawConnect(h, APPS.main);
    b.send({ event: 'pusher:subscribe', data: { channel, auth: `${APPS.main.key}:${'0'.repeat(64)}`, since: { epoch: seen.epoch, offset: 0 } } });
    await b.nextError(4009);
    await b.ping(); // everything the server sent in answer is in by now
    assert.deepEqual(channelEvents(b, channel), []);
    assert.ok(!b.seen((f) => f.event === 'herald:resume_failed'));
  });

  test('another epoch or an offset ahead → subscribed, plus herald:resume_failed with the position', async () => {
    const channel = uid('public-');
    const a = await rawConnect(h, APPS.main);
    await subscribe(a, channel);
    await publish(channel, 'e', '1');
    await publish(channel, 'e', '2');
    const { epoch } = await a.nextEvent('e', channel);
    let offset = 2;
    for (const since of [{ epoch: 'not-the-epoch', offset: 1 }, { epoch, offset: 99 }]) {
      const b = await rawConnect(h, APPS.main);
      const ok = await subscribe(b, channel, { since });
      assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
      const failed = await b.nextEvent('herald:resume_failed', channel);
      assert.deepEqual(failed, { event: 'herald:resume_failed', channel, data: JSON.stringify({ epoch, offset }) });
      assert.equal(b.raw.find((s) => s.includes('resume_failed')),
        `{"event":"herald:resume_failed","channel":"${channel}","data":"{\\"epoch\\":\\"${epoch}\\",\\"offset\\":${offset}}"}`);
      await publish(channel, 'after', 'x');
      offset++;
      assert.equal((await b.nextEvent('after', channel)).data, 'x', 'the subscription stands');
    }
  });

  test('history: off → frames exactly as Pusher sends them, and a resume fails with an empty epoch', async () => {
    const c = await rawConnect(h, OFF);
    const channel = uid('public-');
    c.send({ event: 'pusher:subscribe', data: { channel, since: { epoch: 'x', offset: 1 } } });
    await c.nextEvent('pusher_internal:subscription_succeeded', channel);
    assert.deepEqual(await c.nextEvent('herald:resume_failed', channel),
      { event: 'herald:resume_failed', channel, data: '{"epoch":"","offset":0}' });
    const r = await signedFetch(h, OFF, 'POST', `/apps/${OFF.id}/events`, { body: { name: 'plain', channel, data: 'd' } });
    assert.equal(r.status, 200, r.text);
    await c.nextEvent('plain', channel);
    assert.equal(c.raw.find((s) => s.includes('"plain"')), `{"event":"plain","channel":"${channel}","data":"d"}`);
  });

  test('pusher-js receives events of a history channel unchanged', async () => {
    const p = await pusherClient(h, APPS.main);
    const channel = uid('company.1.orders.');
    const ch = await pusherSubscribe(p, channel);
    const payload = { id: 42, text: 'héllo ✓', nested: { a: [1, 2] } };
    const got = nextOn(ch, 'order.created');
    await publish(channel, 'order.created', JSON.stringify(payload));
    assert.deepEqual(await got, payload);
    const msg = p.frames.find((m) => m.event === 'order.created');
    assert.equal(msg.channel, channel);
    assert.deepEqual(msg.data, payload);
  });
});
