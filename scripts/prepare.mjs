#!/usr/bin/env node
// package.json "prepare": builds everything the package runs (dist/, the native addon, the man page).
// npm runs it after `npm ci` and `npm install` in a clone, before `npm pack`, and in the cloned
// folder itself on `npm install -g .` (which links the folder without installing its
// devDependencies): there the build tools are missing, so it installs them first with `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.env.npm_execpath;
const run = (args) => {
  // The global install's own settings (npm_config_global, its prefix) must not reach the inner npm.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(global|prefix|location|install_links)$/i.test(k)));
  const r = npm ? spawnSync(process.execPath, [npm, ...args], { cwd: root, env, stdio: 'inherit' }) : spawnSync('npm', args, { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(path.join(root, 'node_modules', 'typescript', 'package.json'))) {
  console.error('vault: installing the build tools first (npm ci), then building');
  run(['ci', '--no-fund', '--no-audit', '--ignore-scripts']);
}
run(['run', 'build']);
