// Browser side of the e2e harness: headless Debian Chromium driven by
// playwright-core, and a small test site (node:http) that serves the pages,
// a same-origin Laravel-like /broadcasting/auth, pusher-js's browser build,
// and proxies /app/… (HTTP and WebSocket upgrades) to Herald under the
// test's control: cut the sockets, refuse upgrades, count /events requests.
//
// As in lib/herald.js, nothing sleeps: waits are for an event (a proxy
// change, a condition in the page) with a timeout.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

import { chromium } from 'playwright-core';

import { publisher, withTimeout, WAIT } from './herald.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The system Chromium (Debian's `chromium` package; never a downloaded build). */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run',
];

/**
 * Launches headless Chromium (Playwright's default launch: a fresh temporary
 * profile, removed at close). Tests open an isolated context each.
 */
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; ./scripts/test does it)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
}

/**
 * Registers before/after hooks that launch Chromium for the test file and
 * always close it, a failing test included (Playwright also kills it if the
 * process exits). Returns {browser} filled in by the `before` hook.
 */
export function useChromium() {
  const b = {};
  let launching;
  before(async () => {
    launching = launchChromium();
    b.browser = await launching;
  }, { timeout: 40000 });
  // When an earlier before hook fails, node:test runs the after hooks
  // without waiting for this one: wait for the launch, then close.
  after(async () => {
    const browser = await launching?.catch(() => null);
    await browser?.close();
  }, { timeout: 40000 });
  return b;
}

// ---------------------------------------------------------------------------
// The page

/**
 * The test page: loads herald.js from Herald (heraldPort) or pusher-js from
 * the site, and sets window.T, a small recorder the tests drive with
 * page.evaluate. Everything a test checks is in window.rec.
 */
