// Fakes for herald.js's tests (test/*.test.mjs): a clock with timers, WebSocket, fetch,
// EventSource, window and document, handed to the client as options._env, so
// no test touches a global or the network, and none sleeps.

import Herald from '../herald.mjs';

/** Lets pending promise chains (fetch, auth) run to their next wait. */
export async function flush() {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A manual clock: timers fire only from tick(). */
export class Clock {
  t = 0;
  seq = 0;
  timers = new Map();
  setTimeout = (fn, ms = 0) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, id });
    return id;
  };
  clearTimeout = (id) => {
    this.timers.delete(id);
  };
  now = () => this.t;

  /** Advances the clock by ms, firing due timers in order. */
  async tick(ms = 0) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let next = null;
      for (const tm of this.timers.values()) if (tm.at <= end && (!next || tm.at < next.at)) next = tm;
      if (!next) break;
      this.t = next.at;
      this.timers.delete(next.id);
      next.fn();
    }
    this.t = end;
    await flush();
  }

  /** The delays of pending timers from now, ascending. */
  delays() {
    return [...this.timers.values()].map((tm) => tm.at - this.t).sort((a, b) => a - b);
  }
}

/** One fake environment and a client factory using it. */
export function harness() {
  const clock = new Clock();
  const sockets = [];
  const sources = [];
  const requests = []; // every fetch
  const pending = []; // fetches no route answered
  const h = { clock, sockets, sources, requests, pending, random: 0.5, routes: [] };

  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close(code) {
      this.closed = true;
      this.closeCode = code;
    }
    // --- driven by tests
    recv(frame) {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }
    establish(socketId = '1.1', activity = 30) {
      this.recv({
        event: 'pusher:connection_established',
        data: JSON.stringify({ socket_id: socketId, activity_timeout: activity }),
      });
    }
    drop(code = 1006, reason = '') {
      this.onclose?.({ code, reason });
    }
    frames(event) {
      return this.sent.filter((f) => f.event === event);
    }
  }

  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.listeners = {};
      sources.push(this);
    }
    addEventListener(name, fn) {
      (this.listeners[name] ||= []).push(fn);
    }
    close() {
      this.readyState = 2;
      this.closed = true;
    }
    // --- driven by tests
    open() {
      this.readyState = 1;
      this.onopen?.();
    }
    emit(name, data, id = '') {
      for (const fn of this.listeners[name] || []) fn({ type: name, data, lastEventId: id });
    }
    /** An unnamed message carrying a whole frame (format=frames). */
    message(frame, id = '') {
      this.onmessage?.({ type: 'message', data: JSON.stringify(frame), lastEventId: id });
    }
    fail(fatal) {
      this.readyState = fatal ? 2 : 0;
      this.onerror?.();
    }
  }

  function response(status, body) {
    return { ok: status >= 200 && status < 300, status, json: async () => body };
  }

  /**
   * fetch: the first route whose answer is not undefined answers ([status,
   * body]); otherwise the request waits in h.pending for req.respond().
   */
  async function fetch(url, init = {}) {
    const req = {
      url: String(url),
      method: init.method || 'GET',
      headers: init.headers || {},
      body: init.body,
      query: new URL(String(url), 'http://page.test/').searchParams,
    };
    requests.push(req);
    for (const route of h.routes) {
      const ans = route(req);
      if (ans !== undefined) return response(...ans);
    }
    return new Promise((resolve, reject) => {
      req.respond = (status, body) => {
        pending.splice(pending.indexOf(req), 1);
        resolve(response(status, body));
      };
      req.fail = () => {
        pending.splice(pending.indexOf(req), 1);
        reject(new TypeError('network'));
      };
      init.signal?.addEventListener('abort', () => {
        req.aborted = true;
        if (pending.includes(req)) pending.splice(pending.indexOf(req), 1);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      });
      pending.push(req);
    });
  }

  const window = new EventTarget();
  window.location = { protocol: 'http:', hostname: 'page.test', port: '' };
  const document = new EventTarget();
  document.visibilityState = 'visible';
  document.csrf = null;
  document.querySelector = (sel) =>
    sel === 'meta[name="csrf-token"]' && document.csrf ? { getAttribute: () => document.csrf } : null;
  const navigator = { onLine: true };

  h.window = window;
  h.document = document;
  h.navigator = navigator;
  h.env = {
    WebSocket: FakeWebSocket,
    EventSource: FakeEventSource,
    fetch,
    AbortController,
    CustomEvent,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => h.random,
    window,
    document,
    navigator,
  };

  /** A client on this environment. */
  h.connect = (options = {}) => {
    h.client = Herald.create({ key: 'app-key', host: 'herald.test', port: 8080, ...options, _env: h.env });
    return h.client;
  };
  /** The newest socket. */
  Object.defineProperty(h, 'ws', { get: () => sockets[sockets.length - 1] });
  /** A connected client whose socket is live. */
  h.live = async (options) => {
    const client = h.connect(options);
    h.ws.establish();
    await flush();
    return client;
  };
  h.setHidden = (hidden) => {
    document.visibilityState = hidden ? 'hidden' : 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
  };
  /** Records window events of the given names: h.seen[name] = [detail…]. */
  h.record = (...names) => {
    h.seen = {};
    for (const n of names) {
      h.seen[n] = [];
      window.addEventListener(n, (e) => h.seen[n].push(e.detail));
    }
  };
  /** The next pending request whose URL contains part (after letting the client run). */
  h.waitRequest = async (part) => {
    await flush();
    const req = pending.find((r) => r.url.includes(part));
    if (!req) throw new Error(`no pending request for ${part}; pending: ${pending.map((r) => r.url).join(', ')}`);
    return req;
  };
  return h;
}

/** A Pusher channel event frame as Herald sends it. */
export function ev(channel, event, data, epoch, offset) {
  const f = { event, channel, data: typeof data === 'string' ? data : JSON.stringify(data) };
  if (epoch !== undefined) Object.assign(f, { epoch, offset });
  return f;
}

/** pusher_internal:subscription_succeeded for channel. */
export function succeeded(channel, data = {}) {
  return { event: 'pusher_internal:subscription_succeeded', channel, data: JSON.stringify(data) };
}

/** herald:resume_failed for channel at epoch:offset. */
export function resumeFailed(channel, epoch, offset) {
  return { event: 'herald:resume_failed', channel, data: JSON.stringify({ epoch, offset }) };
}
