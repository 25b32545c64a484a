/**
 * Every VAULT_* environment variable vault reads is listed, documented, and read in one place:
 * src/env.ts. Scans the sources (src/ and the addon's C) so that a new `process.env.VAULT_X` or
 * `getenv("VAULT_X")` anywhere else fails here, and checks that CLI_ABI.md (and README, where it
 * names one) documents the list.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV } from '../../src/env.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NAMES = Object.keys(ENV);

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => ext.test(f))
    .map((f) => path.join(dir, f));
}

const SOURCES = files('src', /\.ts$/).map((f) => ({ f, text: readFileSync(path.join(ROOT, f), 'utf8') }));

describe('VAULT_* environment variables', () => {
  it('are read only through src/env.ts: no process.env.VAULT_*, no process.env[<expression>] elsewhere', () => {
    const offenders = SOURCES.filter(({ f }) => f !== path.join('src', 'env.ts')).flatMap(({ f, text }) =>
      [...text.matchAll(/process\.env(?:\.(VAULT_\w+)|\[\s*(?:['"`](VAULT_\w+)['"`]|([^'"`\]][^\]]*))\s*\])/g)].map((m) => `${f}: ${m[0]}`),
    );
    expect(offenders).toEqual([]);
  });

  it('every name read through envValue() is in the list, and every listed one is read somewhere', () => {
    const read = new Set(SOURCES.flatMap(({ text }) => [...text.matchAll(/envValue\(\s*'(\w+)'\s*\)/g)].map((m) => m[1]!)));
    // Names handed to envValue() through a variable: the tuning list in spawn.ts and native-frontend.ts.
    for (const { text } of SOURCES) for (const m of text.matchAll(/(?:envInt|envBool)\('(\w+)'/g)) read.add(m[1]!);
    for (const m of SOURCES.find(({ f }) => f.endsWith('spawn.ts'))!.text.matchAll(/'(VAULT_FUSE_\w+)'/g)) read.add(m[1]!);
    expect([...read].filter((n) => !NAMES.includes(n))).toEqual([]);
    expect(NAMES.filter((n) => !read.has(n))).toEqual([]);
  });

  it('names passed on to child processes are listed too', () => {
    const passed = SOURCES.flatMap(({ text }) => [...text.matchAll(/\b(VAULT_[A-Z_]+)\s*:/g)].map((m) => m[1]!));
    expect(passed.filter((n) => !NAMES.includes(n))).toEqual([]);
  });

  it('the native addon reads none (its VAULT_* names are error codes and constants)', () => {
    const getenv = files('native', /\.[ch]$/).flatMap((f) => [...readFileSync(path.join(ROOT, f), 'utf8').matchAll(/getenv\s*\(\s*"([^"]*)"/g)].map((m) => `${f}: ${m[1]}`));
    expect(getenv.filter((g) => g.includes('VAULT_') && !NAMES.some((n) => g.endsWith(n)))).toEqual([]);
  });

  it('each has a description, a default, its values and an audience', () => {
    for (const [name, v] of Object.entries(ENV)) {
      expect(name).toMatch(/^VAULT_[A-Z_]+$/);
      for (const field of [v.does, v.default, v.values]) expect(field.length, name).toBeGreaterThan(0);
      expect(['user', 'test', 'bench']).toContain(v.audience);
    }
  });

  it('CLI_ABI.md documents every one in its Environment table, with its audience', () => {
    const abi = readFileSync(path.join(ROOT, 'CLI_ABI.md'), 'utf8');
    const section = abi.slice(abi.indexOf('## Environment'), abi.indexOf('\n## ', abi.indexOf('## Environment') + 1));
    for (const [name, v] of Object.entries(ENV)) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      expect(row, `${name} has no row in CLI_ABI.md's Environment table`).toBeDefined();
      expect(row!.split('|')[2]!.trim(), name).toBe(v.audience === 'test' ? 'tests' : v.audience);
    }
    const documented = [...section.matchAll(/^\| `(VAULT_\w+)` \|/gm)].map((m) => m[1]!);
    expect(documented.sort()).toEqual([...NAMES].sort());
  });

  it('README names no variable vault does not read', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const named = new Set([...readme.matchAll(/\b(VAULT_[A-Z_]+)\b/g)].map((m) => m[1]!));
    // README's development section may name the test suite's own knobs, which vault never reads.
    const testKnobs = /^VAULT_(TEST_|CRASH_|MOUNT_CYCLES|BENCH_|FUZZ_|E2E_|HARDENING_|TRANSPORTS|NO_IO_URING)/;
    expect([...named].filter((n) => !NAMES.includes(n) && !testKnobs.test(n))).toEqual([]);
  });
});
