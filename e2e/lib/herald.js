// Harness for Herald's end-to-end tests: starts the real binary on a free
// port with a generated YAML config, and gives tests raw `ws` clients with a
// message queue, pusher-js clients, Laravel Echo clients, `pusher` SDK
// publishers, hand-signed HTTP API requests and a Laravel-like auth endpoint.
//
// Nothing here sleeps to wait for something: every wait is for an event
// (a frame, a close, a state change, an HTTP answer) with a timeout.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test as nodeTest } from 'node:test';

import WebSocket from 'ws';
import PusherClient from 'pusher-js';
import PusherServer from 'pusher';
import Echo from 'laravel-echo';

export { PusherClient, PusherServer, Echo, WebSocket };

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default wait for one frame or event, in milliseconds. */
export const WAIT = Number(process.env.HERALD_E2E_WAIT ?? 4000);

// A 32-byte master key so the SDK can encrypt and the auth endpoint can hand
// out shared_secret for private-encrypted- channels.
export const ENCRYPTION_MASTER_KEY_BASE64 = Buffer.alloc(32, 7).toString('base64');

// ---------------------------------------------------------------------------
// Apps

/** The apps every test server is configured with (see README's schema). */
export const APPS = {
  main: {
    id: 'main-app', key: 'main-key', secret: 'main-secret',
    client_events: 'members', user_authentication: true,
  },
  all: { id: 'all-app', key: 'all-key', secret: 'all-secret', client_events: 'all', activity_timeout: 45 },
  none: { id: 'none-app', key: 'none-key', secret: 'none-secret', client_events: 'none' },
  disabled: { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret', enabled: false },
  maxconn: { id: 'maxconn-app', key: 'maxconn-key', secret: 'maxconn-secret', max_connections: 1 },
  authtimeout: {
    id: 'authtimeout-app', key: 'authtimeout-key', secret: 'authtimeout-secret',
    user_authentication: true, authorized_connections_timeout: '1s',
  },
  limits: {
    id: 'limits-app', key: 'limits-key', secret: 'limits-secret',
    client_events: 'members', user_authentication: true,
    max_message_bytes: 2000,
    limits: {
      max_event_payload_bytes: 100,
      max_channels_per_event: 3,
      max_batch_events: 2,
      client_events_per_second: 2,
      max_presence_members: 2,
      max_watchlist: 2,
      max_request_bytes: 3000,
    },
  },
  ping: { id: 'ping-app', key: 'ping-key', secret: 'ping-secret', ping_interval: '1s', pong_timeout: '1s' },
  origin: { id: 'origin-app', key: 'origin-key', secret: 'origin-secret', allowed_origins: ['good.example.com', '*.trusted.test'] },
};

function yamlScalar(v) {
  if (Array.isArray(v)) return `[${v.map(yamlScalar).join(', ')}]`;
  // A mapping inside a list (e.g. `webhooks: [{url, events}]`): a flow mapping.
  if (isMapping(v)) return `{${Object.entries(v).map(([k, x]) => `${k}: ${yamlScalar(x)}`).join(', ')}}`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

const isMapping = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Renders Herald's YAML config for the given apps (README's schema). An app
 * field whose value is a plain object (e.g. `history: {channels: [...],
 * max_events: 1000}`) becomes a nested mapping; `history` (optional) is the
 * top-level history section (e.g. `{max_readers: 1}`).
 */
export function configYAML(apps = Object.values(APPS), { server = {}, log = {}, history } = {}) {
  const lines = [];
  lines.push('server:');
  for (const [k, v] of Object.entries({ shutdown_timeout: '2s', ...server })) lines.push(`  ${k}: ${yamlScalar(v)}`);
  lines.push('log:');
  for (const [k, v] of Object.entries({ level: 'debug', ...log })) lines.push(`  ${k}: ${yamlScalar(v)}`);
  if (history) {
    lines.push('history:');
    for (const [k, v] of Object.entries(history)) lines.push(`  ${k}: ${yamlScalar(v)}`);
  }
  lines.push('apps:');
  for (const app of apps) {
    let first = true;
    for (const [k, v] of Object.entries(app)) {
      if (k === 'limits') continue;
      if (isMapping(v)) {
        lines.push(`${first ? '  - ' : '    '}${k}:`);
        for (const [k2, v2] of Object.entries(v)) lines.push(`      ${k2}: ${yamlScalar(v2)}`);
      } else {
        lines.push(`${first ? '  - ' : '    '}${k}: ${yamlScalar(v)}`);
      }
      first = false;
    }
    if (app.limits) {
      lines.push('    limits:');
      for (const [k, v] of Object.entries(app.limits)) lines.push(`      ${k}: ${yamlScalar(v)}`);
    }
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// Small async helpers

/** Resolves with a port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Rejects with a descriptive error if `promise` does not settle in `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` (sync or async) every `interval` ms until it returns a truthy
 * value, which is returned. For server state only observable by asking (the
 * HTTP API), never in place of an awaitable event.
 */
export async function waitFor(check, { timeout = WAIT, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      if (err && err.fatal) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Unique names so tests never share channels. */
let uniq = 0;
export function uid(prefix = 'c') {
  uniq += 1;
  return `${prefix}${process.pid}x${uniq}`;
}

// ---------------------------------------------------------------------------
// Per-test cleanup and logs

const openThings = new Set(); // things with close(): raw clients, pusher-js, Echo, servers
export function track(thing) { openThings.add(thing); return thing; }
export function untrack(thing) { openThings.delete(thing); }

async function closeTracked() {
  const things = [...openThings];
  openThings.clear();
  await Promise.allSettled(things.map(async (t) => { await t.close(); }));
}

const runningServers = new Set();

// Safety net: never leave a herald behind, even when hooks did not run.
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

function dumpLogs(testName, marks) {
  for (const h of runningServers) {
    const from = marks.get(h) ?? 0;
    if (h.exitInfo?.unexpected) {
      process.stderr.write(`\n!!! herald (port ${h.port}) exited unexpectedly: ${JSON.stringify(h.exitInfo)}\n`);
    }
    const text = h.logText().slice(from);
    const tail = text.split('\n').slice(-80).join('\n');
    process.stderr.write(`\n----- herald stderr (port ${h.port}) during "${testName}" -----\n${tail}\n----- end herald stderr -----\n`);
  }
}

/**
 * node:test's `test` with a default timeout, closing every client the test
 * opened when it ends, and printing Herald's log lines from the test when it
 * fails.
 */
export function test(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  return nodeTest(name, { timeout: 20000, ...opts }, async (t) => {
    const marks = new Map([...runningServers].map((h) => [h, h.logText().length]));
    try {
      await fn(t);
    } catch (err) {
      dumpLogs(name, marks);
      throw err;
    } finally {
      await closeTracked();
    }
  });
}

// ---------------------------------------------------------------------------
// The server

function heraldBin() {
  return process.env.HERALD_BIN
    ? path.resolve(process.env.HERALD_BIN)
    : path.resolve(E2E_DIR, '..', 'bin', 'herald');
}

/**
 * Starts Herald with the given apps (and optional `server`, `log`, top-level
 * `history` config sections); resolves once GET /up answers 200. `port`
 * reuses a port (a restart on the same address); default: a free one.
 * `listeningAt` is the Date.now() at which its "herald listening" log line
 * arrived.
 */
export async function startHerald({ apps = Object.values(APPS), server, log, history, port: fixedPort } = {}) {
  const bin = heraldBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`herald binary not found at ${bin} (build it: go build -o bin/herald ./cmd/herald, or set HERALD_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-'));
  const configPath = path.join(dir, 'herald.yaml');
  fs.writeFileSync(configPath, configYAML(apps, { server, log, history }));
  const port = fixedPort ?? await freePort();

  // Only the config file and flags configure the server under test.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REVERB_')));
  const child = spawn(bin, ['serve', '--config', configPath, '--host', '127.0.0.1', '--port', String(port)], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log_ = '';
  let listeningAt;
  const append = (chunk) => {
    log_ += chunk.toString();
    if (listeningAt === undefined && log_.includes('msg="herald listening"')) listeningAt = Date.now();
    if (log_.length > 4_000_000) log_ = log_.slice(-2_000_000);
    if (process.env.HERALD_E2E_VERBOSE) process.stderr.write(chunk);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  children.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); }));
  let hasExited = false;
  let stopping = false;
  exited.then((info) => {
    hasExited = true;
    h.exitInfo = { ...info, unexpected: !stopping };
  });

  const h = {
    port,
    host: '127.0.0.1',
    configPath,
    httpURL: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    logText: () => log_,
    get listeningAt() { return listeningAt; },
    exited,
    /** Set once the process exited; `unexpected` when nobody asked it to stop. */
    exitInfo: undefined,
    /** Sends SIGTERM without waiting (for shutdown tests). */
    terminate() { stopping = true; child.kill('SIGTERM'); },
    async stop() {
      runningServers.delete(h);
      if (hasExited) {
        fs.rmSync(dir, { recursive: true, force: true });
        if (h.exitInfo?.unexpected) {
          throw new Error(`herald exited during the tests (${JSON.stringify(h.exitInfo)})\n${log_.split('\n').slice(-60).join('\n')}`);
        }
        return;
      }
      stopping = true;
      child.kill('SIGTERM');
      const res = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 8000).unref())]);
      if (res === null) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`herald did not exit within 8 s of SIGTERM\n${log_.split('\n').slice(-40).join('\n')}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await waitFor(async () => {
      if (hasExited) throw Object.assign(new Error('herald exited'), { fatal: true });
      const res = await fetch(`${h.httpURL}/up`);
      await res.arrayBuffer();
      return res.status === 200;
    }, { timeout: 15000, interval: 50, what: `GET /up on port ${port}` });
  } catch (err) {
    const ex = hasExited ? await exited : null;
    child.kill('SIGKILL');
    throw new Error(`herald did not come up (${err.message})${ex ? `; exit ${JSON.stringify(ex)}` : ''}\nconfig:\n${configYAML(apps, { server, log, history })}\noutput:\n${log_}`);
  }
  runningServers.add(h);
  return h;
}

/**
 * Registers before/after hooks that start one Herald for the test file and
 * stop it at the end. Returns an object filled in by the `before` hook.
 */
export function useHerald(opts) {
  const h = {};
  let started;
  before(async () => {
    started = await startHerald(opts);
    Object.assign(h, started);
  }, { timeout: 20000 });
  after(async () => {
    await closeTracked();
    if (started) await started.stop();
  }, { timeout: 20000 });
  return h;
}

// ---------------------------------------------------------------------------
// Frames

/** Parses a frame's `data` when it is a JSON string. */
export function dataOf(frame) {
  return typeof frame.data === 'string' ? JSON.parse(frame.data) : frame.data;
}

export const isEvent = (event, channel) => (f) => f.event === event && (channel === undefined || f.channel === channel);
export const isError = (code) => (f) => f.event === 'pusher:error' && (code === undefined || errorCode(f) === code);

export function errorCode(frame) {
  try { return dataOf(frame).code; } catch { return undefined; }
}

// ---------------------------------------------------------------------------
// Raw WebSocket client

/**
 * A `ws` client that queues every frame. `next(pred)` takes the first queued
 * frame matching `pred` (waiting for it if needed); `frames` keeps every frame
 * ever received, in order, for negative assertions.
 */
// A channel with history adds its position to each event as the last two
// top-level fields, `,"epoch":"…","offset":N}` (README, "Never miss an
// event"). Pusher's clients ignore them; so that the exact-frame assertions
// keep checking what Pusher sends (event, channel, data, user_id), the
// harness checks the fields stand exactly there, then makes them
// non-enumerable: `f.epoch` and `f.offset` still read them, and
// `positioned(f)` gives the frame with them for a deepEqual.
const POSITION_SUFFIX = /,"epoch":"([0-9a-z]+)","offset":(\d+)\}$/;
function hidePosition(frame, text) {
  if (frame === null || typeof frame !== 'object' || !('epoch' in frame || 'offset' in frame)) return;
  const m = POSITION_SUFFIX.exec(text);
  if (!m || frame.epoch !== m[1] || frame.offset !== Number(m[2])) {
    frame.badPosition = text; // fails any exact-frame assertion, showing the frame
    return;
  }
  for (const k of ['epoch', 'offset']) {
    const v = frame[k];
    delete frame[k];
    Object.defineProperty(frame, k, { value: v, enumerable: false });
  }
}

/** The frame with its history position (epoch, offset) as plain fields. */
export function positioned(f) { return { ...f, epoch: f.epoch, offset: f.offset }; }

export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];   // every parsed frame, in order
    this.raw = [];      // every text frame as received
    this.queue = [];    // frames not yet taken by next()
    this.waiters = [];
    this.socketId = undefined;
    this.closeInfo = undefined;
    this.closed = new Promise((resolve) => { this._resolveClosed = resolve; });
    ws.on('message', (buf, isBinary) => {
      const text = buf.toString();
      this.raw.push(text);
      let frame;
      try { frame = JSON.parse(text); } catch { frame = { unparsable: text }; }
      hidePosition(frame, text);
      this.frames.push(frame);
      this.queue.push(frame);
      this._pump();
    });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this._resolveClosed(this.closeInfo);
      this._pump();
    });
    ws.on('error', () => {});
  }

  _pump() {
    for (const w of [...this.waiters]) {
      const i = this.queue.findIndex(w.pred);
      if (i >= 0) {
        const [f] = this.queue.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(f);
      } else if (this.closeInfo) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.reject(new Error(`socket closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${w.what}; frames: ${this._recent()}`));
      }
    }
  }

  _recent() {
    return this.raw.slice(-8).map((s) => (s.length > 300 ? `${s.slice(0, 300)}…` : s)).join(' | ') || '(none)';
  }

  /** Takes the first queued frame matching `pred`, waiting up to `timeout`. */
  next(pred = () => true, timeout = WAIT, what = pred.toString()) {
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, what, resolve, reject };
      const timer = setTimeout(() => {
        const k = this.waiters.indexOf(w);
        if (k >= 0) this.waiters.splice(k, 1);
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}; last frames: ${this._recent()}`));
      }, timeout);
      w.resolve = (f) => { clearTimeout(timer); resolve(f); };
      w.reject = (e) => { clearTimeout(timer); reject(e); };
      this.waiters.push(w);
      this._pump();
    });
  }

  /** Next frame with this event (and channel). */
  nextEvent(event, channel, timeout = WAIT) {
    return this.next(isEvent(event, channel), timeout, `${event}${channel ? ` on ${channel}` : ''}`);
  }

  /** Next pusher:error (with this code). */
  nextError(code, timeout = WAIT) {
    return this.next(isError(code), timeout, `pusher:error${code ? ` ${code}` : ''}`);
  }

  /** True if any frame ever received matches `pred`. */
  seen(pred) { return this.frames.some(pred); }

  send(obj) { this.ws.send(JSON.stringify(obj)); }
  sendRaw(text) { this.ws.send(text); }

  /** Waits for the server to close the socket; resolves {code, reason}. */
  waitClose(timeout = WAIT) {
    return withTimeout(this.closed, timeout, `the server to close the socket (frames: ${this._recent()})`);
  }

  get isOpen() { return this.ws.readyState === WebSocket.OPEN; }

  async close() {
    untrack(this);
    if (this.closeInfo) return;
    if (this.ws.readyState === WebSocket.CONNECTING) { this.ws.terminate(); return; }
    this.ws.close(1000);
    const done = await Promise.race([this.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000).unref())]);
    if (!done) this.ws.terminate();
  }

  // -- protocol helpers --------------------------------------------------

  /** pusher:ping → pusher:pong round trip: proves the socket is alive. */
  async ping(timeout = WAIT) {
    this.send({ event: 'pusher:ping', data: {} });
    return this.nextEvent('pusher:pong', undefined, timeout);
  }

  /**
   * Sends pusher:subscribe and waits for subscription_succeeded or a
   * pusher:error; returns the frame (throws on error unless allowError).
   */
  async subscribe(channel, { auth, channel_data, allowError = false, timeout = WAIT } = {}) {
    const data = { channel };
    if (auth !== undefined) data.auth = auth;
    if (channel_data !== undefined) data.channel_data = channel_data;
    this.send({ event: 'pusher:subscribe', data });
    const f = await this.next(
      (x) => (x.event === 'pusher_internal:subscription_succeeded' && x.channel === channel) || x.event === 'pusher:error',
      timeout, `subscription_succeeded on ${channel}`,
    );
    if (f.event === 'pusher:error' && !allowError) {
      throw new Error(`subscribe ${channel} refused: ${JSON.stringify(f)}`);
    }
    return f;
  }

  unsubscribe(channel) { this.send({ event: 'pusher:unsubscribe', data: { channel } }); }

  /** Sends a client event. */
  trigger(channel, event, data) { this.send({ event, channel, data }); }
}

/** The WebSocket URL for an app key. */
export function wsURL(h, key, { protocol = 7, query, path: p } = {}) {
  const params = new URLSearchParams();
  if (protocol !== null) params.set('protocol', String(protocol));
  params.set('client', 'js');
  params.set('version', '8.6.0');
  params.set('flash', 'false');
  for (const [k, v] of Object.entries(query ?? {})) params.set(k, v);
  return `${h.wsBase}${p ?? `/app/${key}`}?${params}`;
}

/**
 * Opens a raw WebSocket. With `established` (the default) waits for
 * pusher:connection_established and sets `socketId`. Resolves even when the
 * upgrade is refused (then `closeInfo.httpStatus` is set).
 */
export async function rawConnect(h, app, { established = true, protocol = 7, query, path: p, url, origin, headers } = {}) {
  const key = typeof app === 'string' ? app : app.key;
  const target = url ?? wsURL(h, key, { protocol, query, path: p });
  const ws = new WebSocket(target, { origin, headers, handshakeTimeout: WAIT });
  const c = track(new RawClient(ws));
  await withTimeout(new Promise((resolve) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => {
      c.closeInfo = { code: null, reason: `HTTP ${res.statusCode} instead of 101`, httpStatus: res.statusCode };
      c._resolveClosed(c.closeInfo);
      res.resume();
      resolve();
    });
    ws.once('error', (err) => {
      if (!c.closeInfo) {
        c.closeInfo = { code: null, reason: `error: ${err.message}` };
        c._resolveClosed(c.closeInfo);
      }
      resolve();
    });
  }), WAIT, `WebSocket open to ${target}`);
  if (established) {
    if (c.closeInfo) throw new Error(`connection to ${target} failed: ${c.closeInfo.reason}`);
    const f = await c.nextEvent('pusher:connection_established');
    c.socketId = dataOf(f).socket_id;
    c.established = f;
  }
  return c;
}

// ---------------------------------------------------------------------------
// Signatures

export function hmac(secret, text) {
  return crypto.createHmac('sha256', secret).update(text).digest('hex');
}

/** `auth` for a private/presence/encrypted channel, signed as Pusher signs. */
export function channelAuth(app, socketId, channel, channelData) {
  const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${hmac(app.secret, text)}`;
}

