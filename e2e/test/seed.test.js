// The seed scenario: a Laravel marketplace app on the Reverb broadcaster,
// Laravel Echo in the browser, Laravel's PHP SDK publishing (here the `pusher`
// Node SDK, which signs the same way), and /broadcasting/auth authorizing.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, WAIT, test, useHerald, useAuthServer, echoClient, publisher, sdkResult, withTimeout,
} from '../lib/herald.js';

const h = useHerald();
const auth = useAuthServer(h);

const subscribed = (channel, what) => withTimeout(new Promise((resolve, reject) => {
  channel.subscribed(resolve);
  channel.error((e) => reject(new Error(`${what}: ${JSON.stringify(e)}`)));
}), WAIT, `Echo subscription to ${what}`);

const listen = (channel, event) => withTimeout(new Promise((resolve) => channel.listen(event, resolve)), WAIT, `${event} via Echo`);

describe('Laravel marketplace app', () => {
  test('orders.updated and sync.progress reach Echo listeners on company.1.marketplace.2.*', async () => {
    const echo = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '7' } });
    const orders = echo.channel('company.1.marketplace.2.orders');
    const sync = echo.channel('company.1.marketplace.2.sync');
    await Promise.all([subscribed(orders, 'orders'), subscribed(sync, 'sync')]);

    const gotOrders = listen(orders, '.orders.updated');
    const gotSync = listen(sync, '.sync.progress');

    // What Laravel's ShouldBroadcast events put on the wire.
    const ordersPayload = {
      company_id: 1,
      marketplace_account_id: 2,
      new_orders_count: 3,
      stats: { total: 120, new: 3, processing: 5, shipped: 100, cancelled: 12 },
      timestamp: '2025-01-15T10:30:00+00:00',
    };
    const syncPayload = {
      status: 'in_progress',
      message: 'Загружено 50 из 100 заказов',
      progress: 50,
      data: { processed: 50, total: 100, errors: [] },
      timestamp: '2025-01-15T10:30:01+00:00',
    };
    const sdk = publisher(h, APPS.main);
    const r1 = await sdkResult(sdk.trigger('company.1.marketplace.2.orders', 'orders.updated', ordersPayload));
    assert.equal(r1.status, 200, r1.text);
    const r2 = await sdkResult(sdk.trigger(['company.1.marketplace.2.sync'], 'sync.progress', syncPayload));
    assert.equal(r2.status, 200, r2.text);

    assert.deepEqual(await gotOrders, ordersPayload);
    assert.deepEqual(await gotSync, syncPayload);
    assert.equal(echo.connectionStatus(), 'connected');
    assert.match(echo.socketId(), /^\d+\.\d+$/);
  });

  test('Echo.private("App.Models.User.7") is authorized through /broadcasting/auth and receives a notification', async () => {
    const echo = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '7' } });
    const user = echo.private('App.Models.User.7');
    await subscribed(user, 'private-App.Models.User.7');
    const req = auth.requests.find((x) => x.form.channel_name === 'private-App.Models.User.7' && x.form.socket_id === echo.socketId());
    assert.ok(req, 'Echo asked the auth endpoint');
    assert.equal(req.status, 200);

    const notified = withTimeout(new Promise((resolve) => user.notification(resolve)), WAIT, 'notification via Echo');
    const broadcastEvent = listen(user, '.order.assigned');
    const notification = {
      id: '9c1d1b1e-8f0a-4c55-9a59-3a3f1b2c4d5e',
      type: 'App\\Notifications\\OrderAssigned',
      order_id: 1001,
      message: 'Вам назначен заказ #1001',
    };
    const sdk = publisher(h, APPS.main);
    const r = await sdkResult(sdk.trigger('private-App.Models.User.7', 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated', notification));
    assert.equal(r.status, 200, r.text);
    await sdk.trigger('private-App.Models.User.7', 'order.assigned', { order_id: 1001 });
    assert.deepEqual(await notified, notification);
    assert.deepEqual(await broadcastEvent, { order_id: 1001 });
  });

  test('a channel refused by routes/channels.php (403) surfaces as Echo .error() and no subscription', async () => {
    const echo = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '7' } });
    const ch = echo.private('forbidden.App.Models.User.8');
    const err = await withTimeout(new Promise((resolve) => ch.error(resolve)), WAIT, 'Echo .error()');
    assert.equal(err.status, 403);
    assert.equal(echo.connector.pusher.channel('private-forbidden.App.Models.User.8').subscribed, false);
  });

  test('presence via Echo.join: here, joining, leaving (Laravel-style numeric user ids)', async () => {
    const alice = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '1', 'X-Numeric-Id': '1', 'X-User-Info': '{"id":1,"name":"Alice"}' } });
    // Echo.join('chat.1') subscribes to presence-chat.1.
    const room = alice.join('chat.1');
    const here = withTimeout(new Promise((resolve) => room.here(resolve)), WAIT, 'here()');
    const joining = withTimeout(new Promise((resolve) => room.joining(resolve)), WAIT, 'joining()');
    const leaving = withTimeout(new Promise((resolve) => room.leaving(resolve)), WAIT * 2, 'leaving()');
    assert.deepEqual(await here, [{ id: 1, name: 'Alice' }]);

    const bob = await echoClient(h, APPS.main, { auth, headers: { 'X-User-Id': '2', 'X-Numeric-Id': '1', 'X-User-Info': '{"id":2,"name":"Bob"}' } });
    const bobRoom = bob.join('chat.1');
    const bobHere = await withTimeout(new Promise((resolve) => bobRoom.here(resolve)), WAIT, 'here() for bob');
    assert.deepEqual([...bobHere].sort((a, b) => a.id - b.id), [{ id: 1, name: 'Alice' }, { id: 2, name: 'Bob' }]);
    assert.deepEqual(await joining, { id: 2, name: 'Bob' });

    bob.leave('chat.1');
    assert.deepEqual(await leaving, { id: 2, name: 'Bob' });
    assert.equal(alice.connector.pusher.channel('presence-chat.1').members.count, 1);
  });
});
