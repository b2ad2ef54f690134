// The "All tickets" page: herald.js delivers ticket_created (published by
// the backend through POST /broadcast), ticket_status_changed and
// ticket_assigned (through the Pusher HTTP API); the list and the event log
// follow, and a toast tells of the changes other windows made. A page that reconnects resumes from its last position;
// when history cannot cover the gap (a `resync`), it refetches the list.
'use strict';

(() => {
  const { api, el, toast, ago, clock, initials } = Demo;
  const $ = (id) => document.getElementById(id);
  const LABEL = {
    new: 'New', open: 'Open', pending: 'Pending', resolved: 'Resolved',
    low: 'Low', normal: 'Normal', high: 'High', urgent: 'Urgent',
  };
  const VIA = { ticket_created: 'POST /broadcast', ticket_status_changed: 'HTTP API', ticket_assigned: 'HTTP API' };

  const state = { tickets: new Map(), statuses: [], agents: [], filter: 'all', loaded: false };
  const rows = new Map(); // ticket id → <tr>
  // What tests (and the curious, in the console) can read.
  window.demo = { events: [], resyncs: 0 };

  // ---- who is at this window

  const me = $('me');
  function setupAgents(agents) {
    if (me.options.length) return;
    const wanted = new URLSearchParams(location.search).get('as') || sessionStorage.getItem('demo-agent');
    for (const a of agents) me.append(el('option', { value: a }, a));
    me.value = agents.includes(wanted) ? wanted : agents[0];
    me.addEventListener('change', () => sessionStorage.setItem('demo-agent', me.value));
  }
  const who = (by) => by || 'Someone';

  // ---- the list

  /** Keeps the newer version of a ticket; true when it replaced what was shown. */
  function upsert(t) {
    const cur = state.tickets.get(t.id);
    if (cur && cur.version >= t.version) return false;
    state.tickets.set(t.id, t);
    return true;
  }

  async function load() {
    const data = await api('GET', '/api/tickets');
    state.statuses = data.statuses;
    state.agents = data.agents;
    setupAgents(data.agents);
    for (const t of data.tickets) upsert(t);
    state.loaded = true;
    render();
  }

  function render() {
    if (!state.loaded) return;
    renderFilters();
    const list = [...state.tickets.values()]
      .filter((t) => state.filter === 'all' || t.status === state.filter)
      .sort((a, b) => b.id - a.id);
    const body = $('tickets');
    const keep = new Set(list.map((t) => t.id));
    for (const [id, row] of rows) if (!keep.has(id)) row.remove();
    list.forEach((t, i) => {
      let row = rows.get(t.id);
      if (!row) rows.set(t.id, (row = buildRow(t.id)));
      fillRow(row, t);
      // Move only rows out of place, so a control in use keeps its focus.
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] ?? null);
    });
    $('empty').hidden = list.length > 0;
  }

  function renderFilters() {
    const box = $('filters');
    const counts = { all: state.tickets.size };
    for (const t of state.tickets.values()) counts[t.status] = (counts[t.status] ?? 0) + 1;
    box.replaceChildren(...['all', ...state.statuses].map((s) => el('button.filter', {
      type: 'button', 'aria-pressed': String(state.filter === s),
      onclick: () => { state.filter = s; render(); },
    }, s === 'all' ? 'All' : LABEL[s], el('span.count', {}, String(counts[s] ?? 0)))));
  }

  function buildRow(id) {
    const status = el('select.pill', { 'aria-label': `Status of ticket #${id}`, onchange: (e) => change(id, 'status', e.target.value) },
      state.statuses.map((s) => el('option', { value: s }, LABEL[s])));
    const assignee = el('select.assignee-select', { 'aria-label': `Assignee of ticket #${id}`, onchange: (e) => change(id, 'assignee', e.target.value) },
      el('option', { value: '' }, 'Unassigned'), state.agents.map((a) => el('option', { value: a }, a)));
    const take = el('button.btn.btn-small.btn-ghost.take', { type: 'button', 'aria-label': `Assign ticket #${id} to me`, onclick: () => change(id, 'assignee', me.value) }, 'Take');
    return el('tr', { 'data-id': id },
      el('td.cell-ticket', {},
        el('div.subject', {}, el('span.tid', {}, `#${id}`), el('span.subject-text')),
        el('div.meta', {}, el('span.requester'), ' · opened ', el('time.opened', { 'data-ago': '' }))),
      el('td.cell-priority', {}, el('span.prio')),
      el('td.cell-status', {}, status),
      el('td.cell-assignee', {}, el('div.assignee', {}, el('span.avatar', { 'aria-hidden': 'true' }), assignee, take)),
      el('td.cell-updated.col-updated', {}, el('time.updated', { 'data-ago': '' })));
  }

  function fillRow(row, t) {
    row.dataset.version = t.version;
    row.dataset.status = t.status;
    row.querySelector('.subject-text').textContent = t.subject;
    row.querySelector('.requester').textContent = t.requester;
    setTime(row.querySelector('time.opened'), t.created_at);
    setTime(row.querySelector('time.updated'), t.updated_at);
    const prio = row.querySelector('.prio');
    prio.className = `prio prio-${t.priority}`;
    prio.textContent = LABEL[t.priority] ?? t.priority;
    const status = row.querySelector('select.pill');
    status.value = t.status;
    status.className = `pill pill-${t.status}`;
    row.querySelector('select.assignee-select').value = t.assignee;
    const avatar = row.querySelector('.avatar');
    avatar.textContent = t.assignee ? initials(t.assignee) : '?';
    avatar.classList.toggle('avatar-empty', !t.assignee);
    avatar.dataset.hue = String(state.agents.indexOf(t.assignee));
    row.querySelector('.take').hidden = t.assignee !== '';
  }

  function setTime(node, iso) {
    node.dateTime = iso;
    node.textContent = ago(iso);
    node.title = new Date(iso).toLocaleString();
  }

  function flash(id) {
    const row = rows.get(id);
    if (!row) return;
    row.classList.remove('flash');
    void row.offsetWidth; // restart the animation
    row.classList.add('flash');
  }

  // ---- changes made here

  async function change(id, field, value) {
    try {
      const { ticket } = await api('POST', `/api/tickets/${id}/${field}`, { [field]: value, by: me.value });
      if (upsert(ticket)) render();
    } catch (e) {
      toast({ kind: 'error', title: 'Could not save the change', body: e.message });
      if (e.data?.ticket) upsert(e.data.ticket);
      else await load().catch(() => {});
      render();
    }
  }

  const form = $('new-ticket');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const error = $('form-error');
    const input = { subject: form.subject.value.trim(), requester: form.requester.value.trim(), priority: form.priority.value };
    const missing = !input.subject ? form.subject : !input.requester ? form.requester : null;
    for (const f of [form.subject, form.requester]) f.setAttribute('aria-invalid', String(f === missing));
    if (missing) {
      error.textContent = missing === form.subject ? 'Give the ticket a subject.' : 'Say who asked.';
      error.hidden = false;
      missing.focus();
      return;
    }
    error.hidden = true;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const { ticket } = await api('POST', '/api/tickets', { ...input, by: me.value });
      if (upsert(ticket)) render();
      form.reset();
      form.subject.focus();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      if (err.data?.ticket && upsert(err.data.ticket)) render();
    } finally {
      button.disabled = false;
    }
  });

  // ---- events from Herald

  const target = Demo.herald();
  const herald = Herald.connect({ key: target.key, host: target.host, port: target.port, path: target.path, scheme: target.tls ? 'https' : 'http' });
  window.herald = herald;
  window.socketId = () => herald.socketId; // sent as X-Socket-ID with every change
  // A change this window made comes back with its socket id: no toast for it.
  const mine = (d) => !!d.socket_id && d.socket_id === herald.socketId;
  Herald.status($('live'), { labels: { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', polling: 'Live over HTTP', offline: 'Offline' } });

  function received(event, data, meta, note) {
    window.demo.events.push({ event, id: data.ticket?.id, version: data.ticket?.version, offset: meta.offset });
    if (upsert(data.ticket)) render();
    flash(data.ticket.id);
    if (!mine(data)) toast(note);
    const log = $('log');
    log.prepend(el('li', {},
      el('div.log-line', {}, el('code', {}, event), el('span.log-via', {}, VIA[event] ?? '')),
      el('div.log-meta', {}, `#${data.ticket.id} · ${meta.channel}, offset ${meta.offset ?? '–'} · `, el('time', {}, clock(new Date().toISOString())))));
    while (log.children.length > 7) log.lastElementChild.remove();
    $('log-empty').hidden = true;
  }

  herald.on('ticket_created', (d, meta) => received('ticket_created', d, meta, {
    kind: 'created',
    title: `New ticket #${d.ticket.id}`,
    body: `${d.ticket.subject} — ${d.ticket.requester}`,
  }));
  herald.on('ticket_status_changed', (d, meta) => received('ticket_status_changed', d, meta, {
    kind: 'changed',
    title: `#${d.ticket.id} is now ${LABEL[d.status] ?? d.status}`,
    body: `${who(d.by)} moved “${d.ticket.subject}” from ${LABEL[d.previous_status] ?? d.previous_status}.`,
  }));
  herald.on('ticket_assigned', (d, meta) => received('ticket_assigned', d, meta, {
    kind: 'changed',
    title: d.assignee ? `#${d.ticket.id} assigned to ${d.assignee === me.value ? 'you' : d.assignee}` : `#${d.ticket.id} unassigned`,
    body: `${who(d.by)} · “${d.ticket.subject}”`,
  }));
  // History could not cover a gap (e.g. Herald restarted): refetch.
  herald.bind('resync', () => {
    window.demo.resyncs++;
    load().catch(() => {});
  });

  const pause = $('pause');
  pause.addEventListener('click', () => {
    const paused = pause.getAttribute('aria-pressed') !== 'true';
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause live';
    if (paused) herald.disconnect();
    else herald.connect();
  });

  load().catch((e) => toast({ kind: 'error', title: 'Could not load the tickets', body: e.message }));
})();
