// HTTP reading of channel history: polling, long-polling (wait=), Server-Sent
// Events (Accept: text/event-stream, with the `eventsource` npm package and a
// raw node:http reader), reader sessions for private and presence channels,
// CORS, errors, max_readers and shutdown — and pusher-js unaffected.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { EventSource } from 'eventsource';
import {
  APPS, test, useHerald, useAuthServer, startHerald, publisher, sdkResult, signedFetch,
  rawConnect, subscribePresence, channelAuth, pusherClient, pusherSubscribe,
  feedURL, httpRequest, readerSession, SSEReader,
  uid, track, withTimeout, waitFor, WAIT,
} from '../lib/herald.js';
import { tcpProxy } from '../lib/proxy.js';

// History kept deep enough that a reader never falls out of it here (the
// default max_events is 100 per channel; the speed tests publish 200).
const MAIN = { ...APPS.main, history: { channels: ['*'], max_events: 1000 } };
const OFF = { ...APPS.all, history: 'off' };
const SOME = { ...APPS.none, history: { channels: ['feed-*'] } };
const ORIGIN = APPS.origin; // allowed_origins: good.example.com, *.trusted.test
const h = useHerald({ apps: [MAIN, OFF, SOME, ORIGIN, APPS.disabled] });
const auth = useAuthServer(h); // signs with APPS.main: same key and secret as MAIN

// ---------------------------------------------------------------------------
// Helpers

/** Publishes through the `pusher` Node SDK (as Laravel does) and asserts 200. */
async function trigger(channel, event, data, app = MAIN) {
  const r = await sdkResult(publisher(h, app).trigger(channel, event, data));
  assert.equal(r.status, 200, r.text);
}

/** GET …/events with fetch: {status, headers, text, body}. */
async function poll(channel, params = {}, { app = MAIN, signal, headers, server = h } = {}) {
  const res = await fetch(feedURL(server, app.key, channel, params), { signal, headers });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = undefined; }
  return { status: res.status, headers: res.headers, text, body };
}

/** A request whose answer is awaited later: `sent` once the request is written. */
function startPoll(url) {
  let sentResolve;
  const sent = new Promise((r) => { sentResolve = r; });
  const started = Date.now();
  let settled = false;
  const answer = httpRequest(url, { onSent: sentResolve, timeout: 15000 }).then((r) => {
    settled = true;
    return { ...r, ms: Date.now() - started };
  });
  return { sent, answer, get settled() { return settled; } };
}

const posOf = (b) => `${b.epoch}:${b.offset}`;
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Resolves when pred() holds, re-checked at every poke(). */
function condition() {
  const waiters = [];
  return {
    poke() {
      for (const w of [...waiters]) if (w.pred()) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    },
    until(pred, what, timeout = WAIT) {
      if (pred()) return Promise.resolve();
      return withTimeout(new Promise((resolve) => waiters.push({ pred, resolve })), timeout, what);
    },
  };
}

/** An EventSource closed when the test ends. */
function eventSource(url, init) {
  const es = new EventSource(url, init);
  track({ close: () => es.close() });
  return es;
}

/** Records `type` events of an EventSource as {id, type, data}. */
function record(es, type, cond, list = []) {
  es.addEventListener(type, (e) => {
    list.push({ id: e.lastEventId, type: e.type, data: e.data });
    cond.poke();
  });
  return list;
}

