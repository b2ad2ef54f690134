// TLS without a proxy: `herald serve --tls-cert --tls-key` serves wss://
// and https:// on one port. pusher-js (forceTLS) connects over wss:// and
// receives an event the `pusher` SDK publishes over https://, both
// verifying the certificate against a CA made for this test (openssl);
// a client that does not trust the CA is refused; SIGHUP serves a renewed
// certificate to new connections while an established one keeps
// receiving.
//
// pusher-js's Node build takes no TLS options, so it runs in a child
// Node process started with NODE_EXTRA_CA_CERTS (read only at start).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe } from 'node:test';

import {
  APPS, PusherServer, WebSocket, WAIT, configYAML, freePort, test, uid, withTimeout,
} from '../lib/herald.js';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = APPS.main;

function heraldBin() {
  return process.env.HERALD_BIN ? path.resolve(process.env.HERALD_BIN) : path.resolve(E2E_DIR, '..', 'bin', 'herald');
}

function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and a server certificate it signs for 127.0.0.1 and localhost. */
function makeCA(dir) {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=Herald e2e CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  return path.join(dir, 'ca.pem');
}

/** Issues cert.pem/key.pem in dir (replacing them) with the given serial. */
function issue(dir, serial) {
  fs.writeFileSync(path.join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'key.next.pem', '-out', 'leaf.csr', '-subj', '/CN=localhost');
  openssl(dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', String(serial), '-out', 'cert.next.pem', '-days', '1', '-extfile', 'ext.cnf');
  // Replaced at once, as a renewal tool does.
  fs.renameSync(path.join(dir, 'key.next.pem'), path.join(dir, 'key.pem'));
  fs.renameSync(path.join(dir, 'cert.next.pem'), path.join(dir, 'cert.pem'));
}

/** Starts herald serve with TLS; resolves once it logs that it listens. */
async function startTLSHerald(dir) {
  const port = await freePort();
  const configPath = path.join(dir, 'herald.yaml');
  fs.writeFileSync(configPath, configYAML([MAIN]));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REVERB_')));
  const child = spawn(heraldBin(), ['serve', '--config', configPath, '--host', '127.0.0.1', '--port', String(port),
    '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem'), '--pid-file', 'off'],
  { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const waiters = [];
  const onData = (chunk) => {
    log += chunk.toString();
    for (const w of [...waiters]) {
      if (log.includes(w.text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const h = {
    port,
    log: () => log,
    exited,
    /** Resolves when the log holds text. */
    logged(text) {
      if (log.includes(text)) return Promise.resolve();
      return withTimeout(new Promise((resolve) => waiters.push({ text, resolve })), WAIT, `log line "${text}"`);
    },
    signal(sig) { child.kill(sig); },
    async stop() {
      child.kill('SIGTERM');
      return withTimeout(exited, 8000, 'herald to exit');
    },
  };
  await Promise.race([
    h.logged('msg="herald listening"'),
    exited.then((e) => { throw new Error(`herald exited ${JSON.stringify(e)}\n${log}`); }),
  ]);
  return h;
}

/** The serial of the certificate a new TLS connection is served. */
function servedSerial(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = parseInt(s.getPeerCertificate().serialNumber, 16);
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

// The child: pusher-js over wss:// subscribes to a channel and prints
// each event it receives as a JSON line.
const CHILD = `
import Pusher from 'pusher-js';
const [key, port, channel] = process.argv.slice(1);
const p = new Pusher(key, { wsHost: '127.0.0.1', wssPort: Number(port), forceTLS: true,
  enabledTransports: ['ws'], disableStats: true, cluster: 'mt1' });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
p.connection.bind('state_change', ({ current }) => out({ state: current }));
p.connection.bind('error', (e) => out({ error: String(e?.error?.data?.message ?? e?.type ?? e) }));
p.subscribe(channel).bind_global((event, data) => out({ event, data }));
process.on('SIGTERM', () => { p.disconnect(); process.exit(0); });
`;

/** Runs CHILD; lines() yields its output objects as they come. */
function pusherChild(port, channel, caFile) {
  const env = { ...process.env };
  if (caFile) env.NODE_EXTRA_CA_CERTS = caFile;
  else delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, ['--no-deprecation', '--input-type=module', '-e', CHILD, MAIN.key, String(port), channel],
    { cwd: E2E_DIR, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const o = JSON.parse(line);
    seen.push(o);
    for (const w of [...waiters]) {
      if (w.match(o)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(o); }
    }
  });
  return {
    seen,
    next(match, what) {
      const found = seen.find(match);
      if (found) return Promise.resolve(found);
      return withTimeout(new Promise((resolve) => waiters.push({ match, resolve })), WAIT * 2, what);
    },
    close() { child.kill('SIGTERM'); },
  };
}

describe('TLS: wss:// and https:// on one port', () => {
  let dir;
  let caFile;
  let ca;
  let h;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-tls-'));
    caFile = makeCA(dir);
    ca = fs.readFileSync(caFile);
    issue(dir, 1001);
    h = await startTLSHerald(dir);
  });

  after(async () => {
    if (h) {
      const exit = await h.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, h.log());
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('pusher-js over wss:// receives what the pusher SDK publishes over https://', async () => {
    const channel = uid('tls-');
    const child = pusherChild(h.port, channel, caFile);
    try {
      await child.next((o) => o.event === 'pusher:subscription_succeeded', 'pusher-js subscribed over wss://');
      const sdk = new PusherServer({
        appId: MAIN.id, key: MAIN.key, secret: MAIN.secret, host: '127.0.0.1', port: String(h.port), useTLS: true,
        agent: new https.Agent({ ca, servername: 'localhost' }),
      });
      const res = await sdk.trigger(channel, 'order.shipped', { id: 7 });
      assert.equal(res.status, 200);
      const got = await child.next((o) => o.event === 'order.shipped', 'the event over wss://');
      assert.deepEqual(got.data, { id: 7 });
    } finally {
      child.close();
    }
  });

  test('a client that does not trust the CA is refused; plain ws:// to the TLS port fails', async () => {
    const untrusting = new WebSocket(`wss://127.0.0.1:${h.port}/app/${MAIN.key}?protocol=7`);
    const err = await withTimeout(new Promise((resolve) => untrusting.on('error', resolve)), WAIT, 'the TLS error');
    assert.match(String(err.code ?? err.message), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);

    const trusting = new WebSocket(`wss://127.0.0.1:${h.port}/app/${MAIN.key}?protocol=7`, { ca });
    const first = await withTimeout(new Promise((resolve, reject) => {
      trusting.on('message', (m) => resolve(JSON.parse(m.toString())));
      trusting.on('error', reject);
    }), WAIT, 'connection_established over wss://');
    assert.equal(first.event, 'pusher:connection_established');
    trusting.close();

    const plain = new WebSocket(`ws://127.0.0.1:${h.port}/app/${MAIN.key}?protocol=7`);
    const res = await withTimeout(new Promise((resolve) => {
      plain.on('unexpected-response', (_req, r) => resolve(r.statusCode));
      plain.on('error', (e) => resolve(e.message));
    }), WAIT, 'the plain socket refused');
    assert.notEqual(res, 101);
  });

  test('SIGHUP: new connections get the renewed certificate, an established pusher-js keeps receiving', async () => {
    const channel = uid('tls-reload-');
    const child = pusherChild(h.port, channel, caFile);
    try {
      await child.next((o) => o.event === 'pusher:subscription_succeeded', 'pusher-js subscribed');
      assert.equal(await servedSerial(h.port, ca), 1001);
      issue(dir, 1002);
      const reloaded = h.logged('TLS certificate reloaded');
      h.signal('SIGHUP');
      await reloaded;
      assert.equal(await servedSerial(h.port, ca), 1002);

      const sdk = new PusherServer({
        appId: MAIN.id, key: MAIN.key, secret: MAIN.secret, host: '127.0.0.1', port: String(h.port), useTLS: true,
        agent: new https.Agent({ ca, servername: 'localhost' }),
      });
      await sdk.trigger(channel, 'after-reload', { ok: true });
      const got = await child.next((o) => o.event === 'after-reload', 'the event on the socket opened before the reload');
      assert.deepEqual(got.data, { ok: true });
      assert.equal(child.seen.filter((o) => o.state === 'connected').length, 1, 'pusher-js never reconnected');
    } finally {
      child.close();
    }
  });
});
