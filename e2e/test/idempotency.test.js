// Idempotent publishing: a publish retried with the same idempotency_key
// (body field, or Idempotency-Key header on /broadcast) reaches pusher-js
// listeners once and is answered with the original offset.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  APPS, test, useHerald, pusherClient, pusherSubscribe, nextOn, uid, publisher, sdkResult,
} from '../lib/herald.js';

const APP = {
  ...APPS.main, history: 'on',
  broadcast_token: 'idem-broadcast-token-0123456789',
};
const h = useHerald({ apps: [APP] });

async function broadcast(body, headers = {}) {
  const res = await fetch(`${h.httpURL}/broadcast`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${APP.broadcast_token}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

/** Counts `event` on ch until a `done` event arrives, which it returns after. */
async function countUntilDone(ch, event, publishDone) {
  let n = 0;
  ch.bind(event, () => { n++; });
  const done = nextOn(ch, 'done');
  await publishDone();
  await done;
  return n;
}

describe('idempotency_key', () => {
  test('a retried /broadcast (body key, then header key) delivers once and answers the original offset', async () => {
    const channel = uid('orders-');
    const p = await pusherClient(h, APP);
    const ch = await pusherSubscribe(p, channel);
    const first = nextOn(ch, 'order_paid');
    const body = { message: { type: 'order_paid', data: { id: 9 } }, channel, idempotency_key: 'order-9-paid' };
    const answers = [];
    answers.push(await broadcast(body));
    assert.deepEqual(await first, { id: 9 });
    answers.push(await broadcast(body));
    answers.push(await broadcast({ ...body, idempotency_key: undefined }, { 'Idempotency-Key': 'order-9-paid' }));
    for (const r of answers) {
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { ok: true, channels: [channel], offsets: { [channel]: 1 } });
    }
    const n = await countUntilDone(ch, 'order_paid', () => broadcast({ message: { type: 'done' }, channel }));
    assert.equal(n, 0, 'a retry was delivered again');

    const bad = await broadcast({ ...body, idempotency_key: 'x' }, { 'Idempotency-Key': 'y' });
    assert.equal(bad.status, 400, bad.text);
    assert.ok(bad.body.error.includes('idempotency_key'), bad.text);
  });

  test('a retried /events through the pusher SDK delivers once; another key or channel publishes', async () => {
    const [channel, other] = [uid('jobs-'), uid('jobs-')];
    const p = await pusherClient(h, APP);
    const ch = await pusherSubscribe(p, channel);
    const ch2 = await pusherSubscribe(p, other);
    const sdk = publisher(h, APP);
    let seen = 0;
    ch.bind('job_done', () => { seen++; });
    for (let i = 0; i < 3; i++) {
      const r = await sdkResult(sdk.trigger(channel, 'job_done', { job: 1 }, { idempotency_key: 'job-1' }));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, {});
    }
    const onOther = nextOn(ch2, 'job_done');
    let r = await sdkResult(sdk.trigger(other, 'job_done', { job: 1 }, { idempotency_key: 'job-1' }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await onOther, { job: 1 });
    r = await sdkResult(sdk.trigger(channel, 'job_done', { job: 2 }, { idempotency_key: 'job-2' }));
    assert.equal(r.status, 200, r.text);
    // Batch entries are keyed one by one.
    const batch = [
      { channel, name: 'job_done', data: { job: 3 }, idempotency_key: 'job-3' },
      { channel, name: 'job_done', data: { job: 1 }, idempotency_key: 'job-1' },
    ];
    for (let i = 0; i < 2; i++) {
      r = await sdkResult(sdk.triggerBatch(batch.map((e) => ({ ...e }))));
      assert.equal(r.status, 200, r.text);
    }
    const done = nextOn(ch, 'done');
    await sdk.trigger(channel, 'done', {});
    await done;
    assert.equal(seen, 3, 'job-1, job-2 and job-3 once each');

    r = await sdkResult(sdk.trigger(channel, 'job_done', {}, { idempotency_key: '' }));
    assert.equal(r.status, 400, r.text);
    assert.ok(r.body.error.includes('idempotency_key'), r.text);
  });
});
