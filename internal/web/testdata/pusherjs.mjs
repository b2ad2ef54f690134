// A small model of pusher-js 8.x for herald-echo.js's tests (test/echo*.test.mjs):
// the same objects, method names and call paths as pusher-js's
// src/core (Pusher, Channels, Channel and its private/presence/encrypted
// kinds, ConnectionManager, Connection, TransportConnection, Dispatcher), with
// a socket driven by the test instead of the network, and a minimal Laravel
// Echo on top (echo.connector.pusher, channel().listen('.name')). pusher-js's
// decoder is copied as it is: it keeps event, channel, data and user_id only.

/** pusher-js's events/dispatcher.ts. */
export class Dispatcher {
  constructor(failThrough) {
    this.callbacks = new Map();
    this.global_callbacks = [];
    this.failThrough = failThrough;
  }
  bind(name, fn) {
    if (!this.callbacks.has(name)) this.callbacks.set(name, []);
    this.callbacks.get(name).push(fn);
    return this;
  }
  bind_global(fn) {
    this.global_callbacks.push(fn);
    return this;
  }
  unbind(name, fn) {
    if (name == null) this.callbacks.clear();
    else if (!fn) this.callbacks.delete(name);
    else this.callbacks.set(name, (this.callbacks.get(name) || []).filter((f) => f !== fn));
    return this;
  }
  emit(name, data, metadata) {
    for (const fn of this.global_callbacks) fn(name, data);
    const fns = this.callbacks.get(name) || [];
    const args = metadata ? [data, metadata] : data ? [data] : [];
    if (fns.length) for (const fn of [...fns]) fn(...args);
    else this.failThrough?.(name, data);
    return this;
  }
}

/** protocol.ts decodeMessage: top-level fields other than these are dropped. */
function decodeMessage(messageEvent) {
  const m = JSON.parse(messageEvent.data);
  let data = m.data;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(m.data);
    } catch {
      // stays a string
    }
  }
  const ev = { event: m.event, channel: m.channel, data };
  if (m.user_id) ev.user_id = m.user_id;
  return ev;
}

