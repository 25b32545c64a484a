#!/usr/bin/env node
// Renders the man page dist/man/vault.1 from its Markdown source man/vault.1.md with marked-man
// (part of `npm run build`, so `npm pack` and `npm ci` make it; package.json "man" installs it).
// The version in the page's footer is package.json's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
// The package exports no bin path; its bin sits beside its package.json.
const markedMan = path.join(path.dirname(createRequire(import.meta.url).resolve('marked-man/package.json')), 'bin', 'marked-man.js');
const r = spawnSync(
  process.execPath,
  [markedMan, '--version', `vault ${pkg.version}`, '--manual', 'User Commands', '--section', '1', '--no-breaks', path.join(root, 'man', 'vault.1.md')],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
if (r.status !== 0 || !r.stdout) {
  console.error('vault: rendering the man page (man/vault.1.md) failed; see the message above');
  process.exit(1);
}
mkdirSync(path.join(root, 'dist', 'man'), { recursive: true });
writeFileSync(path.join(root, 'dist', 'man', 'vault.1'), r.stdout);
