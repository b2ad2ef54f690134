// Presence channels: member lists, member_added/removed counted per user,
// limits, refusals.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, useAuthServer, rawConnect, dataOf, isEvent,
  channelAuth, subscribePresence, publisher, signedFetch, waitFor,
  pusherClient, pusherSubscribe, nextOn, uid,
} from '../lib/herald.js';

const h = useHerald();
const auth = useAuthServer(h);

async function marker(c, channel, app = APPS.main) {
  const name = uid('marker-');
  await publisher(h, app).trigger(channel, name, {});
  await c.nextEvent(name, channel);
}

/** Subscription count of a channel as the HTTP API reports it. */
async function subscriptionCount(channel, app = APPS.main) {
  const r = await signedFetch(h, app, 'GET', `/apps/${app.id}/channels/${channel}`, { params: { info: 'subscription_count' } });
  assert.equal(r.status, 200, r.text);
  return r.body.subscription_count;
}

function presenceOf(frame) {
  assert.equal(typeof frame.data, 'string', 'presence subscription_succeeded data is a JSON string');
  return dataOf(frame);
}

const sortIds = (p) => ({ ...p, presence: { ...p.presence, ids: [...p.presence.ids].sort() } });

describe('presence channels', () => {
  test('first member: exact subscription_succeeded with ids, hash and count', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('presence-room-');
    const f = await subscribePresence(c, APPS.main, channel, '1', { name: 'Ann' });
    assert.deepEqual(Object.keys(f).sort(), ['channel', 'data', 'event']);
    assert.equal(f.event, 'pusher_internal:subscription_succeeded');
    assert.equal(f.channel, channel);
    assert.deepEqual(presenceOf(f), { presence: { ids: ['1'], hash: { 1: { name: 'Ann' } }, count: 1 } });
  });

  test('a second member sees both; the first gets an exact member_added', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('presence-room-');
    await subscribePresence(a, APPS.main, channel, '1', { name: 'Ann' });
    const f = await subscribePresence(b, APPS.main, channel, '2', { name: 'Bob', roles: ['admin'] });
    assert.deepEqual(sortIds(presenceOf(f)), {
      presence: { ids: ['1', '2'], hash: { 1: { name: 'Ann' }, 2: { name: 'Bob', roles: ['admin'] } }, count: 2 },
    });
    const added = await a.nextEvent('pusher_internal:member_added', channel);
    assert.deepEqual(Object.keys(added).sort(), ['channel', 'data', 'event']);
    assert.equal(typeof added.data, 'string');
    assert.deepEqual(dataOf(added), { user_id: '2', user_info: { name: 'Bob', roles: ['admin'] } });
    // The new member is not told about itself.
    await marker(b, channel);
    assert.ok(!b.seen(isEvent('pusher_internal:member_added')));
  });

  test('member_added / member_removed are counted per user, not per socket', async () => {
    const watcher = await rawConnect(h, APPS.main);
    const s1 = await rawConnect(h, APPS.main);
    const s2 = await rawConnect(h, APPS.main);
    const channel = uid('presence-room-');
    await subscribePresence(watcher, APPS.main, channel, 'w', { name: 'Watcher' });

    await subscribePresence(s1, APPS.main, channel, '2', { name: 'Bob' });
    await watcher.nextEvent('pusher_internal:member_added', channel);
    const second = await subscribePresence(s2, APPS.main, channel, '2', { name: 'Bob' });
    // The second socket of user 2 sees one member per user.
    assert.deepEqual(sortIds(presenceOf(second)), {
      presence: { ids: ['2', 'w'], hash: { 2: { name: 'Bob' }, w: { name: 'Watcher' } }, count: 2 },
    });
    await marker(watcher, channel);
    assert.equal(watcher.frames.filter(isEvent('pusher_internal:member_added')).length, 1, 'one member_added for two sockets of one user');

    // Closing one of the two sockets: the user is still there.
    await s1.close();
    await waitFor(async () => (await subscriptionCount(channel)) === 2, { what: 'subscription_count 2 after closing s1' });
    await marker(watcher, channel);
    assert.ok(!watcher.seen(isEvent('pusher_internal:member_removed')), 'no member_removed while the user has another socket');

    // Closing the last one: member_removed with exactly {"user_id":"2"}.
    await s2.close();
    const removed = await watcher.nextEvent('pusher_internal:member_removed', channel);
    assert.deepEqual(Object.keys(removed).sort(), ['channel', 'data', 'event']);
    assert.deepEqual(JSON.parse(removed.data), { user_id: '2' });
  });

  test('pusher:unsubscribe removes the member', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('presence-room-');
    await subscribePresence(a, APPS.main, channel, '1', { name: 'Ann' });
    await subscribePresence(b, APPS.main, channel, '2', { name: 'Bob' });
    await a.nextEvent('pusher_internal:member_added', channel);
    b.unsubscribe(channel);
    const removed = await a.nextEvent('pusher_internal:member_removed', channel);
    assert.deepEqual(dataOf(removed), { user_id: '2' });
    // And b no longer receives the channel's events.
    const other = uid('public-');
    await b.subscribe(other);
    await publisher(h, APPS.main).trigger(channel, 'after-leave', {});
    await marker(a, channel);
    await marker(b, other);
    assert.ok(!b.seen(isEvent('after-leave')));
    const users = await signedFetch(h, APPS.main, 'GET', `/apps/${APPS.main.id}/channels/${channel}/users`);
    assert.deepEqual(users.body, { users: [{ id: '1' }] });
  });

  test('a member coming back after leaving is announced again', async () => {
    const a = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const channel = uid('presence-room-');
    await subscribePresence(a, APPS.main, channel, '1', { name: 'Ann' });
    await subscribePresence(b, APPS.main, channel, '2', { name: 'Bob' });
    await a.nextEvent('pusher_internal:member_added', channel);
    b.unsubscribe(channel);
    await a.nextEvent('pusher_internal:member_removed', channel);
    await subscribePresence(b, APPS.main, channel, '2', { name: 'Bob again' });
    const again = await a.nextEvent('pusher_internal:member_added', channel);
    assert.deepEqual(dataOf(again), { user_id: '2', user_info: { name: 'Bob again' } });
  });

  test('over max_presence_members → pusher:error, not subscribed; an existing user\'s second socket still joins', async () => {
    const app = APPS.limits;
    const channel = uid('presence-full-');
    const [a, b, c, a2] = await Promise.all([0, 1, 2, 3].map(() => rawConnect(h, app)));
    await subscribePresence(a, app, channel, '1', { n: 1 });
    await subscribePresence(b, app, channel, '2', { n: 2 });
    const f = await subscribePresence(c, app, channel, '3', { n: 3 }, { allowError: true });
    assert.equal(f.event, 'pusher:error', `third member should be refused: ${JSON.stringify(f)}`);
    assert.equal(typeof dataOf(f).code, 'number');
    assert.ok(c.isOpen, 'the refused socket stays open');
    // Not subscribed: no member_added for 3, no events for c.
    await publisher(h, app).trigger(channel, 'after-full', {});
    await a.nextEvent('after-full', channel);
    const pub = uid('public-');
    await c.subscribe(pub);
    await marker(c, pub, app);
    assert.ok(!c.seen(isEvent('after-full')), 'refused member must not receive channel events');
    assert.ok(!a.seen((x) => x.event === 'pusher_internal:member_added' && dataOf(x).user_id === '3'));
    const users = await signedFetch(h, app, 'GET', `/apps/${app.id}/channels/${channel}/users`);
    assert.deepEqual(users.body.users.map((u) => u.id).sort(), ['1', '2']);
    // Members are users: another socket of user 1 is not a new member.
    const ok = await subscribePresence(a2, app, channel, '1', { n: 1 });
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
  });

  const badChannelData = [
    ['channel_data without user_id', JSON.stringify({ user_info: { name: 'x' } })],
    ['channel_data that is not JSON', 'not json'],
  ];
  for (const [name, channelData] of badChannelData) {
    test(`${name} (correctly signed) → pusher:error 4009`, async () => {
      const c = await rawConnect(h, APPS.main);
      const channel = uid('presence-bad-');
      const f = await c.subscribe(channel, {
        auth: channelAuth(APPS.main, c.socketId, channel, channelData), channel_data: channelData, allowError: true,
      });
      assert.equal(f.event, 'pusher:error', JSON.stringify(f));
      assert.equal(dataOf(f).code, 4009);
      assert.ok(c.isOpen);
      await c.ping();
    });
  }

  test('channel_data that differs from the signed one → pusher:error 4009', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('presence-bad-');
    const signed = JSON.stringify({ user_id: '1', user_info: { name: 'Ann' } });
    const sent = JSON.stringify({ user_id: 'admin', user_info: { name: 'Ann' } });
    const f = await c.subscribe(channel, { auth: channelAuth(APPS.main, c.socketId, channel, signed), channel_data: sent, allowError: true });
    assert.equal(f.event, 'pusher:error');
    assert.equal(dataOf(f).code, 4009);
  });

  test('presence subscription signed without channel_data → pusher:error 4009', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('presence-bad-');
    const f = await c.subscribe(channel, { auth: channelAuth(APPS.main, c.socketId, channel), allowError: true });
    assert.equal(f.event, 'pusher:error');
    assert.equal(dataOf(f).code, 4009);
  });

  test('pusher-js presence: members, me, member_added and member_removed', async () => {
    const channel = uid('presence-chat.');
    const p1 = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': '11', 'X-User-Info': '{"name":"Eleven"}' } });
    const ch1 = await pusherSubscribe(p1, channel);
    assert.equal(ch1.members.count, 1);
    assert.equal(ch1.members.me.id, '11');
    assert.deepEqual(ch1.members.me.info, { name: 'Eleven' });

    const added = nextOn(ch1, 'pusher:member_added');
    const p2 = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': '12', 'X-User-Info': '{"name":"Twelve"}' } });
    const ch2 = await pusherSubscribe(p2, channel);
    const member = await added;
    assert.equal(member.id, '12');
    assert.deepEqual(member.info, { name: 'Twelve' });
    assert.equal(ch1.members.count, 2);
    assert.equal(ch2.members.count, 2);
    assert.deepEqual(ch2.members.get('11').info, { name: 'Eleven' });

    const removed = nextOn(ch1, 'pusher:member_removed');
    p2.disconnect();
    assert.equal((await removed).id, '12');
    assert.equal(ch1.members.count, 1);
  });
});