/** {auth, user_data} for pusher:signin. */
export function signinAuth(app, socketId, userData) {
  const user_data = typeof userData === 'string' ? userData : JSON.stringify(userData);
  return { auth: `${app.key}:${hmac(app.secret, `${socketId}::user::${user_data}`)}`, user_data };
}

/** Raw client helper: subscribes to a private/encrypted channel with a valid auth. */
export function subscribePrivate(c, app, channel) {
  return c.subscribe(channel, { auth: channelAuth(app, c.socketId, channel) });
}

/** Raw client helper: joins a presence channel as user_id with user_info. */
export function subscribePresence(c, app, channel, userId, userInfo, opts = {}) {
  const channel_data = JSON.stringify(userInfo === undefined ? { user_id: userId } : { user_id: userId, user_info: userInfo });
  return c.subscribe(channel, { auth: channelAuth(app, c.socketId, channel, channel_data), channel_data, ...opts });
}

/** Raw client helper: pusher:signin, waits for signin_success (or error if allowError). */
export async function signin(c, app, userData, { allowError = false } = {}) {
  c.send({ event: 'pusher:signin', data: signinAuth(app, c.socketId, userData) });
  const f = await c.next((x) => x.event === 'pusher:signin_success' || x.event === 'pusher:error', WAIT, 'pusher:signin_success');
  if (f.event === 'pusher:error' && !allowError) throw new Error(`signin refused: ${JSON.stringify(f)}`);
  return f;
}