/** Asks the Laravel-like endpoint (pusher SDK authorizeChannel) to sign. */
async function laravelAuth(socketId, channel, headers = {}) {
  const res = await fetch(auth.channelEndpoint('main'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ socket_id: socketId, channel_name: channel }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------

describe('feed: long-polling', () => {
  test('long-poll: a held wait=10 request is answered by an SDK trigger with exactly that event; wait=1 answers [] after a second', async () => {
    const channel = uid('feed-');
    // Without since: the starting point, at once (wait ignored).
    const start = await poll(channel, { wait: 10 });
    assert.equal(start.status, 200, start.text);
    assert.deepEqual(start.body, { epoch: '', offset: 0, events: [] }, 'a channel never published to: the empty position');
    assert.equal(start.headers.get('content-type'), 'application/json');
    assert.equal(start.headers.get('cache-control'), 'no-store');

    // From the empty position ":0", held until the first event.
    const held = startPoll(feedURL(h, MAIN.key, channel, { since: posOf(start.body), wait: 10 }));
    await held.sent;
    assert.equal(held.settled, false, 'nothing to answer yet');
    const data = JSON.stringify({ id: 1, total: '9.99', note: 'héllo "quoted" ✓' });
    const t0 = Date.now();
    await trigger(channel, 'order.created', { id: 1, total: '9.99', note: 'héllo "quoted" ✓' });
    const r1 = await held.answer;
    assert.ok(Date.now() - t0 < 3000, `answered ${Date.now() - t0} ms after the trigger`);
    assert.equal(r1.status, 200, r1.text);
    const E = r1.body.epoch;
    assert.match(E, /^[A-Za-z0-9_.-]{1,64}$/);
    assert.deepEqual(r1.body, { epoch: E, offset: 1, events: [{ event: 'order.created', channel, data, epoch: E, offset: 1 }] });
    // The frame is the WebSocket frame, field order included.
    assert.equal(r1.text, `{"epoch":"${E}","offset":1,"events":[{"event":"order.created","channel":"${channel}","data":${JSON.stringify(data)},"epoch":"${E}","offset":1}]}\n`);

    // From E:1, held again, answered with only the next event.
    const held2 = startPoll(feedURL(h, MAIN.key, channel, { since: `${E}:1`, wait: 10 }));
    await held2.sent;
    await trigger(channel, 'order.shipped', 'plain text');
    const r2 = await held2.answer;
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(r2.body, { epoch: E, offset: 2, events: [{ event: 'order.shipped', channel, data: 'plain text', epoch: E, offset: 2 }] });
    assert.ok(r2.ms < 9000, `answered after ${r2.ms} ms, well before wait=10`);

    // Nothing new: wait=1 holds about a second, then 200 with no events.
    const t1 = Date.now();
    const r3 = await poll(channel, { since: `${E}:2`, wait: 1 });
    const waited = Date.now() - t1;
    assert.equal(r3.status, 200, r3.text);
    assert.deepEqual(r3.body, { epoch: E, offset: 2, events: [] });
    assert.ok(waited >= 900, `wait=1 answered after ${waited} ms: it did not wait`);

    // A plain poll (no wait) behind the channel gets everything after since.
    const all = await poll(channel, { since: ':0' });
    assert.deepEqual(all.body.events.map((f) => f.offset), [1, 2]);
    const now = await poll(channel);
    assert.deepEqual(now.body, { epoch: E, offset: 2, events: [] });
  });

  test('long-poll loop: 200 events published at speed, in-flight requests aborted mid-way, offsets 1..200 exactly once', async () => {
    const channel = uid('feed-');
    const N = 200;
    const LANES = 4; // concurrent publishers, each publishing its events in sequence
    const start = await poll(channel);
    let since = posOf(start.body);
    const got = [];
    const aborted = [];
    let current;
    const reader = (async () => {
      while (got.length < N) {
        const ac = new AbortController();
        current = ac;
        try {
          const r = await poll(channel, { since, wait: 10 }, { signal: ac.signal });
          assert.equal(r.status, 200, r.text);
          if (r.body.events.length > 0) {
            const last = r.body.events.at(-1);
            assert.equal(posOf(r.body), posOf(last), 'the top-level position is the one after the events');
            got.push(...r.body.events);
            since = posOf(last);
          }
        } catch (err) {
          if (err.name !== 'AbortError') throw err;
          aborted.push(since); // resume from the last position received
        } finally {
          if (current === ac) current = undefined;
        }
      }
    })();

    let abortsRequested = 0;
    const publishing = Promise.all(range(0, LANES - 1).map(async (lane) => {
      for (let i = 0; i < N / LANES; i++) {
        if (lane === 0 && (i === 12 || i === 30)) {
          // Force a reconnect: the request in flight (held, or its answer
          // on the wire) is aborted and its connection dropped.
          if (current) { abortsRequested++; current.abort(); }
        }
        await trigger(channel, 'tick', `${lane}-${i}`);
      }
    }));
    await publishing;
    await withTimeout(reader, 10000, `the reader to get ${N} events (has ${got.length})`);

    assert.ok(aborted.length >= 1 && abortsRequested >= 1, `the reader was cut (aborted ${aborted.length} of ${abortsRequested})`);
    assert.deepEqual(got.map((f) => f.offset), range(1, N), 'every offset once, in order');
    const E = got[0].epoch;
    for (const f of got) assert.deepEqual(f, { event: 'tick', channel, data: f.data, epoch: E, offset: f.offset });
    assert.deepEqual(got.map((f) => f.data).sort(), range(0, LANES - 1).flatMap((l) => range(0, N / LANES - 1).map((i) => `${l}-${i}`)).sort());
    for (let lane = 0; lane < LANES; lane++) {
      const seq = got.filter((f) => f.data.startsWith(`${lane}-`)).map((f) => Number(f.data.split('-')[1]));
      assert.deepEqual(seq, range(0, N / LANES - 1), `lane ${lane} in its publishing order`);
    }
  });

  test('a pusher-js client on the same channel gets the same events while a reader long-polls; the reader is not a subscriber', async () => {
    const channel = uid('feed-');
    const p = await pusherClient(h, MAIN);
    const ch = await pusherSubscribe(p, channel);
    const cond = condition();
    const viaWs = [];
    ch.bind_global((event, data) => { if (!event.startsWith('pusher:')) { viaWs.push({ event, data }); cond.poke(); } });

    const N = 20;
    let since = posOf((await poll(channel)).body);
    const viaHttp = [];
    const reader = (async () => {
      while (viaHttp.length < N) {
        const r = await poll(channel, { since, wait: 10 });
        assert.equal(r.status, 200, r.text);
        if (r.body.events.length) { viaHttp.push(...r.body.events); since = posOf(r.body); }
      }
    })();
    for (let i = 1; i <= N; i++) await trigger(channel, 'item.added', { i });
    await withTimeout(reader, WAIT, 'the reader');
    await cond.until(() => viaWs.length >= N, `pusher-js to get ${N} events (has ${viaWs.length})`);

    assert.deepEqual(viaWs, range(1, N).map((i) => ({ event: 'item.added', data: { i } })));
    assert.deepEqual(viaHttp.map((f) => ({ event: f.event, data: JSON.parse(f.data) })), viaWs);
    assert.deepEqual(viaHttp.map((f) => f.offset), range(1, N));
    assert.equal(p.connection.state, 'connected');
    const info = await sdkResult(publisher(h, MAIN).get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } }));
    assert.deepEqual(info.body, { occupied: true, subscription_count: 1 }, 'only pusher-js subscribes');
  });
});

