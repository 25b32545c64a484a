/**
 * The bundles the build makes (scripts/bundle.mjs): dist/bundle/vault.cjs, the installed `vault`,
 * and dist/bundle/vault-server.cjs, the server it launches. Each is one CommonJS file that loads
 * nothing but Node's own modules at run time, is strict code as the modules were, and runs by its
 * own `#!` line. test/e2e/bundle.test.ts mounts through them; install.test.ts installs them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUNDLES = ['vault.cjs', 'vault-server.cjs'].map((f) => path.join(ROOT, 'dist/bundle', f));
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('dist/bundle', () => {
  it.each(BUNDLES)('%s: executable, #! then "use strict" first, only Node modules required', (file) => {
    expect(statSync(file).mode & 0o111).toBe(0o111);
    const lines = readFileSync(file, 'utf8').split('\n', 2);
    expect(lines).toEqual(['#!/usr/bin/env node', '"use strict";']);
    const required = [...readFileSync(file, 'utf8').matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!);
    expect(required.length).toBeGreaterThan(0);
    expect(required.filter((id) => !isBuiltin(id))).toEqual([]);
  });

  it('vault.cjs runs by itself, as the installed command does', () => {
    expect(execFileSync(BUNDLES[0]!, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
  });
});
