// `herald demo` in Chromium: the binary starts Herald and the demo backend;
// two helpdesk pages see each other's tickets, status and assignee changes
// live, with notifications, and the seller dashboard (stock Laravel Echo +
// pusher-js + the herald-echo plugin) keeps every order once and in order
// while its socket is cut. Screenshots go to e2e/screenshots/ (git-ignored);
// with UPDATE_DOCS_SCREENSHOT=1 the helpdesk one is also copied to
// docs/demo.png, the README's.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';

import { test, freePort, track, waitFor, WAIT } from '../lib/herald.js';
import { useChromium, pageUntil } from '../lib/browser.js';
import { tcpProxy } from '../lib/proxy.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHOTS = path.join(E2E_DIR, 'screenshots');
const ORDERS = 'company.1.marketplace.2.orders';
const VIEWPORT = { width: 1280, height: 800 };
const LONG = { timeout: 40000 };

const chrome = useChromium();
const demo = useDemo();

// ---------------------------------------------------------------------------
// Helpers

/**
 * Starts `herald demo` from the binary under test on free ports, for the
 * whole file; resolves once the banner is printed and Herald answers /up.
 */
function useDemo() {
  const d = {};
  let child;
  let exited;
  before(async () => {
    const bin = process.env.HERALD_BIN ? path.resolve(process.env.HERALD_BIN) : path.resolve(E2E_DIR, '..', 'bin', 'herald');
    const [port, demoPort] = [await freePort(), await freePort()];
    child = spawn(bin, ['demo', '--port', String(port), '--demo-port', String(demoPort), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; if (process.env.HERALD_E2E_VERBOSE) process.stderr.write(c); });
    exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    process.on('exit', () => child.kill('SIGKILL'));
    await waitFor(async () => {
      if (child.exitCode !== null) throw Object.assign(new Error(`herald demo exited ${child.exitCode}:\n${out}`), { fatal: true });
      if (!out.includes('Ctrl+C stops both.')) return false;
      const res = await fetch(`http://127.0.0.1:${port}/up`);
      await res.arrayBuffer();
      return res.status === 200;
    }, { timeout: 15000, interval: 50, what: 'herald demo to start' });
    Object.assign(d, { port, base: `http://127.0.0.1:${demoPort}`, log: () => out });
  }, { timeout: 20000 });
  after(async () => {
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const res = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 8000).unref())]);
    if (res === null) child.kill('SIGKILL');
    assert.deepEqual(res, { code: 0, signal: null }, 'herald demo exits 0 on SIGTERM');
  }, { timeout: 10000 });
  return d;
}

/** A page of the demo in its own browser context (closed when the test ends); uncaught errors in page.errors. */
async function openPage(pathAndQuery) {
  const context = track(await chrome.browser.newContext({ viewport: VIEWPORT }));
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  const res = await page.goto(demo.base + pathAndQuery);
  assert.equal(res.status(), 200);
  return page;
}

/**
 * Saves a screenshot once toasts and list entries have slid in (a row's
 * highlight may still be fading: it shows what just changed; the live dot
 * pulses forever).
 */
async function screenshot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, name);
  await pageUntil(page, () => document.getAnimations().every((a) => a.playState !== 'running' || a.animationName === 'flash' ||
    a.effect?.getTiming().iterations === Infinity), null, 'the page to settle');
  await page.screenshot({ path: file });
  return file;
}

