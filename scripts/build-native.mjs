#!/usr/bin/env node
// Builds native/ (the N-API addon) with node-gyp. Run by `npm run build`, which the "prepare" script
// runs on `npm ci` and before `npm pack`, so the packed package carries the built addon: npm 11 does
// not run a global package's install scripts, so it could not be built at install time.
// Uses Node's own headers (they carry the OpenSSL headers matching the OpenSSL inside the node binary),
// found next to the running node, so no download is needed.
// The addon is required (the volume server, key handles and XTS live in it): a failed build fails
// `npm ci` with a message saying what to install. There is no slower fallback to drop back to.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addons = [path.join(root, 'native', 'build', 'Release', 'vault_native.node')];
// --if-missing (what `npm run build` passes): skip the build when the addon exists and are newer
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
const HOW = 'Install a C compiler, make, liburing and libgcrypt (as root: bash scripts/setup-system.sh, or apt-get install build-essential liburing-dev libgcrypt20-dev libtss2-dev libfido2-dev libblkid-dev libargon2-dev), then run `npm run build:native`.';
if (!gyp) {
  console.error(`vault: node-gyp not found, so the native addon (required) cannot be built. Install it with \`npm ci\` (it is a devDependency) or with npm itself. ${HOW}`);
  process.exit(1);
}
const args = [gyp, 'rebuild', '--directory', path.join(root, 'native')];
if (haveLocalHeaders) args.push(`--nodedir=${nodeDir}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`vault: building the native addon (native/, required) failed; see the compiler output above. ${HOW}`);
  process.exit(1);
}
