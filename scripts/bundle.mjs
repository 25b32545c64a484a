#!/usr/bin/env node
// Bundles the CLI and the volume server into dist/bundle (run by `npm run build`, after tsc):
//   vault.cjs         the installed `vault` (package.json "bin"): dist/src/cli/main.js and
//                     everything it imports, node_modules included, in one CommonJS file
//   vault-server.cjs  the volume server that CLI launches: dist/src/server/main.js likewise
// Why: a Node start of the modules resolves, reads and compiles ~150 files; one file starts
// `vault mount` ~70 ms sooner (its CLI and its server), `vault --version` ~130 ms (README,
// bench/RESULTS.md, issue 14). dist/src stays whole: the tests, the passphrase-strength child and
// `node dist/src/cli/main.js` run it.
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'bundle');
const PROGRAMS = [
  { file: 'vault.cjs', entry: 'dist/src/cli/main.js' },
  { file: 'vault-server.cjs', entry: 'dist/src/server/main.js' },
];

mkdirSync(out, { recursive: true });
for (const p of PROGRAMS) {
  const outfile = path.join(out, p.file);
  await build({
    entryPoints: [path.join(root, p.entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
    // import.meta.url is the bundle's own file: src/system/entries.ts finds the other program
    // beside it, src/system/package-root.ts walks up from it to package.json (the native addon).
    define: { 'import.meta.url': '__vault_bundle_url', __VAULT_BUNDLE__: 'true' },
    // "use strict" first, as the modules were: esbuild's own comes after the banner, too late.
    banner: { js: `"use strict";\nconst __vault_bundle_url = require('node:url').pathToFileURL(__filename).href;` },
  });
  // Only Node's own modules may be loaded at run time: anything else would be resolved and read
  // from node_modules at every start, which is what the bundle is for.
  const outside = [...readFileSync(outfile, 'utf8').matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]).filter((id) => !isBuiltin(id));
  if (outside.length > 0) throw new Error(`${p.file} requires modules outside Node at run time: ${[...new Set(outside)].join(', ')}`);
  chmodSync(outfile, 0o755);
}
