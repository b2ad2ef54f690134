// Herald dashboard: live numbers and graphs (api/live "samples"/"sample"),
// the occupied channels (api/overview, every 2 s) and the debug console
// (api/live "log" and "event"), and the test publish form (api/publish).
// Everything from the server is put in the page as text, never as HTML:
// channel names, event data and log lines come from clients.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const maxLines = 500;
  // logSeq: the last console line shown (a new stream repeats the recent ones).
  const state = { app: new URLSearchParams(location.search).get('app') || '', channel: '', samples: [], paused: false, held: 0, source: null, logSeq: 0 };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(n) {
    if (n === undefined || n === null) return '–';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    if (!Number.isInteger(n)) return n < 10 ? n.toFixed(1) : Math.round(n).toString();
    return n.toLocaleString('en');
  }

  // --- numbers and graphs ---------------------------------------------
  function spark(card, values) {
    const svg = $(card).querySelector('svg');
    const w = 300, h = 48, n = values.length;
    if (n < 2) { svg.querySelector('.line').setAttribute('d', ''); svg.querySelector('.area').setAttribute('d', ''); return; }
    const top = Math.max(1, ...values);
    const pts = values.map((v, i) => [(i / (n - 1)) * w, h - 3 - (v / top) * (h - 6)]);
    const line = 'M' + pts.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join('L');
    svg.querySelector('.line').setAttribute('d', line);
    svg.querySelector('.area').setAttribute('d', line + 'L' + w + ',' + h + 'L0,' + h + 'Z');
  }

  function peak(values) { return values.length ? Math.max(...values) : 0; }

  function renderNumbers() {
    const s = state.samples;
    const last = s[s.length - 1];
    if (!last) return;
    const conns = s.map((p) => p.connections), chans = s.map((p) => p.channels);
    const out = s.map((p) => p.out_per_s), api = s.map((p) => p.api_per_s);
    $('connections').textContent = fmt(last.connections);
    $('channels').textContent = fmt(last.channels);
    $('messages').textContent = fmt(last.out_per_s);
    $('api').textContent = fmt(last.api_per_s);
    const span = Math.round((s.length - 1) / 60) >= 1 ? Math.round((s.length - 1) / 60) + ' min' : (s.length - 1) + ' s';
    $('connections-sub').textContent = 'peak ' + fmt(peak(conns)) + ' in the last ' + span;
    $('channels-sub').textContent = 'peak ' + fmt(peak(chans)) + ' in the last ' + span;
    $('messages-sub').textContent = 'out · in ' + fmt(last.in_per_s) + '/s';
    $('api-sub').textContent = 'peak ' + fmt(peak(api)) + '/s';
    spark('card-connections', conns);
    spark('card-channels', chans);
    spark('card-messages', out);
    spark('card-api', api);
  }

  // --- channels ---------------------------------------------------------
  async function refreshOverview() {
    let ans;
    try {
      const res = await fetch('api/overview?app=' + encodeURIComponent(state.app), { credentials: 'same-origin' });
      if (!res.ok) return;
      ans = await res.json();
    } catch (_) { return; }
    const sel = $('app');
    if (sel.options.length !== ans.apps.length) {
      sel.replaceChildren(...ans.apps.map((a) => { const o = el('option', '', a.id); o.value = a.id; return o; }));
    }
    for (const a of ans.apps) if (a.id === ans.app) $('app-key').textContent = 'key ' + a.key;
    sel.value = ans.app;
    if (!state.app) { state.app = ans.app; }
    $('version').textContent = ans.version ? 'v' + ans.version.replace(/^v/, '') : '';
    $('occupied').textContent = ans.occupied + (ans.occupied > ans.channels.length ? ' · busiest ' + ans.channels.length + ' shown' : '');
    const rows = ans.channels.map((c) => {
      const tr = el('tr', 'pick');
      tr.dataset.channel = c.name;
      tr.title = 'Tail ' + c.name + ' in the console';
      const name = el('td', 'name', c.name);
      if (c.members && c.members.length) {
        const ms = el('div', 'members');
        for (const m of c.members) {
          const chip = el('span', 'member', m.id);
          if (m.info) chip.title = JSON.stringify(m.info);
          ms.append(chip);
        }
        name.append(ms);
      }
      const kind = el('td');
      kind.append(el('span', 'kind kind-' + c.kind, c.kind));
      tr.append(name, kind, el('td', 'num', fmt(c.subscriptions)), el('td', 'num', c.users ? fmt(c.users) : ''));
      tr.addEventListener('click', () => { $('tail-channel').value = c.name; $('pub-channel').value = c.name; tail(c.name); });
      return tr;
    });
    $('channel-rows').replaceChildren(...rows);
    $('no-channels').hidden = rows.length > 0;
  }

  // --- console ----------------------------------------------------------
  function time(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function line(t, tag, parts) {
    if (state.paused) { state.held++; $('pause').textContent = 'Resume (' + state.held + ')'; return; }
    const li = el('li');
    li.className = 'entry entry-' + tag;
    const body = el('span', 'body');
    for (const p of parts) body.append(typeof p === 'string' ? document.createTextNode(p) : p);
    li.append(el('span', 'time', time(t)), el('span', 'tag tag-' + tag, tag), body);
    const list = $('console');
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(li);
    while (list.children.length > maxLines) list.firstChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function kv(k, v) { return [el('span', 'k', ' ' + k + '='), String(v)]; }

  function onEvent(e) {
    let data = e.data;
    if (typeof data === 'string') {
      try { data = JSON.stringify(JSON.parse(data)); } catch (_) { /* plain text */ }
    } else if (data !== undefined) {
      data = JSON.stringify(data);
    }
    const parts = [el('b', '', e.event), ' on ', el('b', '', e.channel)];
    if (e.offset) parts.push(...kv('offset', e.offset));
    if (e.user_id) parts.push(...kv('user', e.user_id));
    if (e.exclude) parts.push(...kv('except', e.exclude));
    if (data !== undefined) parts.push('\n' + data);
    line(e.t, 'event', parts);
  }

  function onLog(e) {
    if (e.seq <= state.logSeq) return;
    state.logSeq = e.seq;
    let tag = e.level.toLowerCase();
    if (e.msg === 'connected') tag = 'connect';
    else if (e.msg === 'disconnected' || e.msg === 'closing connection') tag = 'disconnect';
    else if (e.msg.includes('refused')) tag = 'refused';
    const parts = [el('b', '', e.msg)];
    for (const [k, v] of e.attrs || []) parts.push(...kv(k, v));
    line(Date.parse(e.time), tag, parts);
  }

  function tail(channel) {
    state.channel = channel.trim();
    if (state.source) state.source.close();
    const q = new URLSearchParams({ app: state.app, channel: state.channel });
    const src = new EventSource('api/live?' + q);
    state.source = src;
    src.addEventListener('open', () => {
      $('status').textContent = 'live · ' + (state.channel || 'all channels');
      $('status').className = 'pill pill-live';
    });
    src.addEventListener('error', () => {
      $('status').textContent = 'reconnecting…';
      $('status').className = 'pill pill-wait';
    });
    src.addEventListener('samples', (m) => { state.samples = JSON.parse(m.data); renderNumbers(); });
    src.addEventListener('sample', (m) => {
      state.samples.push(JSON.parse(m.data));
      if (state.samples.length > 300) state.samples.shift();
      renderNumbers();
    });
    src.addEventListener('log', (m) => onLog(JSON.parse(m.data)));
    src.addEventListener('event', (m) => onEvent(JSON.parse(m.data)));
  }

  // --- publish ----------------------------------------------------------
  async function publish(ev) {
    ev.preventDefault();
    const out = $('pub-result');
    out.className = 'muted';
    out.textContent = 'publishing…';
    try {
      const res = await fetch('api/publish', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-Herald-Dashboard': '1' },
        body: JSON.stringify({ app: state.app, channel: $('pub-channel').value.trim(), event: $('pub-event').value.trim(), data: $('pub-data').value }),
      });
      const ans = await res.json().catch(() => ({}));
      out.className = res.ok ? 'ok' : 'bad';
      out.textContent = res.ok ? 'published ✓' : (ans.error || 'HTTP ' + res.status);
    } catch (e) {
      out.className = 'bad';
      out.textContent = String(e);
    }
  }

  // --- wiring -----------------------------------------------------------
  $('tail-form').addEventListener('submit', (ev) => { ev.preventDefault(); tail($('tail-channel').value); });
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').classList.toggle('on', state.paused);
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    state.held = 0;
  });
  $('clear').addEventListener('click', () => $('console').replaceChildren());
  $('publish-form').addEventListener('submit', publish);
  $('app').addEventListener('change', () => {
    state.app = $('app').value;
    history.replaceState(null, '', '?app=' + encodeURIComponent(state.app));
    $('console').replaceChildren();
    state.logSeq = 0;
    refreshOverview();
    tail(state.channel);
  });

  refreshOverview().then(() => tail(''));
  setInterval(() => { if (!document.hidden) refreshOverview(); }, 2000);
})();
