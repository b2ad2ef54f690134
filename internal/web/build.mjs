// Generates the classic scripts from the ES modules: herald.js from
// herald.mjs (sets globalThis.Herald, window.Herald in a page) and
// herald-echo.js from herald-echo.mjs (sets globalThis.HeraldEcho): the same
// code inside a function that sets the global. No dependencies.
//
//   node internal/web/build.mjs          write herald.js and herald-echo.js
//   node internal/web/build.mjs --check  exit 1 when either is out of date

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));

/** The generated classic scripts: file → its module source and the global it sets. */
export const SCRIPTS = {
  'herald.js': { source: 'herald.mjs', name: 'Herald' },
  'herald-echo.js': { source: 'herald-echo.mjs', name: 'HeraldEcho' },
};

/** The classic script for the module source src, which exports name (default Herald). */
export function classic(src, name = 'Herald') {
  const script = Object.keys(SCRIPTS).find((f) => SCRIPTS[f].name === name);
  const { source } = SCRIPTS[script];
  const trailer = new RegExp(`\\nexport \\{ ${name} \\};\\nexport default ${name};\\n$`);
  if (!trailer.test(src)) throw new Error(`${source} must end with "export { ${name} };\\nexport default ${name};"`);
  if (/^\s*(import|export)\b/m.test(src.replace(trailer, '\n'))) {
    throw new Error(`${source} may not import or export anything but its last two lines`);
  }
  return (
    `// ${script}: generated from ${source} by build.mjs. Do not edit; edit ${source}\n` +
    '// and run `node build.mjs`.\n' +
    '(function () {\n' +
    "'use strict';\n\n" +
    src.replace(trailer, '\n') +
    `\nglobalThis.${name} = ${name};\n` +
    '})();\n'
  );
}

/** The classic script (default herald.js) as build.mjs would write it now. */
export function generated(script = 'herald.js') {
  const { source, name } = SCRIPTS[script];
  return classic(readFileSync(join(dir, source), 'utf8'), name);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = false;
  for (const script of Object.keys(SCRIPTS)) {
    const out = join(dir, script);
    const want = generated(script);
    if (!check) writeFileSync(out, want);
    else if (readFileSync(out, 'utf8') !== want) {
      console.error(`${script} is out of date: run node internal/web/build.mjs`);
      stale = true;
    }
  }
  if (stale) process.exit(1);
}
