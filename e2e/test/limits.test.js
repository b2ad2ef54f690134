// Configured limits at their boundaries (app "limits" and the defaults).
// Connection-level limits (max_connections, max_message_bytes) are in
// connection.test.js; batch/channel-count/payload limits of the HTTP API in
// http-api.test.js; the client event rate in client-events.test.js.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, rawConnect, dataOf, isEvent, isError,
  subscribePrivate, subscribePresence, signin, signinAuth, publisher, sdkResult, signedFetch, uid,
} from '../lib/herald.js';

const h = useHerald();
const app = APPS.limits;

function assertHTTPError(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.deepEqual(Object.keys(r.body ?? {}), ['error'], `error body must be {"error": …}: ${r.text}`);
}

describe('limits', () => {
  test('client event data over max_event_payload_bytes is refused and not delivered', async () => {
    const a = await rawConnect(h, app);
    const b = await rawConnect(h, app);
    const channel = uid('private-lim-');
    await subscribePrivate(a, app, channel);
    await subscribePrivate(b, app, channel);
    a.trigger(channel, 'client-big', 'x'.repeat(500)); // 500 B of data, well under max_message_bytes
    const err = await a.nextError();
    assert.equal(typeof dataOf(err).code, 'number');
    assert.ok(a.isOpen);
    const name = uid('marker-');
    await publisher(h, app).trigger(channel, name, {});
    await b.nextEvent(name, channel);
    assert.ok(!b.seen(isEvent('client-big')));
  });

  test('HTTP event name over 200 characters → 400', async () => {
    const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, {
      body: { name: 'e'.repeat(201), channels: ['c'], data: '{}' },
    });
    assertHTTPError(r, 400);
    const ok = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, {
      body: { name: 'e'.repeat(200), channels: ['c'], data: '{}' },
    });
    assert.equal(ok.status, 200, ok.text);
  });

  test('HTTP event data exactly at max_event_payload_bytes is accepted, one byte over is 413 (batch too)', async () => {
    const sdk = publisher(h, app);
    const ok = await sdkResult(sdk.triggerBatch([{ channel: 'lim', name: 'e', data: 'x'.repeat(100) }]));
    assert.equal(ok.status, 200, ok.text);
    const big = await sdkResult(sdk.triggerBatch([{ channel: 'lim', name: 'e', data: 'x'.repeat(101) }]));
    assertHTTPError(big, 413);
  });

  test('presence user_id longer than 128 characters is refused', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('presence-lim-');
    const f = await subscribePresence(c, APPS.main, channel, 'u'.repeat(129), {}, { allowError: true });
    assert.equal(f.event, 'pusher:error', JSON.stringify(f));
    assert.ok(c.isOpen);
    const ok = await subscribePresence(c, APPS.main, channel, 'u'.repeat(128), {});
    assert.equal(ok.event, 'pusher_internal:subscription_succeeded');
  });

  test('presence user_info over 1 KB is refused', async () => {
    const c = await rawConnect(h, APPS.main);
    const channel = uid('presence-lim-');
    const f = await subscribePresence(c, APPS.main, channel, '1', { blob: 'x'.repeat(1100) }, { allowError: true });
    assert.equal(f.event, 'pusher:error', JSON.stringify(f));
    assert.ok(!c.seen(isEvent('pusher_internal:subscription_succeeded', channel)));
    assert.ok(c.isOpen);
  });

  test('a watchlist of exactly max_watchlist users is accepted', async () => {
    const c = await rawConnect(h, app);
    const f = await signin(c, app, { id: uid('w'), watchlist: ['a', 'b'] });
    assert.equal(f.event, 'pusher:signin_success');
    assert.ok(!c.seen(isError()));
  });

  test('a watchlist over max_watchlist (default app: 100) → 4302', async () => {
    const c = await rawConnect(h, APPS.main);
    const watchlist = Array.from({ length: 101 }, (_, i) => `w${i}`);
    c.send({ event: 'pusher:signin', data: signinAuth(APPS.main, c.socketId, { id: uid('w'), watchlist }) });
    const err = await c.nextError();
    assert.equal(dataOf(err).code, 4302);
  });

  test('exactly max_presence_members users fit', async () => {
    const channel = uid('presence-fit-');
    const a = await rawConnect(h, app);
    const b = await rawConnect(h, app);
    await subscribePresence(a, app, channel, '1', {});
    const f = await subscribePresence(b, app, channel, '2', {});
    assert.equal(dataOf(f).presence.count, 2);
  });

  test('exactly max_channels_per_event channels via the "channels" field; "channel" counts as one', async () => {
    const ok = await signedFetch(h, app, 'POST', `/apps/${app.id}/events`, { body: { name: 'e', channels: ['a', 'b', 'c'], data: '{}' } });
    assert.equal(ok.status, 200, ok.text);
    const single = await signedFetch(h, app, 'POST', `/apps/${app.id}/events`, { body: { name: 'e', channel: 'a', data: '{}' } });
    assert.equal(single.status, 200, single.text);
  });
});