/** POSTs to the demo backend with the page's CSRF token, as the page does. */
async function post(page, pathname) {
  const csrf = await page.evaluate(() => document.querySelector('meta[name="csrf-token"]').content);
  const res = await fetch(demo.base + pathname, { method: 'POST', headers: { 'X-CSRF-TOKEN': csrf } });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

/** Every toast the page showed, oldest first: "title body". */
const toasts = (page) => page.evaluate(() => Demo.shown.map((t) => `${t.title} ${t.body}`));

/** Waits for a toast whose title starts with title, shown in #toasts. */
const toastWith = (page, title) => pageUntil(page, (s) => Demo.shown.some((t) => t.title.startsWith(s)) &&
  [...document.querySelectorAll('#toasts .toast strong')].some((t) => t.textContent.startsWith(s)), title, `a toast "${title}"`);

/** Waits until the helpdesk page is live and shows its list. */
async function helpdeskReady(page) {
  await pageUntil(page, () => {
    const live = document.querySelector('#live');
    return live.classList.contains('live') && live.textContent === 'Live' && herald.channel('broadcast')?.subscribed &&
      document.querySelectorAll('#tickets tr').length >= 4;
  }, null, 'the helpdesk live, subscribed, its list shown');
}

/** The ticket events the page's herald.js delivered for ticket id. */
const eventsFor = (page, id) => page.evaluate((id) => window.demo.events.filter((e) => e.id === id).map((e) => e.event), id);

// ---------------------------------------------------------------------------

describe('herald demo', () => {
  test('helpdesk: two pages; a ticket created in one appears, with a notification, in the other; status and assignee changes come back; a paused page catches up', LONG, async () => {
    const [a, b] = await Promise.all([openPage('/?as=Alex%20Kim'), openPage('/?as=Maria%20Lopez')]);
    await Promise.all([helpdeskReady(a), helpdeskReady(b)]);

    // Page A creates a ticket through the form.
    await a.fill('#subject', 'Checkout page returns 500 for EU customers');
    await a.fill('#requester', 'Hanna Berg');
    await a.click('label:has(input[value="urgent"])');
    await a.click('#new-ticket button[type=submit]');
    const id = await pageUntil(b, () => {
      const row = [...document.querySelectorAll('#tickets tr')].find((r) => r.innerText.includes('Checkout page returns 500'));
      return row ? Number(row.dataset.id) : null;
    }, null, 'the new ticket in page B');
    await toastWith(b, `New ticket #${id}`);
    assert.match((await toasts(b)).join('\n'), /Checkout page returns 500 for EU customers — Hanna Berg/);
    assert.equal(await b.locator(`tr[data-id="${id}"] .prio`).innerText(), 'Urgent');
    assert.equal(await b.locator('#tickets tr').first().getAttribute('data-id'), String(id), 'newest first');
    await screenshot(b, 'demo-helpdesk-new-ticket.png');

    // Page B changes its status, then takes it; page A follows.
    await b.selectOption(`tr[data-id="${id}"] select.pill`, 'open');
    await pageUntil(a, (id) => document.querySelector(`tr[data-id="${id}"]`)?.dataset.status === 'open', id, 'status open in page A');
    await toastWith(a, `#${id} is now Open`);
    assert.match((await toasts(a)).join('\n'), /Maria Lopez moved “Checkout page returns 500 for EU customers” from New/);
    await b.click(`tr[data-id="${id}"] button.take`);
    await pageUntil(a, (id) => document.querySelector(`tr[data-id="${id}"] select.assignee-select`)?.value === 'Maria Lopez', id, 'assignee in page A');
    await toastWith(a, `#${id} assigned to Maria Lopez`);
    // A window is told of the others' changes, not of its own.
    const titles = (page) => page.evaluate(() => Demo.shown.map((t) => t.title));
    assert.deepEqual(await titles(a), [`#${id} is now Open`, `#${id} assigned to Maria Lopez`]);
    assert.deepEqual(await titles(b), [`New ticket #${id}`]);
    for (const page of [a, b]) {
      assert.deepEqual(await eventsFor(page, id), ['ticket_created', 'ticket_status_changed', 'ticket_assigned'], 'each event once');
      assert.equal(await page.locator('#live').innerText(), 'Live');
      assert.equal(await page.locator('#log li').count(), 3, 'the event log');
    }
    const shot = await screenshot(b, 'demo-helpdesk.png');
    await screenshot(a, 'demo-helpdesk-other-window.png');

    // Page B pauses; A resolves the ticket and creates another; B resumes
    // and gets both, once, without a refetch.
    await b.click('#pause');
    await pageUntil(b, () => document.querySelector('#live').classList.contains('offline'), null, 'page B offline');
    await a.selectOption(`tr[data-id="${id}"] select.pill`, 'resolved');
    await a.fill('#subject', 'Password reset e-mail never arrives');
    await a.fill('#requester', 'Luis Ortega');
    await a.click('#new-ticket button[type=submit]');
    await pageUntil(a, (id) => window.demo.events.some((e) => e.id === id + 1), id, 'the second ticket in page A');
    assert.equal(await b.locator(`tr[data-id="${id}"]`).getAttribute('data-status'), 'open', 'page B paused: no change yet');
    await b.click('#pause');
    await pageUntil(b, (id) => document.querySelector(`tr[data-id="${id}"]`)?.dataset.status === 'resolved' &&
      !!document.querySelector(`tr[data-id="${id + 1}"]`), id, 'page B caught up');
    assert.deepEqual(await eventsFor(b, id), ['ticket_created', 'ticket_status_changed', 'ticket_assigned', 'ticket_status_changed']);
    assert.deepEqual(await eventsFor(b, id + 1), ['ticket_created']);
    assert.equal(await b.evaluate(() => window.demo.resyncs), 0, 'replayed, not refetched');
    await pageUntil(b, () => document.querySelector('#live').classList.contains('live'), null, 'page B live again');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);

    if (process.env.UPDATE_DOCS_SCREENSHOT) fs.copyFileSync(shot, path.join(E2E_DIR, '..', 'docs', 'demo.png'));
  });

  test('seller dashboard (Echo + pusher-js + plugin): 50 orders published while the socket is cut once, then a pause; the list holds each once, in order; the private notification channel works', LONG, async () => {
    const proxy = await tcpProxy(demo.port);
    const page = await openPage(`/marketplace?herald_host=127.0.0.1&herald_port=${proxy.port}`);
    await pageUntil(page, (c) => document.querySelector('#live').classList.contains('live') && window.heraldEcho.position(c) !== null &&
      window.Echo.connector.channels['private-App.Models.User.1']?.subscription.subscribed && document.querySelectorAll('#orders tr').length > 0,
    ORDERS, 'the dashboard live, its channels subscribed, its list shown');
    const shown = () => page.evaluate(() => [...document.querySelectorAll('#orders tr')].map((r) => Number(r.dataset.id)).reverse());
    const before = await shown();

    await page.click('#notify');
    await pageUntil(page, () => window.demo.notifications.length === 1 && document.querySelectorAll('#notes li').length === 1, null, 'the notification');

    const ids = [];
    const publish = async (n) => { for (let i = 0; i < n; i++) ids.push((await post(page, '/api/orders')).order.id); };
    const delivered = (n) => pageUntil(page, (n) => window.demo.delivered.length >= n, n, `${n} orders delivered`);

    await publish(15);
    await delivered(15);
    proxy.hold();
    assert.equal(proxy.cut() > 0, true, 'a socket to cut');
    await pageUntil(page, () => window.Echo.connector.pusher.connection.state !== 'connected', null, 'pusher-js to notice the cut');
    await publish(20); // while the page is away
    await waitFor(() => proxy.waiting > 0, { timeout: WAIT + 10000, what: 'pusher-js to try again' });
    proxy.release();
    await pageUntil(page, () => window.demo.reconnects === 1 && window.Echo.connector.pusher.connection.state === 'connected', null, 'reconnected');
    await publish(15);
    await delivered(50);
    await publish(1); // a marker: a late duplicate would come before it
    await delivered(51);

    const got = await page.evaluate(() => window.demo.delivered);
    assert.deepEqual(got, ids, 'every order once, in order');
    assert.deepEqual(await shown(), [...before, ...ids], 'the list: the orders before, then each new one once, in order');
    assert.deepEqual(await page.evaluate(() => window.demo.resyncs), [], 'resumed, not refetched');
    assert.match(await page.evaluate((c) => window.heraldEcho.position(c), ORDERS), /:51$/);
    assert.equal(await page.locator('#stat-orders').innerText(), String(before.length + 51));
    assert.equal(await page.locator('#live').innerText(), 'Live');

    // "Pause live" (pusher.disconnect()), three orders, "Resume": caught up the same way.
    await page.click('#pause');
    await pageUntil(page, () => document.querySelector('#live').classList.contains('offline'), null, 'paused: offline');
    await publish(3);
    await page.click('#pause');
    await pageUntil(page, () => window.demo.reconnects === 2 && document.querySelector('#live').classList.contains('live'), null, 'resumed');
    await publish(1);
    await delivered(55);
    assert.deepEqual(await page.evaluate(() => window.demo.delivered), ids, 'every order once, in order, after the pause too');
    assert.deepEqual(await shown(), [...before, ...ids]);
    assert.deepEqual(await page.evaluate(() => window.demo.resyncs), []);
    assert.deepEqual(page.errors, []);
    await screenshot(page, 'demo-marketplace.png');
  });
});
