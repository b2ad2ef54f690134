// Hardening of the session (issue #8): channel limits per connection and
// per app, the inbound message budget, pusher_internal:subscription_count,
// and refused authorizations logged at warn.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  test, useHerald, rawConnect, dataOf, isEvent, isError, channelAuth, pusherClient, pusherSubscribe,
  withTimeout, waitFor, uid, WAIT,
} from '../lib/herald.js';

const APPS = {
  limited: {
    id: 'hs-limited', key: 'hs-limited-key', secret: 'hs-limited-secret',
    limits: { max_channels_per_connection: 3 },
  },
  applimit: {
    id: 'hs-applimit', key: 'hs-applimit-key', secret: 'hs-applimit-secret',
    limits: { max_channels: 5 },
  },
  flood: { id: 'hs-flood', key: 'hs-flood-key', secret: 'hs-flood-secret' }, // default budget: 100/s, bursts of 200
  counted: { id: 'hs-counted', key: 'hs-counted-key', secret: 'hs-counted-secret', subscription_count: true },
  plain: { id: 'hs-plain', key: 'hs-plain-key', secret: 'hs-plain-secret' },
};

const h = useHerald({ apps: Object.values(APPS) });

/** Resolves with the data of the next pusher:subscription_count equal to n. */
function countReaches(channel, n, timeout = WAIT) {
  return withTimeout(new Promise((resolve) => {
    const cb = (data) => {
      if (data.subscription_count === n) { channel.unbind('pusher:subscription_count', cb); resolve(data); }
    };
    channel.bind('pusher:subscription_count', cb);
  }), timeout, `subscription_count ${n} on ${channel.name}`);
}

describe('hardening: session', () => {
  test('a connection over max_channels_per_connection gets pusher:error 4303 and stays open', async () => {
    const app = APPS.limited;
    const c = await rawConnect(h, app);
    const names = [uid('a'), uid('b'), uid('c')];
    for (const n of names) await c.subscribe(n);
    const extra = uid('d');
    const refused = await c.subscribe(extra, { allowError: true });
    assert.equal(refused.event, 'pusher:error');
    assert.equal(dataOf(refused).code, 4303);
    await c.ping(); // still open
    assert.equal((await c.subscribe(names[0])).event, 'pusher_internal:subscription_succeeded', 're-subscribing is not counted twice');
    c.unsubscribe(names[0]);
    assert.equal((await c.subscribe(extra)).event, 'pusher_internal:subscription_succeeded', 'unsubscribing frees the slot');
  });

  test('an app over max_channels refuses new channels, not existing ones', async () => {
    const app = APPS.applimit;
    const a = await rawConnect(h, app);
    const b = await rawConnect(h, app);
    const names = [uid('x'), uid('y'), uid('z')];
    for (const n of names) await a.subscribe(n);
    await b.subscribe(uid('v'));
    await b.subscribe(uid('w')); // 5 channels: the app's limit
    const refused = await b.subscribe(uid('over'), { allowError: true });
    assert.equal(dataOf(refused).code, 4303, JSON.stringify(refused));
    const existing = await b.subscribe(names[0]);
    assert.equal(existing.event, 'pusher_internal:subscription_succeeded');
  });

  test('a flood of pings is answered with 4301 and closed with 4100', async () => {
    const c = await rawConnect(h, APPS.flood);
    for (let i = 0; i < 400; i += 1) c.send({ event: 'pusher:ping', data: {} });
    const err = await c.nextError(4301);
    assert.match(dataOf(err).message, /too many messages/);
    const closed = await c.waitClose();
    assert.equal(closed.code, 4100);
    const pongs = c.frames.filter(isEvent('pusher:pong')).length;
    assert.ok(pongs >= 200 && pongs < 400, `${pongs} pongs`);
    // another connection of the app is unaffected
    const other = await rawConnect(h, APPS.flood);
    await other.ping();
  });

  test('pusher-js sees pusher:subscription_count go 1 → 2 → 1', async () => {
    const name = uid('count-');
    const p1 = await pusherClient(h, APPS.counted);
    const ch1 = p1.subscribe(name);
    await countReaches(ch1, 1);
    assert.equal(ch1.subscriptionCount, 1);
    const p2 = await pusherClient(h, APPS.counted);
    const two = countReaches(ch1, 2);
    const ch2 = await pusherSubscribe(p2, name);
    await two;
    const one = countReaches(ch1, 1);
    p2.disconnect();
    await one;
    assert.equal(ch1.subscriptionCount, 1);
  });

  test('no subscription_count without the app setting, nor on presence channels', async () => {
    const name = uid('plain-');
    const c = await rawConnect(h, APPS.plain);
    await c.subscribe(name);
    const d = await rawConnect(h, APPS.counted);
    const presence = uid('presence-hs-');
    const cd = JSON.stringify({ user_id: 'u1' });
    await d.subscribe(presence, { auth: channelAuth(APPS.counted, d.socketId, presence, cd), channel_data: cd });
    const pub = uid('pub-');
    await d.subscribe(pub);
    await d.nextEvent('pusher_internal:subscription_count', pub, 3000); // the counted app's flush has run
    const e = await rawConnect(h, APPS.plain);
    await e.subscribe(name);
    await e.ping();
    await c.ping();
    assert.ok(!c.seen(isEvent('pusher_internal:subscription_count')), 'app without subscription_count sent a count');
    assert.ok(!d.seen(isEvent('pusher_internal:subscription_count', presence)), 'presence channel got a count');
  });

  test('a refused private subscription is logged at warn without the signature', async () => {
    const c = await rawConnect(h, APPS.plain);
    const channel = uid('private-hs-');
    const bad = `${APPS.plain.key}:${'ab'.repeat(32)}`;
    const f = await c.subscribe(channel, { auth: bad, allowError: true });
    assert.ok(isError()(f));
    const line = await waitFor(() => h.logText().split('\n').find((l) => l.includes('subscription refused') && l.includes(channel)),
      { what: 'the warn line' });
    assert.match(line, /WARN|"level":"warn"|level=warn/i);
    assert.match(line, /bad signature/);
    assert.ok(line.includes(c.socketId), line);
    assert.ok(!line.includes('ab'.repeat(32)) && !line.includes(APPS.plain.secret), line);
  });
});
