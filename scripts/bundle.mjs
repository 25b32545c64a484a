#!/usr/bin/env node
// Bundles the CLI and the volume server into dist/bundle (run by `npm run build`, after tsc):
//   vault.cjs         the installed `vault` (package.json "bin"): dist/src/cli/main.js, which
//                     starts the volume server early and then loads vault-run.cjs
//   vault-run.cjs     dist/src/cli/run-cli.js: every command, node_modules included
//   prelaunch.cjs     dist/src/server/prelaunch.js: the early server start, one module shared by
//                     the two above (it holds the early server, which vault-run.cjs hands over)
//   vault-server.cjs  the volume server: dist/src/server/main.js
//   load.cjs          scripts/bundle-load.cjs: vault.cjs loads vault-run.cjs through it, with
//   vault-run.cjs.cache  the V8 code cache made here, headed by the SHA-256 of vault-run.cjs
// Each is one CommonJS file that requires only Node's own modules and its siblings here.
// Why: a Node start of the modules resolves, reads and compiles each module it loads as a file
// of its own (the CLI's modules are 268, 177 of them vault's); the bundles start `vault mount`
// ~70 ms sooner (its CLI and its server), `vault --version` ~130 ms (README, bench/RESULTS.md,
// issue 14). vault.cjs is small so that the server starts before the ~860 KB of vault-run.cjs are
// compiled: the server's own start is then no longer what a mount waits for.
// dist/src stays whole: the tests, the passphrase-strength child and `node dist/src/cli/main.js`
// run it.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'bundle');
const src = (p) => path.join(root, 'dist', 'src', p);
/** Modules that are bundles of their own: the other bundles require them from beside themselves. */
const SHARED = new Map([
  [src('server/prelaunch.js'), './prelaunch.cjs'],
  [src('cli/run-cli.js'), './vault-run.cjs'],
]);
const PROGRAMS = [
  { file: 'vault.cjs', entry: src('cli/main.js'), executable: true },
  { file: 'vault-run.cjs', entry: src('cli/run-cli.js') },
  { file: 'prelaunch.cjs', entry: src('server/prelaunch.js') },
  { file: 'vault-server.cjs', entry: src('server/main.js'), executable: true },
];
const siblings = new Set(SHARED.values());
const RUN = './vault-run.cjs';

/** Imports of the SHARED modules, except by their own bundle, become requires of that bundle. */
const shared = (entry) => ({
  name: 'vault-shared-bundles',
  setup(b) {
    b.onResolve({ filter: /\.js$/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const target = path.resolve(args.resolveDir, args.path);
      return SHARED.has(target) && target !== entry ? { path: SHARED.get(target), external: true } : undefined;
    });
  },
});

mkdirSync(out, { recursive: true });
copyFileSync(path.join(root, 'scripts', 'bundle-load.cjs'), path.join(out, 'load.cjs'));
for (const p of PROGRAMS) {
  rmSync(`${path.join(out, p.file)}.cache`, { force: true }); // never a cache beside other bytes
  const outfile = path.join(out, p.file);
  await build({
    entryPoints: [p.entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
    plugins: [shared(p.entry)],
    // import.meta.url is the bundle's own file: src/system/entries.ts finds the other programs
    // beside it, src/system/package-root.ts walks up from it to package.json (the native addon).
    define: { 'import.meta.url': '__vault_bundle_url', __VAULT_BUNDLE__: 'true' },
    // "use strict" first, as the modules were: esbuild's own comes after the banner, too late.
    banner: { js: `"use strict";\nconst __vault_bundle_url = require('node:url').pathToFileURL(__filename).href;` },
  });
  // esbuild leaves a dynamic import() of an external as it is; Node would then load that CommonJS
  // sibling through its ESM loader, whose export scan reads all of it once more. require() it.
  // vault-run.cjs, the large one, goes through load.cjs and its code cache.
  let text = readFileSync(outfile, 'utf8');
  for (const id of siblings)
    text = text.replaceAll(`import("${id}")`, `Promise.resolve().then(() => ${id === RUN ? `require("./load.cjs").load(require("node:path").join(__dirname, "${id}"))` : `require("${id}")`})`);
  if (/\bimport\(/.test(text)) throw new Error(`${p.file} still has a dynamic import()`);
  // ASCII only: esbuild escapes strings, but keeps some comments as written. A one-byte source
  // decodes and compiles ~3-5 ms faster than a two-byte one (bench/RESULTS.md, 2026-12-08); an
  // escape in a comment changes nothing.
  text = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(outfile, text);
  // Only Node's own modules and the sibling bundles may be loaded at run time: anything else would
  // be resolved and read from node_modules at every start, which is what the bundles are for.
  const outside = [...text.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]).filter((id) => !isBuiltin(id) && !siblings.has(id) && id !== './load.cjs');
  if (outside.length > 0) throw new Error(`${p.file} requires modules outside Node at run time: ${[...new Set(outside)].join(', ')}`);
  chmodSync(outfile, p.executable ? 0o755 : 0o644);
}

// The code cache of vault-run.cjs, made and then checked by a node with no options and no
// NODE_OPTIONS (V8 rejects a cache made under other flags), as an installed `vault` runs.
const runFile = path.join(out, RUN);
const inNode = (code) => spawnSync(process.execPath, ['-e', code, path.join(out, 'load.cjs'), runFile], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8' });
const made = inNode('require(process.argv[1]).makeCache(process.argv[2])');
const checked = made.status === 0 ? inNode('process.stdout.write(require(process.argv[1]).compile(process.argv[2]).cache)') : null;
if (checked?.stdout !== 'used') {
  rmSync(`${runFile}.cache`, { force: true });
  console.warn(`vault: no code cache for ${RUN} (${made.status !== 0 ? made.stderr.trim() : `V8 said: ${checked?.stdout || checked?.stderr.trim()}`}); vault will start ~15 ms slower`);
}