function pageHTML({ heraldPort, csrf, pusher, echo }) {
  const lib = echo
    ? '<script src="/pusher.min.js"></script><script src="/echo.iife.js"></script>'
    : pusher
      ? '<script src="/pusher.min.js"></script>'
      : `<script src="http://127.0.0.1:${heraldPort}/herald.js"></script>`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>herald e2e</title>
${csrf ? `<meta name="csrf-token" content="${csrf}">` : ''}
${lib}
</head><body><div id="live"></div>
<script>
window.rec = { events: [], states: [], resyncs: [], errors: [], disconnects: [], members: [], dom: [] };
const now = () => Date.now();
window.T = {
  /** herald.js: Herald.connect(opts), recording its state changes, resyncs and errors. */
  connect(opts) {
    const h = (window.herald = Herald.connect(opts));
    rec.states.push({ state: h.state, t: now() });
    h.bind('state', (s) => rec.states.push({ state: s, t: now(), transport: h.getState().transport }));
    h.bind('resync', (i) => rec.resyncs.push(i));
    h.bind('error', (e) => rec.errors.push(JSON.stringify(e, (k, v) => (v instanceof Error ? String(v) : v))));
    h.bind('disconnected', (d) => rec.disconnects.push(d));
    for (const name of ['connected', 'disconnected', 'message', 'resync']) {
      window.addEventListener('herald:' + name, (e) => rec.dom.push(name));
    }
    Herald.status(document.querySelector('#live'));
    return h.state;
  },
  /** Records every delivery of event on channel, with its meta and the transport that brought it. */
  record(channel, data, meta) {
    rec.events.push({ channel, event: meta.event, data, epoch: meta.epoch, offset: meta.offset,
      user_id: meta.user_id, transport: herald.getState().transport });
  },
  listen(channel, event) {
    herald.subscribe(channel).bind(event, (data, meta) => T.record(channel, data, meta));
  },
  /** Presence: here/joining/leaving as {kind, ids}. */
  presence(channel) {
    const ch = herald.subscribe(channel);
    ch.bind('here', (m) => rec.members.push({ kind: 'here', ids: m.map((x) => x.id).sort(), info: m.map((x) => x.info) }));
    ch.bind('joining', (m) => rec.members.push({ kind: 'joining', id: m.id, info: m.info }));
    ch.bind('leaving', (m) => rec.members.push({ kind: 'leaving', id: m.id }));
  },
  /** Makes the tab hidden or visible as the page sees it (visibilityState, hidden, visibilitychange). */
  setHidden(hidden) {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event('visibilitychange'));
  },
  /**
   * Stock Laravel Echo (its browser build) on stock pusher-js, recording
   * pusher-js's state changes and each event of channel with the transport
   * that brought it.
   */
  echo(opts, channel, event) {
    const e = (window.E = new Echo.default({ ...opts, Pusher }));
    const p = e.connector.pusher;
    rec.states.push({ state: p.connection.state, t: now() });
    p.connection.bind('state_change', (s) => rec.states.push({ state: s.current, t: now(), transport: p.connection.connection?.transport?.name }));
    e.channel(channel).listen('.' + event, (data) => rec.events.push({ channel, event, data, transport: p.connection.connection?.transport?.name }));
    return p.connection.state;
  },
  /** Stock pusher-js (browser build), recording its state changes. */
  pusher(key, opts) {
    const p = (window.P = new Pusher(key, opts));
    rec.states.push({ state: p.connection.state, t: now() });
    p.connection.bind('state_change', (s) => rec.states.push({ state: s.current, t: now() }));
    return p.connection.state;
  },
};
</script></body></html>
`;
}

// ---------------------------------------------------------------------------
// The test site: pages, same-origin auth, and a proxy to Herald

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/**
 * Starts the test site for Herald h and app (whose key and secret the auth
 * endpoint signs with). Routes:
 *   GET /page?herald=PORT&csrf=TOKEN[&pusher=1|&echo=1]  the test page
 *   GET /pusher.min.js, /echo.iife.js            pusher-js's and Laravel Echo's browser builds
 *   POST /broadcasting/auth                      Laravel-like channel authorization
 *   /app/…, /pusher/…                            proxied to Herald (HTTP and upgrades)
 * Auth: like Laravel's, the CSRF token (X-CSRF-TOKEN, from the page's meta
 * tag) must be one the site issued (`users`: token → {id, name}), else 419;
 * channels containing "forbidden" get 403. Signed with the `pusher` SDK's
 * authorizeChannel, presence data {user_id (a number, as Laravel), user_info}.
 *
 * The proxy: `blockUpgrades` answers WebSocket upgrades with 403; `cut()`
 * destroys every proxied socket (both sides); `requests` lists the /events
 * requests ({channel, since, sse, referer, open}); `authRequests` the auth calls;
 * `until(pred)` waits for pred(site) to hold after a proxy change.
 */
export async function startSite(h, app, { users = {} } = {}) {
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const tunnels = new Set(); // {client, upstream} per proxied WebSocket
  const site = {
    blockUpgrades: false,
    upgrades: 0, // proxied upgrades
    refused: 0, // upgrades answered 403
    requests: [],
    authRequests: [],
    get tunnels() { return tunnels.size; },
  };
  const changed = () => changes.emit('change');

  function proxyHTTP(req, res) {
    const url = new URL(req.url, 'http://x');
    const m = /^\/app\/[^/]+\/channels\/([^/]+)\/events$/.exec(url.pathname);
    const record = m && {
      channel: decodeURIComponent(m[1]), since: url.searchParams.get('since'),
      sse: /text\/event-stream/.test(req.headers.accept ?? ''), referer: req.headers.referer ?? '', open: true,
    };
    if (record) { site.requests.push(record); changed(); }
    const done = () => { if (record?.open) { record.open = false; changed(); } };
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP.has(k)));
    const up = http.request({ host: '127.0.0.1', port: h.port, method: req.method, path: req.url, headers, agent: false }, (pres) => {
      const out = Object.fromEntries(Object.entries(pres.headers).filter(([k]) => !HOP.has(k)));
      res.writeHead(pres.statusCode, out);
      res.flushHeaders();
      pres.pipe(res);
      pres.on('error', () => res.destroy());
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); done(); });
    res.on('close', () => { up.destroy(); done(); });
    req.pipe(up);
  }

  function proxyUpgrade(req, socket, head) {
    socket.on('error', () => {});
    if (site.blockUpgrades) {
      site.refused++;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\nWebSockets blocked\r\n');
      changed();
      return;
    }
    const upstream = net.connect(h.port, '127.0.0.1');
    const t = { client: socket, upstream };
    tunnels.add(t);
    site.upgrades++;
    upstream.on('error', () => {});
    let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    upstream.write(lines + '\r\n');
    if (head?.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      if (tunnels.delete(t)) changed();
    };
    socket.on('close', end);
    upstream.on('close', end);
    changed();
  }

  function authorize(req, res, body) {
    const form = new URLSearchParams(body);
    const csrf = req.headers['x-csrf-token'];
    const user = users[csrf];
    const record = { csrf, contentType: req.headers['content-type'], form: Object.fromEntries(form), user: user?.id };
    site.authRequests.push(record);
    const reply = (status, obj) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (!user) return reply(419, { message: 'CSRF token mismatch.' });
    const channel = form.get('channel_name') ?? '';
    if (channel.includes('forbidden')) return reply(403, { message: 'This action is unauthorized.' });
    const presence = channel.startsWith('presence-') ? { user_id: user.id, user_info: { name: user.name } } : undefined;
    try {
      return reply(200, publisher(h, app).authorizeChannel(form.get('socket_id'), channel, presence));
    } catch (err) {
      return reply(500, { message: err.message });
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/app/') || url.pathname.startsWith('/pusher/')) return proxyHTTP(req, res);
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (url.pathname === '/page' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return res.end(pageHTML({
          heraldPort: url.searchParams.get('herald') ?? h.port, csrf: url.searchParams.get('csrf'),
          pusher: url.searchParams.has('pusher'), echo: url.searchParams.has('echo'),
        }));
      }
      if (url.pathname === '/echo.iife.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        return res.end(fs.readFileSync(path.join(E2E_DIR, 'node_modules/laravel-echo/dist/echo.iife.js')));
      }
      if (url.pathname === '/pusher.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        return res.end(fs.readFileSync(path.join(E2E_DIR, 'node_modules/pusher-js/dist/web/pusher.min.js')));
      }
      if (url.pathname === '/broadcasting/auth' && req.method === 'POST') return authorize(req, res, body);
      if (url.pathname === '/favicon.ico') { res.writeHead(204); return res.end(); }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    });
  });
  server.on('upgrade', proxyUpgrade);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const port = server.address().port;

  return Object.assign(site, {
    port,
    base: `http://127.0.0.1:${port}`,
    /** The page's URL: herald.js from Herald on heraldPort (default h's), csrf in the meta tag. */
    pageURL: ({ heraldPort, csrf, pusher, echo, tab } = {}) => {
      const q = new URLSearchParams({ herald: String(heraldPort ?? h.port) });
      if (tab) q.set('tab', tab); // tells pages apart in requests' Referer
      if (csrf) q.set('csrf', csrf);
      if (pusher) q.set('pusher', '1');
      if (echo) q.set('echo', '1');
      return `http://127.0.0.1:${port}/page?${q}`;
    },
    /** Destroys every proxied WebSocket, both sides (the page sees 1006); returns how many. */
    cut() {
      const n = tunnels.size;
      for (const t of [...tunnels]) { t.client.destroy(); t.upstream.destroy(); }
      return n;
    },
    /** Resolves (with site) once pred(site) holds, re-checked at every proxy change. */
    until(pred, what, timeout = PAGE_WAIT) {
      if (pred(site)) return Promise.resolve(site);
      let fn;
      return withTimeout(new Promise((resolve) => {
        fn = () => { if (pred(site)) resolve(site); };
        changes.on('change', fn);
      }), timeout, `the proxy: ${what}`).finally(() => changes.off('change', fn));
    },
    /** Clears the counters and lists and cuts leftover sockets (between tests). */
    reset() {
      for (const t of [...tunnels]) { t.client.destroy(); t.upstream.destroy(); }
      site.blockUpgrades = false;
      site.upgrades = site.refused = 0;
      site.requests.length = 0;
      site.authRequests.length = 0;
    },
    close: () => new Promise((resolve) => {
      for (const t of [...tunnels]) { t.client.destroy(); t.upstream.destroy(); }
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  });
}