describe('feed: Server-Sent Events', () => {
  test('eventsource: lastEventId "E:N", type, data; the connection is cut mid-stream and it resumes by itself with Last-Event-ID, every event once', async () => {
    const channel = uid('feed-');
    const proxy = await tcpProxy(h.port);
    const since = posOf((await poll(channel)).body); // ":0"
    const es = eventSource(feedURL(proxy, MAIN.key, channel, { since }));
    const cond = condition();
    let opens = 0;
    const errors = [];
    es.addEventListener('open', () => { opens++; cond.poke(); });
    const got = record(es, 'tick', cond);
    const failed = record(es, 'herald:resume_failed', cond);
    let cutAfter;
    es.addEventListener('error', (e) => { errors.push({ code: e.code, at: got.length, lastId: got.at(-1)?.id }); cond.poke(); });
    await cond.until(() => opens === 1, 'the stream to open');

    const CUT_AT = 20;
    const FIRST = 60;
    const TOTAL = 80;
    es.addEventListener('tick', () => {
      if (got.length === CUT_AT && cutAfter === undefined) { cutAfter = got.at(-1).id; proxy.cut(); }
    });
    // Publishing goes on while the client is cut off (it waits retry: 1000 ms).
    for (let i = 1; i <= FIRST; i++) await trigger(channel, 'tick', `tick-${i}`);
    await cond.until(() => opens === 2, 'the EventSource to reconnect by itself', WAIT + 2000);
    for (let i = FIRST + 1; i <= TOTAL; i++) await trigger(channel, 'tick', `tick-${i}`);
    await cond.until(() => got.length >= TOTAL, `${TOTAL} events (has ${got.length})`);

    const E = got[0].id.split(':')[0];
    assert.deepEqual(got, range(1, TOTAL).map((i) => ({ id: `${E}:${i}`, type: 'tick', data: `tick-${i}` })), 'every event once, in order');
    assert.deepEqual(failed, []);
    assert.equal(errors.length, 1, `one drop reported: ${JSON.stringify(errors)}`);
    assert.ok(cutAfter !== undefined);
    // The reconnect went to the same URL (since=:0) with Last-Event-ID,
    // which wins: nothing before it came again.
    assert.equal(proxy.heads.length, 2, proxy.heads.join('\n---\n'));
    assert.match(proxy.heads[1], new RegExp(`^GET /app/${MAIN.key}/channels/${channel}/events\\?since=%3A0 HTTP/1.1\r\n`));
    const lastEventId = /\r\nlast-event-id: ([^\r]*)/i.exec(proxy.heads[1])?.[1];
    assert.equal(lastEventId, errors[0].lastId, 'resumed from the last event it had parsed');
    assert.ok(!/last-event-id/i.test(proxy.heads[0]));
  });

  test('eventsource started without since: cut before its first event, it resumes from the herald:position event and loses nothing', async () => {
    const channel = uid('feed-');
    await trigger(channel, 'tick', 'before'); // the stream starts after it
    const proxy = await tcpProxy(h.port);
    const es = eventSource(feedURL(proxy, MAIN.key, channel));
    const cond = condition();
    let opens = 0;
    es.addEventListener('open', () => { opens++; cond.poke(); });
    const positions = record(es, 'herald:position', cond);
    const got = record(es, 'tick', cond);
    await cond.until(() => positions.length === 1, 'the herald:position event');
    const E = JSON.parse(positions[0].data).epoch;
    assert.deepEqual(positions, [{ id: `${E}:1`, type: 'herald:position', data: JSON.stringify({ epoch: E, offset: 1 }) }]);
    proxy.cut();
    await trigger(channel, 'tick', 'in-gap'); // while it waits retry: 1000 ms
    await cond.until(() => opens === 2, 'the EventSource to reconnect by itself', WAIT + 2000);
    await trigger(channel, 'tick', 'live');
    await cond.until(() => got.length >= 2, `2 events (has ${got.length})`);
    assert.deepEqual(got, [
      { id: `${E}:2`, type: 'tick', data: 'in-gap' },
      { id: `${E}:3`, type: 'tick', data: 'live' },
    ]);
    assert.equal(positions.length, 1, 'a reconnect with Last-Event-ID sends no new position');
    assert.match(proxy.heads[1], new RegExp(`\r\nlast-event-id: ${E}:1\r\n`, 'i'));
  });

  test('eventsource: closed and reopened with a Last-Event-ID header while publishing goes on: every event once', async () => {
    const channel = uid('feed-');
    const url = feedURL(h, MAIN.key, channel, { since: ':0' });
    const cond = condition();
    const first = [];
    let closed = false;
    const es1 = eventSource(url);
    es1.addEventListener('tick', (e) => {
      // An EventSource still dispatches the rest of a chunk after close():
      // the page ignores what comes after it decided to close.
      if (!closed) { first.push({ id: e.lastEventId, type: e.type, data: e.data }); cond.poke(); }
    });
    const N = 100;
    const publishing = (async () => { for (let i = 1; i <= N; i++) await trigger(channel, 'tick', `d${i}`); })();
    await cond.until(() => first.length >= 30, `30 events on the first EventSource (has ${first.length})`);
    closed = true;
    es1.close();
    const lastId = first.at(-1).id;
    const es2 = eventSource(url, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'Last-Event-ID': lastId } }),
    });
    const second = record(es2, 'tick', cond);
    await publishing;
    await cond.until(() => first.length + second.length >= N, `${N} events in all (has ${first.length}+${second.length})`);
    const E = first[0].id.split(':')[0];
    assert.deepEqual([...first, ...second], range(1, N).map((i) => ({ id: `${E}:${i}`, type: 'tick', data: `d${i}` })));
    assert.equal(second[0].id, `${E}:${Number(lastId.split(':')[1]) + 1}`, 'Last-Event-ID wins over since');
  });

  test('wire format (raw node:http): retry, herald:position start event, multi-line data, herald:resume_failed for a stale since', async () => {
    // A channel never published to: the stream starts with a herald:position
    // event naming the empty position (an event, not an id-only block, which
    // some SSE libraries ignore).
    const fresh = uid('feed-');
    const s0 = new SSEReader(feedURL(h, MAIN.key, fresh));
    await s0.until((t) => t.includes('}\n\n'));
    assert.equal(s0.status, 200);
    assert.equal(s0.headers['content-type'], 'text/event-stream');
    assert.equal(s0.headers['cache-control'], 'no-store');
    assert.equal(s0.headers['x-accel-buffering'], 'no');
    assert.equal(s0.text, 'retry: 1000\n\nid: :0\nevent: herald:position\ndata: {"epoch":"","offset":0}\n\n');
    await trigger(fresh, 'first', 'hello');
    const t0 = await s0.until((t) => t.split('\n\n').length >= 4);
    const E0 = /id: ([^:\n]+):1\n/.exec(t0)?.[1];
    assert.ok(E0, t0);
    assert.equal(t0, `retry: 1000\n\nid: :0\nevent: herald:position\ndata: {"epoch":"","offset":0}\n\nid: ${E0}:1\nevent: first\ndata: hello\n\n`);

    // A channel with events, started from now.
    const channel = uid('feed-');
    await trigger(channel, 'a', 'one');
    await trigger(channel, 'b', 'two');
    const E = (await poll(channel)).body.epoch;
    const s1 = new SSEReader(feedURL(h, MAIN.key, channel));
    const pos2 = `id: ${E}:2\nevent: herald:position\ndata: {"epoch":"${E}","offset":2}\n\n`;
    await s1.until(pos2);
    assert.equal(s1.text, `retry: 1000\n\n${pos2}`);
    await trigger(channel, 'multi', 'line one\nline two\r\nline three\rline four');
    await trigger(channel, 'json', { a: 1, b: [1, 2] });
    await s1.until(`id: ${E}:4\n`);
    await s1.until((t) => t.endsWith('\n\n') && t.includes(`id: ${E}:4`));
    assert.equal(s1.text, `retry: 1000\n\n${pos2}`
      + `id: ${E}:3\nevent: multi\ndata: line one\ndata: line two\ndata: line three\ndata: line four\n\n`
      + `id: ${E}:4\nevent: json\ndata: {"a":1,"b":[1,2]}\n\n`);

    // A since that cannot be served (another epoch, or ahead): resume_failed
    // with the current position, then the stream goes on live from there.
    for (const since of ['nope:5', `${E}:99`]) {
      const s = new SSEReader(feedURL(h, MAIN.key, channel, { since }));
      const pos = (await poll(channel)).body.offset;
      await s.until('}\n\n');
      assert.equal(s.status, 200);
      assert.equal(s.text, `retry: 1000\n\nid: ${E}:${pos}\nevent: herald:resume_failed\ndata: {"epoch":"${E}","offset":${pos}}\n\n`);
      await trigger(channel, 'after', `x${pos}`);
      await s.until(`event: after\n`);
      await s.until((t) => t.endsWith('\n\n'));
      assert.ok(s.text.endsWith(`id: ${E}:${pos + 1}\nevent: after\ndata: x${pos}\n\n`), s.text);
      s.close();
    }

    // A since behind: the missed events first, then live. Last-Event-ID
    // wins over since.
    const s2 = new SSEReader(feedURL(h, MAIN.key, channel, { since: `${E}:1` }), { 'Last-Event-ID': `${E}:3` });
    await s2.until(`id: ${E}:6\n`);
    await s2.until((t) => t.endsWith('\n\n'));
    assert.deepEqual([...s2.text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]), [4, 5, 6].map((n) => `${E}:${n}`));
    assert.ok(s2.text.startsWith(`retry: 1000\n\nid: ${E}:4\nevent: json\n`), s2.text);
  });

  test('max_readers: held requests past it get 503 with Retry-After; shutdown answers held long-polls and ends streams', async () => {
    const own = await startHerald({ apps: [MAIN], history: { max_readers: 2 } });
    track({ close: () => own.stop().catch(() => {}) });
    const channel = uid('feed-');
    const r0 = await sdkResult(publisher(own, MAIN).trigger(channel, 'e', 'one'));
    assert.equal(r0.status, 200, r0.text);
    const E = (await poll(channel, {}, { server: own })).body.epoch;
    const url = (params) => feedURL(own, MAIN.key, channel, params);

    const stream = new SSEReader(url());
    await stream.until(`id: ${E}:1\nevent: herald:position\n`); // held: one reader
    // A long-poll with nothing new is held: the second reader. Proven held
    // when a third reader is refused (else retried).
    let lp;
    await waitFor(async () => {
      lp = startPoll(url({ since: `${E}:1`, wait: 10 }));
      await lp.sent;
      const probe = new SSEReader(url());
      await probe.until(() => probe.status !== undefined);
      if (probe.status === 503) {
        await probe.waitEnd();
        assert.equal(probe.headers['retry-after'], '5');
        assert.match(JSON.parse(probe.text).error, /too many held requests/);
        return true;
      }
      probe.close(); // it got in before the long-poll was held: try again
      assert.equal((await lp.answer).status, 503);
      return false;
    }, { what: 'a long-poll held next to the stream' });

    const refused = await poll(channel, { since: `${E}:1`, wait: 5 }, { server: own });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.match(refused.body.error, /too many held requests/);
    const plain = await poll(channel, { since: `${E}:0` }, { server: own });
    assert.equal(plain.status, 200, 'a poll that is not held is not limited');
    assert.equal(lp.settled, false);

    // A reader that hangs up gives its place back.
    stream.close();
    let stream2;
    await waitFor(async () => {
      const s = new SSEReader(url());
      await s.until(() => s.status !== undefined);
      if (s.status === 200) { stream2 = s; return true; }
      s.close();
      return false;
    }, { what: 'the closed stream\'s place to be free' });
    await stream2.until('}\n\n');

    own.terminate();
    const held = await lp.answer;
    assert.equal(held.status, 200, held.text);
    assert.deepEqual(held.body, { epoch: E, offset: 1, events: [] });
    assert.ok(held.ms < 5000, `the held long-poll answered at shutdown (${held.ms} ms)`);
    await stream2.waitEnd();
    assert.equal(stream2.text, `retry: 1000\n\nid: ${E}:1\nevent: herald:position\ndata: {"epoch":"${E}","offset":1}\n\n`, 'the stream just ends');
    await own.stop();
  });
});

