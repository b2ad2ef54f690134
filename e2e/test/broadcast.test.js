// POST /broadcast (bearer token, plain JSON) and GET /test, against the
// real binary, with pusher-js listeners.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, startHerald, pusherClient, pusherSubscribe, nextOn, uid,
} from '../lib/herald.js';

const HELPDESK = {
  id: 'helpdesk-app', key: 'helpdesk-key', secret: 'helpdesk-secret',
  broadcast_token: 'helpdesk-broadcast-token-0123456789',
  limits: { max_event_payload_bytes: 200, max_channels_per_event: 3 },
};
const NEWS = {
  id: 'news-app', key: 'news-key', secret: 'news-secret',
  broadcast_token: 'news-broadcast-token-0123456789', broadcast_channel: 'news',
  history: 'off', // so its answers carry no offsets (HELPDESK keeps the default: on)
};

const h = useHerald({ apps: [HELPDESK, NEWS, APPS.main] });

/** POSTs body (an object, or raw text) to /broadcast with token (null: no Authorization). */
async function broadcast(body, { token = HELPDESK.broadcast_token, server = h, headers = {} } = {}) {
  const res = await fetch(`${server.httpURL}/broadcast`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, body: json, headers: res.headers };
}

function assertError(r, status, mention) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.deepEqual(Object.keys(r.body ?? {}), ['error'], `error body must be {"error": …}: ${r.text}`);
  assert.ok(r.body.error.includes(mention), `error ${JSON.stringify(r.body.error)} should mention ${mention}`);
}

