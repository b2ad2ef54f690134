// User sign-in, server-to-user events, terminate connections, watchlist,
// authorized-connections timeout.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, WAIT, test, useHerald, useAuthServer, rawConnect, dataOf, isEvent, isError,
  signin, signinAuth, subscribePrivate, publisher, sdkResult,
  pusherClient, nextOn, withTimeout, uid,
} from '../lib/herald.js';

const h = useHerald();
const auth = useAuthServer(h);

/** Signs a pusher-js client in and waits for pusher:signin_success. */
async function pusherSignin(p) {
  const success = withTimeout(new Promise((resolve) => {
    const cb = (m) => { if (m.event === 'pusher:signin_success') { p.connection.unbind('message', cb); resolve(m); } };
    p.connection.bind('message', cb);
  }), WAIT, 'pusher:signin_success at pusher-js');
  p.signin();
  const m = await success;
  await p.user.signinDonePromise;
  return m;
}

describe('sign-in', () => {
  test('raw pusher:signin → exact pusher:signin_success echoing user_data', async () => {
    const c = await rawConnect(h, APPS.main);
    const userData = { id: uid('u'), user_info: { name: 'Ann' } };
    const f = await signin(c, APPS.main, userData);
    assert.deepEqual(Object.keys(f).sort(), ['data', 'event']);
    assert.equal(f.event, 'pusher:signin_success');
    assert.equal(typeof f.data, 'string');
    assert.deepEqual(JSON.parse(f.data), { user_data: JSON.stringify(userData) });
  });

  test('pusher-js userAuthentication + signin() → signed in', async () => {
    const id = uid('user');
    const p = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': id } });
    const m = await pusherSignin(p);
    assert.equal(JSON.parse(m.data.user_data).id, id);
    assert.equal(p.user.user_data.id, id);
    const req = auth.requests.find((r) => r.path === '/broadcasting/user-auth' && r.headers['x-user-id'] === id);
    assert.equal(req.form.socket_id, p.connection.socket_id);
  });

  test('sendToUser reaches every socket of that user and no one else', async () => {
    const id = uid('user');
    const other = uid('user');
    const p1 = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': id } });
    const p2 = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': id } });
    const p3 = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': other } });
    await Promise.all([pusherSignin(p1), pusherSignin(p2), pusherSignin(p3)]);
    const got1 = nextOn(p1.user, 'invoice.paid');
    const got2 = nextOn(p2.user, 'invoice.paid');
    const leaked = [];
    p3.user.bind('invoice.paid', (d) => leaked.push(d));
    const r = await sdkResult(publisher(h, APPS.main).sendToUser(id, 'invoice.paid', { invoice: 17, amount: '12.50' }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await got1, { invoice: 17, amount: '12.50' });
    assert.deepEqual(await got2, { invoice: 17, amount: '12.50' });
    // Marker to the other user: it arrives, the first event did not.
    const marker = nextOn(p3.user, 'marker');
    await publisher(h, APPS.main).sendToUser(other, 'marker', {});
    await marker;
    assert.deepEqual(leaked, []);
  });

  test('server-to-user frame on the wire (raw client)', async () => {
    const c = await rawConnect(h, APPS.main);
    const id = uid('user');
    await signin(c, APPS.main, { id });
    await publisher(h, APPS.main).sendToUser(id, 'hello', { a: 1 });
    const f = await c.nextEvent('hello');
    assert.deepEqual(f, { event: 'hello', channel: `#server-to-user-${id}`, data: '{"a":1}' });
  });

  test('a bad sign-in signature → pusher:error 4009, then close 4009', async () => {
    const c = await rawConnect(h, APPS.main);
    const data = signinAuth({ ...APPS.main, secret: 'wrong' }, c.socketId, { id: 'mallory' });
    c.send({ event: 'pusher:signin', data });
    const err = await c.nextError();
    assert.equal(dataOf(err).code, 4009);
    const closed = await c.waitClose();
    assert.equal(closed.code, 4009);
    assert.ok(!c.seen(isEvent('pusher:signin_success')));
  });

  test('sign-in user_data without id → refused with 4009', async () => {
    const c = await rawConnect(h, APPS.main);
    c.send({ event: 'pusher:signin', data: signinAuth(APPS.main, c.socketId, { user_info: { name: 'x' } }) });
    const err = await c.nextError();
    assert.equal(dataOf(err).code, 4009);
    assert.ok(!c.seen(isEvent('pusher:signin_success')));
  });

  test('pusher-js with a bad signature from the endpoint is refused with 4009', async () => {
    const p = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': 'mallory', 'X-Bad-Signature': '1' } });
    const closed = withTimeout(new Promise((resolve) => {
      p.connection.bind('message', (m) => { if (m.event === 'pusher:error') resolve(m); });
    }), WAIT, 'pusher:error at pusher-js');
    p.signin();
    const err = await closed;
    assert.equal(err.data.code, 4009);
    assert.equal(p.user.user_data, null);
  });

  test('terminateUserConnections closes that user\'s sockets with 4009 and no others', async () => {
    const id = uid('user');
    const otherId = uid('user');
    const a1 = await rawConnect(h, APPS.main);
    const a2 = await rawConnect(h, APPS.main);
    const b = await rawConnect(h, APPS.main);
    const anon = await rawConnect(h, APPS.main);
    await signin(a1, APPS.main, { id });
    await signin(a2, APPS.main, { id });
    await signin(b, APPS.main, { id: otherId });
    const r = await sdkResult(publisher(h, APPS.main).terminateUserConnections(id));
    assert.equal(r.status, 200, r.text);
    const [c1, c2] = await Promise.all([a1.waitClose(), a2.waitClose()]);
    assert.equal(c1.code, 4009);
    assert.equal(c2.code, 4009);
    // The others stay connected and working.
    await publisher(h, APPS.main).sendToUser(otherId, 'still-here', {});
    await b.nextEvent('still-here');
    await anon.ping();
    assert.ok(b.isOpen && anon.isOpen);
  });

  test('terminate_connections for a user with no sockets answers 200', async () => {
    const r = await sdkResult(publisher(h, APPS.main).terminateUserConnections(uid('nobody')));
    assert.equal(r.status, 200, r.text);
  });
});

describe('watchlist', () => {
  test('raw: the watcher gets online when a watched user signs in and offline when they leave', async () => {
    const watched = uid('u');
    const watcher = await rawConnect(h, APPS.main);
    await signin(watcher, APPS.main, { id: uid('w'), watchlist: [watched] });
    const other = await rawConnect(h, APPS.main);
    await signin(other, APPS.main, { id: uid('unwatched') });

    const u = await rawConnect(h, APPS.main);
    await signin(u, APPS.main, { id: watched });
    const online = await watcher.nextEvent('pusher_internal:watchlist_events');
    assert.equal(typeof online.data, 'string');
    assert.deepEqual(JSON.parse(online.data), { events: [{ name: 'online', user_ids: [watched] }] });

    await u.close();
    const offline = await watcher.nextEvent('pusher_internal:watchlist_events');
    assert.deepEqual(JSON.parse(offline.data), { events: [{ name: 'offline', user_ids: [watched] }] });
    // Unwatched users produce nothing.
    assert.equal(watcher.frames.filter(isEvent('pusher_internal:watchlist_events')).length, 2);
  });

  test('pusher-js: user.watchlist.bind("online"/"offline")', async () => {
    const watched = uid('u');
    const watcher = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': uid('w'), 'X-Watchlist': watched } });
    await pusherSignin(watcher);
    const online = nextOn(watcher.user.watchlist, 'online');
    const u = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': watched } });
    await pusherSignin(u);
    assert.deepEqual(await online, { name: 'online', user_ids: [watched] });
    const offline = nextOn(watcher.user.watchlist, 'offline');
    u.disconnect();
    assert.deepEqual(await offline, { name: 'offline', user_ids: [watched] });
  });

  test('a watchlist longer than max_watchlist → pusher:error 4302, socket stays open', async () => {
    const c = await rawConnect(h, APPS.limits);
    c.send({ event: 'pusher:signin', data: signinAuth(APPS.limits, c.socketId, { id: uid('w'), watchlist: ['a', 'b', 'c'] }) });
    const err = await c.nextError();
    assert.equal(dataOf(err).code, 4302);
    await c.ping();
    assert.ok(c.isOpen);
  });
});

describe('authorized connections timeout', () => {
  test('sockets that neither sign in nor join a private/presence channel are closed with 4009', async () => {
    const app = APPS.authtimeout;
    // The authorized sockets connect first, so their deadline passes first.
    const priv = await rawConnect(h, app);
    await subscribePrivate(priv, app, uid('private-'));
    const signed = await rawConnect(h, app);
    await signin(signed, app, { id: uid('u') });
    const publicOnly = await rawConnect(h, app);
    await publicOnly.subscribe(uid('public-'));
    const idle = await rawConnect(h, app);

    const [idleClosed, publicClosed] = await Promise.all([idle.waitClose(5000), publicOnly.waitClose(5000)]);
    assert.equal(idleClosed.code, 4009, `idle: ${JSON.stringify(idleClosed)}`);
    assert.equal(publicClosed.code, 4009, `public-only: ${JSON.stringify(publicClosed)}`);
    const err = idle.frames.find(isError());
    assert.ok(err, 'a pusher:error precedes the close');
    assert.equal(dataOf(err).code, 4009);

    // Past their deadline too, and still working.
    await priv.ping();
    await signed.ping();
    assert.ok(priv.isOpen && signed.isOpen);
  });

  test('apps without the timeout keep idle sockets', async () => {
    const idle = await rawConnect(h, APPS.main);
    const probe = await rawConnect(h, APPS.authtimeout);
    await probe.waitClose(5000);
    await idle.ping();
    assert.ok(idle.isOpen);
  });
});
