// WebSocket hardening (issue #8), on both transports: a text message that
// is not UTF-8 fails only its sender's connection (1007) instead of being
// relayed to every member, and a client's close gets its echo (a clean
// close, not 1006).

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import {
  APPS, test, startHerald, startAuthServer, rawConnect, subscribePrivate, publisher,
  pusherClient, pusherSubscribe, nextOn, isEvent, uid,
} from '../lib/herald.js';

for (const transport of ['epoll', 'goroutine']) {
  describe(`websocket hardening (${transport} transport)`, () => {
    const h = {};
    let server;
    let auth;
    before(async () => {
      server = await startHerald({ server: { transport } });
      Object.assign(h, server);
      auth = await startAuthServer(h);
    }, { timeout: 20000 });
    after(async () => {
      if (auth) await auth.close();
      if (server) await server.stop();
    }, { timeout: 20000 });

    test('a client event that is not UTF-8 closes its sender with 1007; the other members stay and get later events', async () => {
      const channel = uid('private-utf8-');
      const sender = await rawConnect(h, APPS.main);
      await subscribePrivate(sender, APPS.main, channel);
      const raw = await rawConnect(h, APPS.main);
      await subscribePrivate(raw, APPS.main, channel);
      const p = await pusherClient(h, APPS.main, { auth });
      const ch = await pusherSubscribe(p, channel);
      let relayed = 0;
      ch.bind('client-bad', () => { relayed += 1; });

      // A text frame (binary: false) whose bytes are not UTF-8.
      const bad = Buffer.concat([
        Buffer.from(`{"event":"client-bad","channel":"${channel}","data":"`),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from('"}'),
      ]);
      sender.ws.send(bad, { binary: false });
      const closed = await sender.waitClose();
      assert.equal(closed.code, 1007, `sender closed with ${JSON.stringify(closed)}`);

      const later = publisher(h, APPS.main).trigger(channel, 'later', { n: 1 });
      const [got] = await Promise.all([nextOn(ch, 'later'), raw.nextEvent('later', channel), later]);
      assert.deepEqual(got, { n: 1 });
      assert.equal(p.connection.state, 'connected');
      assert.ok(raw.isOpen, 'the raw member must stay connected');
      assert.ok(!raw.seen(isEvent('client-bad')), 'the invalid message must not be relayed');
      assert.equal(relayed, 0, 'pusher-js must not get the invalid message');
      assert.ok(!p.frames.some((m) => m.event === 'client-bad'));
    });

    test('a client closing with 1000 gets the echo: a clean close, not 1006', async () => {
      const c = await rawConnect(h, APPS.main);
      c.ws.close(1000, 'bye');
      const closed = await c.waitClose();
      assert.equal(closed.code, 1000, `closed with ${JSON.stringify(closed)}`);
    });

    test('a client closing with an application code gets that code back', async () => {
      const c = await rawConnect(h, APPS.main);
      c.ws.close(4321, 'app says bye');
      const closed = await c.waitClose();
      assert.equal(closed.code, 4321, `closed with ${JSON.stringify(closed)}`);
    });
  });
}
