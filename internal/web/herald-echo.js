// herald-echo.js: generated from herald-echo.mjs by build.mjs. Do not edit; edit herald-echo.mjs
// and run `node build.mjs`.
(function () {
'use strict';

/**
 * herald-echo.js: a plugin for pages that keep Laravel Echo (broadcaster
 * `reverb` or `pusher`) or a bare pusher-js 8.x client. Applied to the
 * existing instance, it makes every channel resume from its last position
 * after pusher-js reconnects by itself, drops replayed duplicates, and
 * reports lost history (`resync`), without changing a single `.listen()`.
 * No dependencies; pages that do not load it are unchanged.
 *
 *   HeraldEcho.install(window.Echo, { onResync(channel, info) { reload(); } });
 *
 * How it hooks into pusher-js (read in 8.6.0's source; no 8.x release since
 * 8.0.0 changed these objects):
 * - `pusher.send_event` (public): a `pusher:subscribe` gets `since`, the
 *   channel's last position, when known, else `"position": true`, on which
 *   Herald sends `herald:position` right after subscription_succeeded.
 * - `pusher.connection` (the ConnectionManager, public): its `state_change`
 *   to `connected`, which fires after the new socket is in place and before
 *   pusher-js resubscribes its channels.
 * - `pusher.connection.connection.transport.emit` (internal): pusher-js's
 *   decoder drops the top-level `epoch` and `offset` of a frame, so the plugin
 *   reads each raw frame one step before it, on the transport of the current
 *   socket (every transport: ws, xhr, sockjs). A frame to hide (a duplicate,
 *   herald:position, herald:resume_failed) is passed on as `activity`
 *   instead, so pusher-js's liveness check still counts it; everything else
 *   goes on unchanged. Were this object missing (a future pusher-js), the
 *   plugin would stay out of the way: subscribes go out unchanged.
 * - `pusher.unsubscribe` (public): a channel left is forgotten, so
 *   subscribing to it again starts afresh, as with stock pusher-js.
 *
 * This file (herald-echo.mjs, an ES module) is the source; herald-echo.js,
 * the classic script that sets window.HeraldEcho, is generated from it by
 * build.mjs.
 */

const VERSION = '0.1.0';
const HIDDEN = /^herald:(position|resume_failed)$/;
const PROTOCOL = /^pusher(_internal)?:/;

const DEFAULTS = {
  onResync: null, // fn(channelName, {channel, reason, epoch, offset})
  dedupeWindow: 100, // message ids remembered per channel without history
  messageId: (data) => (data && typeof data === 'object' ? data.message_id ?? data.event_id : undefined),
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

/** A position from "epoch:offset" or {epoch, offset}; null when absent. */
function position(p) {
  if (p == null || p === '') return null;
  if (typeof p === 'string') {
    const i = p.lastIndexOf(':');
    return i < 0 ? null : { epoch: p.slice(0, i), offset: +p.slice(i + 1) };
  }
  return { epoch: String(p.epoch), offset: +p.offset };
}

const text = (p) => (p ? `${p.epoch}:${p.offset}` : null);
const isEmpty = (p) => !!p && p.epoch === '' && p.offset === 0;
const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function report(e) {
  if (globalThis.reportError) globalThis.reportError(e);
  else console.error(e);
}

/** The pusher-js instance behind an Echo (echo.connector.pusher), or the Pusher itself. */
function pusherOf(target) {
  const p = target?.connector?.pusher || target;
  if (!p || typeof p.send_event !== 'function' || typeof p.connection?.bind !== 'function') {
    throw new TypeError('HeraldEcho.install: expected a Laravel Echo (broadcaster reverb or pusher) or a pusher-js instance');
  }
  return p;
}

const installs = new WeakMap(); // pusher → handle

/**
 * @typedef {object} InstallOptions
 * @property {function(string, {channel: string, reason: string, epoch?: string, offset?: number}): void} [onResync]
 *   Called when a channel may have missed events (herald:resume_failed: the
 *   history is gone, e.g. after a restart; a gap; a new epoch): refetch its
 *   data. Also dispatched as the DOM event `herald:resync` on window.
 * @property {number} [dedupeWindow] Message ids remembered per channel without history (100).
 * @property {function(object): *} [messageId] The id of an event's data (data.message_id ?? data.event_id).
 */

/**
 * Adds resume-from-offset and de-duplication to an Echo or pusher-js
 * instance. Installing twice on one instance returns the same handle (a
 * second onResync is added).
 * @param {object} target `window.Echo` (echo.connector.pusher is used) or a Pusher.
 * @param {InstallOptions} [options]
 */
function install(target, options = {}) {
  const pusher = pusherOf(target);
  const existing = installs.get(pusher);
  if (existing) {
    if (options.onResync) existing.listeners.add(options.onResync);
    return existing.handle;
  }
  const o = { ...DEFAULTS, ...options };
  const env = { window: globalThis.window, CustomEvent: globalThis.CustomEvent, ...o._env };
  const listeners = new Set(o.onResync ? [o.onResync] : []);
  const manager = pusher.connection;
  const records = new Map(); // channel name → {name, pos, subscribed, was, seen, sent}
  let blind = false; // the transport could not be hooked: leave subscribes alone
  let hooked = null; // {transport, emit, own}: the transport whose emit is wrapped

  const tracked = (name) => typeof name === 'string' && name[0] !== '#'; // not #server-to-user-…

  function record(name) {
    let c = records.get(name);
    if (!c) records.set(name, (c = { name, pos: null, subscribed: false, was: false, seen: [], sent: null }));
    return c;
  }

  /** The record of a frame's channel: one pusher-js knows, or one the plugin tracks. */
  function recordFor(name) {
    if (records.has(name)) return records.get(name);
    return tracked(name) && pusher.channel?.(name) ? record(name) : null;
  }

  // ---- outgoing: subscribes carry the position

  const sendEvent = pusher.send_event;
  const sendOwn = own(pusher, 'send_event');
  pusher.send_event = function (event, data, channel) {
    if (event === 'pusher:subscribe' && !blind && data && tracked(data.channel)) {
      const c = record(data.channel);
      c.sent = c.pos;
      data = { ...data };
      delete data.since;
      delete data.position;
      if (c.pos) data.since = { epoch: c.pos.epoch, offset: c.pos.offset };
      else data.position = true;
    }
    return sendEvent.call(this, event, data, channel);
  };

  const unsubscribe = pusher.unsubscribe;
  const unsubscribeOwn = own(pusher, 'unsubscribe');
  pusher.unsubscribe = function (name) {
    const r = unsubscribe.apply(this, arguments);
    if (!pusher.channel?.(name)) records.delete(name);
    return r;
  };

  // ---- incoming: raw frames, before pusher-js's decoder drops epoch and offset

  function onState(change) {
    if (change?.current !== 'connected') return;
    for (const c of records.values()) {
      c.was ||= c.subscribed;
      c.subscribed = false;
    }
    hook();
  }

  /** Wraps the emit of the current socket's transport (once per transport). */
  function hook() {
    const t = manager.connection?.transport;
    if (!t || typeof t.emit !== 'function') {
      if (!blind) console.warn('HeraldEcho: this pusher-js has no connection.transport; resume is off');
      blind = true;
      return;
    }
    blind = false;
    if (hooked?.transport === t) return;
    unhook();
    const emit = t.emit;
    hooked = { transport: t, emit, own: own(t, 'emit') };
    t.emit = function (name, message, ...rest) {
      if (name === 'message' && typeof message?.data === 'string' && !pass(message.data)) {
        return emit.call(this, 'activity');
      }
      return emit.call(this, name, message, ...rest);
    };
  }

  function unhook() {
    if (!hooked) return;
    const { transport: t, emit } = hooked;
    if (hooked.own) t.emit = emit;
    else delete t.emit;
    hooked = null;
  }

  /** Whether the raw frame goes on to pusher-js; tracks positions on the way. */
  function pass(raw) {
    let f;
    try {
      f = JSON.parse(raw);
    } catch {
      return true; // pusher-js reports it
    }
    if (!f || typeof f.event !== 'string' || typeof f.channel !== 'string') return true;
    try {
      const c = recordFor(f.channel);
      if (HIDDEN.test(f.event)) {
        if (c) (f.event === 'herald:position' ? positioned : resumed)(c, parse(f.data));
        return false;
      }
      if (!c) return true;
      if (f.event === 'pusher_internal:subscription_succeeded') c.subscribed = true;
      if (PROTOCOL.test(f.event)) return true;
      return fresh(c, f);
    } catch (e) {
      report(e);
      return true;
    }
  }

  /** herald:resume_failed: d is the channel's position now. */
  function resumed(c, d) {
    const p = position(d);
    // From the empty position, a refusal at the empty position means the
    // channel keeps no history: nothing to resume, nothing to report.
    if (isEmpty(c.sent) && isEmpty(p)) {
      c.pos = null;
      return;
    }
    c.pos = p;
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

  /**
   * Whether f is new: by position on channels with history (a gap or a new
   * epoch is delivered and reported as a resync), else by message id within
   * a bounded window.
   */
  function fresh(c, f) {
    if (typeof f.offset !== 'number') return unseen(c, o.messageId(parse(f.data), f));
    const p = c.pos;
    let why = '';
    if (p && p.epoch === f.epoch) {
      if (f.offset <= p.offset) return false;
      if (f.offset > p.offset + 1) why = 'gap';
    } else if (p && p.epoch !== '') why = 'epoch';
    else if (p && f.offset > 1) why = 'gap'; // from the empty position, the first event is 1
    c.pos = { epoch: String(f.epoch), offset: f.offset };
    if (why) resync(c, why);
    return true;
  }

  function unseen(c, id) {
    if (id == null || !o.dedupeWindow) return true;
    if (c.seen.includes(id)) return false;
    if (c.seen.push(id) > o.dedupeWindow) c.seen.shift();
    return true;
  }

  function resync(c, reason) {
    const info = { channel: c.name, reason, epoch: c.pos?.epoch, offset: c.pos?.offset };
    for (const fn of [...listeners]) {
      try {
        fn(c.name, info);
      } catch (e) {
        report(e);
      }
    }
    const win = env.window;
    if (win?.dispatchEvent && env.CustomEvent) {
      try {
        win.dispatchEvent(new env.CustomEvent('herald:resync', { detail: info }));
      } catch (e) {
        report(e);
      }
    }
  }

  // ---- install

  for (const ch of pusher.allChannels?.() || []) {
    if (tracked(ch.name)) record(ch.name).subscribed = !!ch.subscribed;
  }
  manager.bind('state_change', onState);
  if (manager.state === 'connected') hook();

  const handle = {
    version: VERSION,
    /** The pusher-js instance. */
    pusher,
    /** The last position of channel name ("epoch:offset"), or null. */
    position: (name) => text(records.get(name)?.pos),
    /**
     * Sets the position channel name resumes from at its next subscribe
     * (e.g. one kept in sessionStorage across a page load); null forgets it.
     */
    setPosition(name, pos) {
      record(name).pos = position(pos);
      return handle;
    },
    /** Removes every hook; pusher-js is as before. */
    uninstall() {
      manager.unbind('state_change', onState);
      unhook();
      if (sendOwn) pusher.send_event = sendEvent;
      else delete pusher.send_event;
      if (unsubscribeOwn) pusher.unsubscribe = unsubscribe;
      else delete pusher.unsubscribe;
      installs.delete(pusher);
    },
  };
  installs.set(pusher, { handle, listeners });
  return handle;
}

const HeraldEcho = { version: VERSION, install };


globalThis.HeraldEcho = HeraldEcho;
})();
