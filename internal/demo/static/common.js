// Helpers shared by the demo's pages: where Herald is, calls to the demo
// backend (with the CSRF token, as a Laravel page sends it), toasts, and a
// tiny DOM builder. Plain script, no framework: sets window.Demo.
'use strict';

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';

  /**
   * Where the page connects to Herald: the backend's Herald URL, unless the
   * query overrides it (?herald_host=…&herald_port=…, e.g. a proxy in tests).
   */
  function herald() {
    const url = new URL(meta('herald-url'));
    const q = new URLSearchParams(location.search);
    const tls = url.protocol === 'https:';
    const host = /^[A-Za-z0-9.-]+$/.test(q.get('herald_host') ?? '') ? q.get('herald_host') : url.hostname;
    const port = /^\d{1,5}$/.test(q.get('herald_port') ?? '') ? Number(q.get('herald_port')) : Number(url.port || (tls ? 443 : 80));
    return { key: meta('herald-key'), host, port, tls, path: url.pathname.replace(/\/$/, '') };
  }

  /**
   * Calls the demo backend; resolves with the parsed answer, throws an Error
   * with the message on failure. Like a Laravel page's axios, a change sends
   * the CSRF token, and the socket id (window.socketId()) as X-Socket-ID.
   */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-TOKEN'] = meta('csrf-token');
    const socketId = window.socketId?.();
    if (method !== 'GET' && socketId) headers['X-Socket-ID'] = socketId;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(data.message || `HTTP ${res.status}`), { status: res.status, data });
    return data;
  }

  /** el('div.a.b', {attrs}, ...children): an element; strings become text. */
  function el(spec, attrs = {}, ...children) {
    const [tag, ...classes] = spec.split('.');
    const node = document.createElement(tag || 'div');
    if (classes.length) node.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k in node && k !== 'list') node[k] = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) if (c != null && c !== false) node.append(c);
    return node;
  }

  /** Every notification shown, oldest first (for tests and the console). */
  const shown = [];

  /** Shows a notification for a few seconds: {title, body, kind} (kind: created, changed, info, error). */
  function toast({ title, body, kind = 'info' }) {
    shown.push({ title, body, kind });
    const box = document.getElementById('toasts');
    const close = () => {
      node.classList.add('leaving');
      setTimeout(() => node.remove(), 200);
    };
    // The region is aria-live; an error interrupts.
    const node = el(`div.toast.toast-${kind}`, { role: kind === 'error' ? 'alert' : null },
      el('span.toast-icon', { 'aria-hidden': 'true' }),
      el('div.toast-text', {}, el('strong', {}, title), body ? el('p', {}, body) : null),
      el('button.toast-close', { type: 'button', 'aria-label': 'Dismiss', onclick: close }, '×'));
    box.prepend(node);
    while (box.children.length > 3) box.lastElementChild.remove();
    setTimeout(close, kind === 'error' ? 9000 : 6000);
    return node;
  }

  const minute = 60 * 1000;
  /** "just now", "5 min ago", "3 h ago", "2 d ago". */
  function ago(iso) {
    const d = Date.now() - new Date(iso).getTime();
    if (d < minute) return 'just now';
    if (d < 60 * minute) return `${Math.floor(d / minute)} min ago`;
    if (d < 24 * 60 * minute) return `${Math.floor(d / (60 * minute))} h ago`;
    return `${Math.floor(d / (24 * 60 * minute))} d ago`;
  }

  /** Keeps every <time data-ago> current. */
  setInterval(() => {
    for (const t of document.querySelectorAll('time[data-ago]')) t.textContent = ago(t.dateTime);
  }, 30 * 1000);

  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

  /** Two-letter initials of a name. */
  const initials = (name) => name.split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();

  window.Demo = { meta, herald, api, el, toast, shown, ago, clock, initials };
})();