describe('feed: errors', () => {
  test('410 with the current position for a since that cannot be served; 400 for bad since/wait/channel', async () => {
    const channel = uid('feed-');
    await trigger(channel, 'e', '1');
    await trigger(channel, 'e', '2');
    const E = (await poll(channel)).body.epoch;
    for (const since of ['other-epoch:1', `${E}:3`, `${E}:99`]) {
      const r = await poll(channel, { since, wait: 5 });
      assert.equal(r.status, 410, `${since}: ${r.text}`);
      assert.deepEqual(Object.keys(r.body), ['error', 'epoch', 'offset']);
      assert.equal(typeof r.body.error, 'string');
      assert.deepEqual({ epoch: r.body.epoch, offset: r.body.offset }, { epoch: E, offset: 2 });
    }
    for (const [params, field] of [
      [{ since: 'abc' }, 'since'], [{ since: `${E}:-1` }, 'since'], [{ since: ':5' }, 'since'],
      [{ since: `${E}:1`, wait: '-1' }, 'wait'], [{ since: `${E}:1`, wait: '1.5' }, 'wait'],
      [{ since: `${E}:1`, wait: 'abc' }, 'wait'], [{ wait: '-1' }, 'wait'],
    ]) {
      const r = await poll(channel, params);
      assert.equal(r.status, 400, `${JSON.stringify(params)}: ${r.text}`);
      assert.deepEqual(Object.keys(r.body), ['error']);
      assert.ok(r.body.error.startsWith(`${field}:`), r.body.error);
    }
    // Out of history: SOME keeps the default 100 events per channel.
    const short = uid('feed-');
    for (let i = 1; i <= 102; i++) await trigger(short, 'e', String(i), SOME);
    const S = (await poll(short, {}, { app: SOME })).body.epoch;
    const kept = await poll(short, { since: `${S}:2` }, { app: SOME });
    assert.equal(kept.status, 200, kept.text);
    assert.deepEqual(kept.body.events.map((f) => f.offset), range(3, 102), 'the oldest kept is offset 3');
    for (const since of [`${S}:1`, ':0']) {
      const gone = await poll(short, { since }, { app: SOME });
      assert.equal(gone.status, 410, `${since}: ${gone.text}`);
      assert.deepEqual({ epoch: gone.body.epoch, offset: gone.body.offset }, { epoch: S, offset: 102 });
    }
    const gonesse = new SSEReader(feedURL(h, SOME.key, short, { since: `${S}:1` }));
    await gonesse.until('}\n\n');
    assert.equal(gonesse.text, `retry: 1000\n\nid: ${S}:102\nevent: herald:resume_failed\ndata: {"epoch":"${S}","offset":102}\n\n`);
    gonesse.close();

    const badName = await poll('bad name');
    assert.equal(badName.status, 400, badName.text);
    // SSE: a malformed since or Last-Event-ID is a 400, not a stream.
    const sse = await httpRequest(feedURL(h, MAIN.key, channel, { since: 'abc' }), { headers: { Accept: 'text/event-stream' } });
    assert.equal(sse.status, 400, sse.text);
    const lei = await httpRequest(feedURL(h, MAIN.key, channel), { headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'garbage' } });
    assert.equal(lei.status, 400, lei.text);
    assert.match(lei.body.error, /^Last-Event-ID:/);
  });

  test('404 for an unknown app key and for channels without history; 403 for a disabled app; 405 for other methods', async () => {
    const unknown = await poll('feed-x', {}, { app: { key: 'no-such-key' } });
    assert.equal(unknown.status, 404, unknown.text);
    assert.match(unknown.body.error, /unknown app key/);
    const off = await poll(uid('feed-'), {}, { app: OFF });
    assert.equal(off.status, 404, off.text);
    assert.match(off.body.error, /keeps no history/);
    const outside = await poll(uid('other-'), {}, { app: SOME });
    assert.equal(outside.status, 404, outside.text);
    const inside = await poll(uid('feed-'), {}, { app: SOME });
    assert.equal(inside.status, 200, inside.text);
    const offSession = await fetch(`${h.httpURL}/app/no-such-key/sessions`, { method: 'POST' });
    assert.equal(offSession.status, 404);
    const disabled = await poll(uid('feed-'), {}, { app: APPS.disabled });
    assert.equal(disabled.status, 403, disabled.text);

    const post = await httpRequest(feedURL(h, MAIN.key, uid('feed-')), { method: 'POST' });
    assert.equal(post.status, 405, post.text);
    assert.equal(post.headers.allow, 'GET, OPTIONS');
    const getSession = await httpRequest(`${h.httpURL}/app/${MAIN.key}/sessions`);
    assert.equal(getSession.status, 405, getSession.text);
    assert.equal(getSession.headers.allow, 'POST, OPTIONS');
  });

  test('401/403 for private, presence and server-to-user channels without a valid session and signature', async () => {
    const channel = uid('private-feed-');
    const noAuth = await poll(channel);
    assert.equal(noAuth.status, 401, noAuth.text);
    assert.match(noAuth.body.error, /sessions/);
    const noAuthSSE = await httpRequest(feedURL(h, MAIN.key, channel), { headers: { Accept: 'text/event-stream' } });
    assert.equal(noAuthSSE.status, 401, noAuthSSE.text);
    const presence = await poll(uid('presence-feed-'));
    assert.equal(presence.status, 401, presence.text);

    // A made-up socket id, properly signed for the channel: not a session.
    const madeUp = await poll(channel, { socket_id: '123.456', auth: channelAuth(MAIN, '123.456', channel) });
    assert.equal(madeUp.status, 401, madeUp.text);
    // A WebSocket connection's socket id is not a reader session either.
    const c = await rawConnect(h, MAIN);
    const wsId = await poll(channel, { socket_id: c.socketId, auth: channelAuth(MAIN, c.socketId, channel) });
    assert.equal(wsId.status, 401, wsId.text);
    // A session of another app.
    const other = await readerSession(h, OFF);
    const otherApp = await poll(channel, { socket_id: other.socket_id, auth: channelAuth(MAIN, other.socket_id, channel) });
    assert.equal(otherApp.status, 401, otherApp.text);

    // A real session with a wrong signature (Laravel signing with another secret).
    const { socket_id } = await readerSession(h, MAIN);
    const bad = await laravelAuth(socket_id, channel, { 'X-Bad-Signature': '1' });
    const wrongSig = await poll(channel, { socket_id, auth: bad.auth });
    assert.equal(wrongSig.status, 403, wrongSig.text);
    // A good signature for another channel.
    const elsewhere = await laravelAuth(socket_id, uid('private-feed-'));
    const wrongChannel = await poll(channel, { socket_id, auth: elsewhere.auth });
    assert.equal(wrongChannel.status, 403, wrongChannel.text);

    const s2u = await poll('#server-to-user-7');
    assert.equal(s2u.status, 403, s2u.text);
  });
});

