// Slowloris next to a real client: 2,000 connections that send a request
// line and then nothing hold no one up. Past server.max_pending_handshakes
// (500 here) the oldest unfinished connections are closed, and a pusher-js
// client connects, subscribes and receives what the pusher SDK publishes,
// as usual; the evictions are counted in /metrics.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe } from 'node:test';

import { APPS, test, useHerald, pusherClient, pusherSubscribe, nextOn, publisher, uid, waitFor } from '../lib/herald.js';

const FLOOD = 2000;
const CAP = 500;
const TOKEN = 'slowloris-e2e-metrics-token';

const h = useHerald({ server: { max_pending_handshakes: CAP, metrics_token: TOKEN } });

async function metric(name) {
  const res = await fetch(`${h.httpURL}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await res.text());
  return m ? Number(m[1]) : NaN;
}

describe('slowloris', () => {
  test(`${FLOOD} unfinished handshakes beside a pusher-js client`, { timeout: 60000 }, async () => {
    const sockets = [];
    let closedByServer = 0;
    try {
      for (let i = 0; i < FLOOD; i++) {
        const s = net.connect(h.port, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => { closedByServer++; });
        s.write(`GET /app/${APPS.main.key}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`);
        sockets.push(s);
      }
      await waitFor(() => closedByServer >= FLOOD - CAP, { timeout: 20000, what: `${FLOOD - CAP} slowloris connections closed by the server` });

      const p = await pusherClient(h, APPS.main);
      const channel = uid('calm');
      const ch = await pusherSubscribe(p, channel);
      const got = nextOn(ch, 'still-here');
      await publisher(h, APPS.main).trigger(channel, 'still-here', { ok: true });
      assert.deepEqual(await got, { ok: true });
      assert.ok(await metric('herald_handshakes_evicted_total') >= FLOOD - CAP);
      assert.ok(closedByServer <= FLOOD - CAP + 10, `only the oldest over the cap are closed (${closedByServer})`);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