describe('POST /broadcast', () => {
  test('reaches a pusher-js listener on the default channel, data parsed equal to message.data', async () => {
    const p = await pusherClient(h, HELPDESK);
    const ch = await pusherSubscribe(p, 'broadcast');
    const data = { id: 7, subject: 'Printer on fire', tags: ['urgent', 'hw'], assignee: null, ratio: 0.5, html: '<b>é</b>' };
    const got = nextOn(ch, 'ticket_created');
    const r = await broadcast({ message: { type: 'ticket_created', data } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.ok, true);
    assert.deepEqual(r.body.channels, ['broadcast']);
    assert.ok(Number.isInteger(r.body.offsets.broadcast) && r.body.offsets.broadcast > 0, r.text);
    assert.deepEqual(await got, data);
  });

  test('reaches listeners on a named channel and on a list of channels', async () => {
    const [one, two] = [uid('tickets-'), uid('agents-')];
    const p = await pusherClient(h, HELPDESK);
    const c1 = await pusherSubscribe(p, one);
    const c2 = await pusherSubscribe(p, two);
    let got = nextOn(c1, 'ticket_updated');
    let r = await broadcast({ message: { type: 'ticket_updated', data: { id: 1 } }, channel: one });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, [one]);
    assert.deepEqual(await got, { id: 1 });

    const both = [nextOn(c1, 'assigned'), nextOn(c2, 'assigned')];
    r = await broadcast({ message: { type: 'assigned', data: { id: 2, to: 'ana' } }, channels: [one, two] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, [one, two]);
    assert.deepEqual(Object.keys(r.body.offsets).sort(), [one, two].sort());
    assert.deepEqual(await Promise.all(both), [{ id: 2, to: 'ana' }, { id: 2, to: 'ana' }]);
  });

  test('a string data arrives as that string', async () => {
    const channel = uid('s-');
    const p = await pusherClient(h, HELPDESK);
    const ch = await pusherSubscribe(p, channel);
    const got = nextOn(ch, 'note');
    const r = await broadcast({ message: { type: 'note', data: 'hello "world"' }, channel });
    assert.equal(r.status, 200, r.text);
    assert.equal(await got, 'hello "world"');
  });

  test("the token picks the app, and the app's own default channel", async () => {
    const news = await pusherClient(h, NEWS);
    const helpdesk = await pusherClient(h, HELPDESK);
    const newsCh = await pusherSubscribe(news, 'news');
    const helpdeskNews = await pusherSubscribe(helpdesk, 'news');
    let leaked = false;
    helpdeskNews.bind('headline', () => { leaked = true; });
    const got = nextOn(newsCh, 'headline');
    const r = await broadcast({ message: { type: 'headline', data: { t: 'x' } } }, { token: NEWS.broadcast_token });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.channels, ['news']);
    assert.deepEqual(r.body.offsets, {}, 'an app without history answers no offsets');
    assert.deepEqual(await got, { t: 'x' });
    // A later event on the helpdesk's "news" proves the first never came there.
    const marker = nextOn(helpdeskNews, 'marker');
    assert.equal((await broadcast({ message: { type: 'marker', data: {} }, channel: 'news' })).status, 200);
    await marker;
    assert.equal(leaked, false, "app news's broadcast reached app helpdesk");
  });

  test('a wrong or missing token → 401, nothing delivered', async () => {
    const p = await pusherClient(h, HELPDESK);
    const ch = await pusherSubscribe(p, 'broadcast');
    let delivered = false;
    ch.bind('sneaky', () => { delivered = true; });
    const wrong = await broadcast({ message: { type: 'sneaky', data: {} } }, { token: `${HELPDESK.broadcast_token}x` });
    assertError(wrong, 401, 'invalid broadcast token');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertError(await broadcast({ message: { type: 'sneaky', data: {} } }, { token: null }), 401, 'Authorization');
    assertError(await broadcast({ message: { type: 'sneaky', data: {} } }, { token: HELPDESK.secret }), 401, 'invalid broadcast token');
    const marker = nextOn(ch, 'marker');
    assert.equal((await broadcast({ message: { type: 'marker', data: {} } })).status, 200);
    await marker;
    assert.equal(delivered, false, 'a refused broadcast was delivered');
  });

  test('bad bodies → 400/413 naming the field', async () => {
    assertError(await broadcast('{"message":'), 400, 'invalid JSON body');
    assertError(await broadcast({ type: 'x' }), 400, '"message"');
    assertError(await broadcast({ message: { data: {} } }), 400, 'message.type');
    assertError(await broadcast({ message: { type: 5 } }), 400, 'message.type');
    assertError(await broadcast({ message: { type: 'e', data: { big: 'x'.repeat(300) } } }), 413, 'message.data');
    assertError(await broadcast({ message: { type: 'e' }, channels: ['a', 'b', 'c', 'd'] }), 400, 'channels');
    assertError(await broadcast({ message: { type: 'e' }, channel: 'no spaces allowed' }), 400, 'channel');
    assertError(await broadcast({ message: { type: 'e' }, channels: ['ok', 'bad/name'] }), 400, 'channels[1]');
  });
});

describe('GET /test', () => {
  test('answers a small JSON status without secrets', async () => {
    const p = await pusherClient(h, HELPDESK);
    const res = await fetch(`${h.httpURL}/test`);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const st = JSON.parse(text);
    assert.deepEqual(Object.keys(st).sort(), ['connections', 'ok', 'uptime_s', 'version']);
    assert.equal(st.ok, true);
    assert.equal(typeof st.version, 'string');
    assert.ok(st.version.length > 0);
    assert.ok(Number.isInteger(st.connections) && st.connections >= 1, text);
    assert.ok(Number.isInteger(st.uptime_s) && st.uptime_s >= 0, text);
    for (const secret of [HELPDESK.secret, HELPDESK.broadcast_token, HELPDESK.key]) assert.ok(!text.includes(secret));
    p.disconnect();
  });
});

test('with no broadcast token configured, /broadcast is 404 saying how to enable it', async () => {
  const other = await startHerald({ apps: [APPS.main] });
  try {
    const r = await broadcast({ message: { type: 'e', data: {} } }, { server: other, token: 'anything-at-all-0123456789' });
    assertError(r, 404, 'broadcast_token');
    assert.ok(r.body.error.includes('HERALD_BROADCAST_TOKEN'));
  } finally {
    await other.stop();
  }
});