describe('feed: reader sessions', () => {
  test('POST /sessions, signed by the Laravel-like endpoint: private channel polled, long-polled and streamed with eventsource', async () => {
    const s = await readerSession(h, MAIN);
    assert.deepEqual(Object.keys(s).sort(), ['expires_in', 'socket_id']);
    assert.match(s.socket_id, /^\d+\.\d+$/);
    assert.equal(s.expires_in, 86400);
    assert.notEqual((await readerSession(h, MAIN)).socket_id, s.socket_id);

    const channel = uid('private-orders.');
    const { auth: sig } = await laravelAuth(s.socket_id, channel);
    assert.match(sig, new RegExp(`^${MAIN.key}:[0-9a-f]{64}$`));
    const q = { socket_id: s.socket_id, auth: sig };
    const start = await poll(channel, q);
    assert.equal(start.status, 200, start.text);
    await trigger(channel, 'paid', { id: 9 });
    const r = await poll(channel, { ...q, since: posOf(start.body) });
    assert.equal(r.status, 200, r.text);
    const E = r.body.epoch;
    assert.deepEqual(r.body.events, [{ event: 'paid', channel, data: '{"id":9}', epoch: E, offset: 1 }]);

    const held = startPoll(feedURL(h, MAIN.key, channel, { ...q, since: `${E}:1`, wait: 10 }));
    await held.sent;
    await trigger(channel, 'shipped', { id: 9 });
    assert.deepEqual((await held.answer).body.events.map((f) => [f.event, f.offset]), [['shipped', 2]]);

    // SSE with the query auth, through the eventsource package.
    const cond = condition();
    const es = eventSource(feedURL(h, MAIN.key, channel, { ...q, since: `${E}:1` }));
    const got = record(es, 'shipped', cond);
    record(es, 'delivered', cond, got);
    await cond.until(() => got.length >= 1, 'the missed event over SSE');
    await trigger(channel, 'delivered', { id: 9 });
    await cond.until(() => got.length >= 2, 'the live event over SSE');
    assert.deepEqual(got, [
      { id: `${E}:2`, type: 'shipped', data: '{"id":9}' },
      { id: `${E}:3`, type: 'delivered', data: '{"id":9}' },
    ]);

    // Without auth the EventSource fails for good (no retry on 401).
    const denied = eventSource(feedURL(h, MAIN.key, channel));
    const err = await withTimeout(new Promise((resolve) => denied.addEventListener('error', resolve)), WAIT, 'the error');
    assert.equal(err.code, 401);
    assert.equal(denied.readyState, EventSource.CLOSED);
  });

  test('presence: the reader passes channel_data, sees client events with user_id, and is not a member', async () => {
    const channel = uid('presence-room.');
    const member = await rawConnect(h, MAIN);
    await subscribePresence(member, MAIN, channel, 'u1', { name: 'Ann' });

    const { socket_id } = await readerSession(h, MAIN);
    const signed = await laravelAuth(socket_id, channel, { 'X-User-Id': 'r9' });
    assert.deepEqual(JSON.parse(signed.channel_data), { user_id: 'r9', user_info: { name: 'User r9' } });
    const q = { socket_id, auth: signed.auth, channel_data: signed.channel_data };
    const start = await poll(channel, q);
    assert.equal(start.status, 200, start.text);

    const tampered = await poll(channel, { ...q, channel_data: JSON.stringify({ user_id: 'admin' }) });
    assert.equal(tampered.status, 403, tampered.text);
    const missing = await poll(channel, { socket_id, auth: signed.auth });
    assert.equal(missing.status, 403, missing.text);

    await trigger(channel, 'chat.message', { text: 'hi' });
    member.trigger(channel, 'client-typing', { typing: true });
    let events = [];
    await waitFor(async () => {
      const r = await poll(channel, { ...q, since: posOf(start.body), wait: 5 });
      assert.equal(r.status, 200, r.text);
      events = r.body.events;
      return events.length >= 2;
    }, { what: 'both events in history' });
    const E = events[0].epoch;
    assert.deepEqual(events, [
      { event: 'chat.message', channel, data: '{"text":"hi"}', epoch: E, offset: 1 },
      { event: 'client-typing', channel, data: { typing: true }, user_id: 'u1', epoch: E, offset: 2 },
    ]);

    // Over SSE, an object data (a client event) is its raw JSON.
    const sse = new SSEReader(feedURL(h, MAIN.key, channel, { ...q, since: `${E}:1` }));
    await sse.until((t) => t.endsWith('}\n\n'));
    assert.equal(sse.text, `retry: 1000\n\nid: ${E}:2\nevent: client-typing\ndata: {"typing":true}\n\n`);

    const users = await signedFetch(h, MAIN, 'GET', `/apps/${MAIN.id}/channels/${channel}/users`);
    assert.equal(users.status, 200, users.text);
    assert.deepEqual(users.body, { users: [{ id: 'u1' }] }, 'the reader takes no place in presence');
  });

  test('private-encrypted: the reader gets the ciphertext as published', async () => {
    const channel = uid('private-encrypted-feed-');
    const { socket_id } = await readerSession(h, MAIN);
    const signed = await laravelAuth(socket_id, channel);
    assert.ok(signed.shared_secret, 'the endpoint hands out the shared secret');
    const q = { socket_id, auth: signed.auth };
    await trigger(channel, 'secret', { pin: 1234 });
    const r = await poll(channel, { ...q, since: ':0' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.events.length, 1);
    const payload = JSON.parse(r.body.events[0].data);
    assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
    assert.ok(!r.text.includes('1234'));
  });
});

describe('feed: CORS', () => {
  test('allowed origins get Access-Control-Allow-Origin; others 403; OPTIONS preflight 204', async () => {
    const channel = uid('feed-');
    const url = feedURL(h, ORIGIN.key, channel);
    for (const origin of ['https://good.example.com', 'http://good.example.com:8080', 'https://app.trusted.test']) {
      const r = await httpRequest(url, { headers: { Origin: origin } });
      assert.equal(r.status, 200, `${origin}: ${r.text}`);
      assert.equal(r.headers['access-control-allow-origin'], origin);
      assert.equal(r.headers.vary, 'Origin');
    }
    for (const origin of ['https://evil.example.com', 'https://trusted.test', 'null']) {
      const r = await httpRequest(url, { headers: { Origin: origin } });
      assert.equal(r.status, 403, `${origin}: ${r.text}`);
      assert.match(r.body.error, /origin/);
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }
    const none = await httpRequest(url);
    assert.equal(none.status, 200, 'no Origin: not a browser, answered');
    assert.equal(none.headers['access-control-allow-origin'], undefined);

    const pre = await httpRequest(url, {
      method: 'OPTIONS',
      headers: { Origin: 'https://good.example.com', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'last-event-id' },
    });
    assert.equal(pre.status, 204, pre.text);
    assert.equal(pre.text, '');
    assert.equal(pre.headers['access-control-allow-origin'], 'https://good.example.com');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST, OPTIONS');
    assert.equal(pre.headers['access-control-allow-headers'], 'Accept, Cache-Control, Content-Type, Last-Event-ID');
    assert.equal(pre.headers['access-control-max-age'], '600');
    const preBad = await httpRequest(url, { method: 'OPTIONS', headers: { Origin: 'https://evil.example.com', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(preBad.status, 403, preBad.text);

    const session = await httpRequest(`${h.httpURL}/app/${ORIGIN.key}/sessions`, { method: 'POST', headers: { Origin: 'https://app.trusted.test' } });
    assert.equal(session.status, 200, session.text);
    assert.equal(session.headers['access-control-allow-origin'], 'https://app.trusted.test');
    const sessionBad = await httpRequest(`${h.httpURL}/app/${ORIGIN.key}/sessions`, { method: 'POST', headers: { Origin: 'https://evil.example.com' } });
    assert.equal(sessionBad.status, 403, sessionBad.text);

    const sse = new SSEReader(url, { Origin: 'https://good.example.com' });
    await sse.until('id: ');
    assert.equal(sse.status, 200);
    assert.equal(sse.headers['content-type'], 'text/event-stream');
    assert.equal(sse.headers['access-control-allow-origin'], 'https://good.example.com');
    const sseBad = new SSEReader(url, { Origin: 'https://evil.example.com' });
    await sseBad.waitEnd();
    assert.equal(sseBad.status, 403);

    // An app without allowed_origins answers any origin.
    const open = await httpRequest(feedURL(h, MAIN.key, channel), { headers: { Origin: 'https://anywhere.example' } });
    assert.equal(open.status, 200, open.text);
    assert.equal(open.headers['access-control-allow-origin'], 'https://anywhere.example');
  });
});