/** transport_connection.ts: the socket's frames arrive here as {data}. */
export class TransportConnection extends Dispatcher {
  constructor() {
    super();
    this.state = 'open';
    this.sent = [];
  }
  send(data) {
    this.sent.push(JSON.parse(data));
    return true;
  }
  close() {
    this.onClose();
  }
  // private in pusher-js, called from socket.onmessage / onclose
  onMessage(message) {
    this.emit('message', message);
  }
  onClose() {
    this.state = 'closed';
    this.emit('closed', { code: 1006 });
  }
  // --- driven by tests
  recv(frame) {
    this.onMessage({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }
  frames(event) {
    return this.sent.filter((f) => f.event === event);
  }
}

/** connection.ts: decodes the transport's messages. */
class Connection extends Dispatcher {
  constructor(id, transport) {
    super();
    this.id = id;
    this.transport = transport;
    const listeners = {
      message: (m) => {
        let ev;
        try {
          ev = decodeMessage(m);
        } catch (e) {
          this.emit('error', { type: 'MessageParseError', error: e, data: m.data });
        }
        if (ev !== undefined) this.emit('message', ev);
      },
      activity: () => this.emit('activity'),
      closed: () => {
        for (const [k, fn] of Object.entries(listeners)) transport.unbind(k, fn);
        this.transport = null;
        this.emit('closed');
      },
    };
    for (const [k, fn] of Object.entries(listeners)) transport.bind(k, fn);
  }
  send_event(name, data, channel) {
    const ev = { event: name, data };
    if (channel) ev.channel = channel;
    return this.transport.send(JSON.stringify(ev));
  }
}

/** connection_manager.ts: one per Pusher, across reconnects. */
class ConnectionManager extends Dispatcher {
  constructor() {
    super();
    this.state = 'initialized';
    this.connection = null;
    this.socket_id = undefined;
    this.activity = 0; // resetActivityCheck calls
    this.callbacks_ = {
      message: (m) => {
        this.activity++;
        this.emit('message', m);
      },
      activity: () => this.activity++,
      closed: () => {
        this.abandonConnection();
        this.updateState('connecting');
      },
    };
  }
  /** A handshake succeeded on a new socket (the test drives it). */
  open(socketId) {
    const transport = new TransportConnection();
    const connection = new Connection(socketId, transport);
    this.connection = connection;
    for (const [k, fn] of Object.entries(this.callbacks_)) connection.bind(k, fn);
    this.socket_id = socketId;
    this.updateState('connected', { socket_id: socketId });
    return transport;
  }
  abandonConnection() {
    if (!this.connection) return;
    for (const [k, fn] of Object.entries(this.callbacks_)) this.connection.unbind(k, fn);
    const c = this.connection;
    this.connection = null;
    return c;
  }
  send_event(name, data, channel) {
    return this.connection ? this.connection.send_event(name, data, channel) : false;
  }
  updateState(state, data) {
    const previous = this.state;
    this.state = state;
    if (previous !== state) {
      this.emit('state_change', { previous, current: state });
      this.emit(state, data);
    }
  }
}

/** channel.ts */
export class Channel extends Dispatcher {
  constructor(name, pusher) {
    super();
    this.name = name;
    this.pusher = pusher;
    this.subscribed = false;
    this.subscriptionPending = false;
    this.subscriptionCancelled = false;
  }
  authorize(socketId, callback) {
    return callback(null, { auth: '' });
  }
  trigger(event, data) {
    return this.pusher.send_event(event, data, this.name);
  }
  disconnect() {
    this.subscribed = false;
    this.subscriptionPending = false;
  }
  handleEvent(event) {
    if (event.event === 'pusher_internal:subscription_succeeded') {
      this.subscriptionPending = false;
      this.subscribed = true;
      if (this.subscriptionCancelled) this.pusher.unsubscribe(this.name);
      else this.emit('pusher:subscription_succeeded', event.data);
    } else if (event.event.indexOf('pusher_internal:') !== 0) {
      this.emit(event.event, event.data, {});
    }
  }
  subscribe() {
    if (this.subscribed) return;
    this.subscriptionPending = true;
    this.subscriptionCancelled = false;
    this.authorize(this.pusher.connection.socket_id, (error, data) => {
      this.pusher.send_event('pusher:subscribe', { auth: data.auth, channel_data: data.channel_data, channel: this.name });
    });
  }
  unsubscribe() {
    this.subscribed = false;
    this.pusher.send_event('pusher:unsubscribe', { channel: this.name });
  }
  cancelSubscription() {
    this.subscriptionCancelled = true;
  }
  reinstateSubscription() {
    this.subscriptionCancelled = false;
  }
}

/** private_channel.ts: authorizes through the auth endpoint (here: asynchronously). */
class PrivateChannel extends Channel {
  authorize(socketId, callback) {
    setImmediate(() => callback(null, { auth: `key:sig-${socketId}-${this.name}`, channel_data: this.channelData }));
  }
}

/** presence_channel.ts: members, user_id in the metadata. */
class PresenceChannel extends PrivateChannel {
  channelData = JSON.stringify({ user_id: '7', user_info: { name: 'U7' } });
  members = new Map();
  handleEvent(event) {
    const { data } = event;
    switch (event.event) {
      case 'pusher_internal:subscription_succeeded':
        this.members = new Map(Object.entries(data.presence.hash));
        return super.handleEvent(event);
      case 'pusher_internal:member_added':
        this.members.set(data.user_id, data.user_info);
        return this.emit('pusher:member_added', { id: data.user_id, info: data.user_info });
      case 'pusher_internal:member_removed':
        this.members.delete(data.user_id);
        return this.emit('pusher:member_removed', { id: data.user_id });
    }
    if (event.event.indexOf('pusher_internal:') === 0) return;
    this.emit(event.event, event.data, event.user_id ? { user_id: event.user_id } : {});
  }
}

/** encrypted_channel.ts: decrypts in handleEvent (here: base64 JSON "ciphertext"). */
class EncryptedChannel extends PrivateChannel {
  handleEvent(event) {
    if (/^pusher(_internal)?:/.test(event.event)) return super.handleEvent(event);
    const { ciphertext, nonce } = event.data || {};
    if (!ciphertext || !nonce) return; // pusher-js logs "Unexpected format for encrypted event"
    this.emit(event.event, JSON.parse(Buffer.from(ciphertext, 'base64').toString()));
  }
}

/** channels.ts */
class Channels {
  channels = {};
  add(name, pusher) {
    if (!this.channels[name]) {
      const Kind = name.startsWith('private-encrypted-')
        ? EncryptedChannel
        : name.startsWith('private-')
          ? PrivateChannel
          : name.startsWith('presence-')
            ? PresenceChannel
            : Channel;
      this.channels[name] = new Kind(name, pusher);
    }
    return this.channels[name];
  }
  all() {
    return Object.values(this.channels);
  }
  find(name) {
    return this.channels[name];
  }
  remove(name) {
    const c = this.channels[name];
    delete this.channels[name];
    return c;
  }
  disconnect() {
    for (const c of this.all()) c.disconnect();
  }
}

/** pusher.ts */
export class Pusher {
  constructor(key = 'app-key') {
    this.key = key;
    this.channels = new Channels();
    this.global_emitter = new Dispatcher();
    this.connection = new ConnectionManager();
    this.connection.bind('connected', () => this.subscribeAll());
    this.connection.bind('message', (event) => {
      if (event.channel) this.channel(event.channel)?.handleEvent(event);
      if (event.event.indexOf('pusher_internal:') !== 0) this.global_emitter.emit(event.event, event.data);
    });
    this.connection.bind('connecting', () => this.channels.disconnect());
    this.connection.bind('disconnected', () => this.channels.disconnect());
  }
  channel(name) {
    return this.channels.find(name);
  }
  allChannels() {
    return this.channels.all();
  }
  bind(name, fn) {
    this.global_emitter.bind(name, fn);
    return this;
  }
  bind_global(fn) {
    this.global_emitter.bind_global(fn);
    return this;
  }
  subscribeAll() {
    for (const name in this.channels.channels) this.subscribe(name);
  }
  subscribe(name) {
    const channel = this.channels.add(name, this);
    if (channel.subscriptionPending && channel.subscriptionCancelled) channel.reinstateSubscription();
    else if (!channel.subscriptionPending && this.connection.state === 'connected') channel.subscribe();
    return channel;
  }
  unsubscribe(name) {
    let channel = this.channels.find(name);
    if (channel && channel.subscriptionPending) channel.cancelSubscription();
    else {
      channel = this.channels.remove(name);
      if (channel && channel.subscribed) channel.unsubscribe();
    }
  }
  send_event(name, data, channel) {
    return this.connection.send_event(name, data, channel);
  }

  // --- driven by tests
  /** Opens a new socket (a successful handshake); returns its transport. */
  connect(socketId = `1.${++Pusher.sockets}`) {
    this.transport = this.connection.open(socketId);
    return this.transport;
  }
  /** The socket closes (1006); pusher-js would reconnect after a while. */
  drop() {
    this.transport.close();
  }
  static sockets = 0;
}

/** laravel-echo's PusherConnector/PusherChannel, as far as the tests need. */
export class Echo {
  constructor(pusher = new Pusher()) {
    this.connector = { pusher };
  }
  channel(name) {
    return echoChannel(this.connector.pusher, name);
  }
  private(name) {
    return echoChannel(this.connector.pusher, 'private-' + name);
  }
  encryptedPrivate(name) {
    return echoChannel(this.connector.pusher, 'private-encrypted-' + name);
  }
  join(name) {
    return echoChannel(this.connector.pusher, 'presence-' + name);
  }
  leave(name) {
    for (const n of [name, 'private-' + name, 'private-encrypted-' + name, 'presence-' + name]) {
      this.connector.pusher.unsubscribe(n);
    }
  }
}

function echoChannel(pusher, name) {
  const subscription = pusher.subscribe(name);
  const format = (e) => (e.startsWith('.') || e.startsWith('\\') ? e.slice(1) : 'App\\Events\\' + e);
  const ch = {
    name,
    subscription,
    listen(event, fn) {
      subscription.bind(format(event), fn);
      return ch;
    },
    listenToAll(fn) {
      subscription.bind_global((event, data) => {
        if (event.startsWith('pusher:')) return;
        fn(event, data);
      });
      return ch;
    },
    whisper(event, data) {
      subscription.trigger('client-' + event, data);
      return ch;
    },
  };
  return ch;
}

// ---- frames

export const frame = (event, channel, data, extra = {}) => ({
  event,
  channel,
  data: typeof data === 'string' ? data : JSON.stringify(data),
  ...extra,
});
export const ev = (channel, event, data, epoch, offset) => frame(event, channel, data, { epoch, offset });
export const succeeded = (channel, data = {}) => frame('pusher_internal:subscription_succeeded', channel, data);
export const positionAt = (channel, epoch, offset) => frame('herald:position', channel, { epoch, offset });
export const resumeFailed = (channel, epoch, offset) => frame('herald:resume_failed', channel, { epoch, offset });

/** Lets setImmediate callbacks (the private channels' authorization) run. */
export async function flush() {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}
