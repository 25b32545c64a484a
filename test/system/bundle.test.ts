/**
 * The bundles the build makes (scripts/bundle.mjs) in dist/bundle: vault.cjs, the installed
 * `vault`, which starts the volume server early and then loads vault-run.cjs (every command);
 * prelaunch.cjs, the early start both share; vault-server.cjs, the server (load.cjs and the code
 * cache: bundle-load.test.ts). Each is one CommonJS
 * file, strict code as the modules were, that loads nothing but Node's own modules and its
 * siblings at run time. test/e2e/bundle.test.ts mounts through them; install.test.ts installs
 * them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'dist/bundle');
const BUNDLES = ['vault.cjs', 'vault-run.cjs', 'prelaunch.cjs', 'vault-server.cjs'];
const EXECUTABLE = ['vault.cjs', 'vault-server.cjs'];
const SIBLINGS = ['./vault-run.cjs', './prelaunch.cjs', './load.cjs'];
const text = (f: string) => readFileSync(path.join(DIR, f), 'utf8');
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('dist/bundle', () => {
  it.each(BUNDLES)('%s: "use strict" first, only Node modules and sibling bundles required, no import(), ASCII', (f) => {
    const lines = text(f).split('\n', 2);
    expect(EXECUTABLE.includes(f) ? lines : lines.slice(0, 1)).toEqual(EXECUTABLE.includes(f) ? ['#!/usr/bin/env node', '"use strict";'] : ['"use strict";']);
    expect(statSync(path.join(DIR, f)).mode & 0o111).toBe(EXECUTABLE.includes(f) ? 0o111 : 0);
    const required = [...text(f).matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!);
    expect(required.length).toBeGreaterThan(0);
    expect(required.filter((id) => !isBuiltin(id) && !SIBLINGS.includes(id))).toEqual([]);
    expect(text(f)).not.toMatch(/\bimport\(/);
    // ASCII only (scripts/bundle.mjs escapes what esbuild leaves in comments): a one-byte source.
    expect(text(f)).not.toMatch(/[^\x00-\x7f]/);
  });

  it('the early server start is one module in one bundle, which the CLI and its commands share', () => {
    // Its state (the early server, taken over by the mount) must not exist twice.
    for (const fn of ['function prelaunchServer(', 'function takePrelaunched(', 'function configSocketFd('])
      expect(BUNDLES.filter((f) => text(f).includes(fn)), fn).toEqual(['prelaunch.cjs']);
    expect(text('vault.cjs')).toContain('require("./prelaunch.cjs")');
    expect(text('vault-run.cjs')).toContain('require("./prelaunch.cjs")');
    expect(text('vault.cjs')).toContain('"./vault-run.cjs"'); // through load.cjs (bundle-load.test.ts)
    // vault.cjs stays small: the server starts before the commands' code is compiled.
    expect(statSync(path.join(DIR, 'vault.cjs')).size).toBeLessThan(16 * 1024);
  });

  it('vault.cjs runs by itself, as the installed command does', () => {
    expect(execFileSync(path.join(DIR, 'vault.cjs'), ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
  });
});
