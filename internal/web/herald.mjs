/**
 * herald.js: the browser client for Herald, a real-time server that speaks
 * the Pusher Channels protocol 7 and numbers the events of its channels so
 * that a client that comes back misses nothing. No dependencies, no build.
 *
 * Design
 * - One connection per page (Herald.connect). It speaks Pusher protocol 7
 *   over a WebSocket and reconnects by itself: at once after a 42xx close,
 *   after at least a second on 41xx, never on 40xx (the Pusher close code
 *   classes), otherwise with exponential backoff and jitter capped at about a
 *   second, so a page is back within a second of its server.
 * - Every channel keeps the position {epoch, offset} of the last event it
 *   delivered. A resubscription sends it as `since` and Herald replays what
 *   was missed; anything at or below the position is a duplicate and is
 *   dropped; a gap, a new epoch or herald:resume_failed becomes a `resync`
 *   event, on which the page refetches its data.
 * - When the socket cannot connect (`fallbackAfter` failures in a row), the
 *   same channels are read over HTTP from the same positions, by long-polling
 *   or Server-Sent Events, while the socket is retried in the background; it
 *   takes over again when it connects. HTTP readers pause in hidden tabs.
 * - Everything taken from the page (WebSocket, fetch, timers, clock, random,
 *   EventSource, window, document) comes from one `env` object, so the tests
 *   run in Node with fakes and without globals.
 *
 * This file (herald.mjs, an ES module) is the source; herald.js, the classic
 * script that sets window.Herald, is generated from it by build.mjs.
 */

const VERSION = '0.1.0';
const STATES = ['live', 'reconnecting', 'polling', 'offline'];
const AUTHORIZED = /^(private|presence)-/;

const DEFAULTS = {
  path: '',
  authEndpoint: '/broadcasting/auth',
  broadcastChannel: 'broadcast',
  activityTimeout: 120, // s; the smaller of this and the server's is used
  pongTimeout: 30, // s
  connectTimeout: 5000, // ms from opening the socket to connection_established
  retryBase: 200, // ms: the first retry waits 100–200 ms
  retryCap: 1000, // ms: later retries wait 500–1000 ms
  retryCapPolling: 15000, // ms between socket attempts while HTTP delivers
  fallback: 'poll', // 'poll' (long-polling), 'sse' or false
  fallbackAfter: 3, // failed connects in a row before reading over HTTP
  pollWait: 25, // s a long-poll may be held
  dedupeWindow: 100, // message ids remembered per channel without history
  messageId: (data) => (data && typeof data === 'object' ? data.message_id ?? data.event_id : undefined),
  compat: false,
};

