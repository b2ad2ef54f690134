// A TCP proxy to Herald that a test controls, as a network would behave:
// cut() destroys every connection through it (both sides: a drop, not a
// close); while held, new connections wait, their bytes buffered, until
// release(); heads records the first request head of each connection.

import net from 'node:net';

import { track } from './herald.js';

/** Starts a proxy to 127.0.0.1:port; closed when the test ends. */
export async function tcpProxy(port) {
  const sockets = new Set();
  const heads = [];
  const waiting = [];
  let held = false;
  const pipe = (client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    let head = '';
    const sniff = (d) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) { heads.push(head.slice(0, end)); client.off('data', sniff); }
    };
    client.on('data', sniff);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) { s.on('error', drop); s.on('close', drop); }
  };
  const server = net.createServer((client) => {
    if (!held) return pipe(client);
    client.on('error', () => {});
    waiting.push(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const p = {
    port: server.address().port,
    httpURL: `http://127.0.0.1:${server.address().port}`,
    heads,
    /** Connections waiting for release(). */
    get waiting() { return waiting.length; },
    /** Destroys every open connection; returns how many sockets (both sides) it destroyed. */
    cut() { const n = sockets.size; for (const s of [...sockets]) s.destroy(); return n; },
    hold() { held = true; },
    release() { held = false; for (const c of waiting.splice(0)) if (!c.destroyed) pipe(c); },
    close: () => new Promise((resolve) => {
      p.cut();
      for (const c of waiting.splice(0)) c.destroy();
      server.close(() => resolve());
    }),
  };
  return track(p);
}
