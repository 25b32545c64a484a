#!/usr/bin/env node
// Builds native/ (the N-API addon) with node-gyp. Run by `npm ci` through the root "install" script,
// because npm 11 runs the project's own lifecycle scripts but not its dependencies'.
// Uses Node's own headers (they carry the OpenSSL headers matching the OpenSSL inside the node binary),
// found next to the running node, so no download is needed.
// A failed build is not fatal: vault falls back to node:crypto and warns. CI sets VAULT_REQUIRE_NATIVE=1
// so that a missing addon fails the test suite instead of passing on the slow path.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addons = ['vault_native.node', 'vault_fuse.node'].map((f) => path.join(root, 'native', 'build', 'Release', f));
// --if-missing (what `npm run build` passes): skip the build when both addons exist and are newer
// than every source of native/, so a pull that changes the C code rebuilds it.
const newestSource = Math.max(
  ...readdirSync(path.join(root, 'native'))
    .filter((f) => /\.(c|h|gyp)$/.test(f))
    .map((f) => statSync(path.join(root, 'native', f)).mtimeMs),
);
if (process.argv.includes('--if-missing') && addons.every((a) => existsSync(a) && statSync(a).mtimeMs >= newestSource)) process.exit(0);

const nodeDir = path.resolve(path.dirname(process.execPath), '..');
const haveLocalHeaders = existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'));

let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  // npm ships its own copy of node-gyp; use it when devDependencies are not installed.
  const npmGyp = path.join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(npmGyp)) gyp = npmGyp;
}
if (!gyp) {
  console.warn('vault: node-gyp not found; the native addon was not built (vault will use the slower node:crypto path)');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--directory', path.join(root, 'native')];
if (haveLocalHeaders) args.push(`--nodedir=${nodeDir}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('vault: building native/ failed; vault will use the slower node:crypto path. Install make and a C compiler (apt-get install build-essential), then run `npm run build:native`.');
  process.exit(process.env.VAULT_REQUIRE_NATIVE === '1' ? 1 : 0);
}
