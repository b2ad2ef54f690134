// herald.js is generated from herald.mjs and committed: it must be up to date,
// work as a classic script, and the npm package must need nothing else.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

import Herald from '../herald.mjs';
import { classic, generated } from '../build.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (name) => readFileSync(join(dir, name), 'utf8');

test('herald.js is up to date with herald.mjs (run: node internal/web/build.mjs)', () => {
  assert.ok(read('herald.js') === generated(), 'herald.js is out of date: run node internal/web/build.mjs');
});

test('herald.js, run as a classic script, sets Herald and nothing else', () => {
  const context = vm.createContext({});
  const before = Object.keys(context);
  vm.runInContext(read('herald.js'), context);
  assert.deepEqual(Object.keys(context), [...before, 'Herald']);
  assert.deepEqual(Object.keys(context.Herald), Object.keys(Herald));
  assert.equal(context.Herald.version, Herald.version);
});

test('classic() refuses a source with other imports or exports', () => {
  assert.throws(() => classic('const Herald = {};\n'), /must end with/);
  assert.throws(() => classic('import x from "y";\nexport { Herald };\nexport default Herald;\n'), /may not import/);
});

test('package.json: no dependencies, version matches, every entry point exists', () => {
  const pkg = JSON.parse(read('package.json'));
  assert.equal(pkg.version, Herald.version);
  for (const k of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
    assert.equal(pkg[k], undefined, k);
  }
  const targets = [pkg.main, pkg.browser, pkg.unpkg, pkg.module, ...Object.values(pkg.exports).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)))];
  for (const t of targets) assert.ok(existsSync(join(dir, t)), t);
  for (const f of pkg.files) assert.ok(existsSync(join(dir, f)), f);
});

test('herald.mjs uses no runtime dependency', () => {
  const src = read('herald.mjs');
  assert.equal(/^\s*import\b/m.test(src), false);
  assert.equal(/\brequire\(/.test(src), false);
});
