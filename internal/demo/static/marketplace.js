// The seller dashboard: a stock Laravel Echo page (broadcaster 'reverb',
// pusher-js underneath) with the herald-echo plugin installed right after
// Echo is created. Its listeners are what a Laravel page has; the plugin
// makes them resume without loss or duplicates after pusher-js reconnects
// by itself. The order list appends every delivery as it comes (a
// duplicate would show twice): what keeps it exact is the plugin.
'use strict';

(() => {
  const { api, el, toast, ago, clock } = Demo;
  const $ = (id) => document.getElementById(id);
  const ORDERS = 'company.1.marketplace.2.orders';
  const userId = Demo.meta('user-id');
  // What tests (and the curious, in the console) can read.
  window.demo = { delivered: [], notifications: [], resyncs: [], states: [], reconnects: 0 };

  let orders = []; // oldest first, as delivered
  let loaded = false;
  let fresh = null; // the id of an order to highlight

  const money = (n, currency = 'EUR') => new Intl.NumberFormat('en-IE', { style: 'currency', currency }).format(n);

  /** Fetches the orders; deliveries that came before the answer are kept. */
  async function load() {
    const data = await api('GET', '/api/orders');
    const max = data.orders.reduce((m, o) => Math.max(m, o.id), 0);
    orders = data.orders.concat(orders.filter((o) => o.id > max));
    loaded = true;
    render();
  }

  function render() {
    if (!loaded) return;
    const body = $('orders');
    body.replaceChildren(...orders.slice().reverse().map((o) => el(o.id === fresh ? 'tr.flash' : 'tr', { 'data-id': o.id },
      el('td', {}, el('span.order-no', {}, o.number)),
      el('td', {}, o.customer),
      el('td.muted-strong.col-product', {}, o.product),
      el('td.num', {}, String(o.quantity)),
      el('td.num.total', {}, money(Number(o.total), o.currency)),
      el('td.col-updated', {}, el('time', { dateTime: o.created_at, 'data-ago': '', title: new Date(o.created_at).toLocaleString() }, ago(o.created_at))))));
    $('orders-empty').hidden = orders.length > 0;
    $('stat-orders').textContent = String(orders.length);
    $('stat-revenue').textContent = money(orders.reduce((s, o) => s + Number(o.total), 0));
    $('stat-events').textContent = String(window.demo.delivered.length + window.demo.notifications.length);
  }

  // ---- Echo, as in resources/js/echo.js, plus the plugin

  const target = Demo.herald();
  const EchoClass = Echo.default; // the IIFE build's global is the module
  window.Echo = new EchoClass({
    broadcaster: 'reverb',
    key: target.key,
    wsHost: target.host,
    wsPort: target.port,
    wssPort: target.port,
    wsPath: target.path,
    forceTLS: target.tls,
    enabledTransports: ['ws', 'wss'],
  });
  const plugin = HeraldEcho.install(window.Echo, {
    onResync(channel, info) {
      window.demo.resyncs.push(info);
      if (channel === ORDERS) load().catch(() => {});
    },
  });
  window.heraldEcho = plugin;
  // The plugin's resume position for the orders channel ("epoch:offset").
  setInterval(() => { $('position').textContent = plugin.position(ORDERS) ?? '–'; }, 500);

  window.Echo.channel(ORDERS).listen('.order.created', (order) => {
    window.demo.delivered.push(order.id);
    orders.push(order);
    fresh = order.id;
    render();
    toast({ kind: 'created', title: `New order ${order.number}`, body: `${order.customer} · ${order.quantity} × ${order.product} · ${money(Number(order.total), order.currency)}` });
  });

  window.Echo.private(`App.Models.User.${userId}`)
    .notification((n) => {
      window.demo.notifications.push(n.id);
      const list = $('notes');
      list.prepend(el('li', {}, el('strong', {}, n.title), el('p', {}, n.body), el('time.muted', {}, clock(n.created_at))));
      while (list.children.length > 5) list.lastElementChild.remove();
      $('notes-empty').hidden = true;
      render();
      toast({ kind: 'info', title: n.title, body: n.body });
    })
    .error((e) => toast({ kind: 'error', title: 'Private channel refused', body: `/broadcasting/auth answered ${e?.status ?? 'an error'}` }));

  // ---- the connection badge, from pusher-js's state

  const pusher = window.Echo.connector.pusher;
  const BADGE = {
    initialized: ['reconnecting', 'Connecting…'], connecting: ['reconnecting', 'Connecting…'],
    connected: ['live', 'Live'], unavailable: ['reconnecting', 'Reconnecting…'],
    disconnected: ['offline', 'Offline'], failed: ['offline', 'Offline'],
  };
  let everConnected = false;
  function paint(state) {
    const [cls, label] = BADGE[state] ?? ['offline', state];
    const badge = $('live');
    badge.className = `conn ${cls}`;
    badge.textContent = label;
  }
  paint(pusher.connection.state);
  pusher.connection.bind('state_change', ({ current }) => {
    window.demo.states.push(current);
    if (current === 'connected') {
      if (everConnected) window.demo.reconnects++;
      everConnected = true;
      $('stat-reconnects').textContent = String(window.demo.reconnects);
      $('stat-resyncs').textContent = window.demo.resyncs.length ? `${window.demo.resyncs.length} refetch` : 'no refetch needed';
    }
    paint(current);
  });

  // ---- buttons

  async function post(path, what) {
    try {
      await api('POST', path);
    } catch (e) {
      toast({ kind: 'error', title: `Could not ${what}`, body: e.message });
    }
  }
  $('new-order').addEventListener('click', () => post('/api/orders', 'create the order'));
  $('notify').addEventListener('click', () => post('/api/notifications', 'send the notification'));
  const pause = $('pause');
  pause.addEventListener('click', () => {
    const paused = pause.getAttribute('aria-pressed') !== 'true';
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause live';
    if (paused) pusher.disconnect();
    else pusher.connect();
  });

  load().catch((e) => toast({ kind: 'error', title: 'Could not load the orders', body: e.message }));
})();