/**
 * Starts the site for the whole test file (before/after hooks). Returns a
 * stand-in for it, usable once the `before` hook ran (site.blockUpgrades = …
 * sets the real one).
 */
export function useSite(h, app, opts) {
  let started;
  let starting;
  before(async () => {
    starting = startSite(h, app, opts);
    started = await starting;
  });
  after(async () => { await (await starting?.catch(() => null))?.close(); });
  return new Proxy({}, {
    get: (_, k) => started?.[k],
    set: (_, k, v) => { started[k] = v; return true; },
  });
}

// ---------------------------------------------------------------------------
// Waiting in the page

/** Default wait for a condition in a page: a browser is slower to schedule than Node. */
export const PAGE_WAIT = Math.max(WAIT, 10000);

/**
 * Waits until fn(arg) is truthy in the page (checked every animation frame)
 * and returns its value. On timeout the error shows what, and window.rec.
 */
export async function pageUntil(page, fn, arg, what, timeout = PAGE_WAIT) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 'raf' });
    return await handle.jsonValue();
  } catch (err) {
    let rec = '';
    try { rec = JSON.stringify(await page.evaluate(() => window.rec)).slice(-3000); } catch { /* page gone */ }
    throw new Error(`timed out after ${timeout} ms waiting in the page for ${what}: ${err.message.split('\n')[0]}\nwindow.rec: ${rec}`);
  }
}