// ---------------------------------------------------------------------------
// HTTP API

/** The `pusher` Node SDK pointed at Herald (signs like Laravel's PHP SDK). */
export function publisher(h, app, extra = {}) {
  return new PusherServer({
    appId: app.id, key: app.key, secret: app.secret,
    host: '127.0.0.1', port: String(h.port), useTLS: false,
    encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_BASE64,
    ...extra,
  });
}

/** Reads a `pusher` SDK response (or RequestError) as {status, body}. */
export async function sdkResult(promise) {
  try {
    const res = await promise;
    const text = await res.text();
    return { status: res.status, text, body: parseMaybe(text) };
  } catch (err) {
    if (err && err.status !== undefined) return { status: err.status, text: err.body, body: parseMaybe(err.body) };
    throw err;
  }
}

function parseMaybe(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

/**
 * A hand-signed HTTP API request, independent of the SDK. `path` is the full
 * path (e.g. `/apps/main-app/events`). Options override any signing input so
 * tests can send stale timestamps, wrong secrets or wrong body_md5.
 */
export async function signedFetch(h, app, method, reqPath, {
  params = {}, body, rawBody, timestamp, secret = app.secret, key = app.key,
  bodyMd5, sign = true, headers = {},
} = {}) {
  const text = rawBody !== undefined ? rawBody : body !== undefined ? JSON.stringify(body) : undefined;
  const q = {
    auth_key: key,
    auth_timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    ...params,
  };
  if (text !== undefined && text !== '') q.body_md5 = bodyMd5 ?? crypto.createHash('md5').update(text).digest('hex');
  else if (bodyMd5 !== undefined) q.body_md5 = bodyMd5;
  const sorted = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  let query = sorted;
  if (sign) query += `&auth_signature=${hmac(secret, `${method}\n${reqPath}\n${sorted}`)}`;
  const res = await fetch(`${h.httpURL}${reqPath}?${query}`, {
    method,
    body: text,
    headers: text !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
  });
  const resText = await res.text();
  return { status: res.status, text: resText, body: parseMaybe(resText), headers: res.headers };
}

// ---------------------------------------------------------------------------
// HTTP reading of channel history (polling, long-polling, SSE)

/**
 * The URL of a channel's events (GET {prefix}/app/{key}/channels/{channel}/events)
 * with query `params` (undefined values left out).
 */
export function feedURL(h, key, channel, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return `${h.httpURL}/app/${encodeURIComponent(key)}/channels/${encodeURIComponent(channel)}/events${s ? `?${s}` : ''}`;
}

/**
 * A plain node:http request with exactly the given headers (fetch would add
 * its own, and some it refuses): resolves {status, headers, text, body}.
 * `onSent` is called once the request is written.
 */
export function httpRequest(url, { method = 'GET', headers = {}, body, onSent, timeout = WAIT } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, body: parseMaybe(text) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (onSent) req.on('finish', onSent);
    req.end(body);
  }), timeout, `${method} ${url}`);
}

