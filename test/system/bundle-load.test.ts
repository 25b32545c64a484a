/**
 * The bundles' loader (scripts/bundle-load.cjs, copied to dist/bundle/load.cjs) and the code cache
 * the build makes for vault-run.cjs (scripts/bundle.mjs). A cache is used only for the very bytes
 * it was made from: V8 itself knows a source by its length alone (shown below), so a same-length
 * edit must still run the new source. A cache V8 rejects, or none, costs only the speed. Each case
 * runs in a child `node` with no options and no NODE_OPTIONS, as an installed `vault` does.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LOADER = path.join(ROOT, 'scripts/bundle-load.cjs');
const BUNDLE_DIR = path.join(ROOT, 'dist/bundle');

/** Runs `code` in a child node: argv[1] is the loader, argv[2] the file. Its stdout. */
function inNode(code: string, file: string): string {
  const r = spawnSync(process.execPath, ['-e', code, LOADER, file], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node -e failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const cacheState = (file: string) => inNode('process.stdout.write(require(process.argv[1]).compile(process.argv[2]).cache)', file);
const makeCache = (file: string) => inNode('require(process.argv[1]).makeCache(process.argv[2])', file);
/** Loads the file through the loader; the program prints what it is, and exports `letter`. */
const loadIt = (file: string) => inNode("const m = require(process.argv[1]).load(process.argv[2]); process.stdout.write('/' + m.letter)", file);

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-bundle-load-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A program whose output and export say which source ran; every letter gives the same length.
 *  Top-level code: V8 compiles it up front, so it is in the cache (lazy functions are not). */
const program = (letter: string) => `process.stdout.write('${letter}');\nmodule.exports.letter = '${letter}';\n`;

/** A temp dir holding p.cjs, program `letter` (with its cache made when `cached`). */
function withProgram(letter: string, cached: boolean, fn: (file: string) => void): void {
  withDir((dir) => {
    const f = path.join(dir, 'p.cjs');
    writeFileSync(f, program(letter));
    if (cached) makeCache(f);
    fn(f);
  });
}

describe('the built bundles', () => {
  it('dist/bundle/load.cjs is scripts/bundle-load.cjs', () => {
    expect(readFileSync(path.join(BUNDLE_DIR, 'load.cjs'), 'utf8')).toBe(readFileSync(LOADER, 'utf8'));
  });

  it('vault-run.cjs: its code cache is taken by this node', () => {
    expect(cacheState(path.join(BUNDLE_DIR, 'vault-run.cjs'))).toBe('used');
  });

  it('vault.cjs loads vault-run.cjs through load.cjs', () => {
    expect(readFileSync(path.join(BUNDLE_DIR, 'vault.cjs'), 'utf8')).toContain('require("./load.cjs").load(require("node:path").join(__dirname, "./vault-run.cjs"))');
  });
});

describe('the loader', () => {
  it('no cache: compiles the source', () => {
    withProgram('A', false, (f) => {
      expect(cacheState(f)).toBe('none');
      expect(loadIt(f)).toBe('A/A');
    });
  });

  it('its own cache: used, and the program runs', () => {
    withProgram('A', true, (f) => {
      expect(cacheState(f)).toBe('used');
      expect(loadIt(f)).toBe('A/A');
    });
  });

  it('why the hash: V8 alone runs a cache made from another source of the same length', () => {
    withProgram('A', true, (f) => {
      writeFileSync(f, program('B'));
      const out = inNode(
        "const vm = require('node:vm'); const fs = require('node:fs'); const { wrap } = require('node:module');" +
          "const s = new vm.Script(wrap(fs.readFileSync(process.argv[2], 'utf8')), { filename: process.argv[2], cachedData: fs.readFileSync(process.argv[2] + '.cache').subarray(32) });" +
          "const m = { exports: {} }; s.runInThisContext()(m.exports, require, m, '', ''); process.stdout.write(String(s.cachedDataRejected))",
        f,
      );
      expect(out).toBe('Afalse'); // the old program ran, and V8 did not reject the cache
    });
  });

  it('a same-length edit after the cache was made: the cache is stale, the new source runs', () => {
    withProgram('A', true, (f) => {
      writeFileSync(f, program('B'));
      expect(cacheState(f)).toBe('stale');
      expect(loadIt(f)).toBe('B/B');
    });
  });

  it('a cache V8 refuses (right hash, garbage code): rejected, the source runs', () => {
    withProgram('A', true, (f) => {
      const cache = readFileSync(`${f}.cache`);
      writeFileSync(`${f}.cache`, Buffer.concat([cache.subarray(0, 32), Buffer.alloc(cache.length - 32, 0x5a)]));
      expect(cacheState(f)).toBe('rejected');
      expect(loadIt(f)).toBe('A/A');
    });
  });

  it('a truncated cache file: stale, the source runs', () => {
    withProgram('A', false, (f) => {
      writeFileSync(`${f}.cache`, Buffer.alloc(16));
      expect(cacheState(f)).toBe('stale');
      expect(loadIt(f)).toBe('A/A');
    });
  });

  it('a first #! line does not break the module wrapper', () => {
    withDir((dir) => {
      const f = path.join(dir, 'p.cjs');
      writeFileSync(f, `#!/usr/bin/env node\n${program('A')}`);
      makeCache(f);
      expect(cacheState(f)).toBe('used');
      expect(loadIt(f)).toBe('A/A');
    });
  });

  it("gives the program its own file's require, shared with Node's module cache", () => {
    withDir((dir) => {
      const f = path.join(dir, 'p.cjs');
      writeFileSync(path.join(dir, 'dep.cjs'), 'module.exports = { n: 7 };');
      writeFileSync(f, "const path = require('node:path');\nmodule.exports.letter = [require('./dep.cjs').n, path.basename(__filename), path.basename(__dirname)].join(',');\n");
      // dep.cjs is required first by the loader's caller, then by the program: one instance.
      const out = inNode(
        "const dep = require(require('node:path').join(require('node:path').dirname(process.argv[2]), 'dep.cjs')); dep.n = 8; const m = require(process.argv[1]).load(process.argv[2]); process.stdout.write(m.letter)",
        f,
      );
      expect(out).toBe(`8,p.cjs,${path.basename(dir)}`);
    });
  });
});
