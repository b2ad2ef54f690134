// The dashboard (/dashboard) in Chromium: refused without credentials,
// opened with the token in the URL (traded for a cookie), the connection
// count and the channel list move when pusher-js clients come, the console
// tails connects and events, and an event published from the form reaches
// a pusher-js client and the console. Screenshot: e2e/screenshots/
// dashboard.png; with UPDATE_DOCS_SCREENSHOT=1 also docs/dashboard.png,
// the README's.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'node:test';

import { APPS, test, useHerald, useAuthServer, pusherClient, pusherSubscribe, nextOn, publisher, uid, waitFor } from '../lib/herald.js';
import { useChromium, pageUntil } from '../lib/browser.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'dashboard-e2e-token-0123456789';
const USER = 'ops';
const PASSWORD = 'dashboard-e2e-password';
const LONG = { timeout: 40000 };

const h = useHerald({ server: { dashboard_token: TOKEN, dashboard_user: USER, dashboard_password: PASSWORD } });
const auth = useAuthServer(h);
const chrome = useChromium();

const text = (page, sel) => page.locator(sel).textContent();

describe('dashboard', () => {
  test('refused without credentials, on the page and the API', async () => {
    for (const p of ['/dashboard/', '/dashboard/api/overview', '/dashboard/api/live']) {
      const res = await fetch(`${h.httpURL}${p}`);
      const body = await res.json();
      assert.equal(res.status, 401, p);
      assert.match(body.error, /credentials/);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
    }
    const wrong = await fetch(`${h.httpURL}/dashboard/`, { headers: { Authorization: `Basic ${Buffer.from(`${USER}:nope-nope-nope`).toString('base64')}` } });
    await wrong.arrayBuffer();
    assert.equal(wrong.status, 401);
    const basic = await fetch(`${h.httpURL}/dashboard/api/overview`, { headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` } });
    assert.equal(basic.status, 200);
    assert.ok((await basic.json()).apps.length >= 2);
    // Publishing needs the dashboard's header (no cross-site form can send it).
    const csrf = await fetch(`${h.httpURL}/dashboard/api/publish`, {
      method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain' },
      body: JSON.stringify({ app: APPS.main.id, channel: 'x', event: 'e', data: 'd' }),
    });
    assert.equal(csrf.status, 403);
    await csrf.arrayBuffer();
    // Chromium is asked for basic auth and, with no credentials to give,
    // never gets the page; with them (as after the prompt) it does.
    for (const [creds, ok] of [[undefined, false], [{ username: USER, password: 'wrong-password' }, false], [{ username: USER, password: PASSWORD }, true]]) {
      const ctx = await chrome.browser.newContext({ httpCredentials: creds });
      try {
        const page = await ctx.newPage();
        const res = await page.goto(`${h.httpURL}/dashboard/`).catch((e) => e);
        if (ok) {
          assert.equal(res.status(), 200);
          await pageUntil(page, () => document.getElementById('status').textContent.startsWith('live'), null, 'the live stream with basic auth');
        } else if (res instanceof Error) {
          assert.match(String(res), /ERR_INVALID_AUTH_CREDENTIALS/);
        } else {
          assert.equal(res.status(), 401);
          assert.equal(await page.locator('#connections').count(), 0);
        }
      } finally {
        await ctx.close();
      }
    }
  });

  test('live numbers, channels, console and the publish form', LONG, async () => {
    const ctx = await chrome.browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const res = await page.goto(`${h.httpURL}/dashboard/?app=${APPS.main.id}&token=${TOKEN}`);
      assert.equal(res.status(), 200);
      assert.equal(new URL(page.url()).search, `?app=${APPS.main.id}`, 'the token left the address bar');
      await pageUntil(page, () => document.getElementById('status').textContent.startsWith('live'), null, 'the live stream');
      await pageUntil(page, () => document.getElementById('connections').textContent !== '–', null, 'the first sample')
        .catch(async (e) => { throw new Error(`${e.message}\n${await text(page, 'header')} ${await text(page, '#console')}`); });
      assert.equal(await text(page, '#connections'), '0');

      // Clients arrive: the count, the channels and the console follow.
      const news = uid('news');
      const room = `presence-${uid('room')}`;
      const a = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': 'ada', 'X-User-Info': '{"name":"Ada"}' } });
      const b = await pusherClient(h, APPS.main, { auth, headers: { 'X-User-Id': 'grace', 'X-User-Info': '{"name":"Grace"}' } });
      const ch = await pusherSubscribe(a, news);
      await pusherSubscribe(a, room);
      await pusherSubscribe(b, room);
      await pageUntil(page, () => document.getElementById('connections').textContent === '2', null, 'connections 2');
      await pageUntil(page, (r) => [...document.querySelectorAll('#channel-rows tr')].some((tr) => tr.dataset.channel === r
        && tr.textContent.includes('ada') && tr.textContent.includes('grace')), room, 'the presence channel with its members');
      assert.match(await text(page, '#channel-rows'), new RegExp(news));
      await pageUntil(page, (id) => [...document.querySelectorAll('#console .entry-connect')].some((li) => li.textContent.includes(id)),
        a.connection.socket_id, "a's connect in the console");

      // Tail the channel and publish from the form.
      await page.fill('#tail-channel', news);
      await page.click('#tail-form button[type=submit]');
      await pageUntil(page, (c) => document.getElementById('status').textContent === `live · ${c}`, news, 'tailing the channel');
      await page.fill('#pub-channel', news);
      await page.fill('#pub-event', 'dashboard-test');
      await page.fill('#pub-data', '{"hello":"from the dashboard"}');
      const got = nextOn(ch, 'dashboard-test');
      await page.click('#pub-send');
      assert.deepEqual(await got, { hello: 'from the dashboard' });
      await pageUntil(page, () => document.getElementById('pub-result').textContent === 'published ✓', null, 'the publish answer');
      await pageUntil(page, (c) => [...document.querySelectorAll('#console .entry-event')].some((li) => li.textContent.includes('dashboard-test')
        && li.textContent.includes(c) && li.textContent.includes('from the dashboard')), news, 'the event in the console');

      // API publishes show in the API and messages graphs.
      const api = publisher(h, APPS.main);
      const received = [];
      ch.bind('tick', (d) => received.push(d.n));
      for (let n = 0; n < 25; n++) { // over a few samples
        await api.trigger(news, 'tick', { n });
        if (n % 5 === 4) await waitFor(() => received.length === n + 1, { what: `tick ${n}` }); // paced by deliveries
      }
      await pageUntil(page, () => document.querySelector('#card-api .line').getAttribute('d').length > 0
        && Number(document.getElementById('api-sub').textContent.replace(/[^0-9.]/g, '')) > 0, null, 'the API graph to rise');
      await pageUntil(page, () => Number(document.getElementById('messages-sub').textContent.match(/in ([0-9.]+)/)?.[1]) >= 0
        && document.querySelector('#card-messages .line').getAttribute('d').length > 0, null, 'the messages graph');
      fs.mkdirSync(path.join(E2E_DIR, 'screenshots'), { recursive: true });
      const shot = path.join(E2E_DIR, 'screenshots', 'dashboard.png');
      await page.screenshot({ path: shot });
      if (process.env.UPDATE_DOCS_SCREENSHOT) fs.copyFileSync(shot, path.join(E2E_DIR, '..', 'docs', 'dashboard.png'));

      // A bad publish shows the server's error.
      await page.fill('#pub-channel', 'not a channel');
      await page.click('#pub-send');
      await pageUntil(page, () => /channel/.test(document.getElementById('pub-result').textContent)
        && document.getElementById('pub-result').className === 'bad', null, 'the refusal');

      // A client leaves: its disconnect shows and the count drops.
      const gone = b.connection.socket_id;
      await page.fill('#tail-channel', '');
      await page.click('#tail-form button[type=submit]');
      await pageUntil(page, () => document.getElementById('status').textContent === 'live · all channels', null, 'tailing all');
      b.disconnect();
      await pageUntil(page, (id) => [...document.querySelectorAll('#console .entry-disconnect')].some((li) => li.textContent.includes(id)), gone, "b's disconnect");
      await pageUntil(page, () => document.getElementById('connections').textContent === '1', null, 'connections 1');
      assert.deepEqual(errors, []);
    } finally {
      await ctx.close();
    }
  });
});