/** Parses s as JSON; returns it unchanged when it is not a JSON string. */
function parse(s) {
  if (typeof s !== 'string') return s;
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

/**
 * The delay before retry n (0, 1, 2…): base·2ⁿ capped at cap, its upper half
 * random ("equal jitter"), so pages that lost the same server spread out.
 */
function backoff(n, base, cap, random) {
  const d = Math.min(cap, base * 2 ** n);
  return d / 2 + (random() * d) / 2;
}

/** A position from "epoch:offset" or {epoch, offset}; null when absent. */
function position(p) {
  if (p == null || p === '') return null;
  if (typeof p === 'string') {
    const i = p.lastIndexOf(':');
    return i < 0 ? null : { epoch: p.slice(0, i), offset: +p.slice(i + 1) };
  }
  return { epoch: String(p.epoch), offset: +p.offset };
}

const text = (p) => p && `${p.epoch}:${p.offset}`;
const value = (v) => (typeof v === 'function' ? v() : v);
const hidden = (env) => env.document?.visibilityState === 'hidden';

function report(e) {
  if (globalThis.reportError) globalThis.reportError(e);
  else console.error(e);
}

/** The JSON body of a fetch Response; throws an Error with .status unless 2xx. */
async function json(r) {
  if (!r.ok) throw Object.assign(new Error(`HTTP ${r.status}`), { status: r.status });
  return r.json();
}

/** A minimal event emitter; a handler that throws is reported, not propagated. */
function emitter() {
  const map = new Map();
  return {
    on(name, fn) {
      if (!map.has(name)) map.set(name, new Set());
      map.get(name).add(fn);
    },
    off(name, fn) {
      if (name == null) map.clear();
      else if (fn) map.get(name)?.delete(fn);
      else map.delete(name);
    },
    emit(name, ...args) {
      for (const fn of [...(map.get(name) || [])]) {
        try {
          fn(...args);
        } catch (e) {
          report(e);
        }
      }
    },
    names: () => [...map.keys()],
  };
}

/** The page's facilities, each replaceable through options._env (tests). */
function environment(e) {
  const g = globalThis;
  return {
    WebSocket: g.WebSocket,
    EventSource: g.EventSource,
    fetch: g.fetch && ((...a) => g.fetch(...a)),
    AbortController: g.AbortController,
    CustomEvent: g.CustomEvent,
    setTimeout: (f, ms) => g.setTimeout(f, ms),
    clearTimeout: (t) => g.clearTimeout(t),
    now: () => Date.now(),
    random: Math.random,
    window: g.window,
    document: g.document,
    navigator: g.navigator,
    ...e,
  };
}

/**
 * @typedef {object} ConnectOptions
 * @property {string} key The app key.
 * @property {string} [host] Herald's host name (default: the page's).
 * @property {number|string} [port] Default: the page's port, else 443/80.
 * @property {'http'|'https'|'ws'|'wss'} [scheme] Default: the page's.
 * @property {string} [path] Herald's server.path prefix, e.g. '/ws'.
 * @property {string} [authEndpoint] Default '/broadcasting/auth' (Laravel).
 * @property {object|function(): object} [headers] Extra headers for the auth
 *   endpoint and the polling manager, e.g. {Authorization: 'Bearer …'}.
 * @property {string|false} [broadcastChannel] Subscribed by the first on(); default 'broadcast'.
 * @property {'poll'|'sse'|false} [fallback] How to read when the socket cannot connect.
 * @property {number} [fallbackAfter] Failed connects in a row before the fallback (3).
 * @property {boolean} [compat] Also set window.subscribeToChannel & co. and websocket:* events.
 */

/**
 * Creates a connection (Herald.connect returns the page's one).
 * @param {ConnectOptions} options
 */
function createClient(options) {
  const o = { ...DEFAULTS, ...options };
  const env = environment(o._env);
  const win = env.window;
  const loc = win?.location || {};
  const tls = o.scheme ? /^(https|wss)$/.test(o.scheme) : loc.protocol === 'https:';
  const origin = `${o.host || loc.hostname || 'localhost'}:${o.port || loc.port || (tls ? 443 : 80)}${o.path}`;
  const http = `http${tls ? 's' : ''}://${origin}/app/${o.key}`;
  const wsURL = `ws${tls ? 's' : ''}://${origin}/app/${o.key}?protocol=7&client=herald-js&version=${VERSION}`;
  const reads = o.fallback === 'sse' && env.EventSource ? 'sse' : 'poll';

  const channels = new Map(); // name → channel record
  const events = emitter(); // the connection's own events
  const types = emitter(); // on(type) handlers
  const compatNames = new Set();
  let ws = null; // the socket while it is opening or open
  let socketId = null; // set while the socket is live
  let state = 'connecting';
  let halted = false; // after a 40xx close or disconnect(): no more attempts
  let everLive = false;
  let attempt = 0; // retries since the socket was last live
  let failures = 0; // connects in a row that never went live
  let fallback = false; // reading over HTTP
  let session = null; // the reader session for private channels over HTTP
  let autoSubscribed = false;
  let activityMs = o.activityTimeout * 1000;
  let retryTimer, connectTimer, activityTimer, pongTimer;

  const sleep = (ms) => new Promise((resolve) => env.setTimeout(resolve, ms));

  function setState(s) {
    if (s === state) return;
    const prev = state;
    state = s;
    events.emit('state', s, prev);
    paintAll(api, s);
  }

  /** Dispatches herald:<name> (and websocket:<name> with compat) on window. */
  function dom(name, detail) {
    const target = win || env.document;
    if (!target?.dispatchEvent || !env.CustomEvent) return;
    target.dispatchEvent(new env.CustomEvent('herald:' + name, { detail }));
    if (o.compat) target.dispatchEvent(new env.CustomEvent('websocket:' + name, { detail }));
  }

  // ---- the socket

  function open() {
    env.clearTimeout(retryTimer);
    if (halted || ws) return;
    if (env.navigator?.onLine === false) return setState('offline');
    if (state !== 'polling') setState(everLive || failures ? 'reconnecting' : 'connecting');
    let sock;
    try {
      sock = ws = new env.WebSocket(wsURL);
    } catch (e) {
      report(e);
      return lost(null, 1006, 'cannot open');
    }
    connectTimer = env.setTimeout(() => lost(sock, 1006, 'connect timeout'), o.connectTimeout);
    sock.onmessage = (e) => sock === ws && receive(e.data);
    sock.onclose = (e) => lost(sock, e.code, e.reason);
    sock.onerror = () => {}; // a close follows (and Node's ws throws on an unheard error)
  }

  /** Forgets the socket: timers stopped, handlers removed, socket closed. */
  function detach() {
    const sock = ws;
    ws = socketId = null;
    [connectTimer, activityTimer, pongTimer].forEach((t) => env.clearTimeout(t));
    if (!sock) return;
    sock.onmessage = sock.onclose = null;
    try {
      sock.close();
    } catch {
      // closing twice is harmless
    }
  }

  /** The socket sock closed (or timed out) with code: decide what next. */
  function lost(sock, code, reason) {
    if (sock !== ws) return;
    const wasLive = socketId != null;
    detach();
    for (const c of channels.values()) {
      c.was ||= c.subscribed;
      c.subscribed = false;
    }
    if (wasLive) {
      events.emit('disconnected', { code, reason });
      dom('disconnected', { code, reason });
    } else failures++;
    if (halted) return;
    if (code >= 4000 && code < 4100) return halt({ code, reason });
    if (failures >= o.fallbackAfter) startFallback();
    retry(code);
  }

  function retry(code) {
    let d = 0; // 42xx: reconnect at once
    if (code < 4200 || code > 4299) {
      d = backoff(attempt++, o.retryBase, state === 'polling' ? o.retryCapPolling : o.retryCap, env.random);
      if (code >= 4100 && code < 4200) d += 1000;
    }
    if (state !== 'polling') setState('reconnecting');
    retryTimer = env.setTimeout(open, d);
  }

  function halt(error) {
    halted = true;
    stopFallback();
    setState('offline');
    events.emit('error', error);
  }

  /** Connects now if nothing is under way (the network or the tab came back). */
  function wake() {
    if (halted || ws) return;
    attempt = 0;
    open();
  }

  function receive(raw) {
    let f;
    try {
      f = JSON.parse(raw);
    } catch {
      return;
    }
    alive();
    const d = parse(f.data);
    switch (f.event) {
      case 'pusher:connection_established':
        return established(d);
      case 'pusher:ping':
        return send('pusher:pong', {});
      case 'pusher:pong':
        return;
      case 'pusher:error':
        return events.emit('error', d);
    }
    const c = channels.get(f.channel);
    if (c) frame(c, f, d);
  }

  function established(d) {
    const list = [...channels.values()];
    socketId = d.socket_id;
    everLive = true;
    attempt = failures = 0;
    env.clearTimeout(connectTimer);
    activityMs = Math.min(d.activity_timeout || Infinity, o.activityTimeout) * 1000;
    alive();
    stopFallback();
    list.forEach(join);
    setState('live');
    const detail = { socketId, transport: 'websocket' };
    events.emit('connected', detail);
    dom('connected', detail);
  }

  /**
   * Restarts the activity timer (any frame counts): after activityMs of
   * silence send pusher:ping; without an answer within pongTimeout the socket
   * is dead: close it and reconnect at once, as after a 4201.
   */
  function alive() {
    env.clearTimeout(activityTimer);
    env.clearTimeout(pongTimer);
    if (socketId == null) return;
    const sock = ws;
    activityTimer = env.setTimeout(() => {
      send('pusher:ping', {});
      pongTimer = env.setTimeout(() => lost(sock, 4201, 'pong timeout'), o.pongTimeout * 1000);
    }, activityMs);
  }

  function send(event, data, channel) {
    if (socketId == null) return false;
    ws.send(JSON.stringify(channel ? { event, channel, data } : { event, data }));
    return true;
  }

  // ---- channels

  function subscribe(name, opts = {}) {
    let c = channels.get(name);
    if (c) {
      c.refs++;
      return c.api;
    }
    c = record(name, position(opts.since));
    channels.set(name, c);
    if (socketId != null) join(c);
    else startReader(c);
    return c.api;
  }

  function unsubscribe(name) {
    const c = channels.get(name);
    if (!c || --c.refs > 0) return;
    channels.delete(name);
    c.gone = true;
    stopReader(c);
    send('pusher:unsubscribe', { channel: name });
  }

  /** A channel's state, and the object the page holds (c.api). */
  function record(name, pos) {
    const c = { name, refs: 1, pos, ev: emitter(), members: new Map(), seen: [], me: null };
    c.api = {
      name,
      /** Calls fn(data, meta) for each `event`; also 'resync', 'here', 'joining', 'leaving', 'subscribed', 'error', '*'. */
      bind(event, fn) {
        c.ev.on(event, fn);
        return c.api;
      },
      unbind(event, fn) {
        c.ev.off(event, fn);
        return c.api;
      },
      /** Sends a client event (client-…) on a subscribed private or presence channel. */
      trigger: (event, data) => !!c.subscribed && send(event, data, name),
      unsubscribe: () => c.gone || unsubscribe(name),
      get subscribed() {
        return !!c.subscribed;
      },
      /** The last position seen, "epoch:offset", or null. */
      get position() {
        return text(c.pos);
      },
      /** Presence members: [{id, info}]. */
      get members() {
        return [...c.members].map(([id, info]) => ({ id, info }));
      },
      get me() {
        return c.me;
      },
    };
    return c;
  }

  /** Subscribes c on the live socket, authorized and with `since` when known. */
  async function join(c) {
    const sid = socketId;
    const data = { channel: c.name };
    if (AUTHORIZED.test(c.name)) {
      try {
        const a = await authorize(c.name, sid);
        data.auth = a.auth;
        if (a.channel_data) {
          data.channel_data = a.channel_data;
          const cd = parse(a.channel_data);
          c.me = { id: String(cd.user_id), info: cd.user_info };
        }
      } catch (e) {
        return fail(c, e);
      }
      if (sid !== socketId || c.gone) return;
    }
    // Resume from the channel's position when known; else ask Herald for
    // the position the subscription starts at (herald:position), so that a
    // channel that stays quiet can still be resumed after a drop.
    if (c.pos) data.since = c.pos;
    else data.position = true;
    send('pusher:subscribe', data);
  }

  /** POSTs socket_id and channel_name to the app's auth endpoint, as pusher-js does. */
  async function authorize(channel, sid) {
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
    const csrf = env.document?.querySelector?.('meta[name="csrf-token"]')?.getAttribute('content');
    if (csrf) headers['X-CSRF-TOKEN'] = csrf;
    Object.assign(headers, value(o.headers));
    const body = new URLSearchParams({ socket_id: sid, channel_name: channel }).toString();
    return json(await env.fetch(o.authEndpoint, { method: 'POST', headers, body, credentials: 'same-origin' }));
  }

  function fail(c, error) {
    const e = { channel: c.name, status: error.status, error };
    c.ev.emit('error', e);
    events.emit('error', e);
  }

  /** One frame for channel c, from the socket or an HTTP reader; d is its parsed data. */
  function frame(c, f, d = parse(f.data)) {
    switch (f.event) {
      case 'pusher_internal:subscription_succeeded':
        return succeeded(c, d);
      case 'herald:resume_failed':
        return resumed(c, d);
      case 'herald:position':
        return positioned(c, d);
      case 'pusher_internal:member_added':
        return member(c, d, 'joining');
      case 'pusher_internal:member_removed':
        return member(c, d, 'leaving');
      case 'pusher_internal:subscription_count':
        return c.ev.emit('subscription_count', d);
      case 'pusher:cache_miss':
        return c.ev.emit('cache_miss', d);
    }
    if (fresh(c, f, d)) deliver(c, f, d);
  }

  function succeeded(c, d) {
    c.subscribed = true;
    const p = d?.presence;
    if (p) {
      c.members = new Map((p.ids || Object.keys(p.hash || {})).map((id) => [String(id), p.hash?.[id]]));
      c.ev.emit('here', c.api.members);
    }
    c.ev.emit('subscribed', d);
  }

  /** herald:resume_failed (or a 410): d is the channel's position now. */
  function resumed(c, d) {
    c.pos = position(d);
    resync(c, 'resume_failed');
  }

  /**
   * herald:position: where the channel is. After a subscribe without
   * `since`, where the live events continue from (a channel subscribed
   * before, whose socket dropped before its position arrived, may have
   * missed events: a resync). Later, an event this socket was excluded
   * from (its own client event, or a publish with its socket_id: Laravel's
   * toOthers): the position moves past it, so the next event is no gap.
   */
  function positioned(c, d) {
    const p = position(d);
    if (!c.pos) {
      c.pos = p;
      if (c.was) resync(c, 'resume_failed');
    } else if ((p.epoch === c.pos.epoch || (c.pos.epoch === '' && c.pos.offset === 0)) && p.offset > c.pos.offset) {
      c.pos = p;
    }
  }

  function member(c, d, kind) {
    const id = String(d.user_id);
    const info = kind === 'joining' ? d.user_info : c.members.get(id);
    if (kind === 'joining') c.members.set(id, info);
    else c.members.delete(id);
    c.ev.emit(kind, { id, info });
  }

  /**
   * Whether f is new: by position on channels with history (a gap or a new
   * epoch is delivered and reported as a resync), else by message id within
   * a bounded window.
   */
  function fresh(c, f, d) {
    if (typeof f.offset !== 'number') return unseen(c, o.messageId(d, f));
    const p = c.pos;
    let why = '';
    if (p && p.epoch === f.epoch) {
      if (f.offset <= p.offset) return false;
      if (f.offset > p.offset + 1) why = 'gap';
    } else if (p && p.epoch !== '') why = 'epoch';
    else if (p && f.offset > 1) why = 'gap'; // from the empty position, the first event is 1
    c.pos = { epoch: f.epoch, offset: f.offset };
    if (why) resync(c, why);
    return true;
  }

  function unseen(c, id) {
    if (id == null || !o.dedupeWindow) return true;
    if (c.seen.includes(id)) return false;
    if (c.seen.push(id) > o.dedupeWindow) c.seen.shift();
    return true;
  }

  function deliver(c, f, data) {
    const meta = { channel: c.name, event: f.event, epoch: f.epoch, offset: f.offset, user_id: f.user_id };
    c.ev.emit(f.event, data, meta);
    c.ev.emit('*', data, meta);
    types.emit(f.event, data, meta);
    events.emit('message', data, meta);
    dom('message', { ...meta, data });
  }

  function resync(c, reason) {
    const info = { channel: c.name, reason, epoch: c.pos?.epoch, offset: c.pos?.offset };
    c.ev.emit('resync', info);
    events.emit('resync', info);
    dom('resync', info);
  }

  /** Calls fn(data, meta) for every event named type on any subscribed channel. */
  function on(type, fn) {
    types.on(type, fn);
    if (o.broadcastChannel && !autoSubscribed) {
      autoSubscribed = true;
      subscribe(o.broadcastChannel);
    }
    return api;
  }

  // ---- reading over HTTP while the socket cannot connect

  function startFallback() {
    if (fallback || !o.fallback) return;
    fallback = true;
    channels.forEach(startReader);
  }

  function stopFallback() {
    fallback = false;
    channels.forEach(stopReader);
  }

  function startReader(c) {
    if (fallback && !c.reader && !hidden(env)) c.reader = (reads === 'sse' ? sseReader : pollReader)(c);
  }

  function stopReader(c) {
    c.reader?.stop();
    c.reader = null;
  }

  const readerUp = () => fallback && socketId == null && setState('polling');
  const readerDown = () => state === 'polling' && setState('reconnecting');

  /** The history URL of c from its position, with a reader session's authorization. */
  async function eventsURL(c, query) {
    if (AUTHORIZED.test(c.name)) {
      const sid = await readerSession();
      const a = await authorize(c.name, sid);
      Object.assign(query, { socket_id: sid, auth: a.auth }, a.channel_data && { channel_data: a.channel_data });
    }
    if (c.pos) query.since = text(c.pos);
    return `${http}/channels/${encodeURIComponent(c.name)}/events?${new URLSearchParams(query)}`;
  }

  /** A reader session's socket id (POST /app/{key}/sessions), kept until shortly before it expires. */
  function readerSession() {
    if (session && session.until > env.now()) return session.id;
    const s = (session = { until: Infinity });
    s.id = env.fetch(`${http}/sessions`, { method: 'POST' }).then(json).then((j) => {
      s.until = env.now() + (j.expires_in - 60) * 1000;
      return j.socket_id;
    });
    s.id.catch(() => session === s && (session = null));
    return s.id;
  }

  /**
   * Long-polls c from its position until stopped. Events take the socket's
   * path (duplicates dropped, gaps reported); a 410 is a resync from the
   * position it gives; 400/403/404 (no history, not allowed) end the reader.
   */
  function pollReader(c) {
    let live = true;
    let ctl;
    let errors = 0;
    (async () => {
      while (live) {
        try {
          const url = await eventsURL(c, { wait: o.pollWait });
          if (!live) break;
          ctl = env.AbortController && new env.AbortController();
          const r = await env.fetch(url, { headers: { Accept: 'application/json' }, signal: ctl?.signal });
          if (r.status === 401) session = null;
          const body = await (r.status === 410 ? r.json() : json(r));
          if (!live) break;
          if (r.status === 410) resumed(c, body);
          else body.events.forEach((f) => frame(c, f));
          if (!body.events?.length) c.pos = position(body);
          errors = 0;
          readerUp();
        } catch (e) {
          if (!live) break;
          if ([400, 403, 404].includes(e.status)) return fail(c, e);
          readerDown();
          await sleep(backoff(errors++, 500, 5000, env.random));
        }
      }
    })();
    return {
      stop() {
        live = false;
        ctl?.abort();
      },
    };
  }

  /**
   * Reads c as Server-Sent Events from its position. EventSource reconnects
   * by itself with Last-Event-ID; when it gives up (a non-200 answer) a new
   * one is opened after a backoff, with a new reader session. The stream is
   * asked for whole frames (format=frames) as unnamed messages, so every
   * event is read whatever its name, herald:position and resume_failed too.
   */
  function sseReader(c) {
    let live = true;
    let es = null;
    let errors = 0;
    const restart = () => {
      if (!live) return;
      readerDown();
      env.setTimeout(start, backoff(errors++, 500, 5000, env.random));
    };
    async function start() {
      if (!live) return;
      try {
        const url = await eventsURL(c, { format: 'frames' });
        if (!live) return;
        const source = (es = new env.EventSource(url));
        source.onopen = () => {
          errors = 0;
          readerUp();
        };
        source.onmessage = (e) => {
          if (live) frame(c, JSON.parse(e.data));
        };
        source.onerror = () => {
          if (source.readyState !== 2) return readerDown(); // reconnecting by itself
          source.close();
          session = null;
          restart();
        };
      } catch {
        restart();
      }
    }
    start();
    return {
      stop() {
        live = false;
        es?.close();
      },
    };
  }

  // ---- the page

  const offline = () => {
    if (socketId != null) return;
    env.clearTimeout(retryTimer);
    setState('offline');
  };
  const visibility = () => {
    if (hidden(env)) return channels.forEach(stopReader);
    wake();
    channels.forEach(startReader);
  };

  function hooks(add) {
    const m = add ? 'addEventListener' : 'removeEventListener';
    win?.[m]?.('online', wake);
    win?.[m]?.('offline', offline);
    env.document?.[m]?.('visibilitychange', visibility);
  }

  /** {connected, socketId, state, transport}: transport 'websocket', 'poll', 'sse' or null. */
  const getState = () => ({
    connected: state === 'live',
    socketId,
    state,
    transport: state === 'live' ? 'websocket' : state === 'polling' ? reads : null,
  });

  function disconnect() {
    const wasLive = socketId != null;
    halted = true;
    env.clearTimeout(retryTimer);
    detach();
    stopFallback();
    hooks(false);
    for (const c of channels.values()) {
      c.was ||= c.subscribed;
      c.subscribed = false;
    }
    if (wasLive) dom('disconnected', { code: 1000, reason: 'disconnect' });
    setState('offline');
    if (current === api) current = null;
  }

  const api = {
    /** 'connecting', 'live', 'reconnecting', 'polling' or 'offline'. */
    get state() {
      return state;
    },
    /** The live socket's id (for X-Socket-ID / toOthers), else null. */
    get socketId() {
      return socketId;
    },
    subscribe,
    unsubscribe,
    channel: (name) => channels.get(name)?.api,
    on,
    off(type, fn) {
      types.off(type, fn);
      return api;
    },
    /** Connection events: 'state', 'connected', 'disconnected', 'resync', 'message', 'error'. */
    bind(event, fn) {
      events.on(event, fn);
      return api;
    },
    unbind(event, fn) {
      events.off(event, fn);
      return api;
    },
    getState,
    connect() {
      if (halted) {
        halted = false;
        hooks(true);
        wake();
      }
      return api;
    },
    disconnect,
    polling: createPolling({ headers: o.headers, _env: o._env }),
  };

  if (o.compat && win) {
    Object.assign(win, {
      subscribeToChannel(name) {
        if (compatNames.has(name)) return channels.get(name)?.api;
        compatNames.add(name);
        return subscribe(name);
      },
      unsubscribeFromChannel(name) {
        if (compatNames.delete(name)) unsubscribe(name);
      },
      getWebSocketState: getState,
      pollingManager: api.polling,
    });
  }
  hooks(true);
  paintAll(api, state);
  open();
  return api;
}

// ---- polling the app's own endpoints

/**
 * A polling manager for the app's own JSON endpoints. Each job GETs its URL,
 * gives the parsed answer to the callback, and waits intervalMs before the
 * next (doubling, up to 8×, while requests fail). Every poll after the first
 * carries last_check: the answer's last_check (or timestamp, server_time), or
 * else the time the previous successful poll started. Jobs pause while the
 * tab is hidden and poll at once when it is visible again.
 * @param {{headers?: object|function, token?: string|function}} [opts] token: sent as a bearer token.
 */
function createPolling(opts = {}) {
  const jobs = new Map();
  let env;
  const resume = () => hidden(env) || jobs.forEach((j) => j.paused && j.run());

  function start(key, url, callback, intervalMs = 5000) {
    if (!env) {
      env = environment(opts._env);
      env.document?.addEventListener?.('visibilitychange', resume);
    }
    stop(key);
    const job = { live: true, last: null, errors: 0 };
    job.run = async () => {
      job.paused = false;
      if (!job.live) return;
      if (hidden(env)) return (job.paused = true);
      const started = new Date(env.now()).toISOString();
      const q = job.last == null ? '' : (url.includes('?') ? '&' : '?') + 'last_check=' + encodeURIComponent(job.last);
      let data;
      try {
        data = await json(await env.fetch(url + q, { headers: headers(), credentials: 'same-origin' }));
        job.last = data?.last_check ?? data?.timestamp ?? data?.server_time ?? started;
        job.errors = 0;
      } catch {
        job.errors++;
      }
      if (!job.live) return;
      if (!job.errors) {
        try {
          callback(data);
        } catch (e) {
          report(e);
        }
      }
      job.timer = env.setTimeout(job.run, intervalMs * 2 ** Math.min(job.errors, 3));
    };
    jobs.set(key, job);
    job.run();
  }

  function headers() {
    const token = value(opts.token);
    return { Accept: 'application/json', ...(token && { Authorization: 'Bearer ' + token }), ...value(opts.headers) };
  }

  function stop(key) {
    const job = jobs.get(key);
    if (!job) return;
    job.live = false;
    env.clearTimeout(job.timer);
    jobs.delete(key);
  }

  return { start, stop, stopAll: () => [...jobs.keys()].forEach(stop) };
}

// ---- the status element

const painted = new Set();

/**
 * Keeps el's text and class at 'live', 'reconnecting', 'polling' or
 * 'offline' (connecting has the class reconnecting and the text
 * 'connecting'). Returns a function that stops.
 * @param {Element} el
 * @param {{labels?: object, client?: object}} [opts] labels: text per state.
 */
function status(el, opts = {}) {
  const entry = { el, labels: opts.labels || {}, client: opts.client };
  painted.add(entry);
  paint(entry, (entry.client || current)?.state || 'offline');
  return () => painted.delete(entry);
}

function paintAll(client, state) {
  for (const e of painted) if (!e.client || e.client === client) paint(e, state);
}

function paint({ el, labels }, state) {
  const s = state === 'connecting' ? 'reconnecting' : state;
  el.textContent = labels[state] ?? (state === 'connecting' ? 'connecting' : labels[s] ?? s);
  for (const k of STATES) el.classList.toggle(k, k === s);
}

// ---- the namespace

let current = null;

const Herald = {
  version: VERSION,
  /**
   * The page's connection: created on the first call, returned by later ones.
   * @param {ConnectOptions} options
   */
  connect: (options) => current || (current = createClient(options)),
  /** A separate connection (tests, or a second app). */
  create: createClient,
  status,
  /** A new polling manager: Herald.polling({token}). */
  polling: createPolling,
  /** The default polling manager (no credentials). */
  pollingManager: createPolling(),
};

export { Herald };
export default Herald;