/** POST /app/{key}/sessions: a reader session, {socket_id, expires_in}. */
export async function readerSession(h, app) {
  const res = await fetch(`${h.httpURL}/app/${app.key}/sessions`, { method: 'POST' });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /app/${app.key}/sessions: ${res.status} ${text}`);
  return JSON.parse(text);
}

/**
 * A raw streaming response read over node:http, keeping the exact text
 * received, for wire-format assertions: `until(pred)` waits until the text
 * satisfies pred (a string it must contain, or a function of the text),
 * `waitEnd()` for the server to end the response. By default a GET asking
 * for Server-Sent Events; `method`, `localAddress` and `body` for others
 * (pusher-js's xhr_streaming receive is a POST with an empty body).
 */
export class SSEReader {
  constructor(url, headers = {}, { method = 'GET', localAddress, body } = {}) {
    this.text = '';
    this.status = undefined;
    this.headers = undefined;
    this.ended = false;
    this.waiters = [];
    const hdrs = method === 'GET' ? { Accept: 'text/event-stream', ...headers } : { 'content-length': String(Buffer.byteLength(body ?? '')), ...headers };
    this.req = http.request(url, { method, headers: hdrs, agent: false, localAddress }, (res) => {
      this.status = res.statusCode;
      this.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (c) => { this.text += c; this._pump(); });
      res.on('end', () => { this.ended = true; this._pump(); });
      res.on('error', () => { this.ended = true; this._pump(); });
      this._pump();
    });
    this.req.on('error', (err) => { this.error = err; this.ended = true; this._pump(); });
    this.req.end(body ?? undefined);
    track(this);
  }

  _pump() {
    for (const w of [...this.waiters]) {
      if (w.pred(this.text)) w.resolve(this.text);
      else if (this.ended) w.reject(new Error(`SSE stream ended (status ${this.status}${this.error ? `, ${this.error.message}` : ''}) while waiting for ${w.what}; got: ${JSON.stringify(this.text)}`));
      else continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
    }
  }

  /** Resolves with the whole text once pred(text) holds (or text includes pred). */
  until(pred, timeout = WAIT) {
    const what = typeof pred === 'string' ? JSON.stringify(pred) : pred.toString();
    const p = typeof pred === 'string' ? (t) => t.includes(pred) : pred;
    return withTimeout(new Promise((resolve, reject) => {
      this.waiters.push({ pred: p, what, resolve, reject });
      this._pump();
    }), timeout, `SSE text matching ${what}; got: ${JSON.stringify(this.text)}`);
  }

  /** Resolves once the server ended the stream. */
  waitEnd(timeout = WAIT) {
    return withTimeout(new Promise((resolve) => {
      this.waiters.push({ pred: () => this.ended, what: 'end', resolve, reject: resolve });
      this._pump();
    }), timeout, `the server to end the SSE stream; got: ${JSON.stringify(this.text)}`);
  }

  close() { untrack(this); this.req.destroy(); }
}

// ---------------------------------------------------------------------------
// A Laravel-like /broadcasting/auth endpoint

/**
 * Starts a small HTTP server acting like Laravel's broadcasting routes:
 *   POST /broadcasting/auth?app=NAME       channel authorization
 *   POST /broadcasting/user-auth?app=NAME  user authentication (sign-in)
 * Signed with the `pusher` SDK (`authorizeChannel`, `authenticateUser`).
 * Per-request behaviour comes from headers (so concurrent clients differ):
 *   X-User-Id (default "1"), X-User-Info (JSON, default {"name":"User <id>"}),
 *   X-Numeric-Id: 1 (send user_id as a number, as Laravel does),
 *   X-Watchlist: "u2,u3", X-Bad-Signature: 1 (sign with a wrong secret).
 * Channels containing "forbidden" are refused with 403 (like a failing
 * routes/channels.php callback); channels containing "badsig" get a wrong
 * signature. `requests` records every request.
 */
export async function startAuthServer(h, { defaultApp = 'main' } = {}) {
  const http = await import('node:http');
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const form = new URLSearchParams(body);
      const appName = url.searchParams.get('app') ?? defaultApp;
      const app = APPS[appName];
      const record = { path: url.pathname, app: appName, form: Object.fromEntries(form), headers: req.headers };
      requests.push(record);
      const reply = (status, obj) => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      if (req.method !== 'POST' || !app) return reply(404, { message: 'not found' });
      const badSig = req.headers['x-bad-signature'] === '1';
      const signer = publisher(h, badSig ? { ...app, secret: `${app.secret}-wrong` } : app);
      const userId = req.headers['x-user-id'] ?? '1';
      const userInfo = req.headers['x-user-info'] ? JSON.parse(req.headers['x-user-info']) : { name: `User ${userId}` };
      const socketId = form.get('socket_id');
      try {
        if (url.pathname === '/broadcasting/auth') {
          const channel = form.get('channel_name');
          if (channel.includes('forbidden')) return reply(403, { message: 'This action is unauthorized.' });
          const s = channel.includes('badsig') ? publisher(h, { ...app, secret: `${app.secret}-wrong` }) : signer;
          const presence = channel.startsWith('presence-')
            ? { user_id: req.headers['x-numeric-id'] === '1' ? Number(userId) : userId, user_info: userInfo }
            : undefined;
          return reply(200, s.authorizeChannel(socketId, channel, presence));
        }
        if (url.pathname === '/broadcasting/user-auth') {
          const userData = { id: userId, user_info: userInfo };
          if (req.headers['x-watchlist']) userData.watchlist = req.headers['x-watchlist'].split(',');
          return reply(200, signer.authenticateUser(socketId, userData));
        }
        return reply(404, { message: 'not found' });
      } catch (err) {
        return reply(500, { message: err.message });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref(); // never keep a test process alive (e.g. when a before hook failed)
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    requests,
    channelEndpoint: (app = defaultApp) => `${base}/broadcasting/auth?app=${app}`,
    userEndpoint: (app = defaultApp) => `${base}/broadcasting/user-auth?app=${app}`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** Starts the auth server for the whole test file (before/after hooks). */
export function useAuthServer(h, opts) {
  const a = {};
  let started;
  before(async () => { started = await startAuthServer(h, opts); Object.assign(a, started); });
  after(async () => { if (started) await started.close(); });
  return a;
}

// ---------------------------------------------------------------------------
// pusher-js and Echo

/** Resolves when a pusher-js connection reaches `state`. */
export function waitState(pusher, state, timeout = WAIT) {
  if (pusher.connection.state === state) return Promise.resolve();
  return withTimeout(new Promise((resolve) => {
    const cb = ({ current }) => {
      if (current === state) { pusher.connection.unbind('state_change', cb); resolve(); }
    };
    pusher.connection.bind('state_change', cb);
  }), timeout, `pusher-js state "${state}" (now "${pusher.connection.state}")`);
}

/** Options shared by pusher-js and Echo clients pointed at Herald. */
export function clientOptions(h, extra = {}) {
  return {
    wsHost: '127.0.0.1', wsPort: h.port, wssPort: h.port,
    forceTLS: false, enabledTransports: ['ws'], disableStats: true, cluster: 'mt1',
    ...extra,
  };
}

/**
 * A pusher-js client (Node build) connected to Herald. `auth` is the auth
 * server; `headers` go to the auth endpoint (X-User-Id …). Waits for
 * "connected" unless `connect: false`.
 */
export async function pusherClient(h, app, { auth, headers = {}, connect = true, ...extra } = {}) {
  const appName = Object.keys(APPS).find((k) => APPS[k] === app) ?? 'main';
  const opts = clientOptions(h, extra);
  if (auth) {
    opts.channelAuthorization = { endpoint: auth.channelEndpoint(appName), transport: 'ajax', headers };
    opts.userAuthentication = { endpoint: auth.userEndpoint(appName), transport: 'ajax', headers };
  }
  const p = new PusherClient(app.key, opts);
  track({ close: () => p.disconnect() });
  // Keep a log of every frame pusher-js saw, for assertions and debugging.
  p.frames = [];
  p.connection.bind('message', (m) => p.frames.push(m));
  if (connect) await waitState(p, 'connected');
  return p;
}

/** Resolves with the next `event` on a pusher-js channel (or emitter). */
export function nextOn(emitter, event, timeout = WAIT) {
  return withTimeout(new Promise((resolve) => {
    const cb = (data, meta) => { emitter.unbind(event, cb); resolve(data === undefined ? meta : data); };
    emitter.bind(event, cb);
  }), timeout, `"${event}" on ${emitter.name ?? 'emitter'}`);
}

/** Subscribes with pusher-js and waits for pusher:subscription_succeeded. */
export async function pusherSubscribe(p, channel, timeout = WAIT) {
  const ch = p.subscribe(channel);
  if (ch.subscribed) return ch;
  await withTimeout(new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', () => resolve());
    ch.bind('pusher:subscription_error', (e) => reject(new Error(`subscription_error on ${channel}: ${JSON.stringify(e)}`)));
  }), timeout, `pusher-js subscription to ${channel}`);
  return ch;
}

/** A Laravel Echo client (broadcaster "reverb") pointed at Herald. */
export async function echoClient(h, app, { auth, headers = {}, appName = 'main', ...extra } = {}) {
  const echo = new Echo({
    broadcaster: 'reverb',
    key: app.key,
    Pusher: PusherClient,
    ...clientOptions(h, { cluster: undefined }),
    authEndpoint: auth ? auth.channelEndpoint(appName) : undefined,
    auth: { headers: { ...headers } },
    userAuthentication: auth ? { endpoint: auth.userEndpoint(appName), headers: { ...headers } } : undefined,
    ...extra,
  });
  track({ close: () => echo.disconnect() });
  await waitState(echo.connector.pusher, 'connected');
  return echo;
}
