// Generates herald.js, the classic script, from herald.mjs, the ES module:
// the same code inside a function that sets globalThis.Herald (window.Herald
// in a page). No dependencies.
//
//   node internal/web/build.mjs          write herald.js
//   node internal/web/build.mjs --check  exit 1 when herald.js is out of date

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const TRAILER = /\nexport \{ Herald \};\nexport default Herald;\n$/;

/** The classic script for the module source src. */
export function classic(src) {
  if (!TRAILER.test(src)) throw new Error('herald.mjs must end with "export { Herald };\\nexport default Herald;"');
  if (/^\s*(import|export)\b/m.test(src.replace(TRAILER, '\n'))) {
    throw new Error('herald.mjs may not import or export anything but its last two lines');
  }
  return (
    '// herald.js: generated from herald.mjs by build.mjs. Do not edit; edit herald.mjs\n' +
    '// and run `node build.mjs`.\n' +
    '(function () {\n' +
    "'use strict';\n\n" +
    src.replace(TRAILER, '\n') +
    '\nglobalThis.Herald = Herald;\n' +
    '})();\n'
  );
}

/** herald.js as build.mjs would write it now. */
export function generated() {
  return classic(readFileSync(join(dir, 'herald.mjs'), 'utf8'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(dir, 'herald.js');
  const want = generated();
  if (process.argv.includes('--check')) {
    if (readFileSync(out, 'utf8') !== want) {
      console.error('herald.js is out of date: run node internal/web/build.mjs');
      process.exit(1);
    }
  } else {
    writeFileSync(out, want);
  }
}
