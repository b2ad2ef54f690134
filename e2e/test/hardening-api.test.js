// Hardening of the HTTP API: read deadlines, no body read before the
// signature, unknown apps answered as a bad signature, the refusal log,
// both signed path forms, and a shutdown that a stalled request cannot spoil.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, startHerald, publisher, sdkResult, signedFetch, hmac, uid, waitFor, withTimeout,
} from '../lib/herald.js';

const h = useHerald();

/** The query string of a signed request, signed over signPath. */
function signedQuery(app, method, signPath, text) {
  const q = {
    auth_key: app.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
  };
  if (text) q.body_md5 = crypto.createHash('md5').update(text).digest('hex');
  const sorted = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  return `${sorted}&auth_signature=${hmac(app.secret, `${method}\n${signPath}\n${sorted}`)}`;
}

/**
 * Opens a socket to server, writes a request head and collects what comes
 * back. `received` resolves with everything once the server closes.
 */
function rawHTTP(server, head) {
  const sock = net.connect(server.port, server.host);
  let text = '';
  const received = new Promise((resolve, reject) => {
    sock.on('data', (b) => { text += b.toString(); });
    sock.on('close', () => resolve(text));
    sock.on('error', (err) => (err.code === 'ECONNRESET' ? resolve(text) : reject(err)));
  });
  sock.write(head);
  return { sock, received, text: () => text };
}

describe('signed path forms', () => {
  test('the SDK signs the decoded path: accepted for a user id needing encoding', async () => {
    const r = await sdkResult(publisher(h, APPS.main).terminateUserConnections(`a b ${uid('u')}`));
    assert.equal(r.status, 200, r.text);
  });

  test('a path signed as sent, percent-encoded, is accepted', async () => {
    const r = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/users/a%20b/terminate_connections`, { body: {} });
    assert.equal(r.status, 200, r.text);
  });
});

describe('unknown apps', () => {
  test('answered exactly like a wrong signature (401), logged with the real reason', async () => {
    const body = { name: 'e', channel: 'c', data: '{}' };
    const unknown = await signedFetch(h, APPS.main, 'POST', '/apps/no-such-app/events', { body });
    assert.equal(unknown.status, 401, unknown.text);
    // The same request to a real app, with a wrong secret, reads the same
    // but for the path it quotes.
    const wrong = await signedFetch(h, APPS.main, 'POST', `/apps/${APPS.main.id}/events`, { body, secret: 'wrong' });
    assert.equal(wrong.status, 401, wrong.text);
    const shape = (s) => s.replace(/\/apps\/[^\\]*\/events/, '/apps/ID/events').replace(/[0-9a-f]{64}|auth_timestamp=\d+/g, 'X');
    assert.equal(shape(unknown.body.error), shape(wrong.body.error));
    await waitFor(() => /level=WARN msg="api request refused" reason="unknown app" app=no-such-app/.test(h.logText()),
      { what: 'a warn line for the unknown app' });
  });
});

describe('request bodies', () => {
  test('an unsigned POST is refused before its (never sent) body', async () => {
    const c = rawHTTP(h, `POST /apps/${APPS.main.id}/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n`);
    const text = await withTimeout(c.received, 4000, 'the answer and the close');
    assert.match(text, /^HTTP\/1\.1 401 /);
    assert.match(text, /\r\nConnection: close\r\n/i);
  });

  test('a trickling body is cut off at server.request_timeout with 408', async () => {
    const s = await startHerald({ server: { request_timeout: '300ms' } });
    try {
      const text = '{"name":"e","channel":"c","data":"' + 'x'.repeat(500) + '"}';
      const p = `/apps/${APPS.main.id}/events`;
      const c = rawHTTP(s, `POST ${p}?${signedQuery(APPS.main, 'POST', p, text)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${text.length}\r\n\r\n`);
      let i = 0;
      const drip = setInterval(() => { if (i < text.length && !c.sock.destroyed) c.sock.write(text[i++]); }, 20);
      try {
        const answer = await withTimeout(c.received, 4000, 'the 408 and the close');
        assert.match(answer, /^HTTP\/1\.1 408 /);
        assert.ok(i < text.length, 'the body must not have been complete');
      } finally {
        clearInterval(drip);
      }
    } finally {
      await s.stop();
    }
  });

  test('SIGTERM with a request stalled mid-body exits 0 within the shutdown timeout', async () => {
    const s = await startHerald({ server: { shutdown_timeout: '300ms' } });
    const text = '{"name":"e","channel":"c","data":"d"}';
    const p = `/apps/${APPS.main.id}/events`;
    const c = rawHTTP(s, `POST ${p}?${signedQuery(APPS.main, 'POST', p, text)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${text.length}\r\nExpect: 100-continue\r\n\r\n`);
    await waitFor(() => c.text().startsWith('HTTP/1.1 100'), { what: '100 Continue (the handler is reading the body)' });
    const t0 = Date.now();
    s.terminate();
    const { code } = await withTimeout(s.exited, 4000, 'exit after SIGTERM');
    assert.equal(code, 0, s.logText());
    assert.ok(Date.now() - t0 < 3000, `exit took ${Date.now() - t0} ms`);
    await withTimeout(c.received, 4000, 'the stalled connection closed');
    await s.stop();
  });
});
