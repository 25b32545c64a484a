'use strict';
/*
 * dist/bundle/load.cjs (copied there by scripts/bundle.mjs): loads a bundle as require() would,
 * with the V8 code cache the build made for it. V8 then does not parse the whole ~860 KB of
 * vault-run.cjs before it runs (26-27 ms of compiling against 9 with the cache, on the 2-CPU
 * development machine: bench/RESULTS.md, 2026-12-08).
 *
 * The cache is code. Only the build writes it, beside the bundle, with the bundle's owner and
 * mode; nothing writes it at run time. V8 checks that a cache was made by this V8 with these flags,
 * but knows the source only by its length: given another source of the same length, it runs the
 * cache's code. So the cache starts with the SHA-256 of the bundle's bytes, and a cache made from
 * other bytes is not used. A missing, stale or rejected cache costs only the speed.
 */
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const HASH_BYTES = 32;

/** The bundle's source as one CommonJS module's function (a first `#!` line made a comment), and
 *  the SHA-256 of its bytes. */
function readBundle(file) {
  const bytes = readFileSync(file);
  const text = bytes.toString('utf8');
  return { hash: createHash('sha256').update(bytes).digest(), source: wrap(text.startsWith('#!') ? `//${text.slice(2)}` : text) };
}

/** { data } of the cache made from the bytes of `hash`; else { state: 'none' | 'stale' }. */
function cacheFor(file, hash) {
  let data;
  try {
    data = readFileSync(`${file}.cache`);
  } catch {
    return { state: 'none' };
  }
  if (data.length <= HASH_BYTES || !data.subarray(0, HASH_BYTES).equals(hash)) return { state: 'stale' };
  return { data: data.subarray(HASH_BYTES) };
}

/** Compiles the bundle. `cache`: 'used', 'rejected' (by V8: another V8 or other flags), 'stale'
 *  (made from other bytes) or 'none'. */
function compile(file) {
  const { hash, source } = readBundle(file);
  const found = cacheFor(file, hash);
  const script = new vm.Script(source, { filename: file, ...(found.data ? { cachedData: found.data } : {}) });
  return { script, cache: found.data ? (script.cachedDataRejected ? 'rejected' : 'used') : found.state };
}

/** Runs the bundle as a CommonJS module and returns its exports. Its require() is its own file's,
 *  with Node's module cache: a sibling it requires is the one instance every bundle shares. */
function load(file) {
  const { script } = compile(file);
  const mod = { exports: {}, id: file, filename: file, loaded: false };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  return mod.exports;
}

/** The build's step (scripts/bundle.mjs runs it in a node with no options): the cache of what V8
 *  compiles up front, headed by the hash of the bytes it was made from. */
function makeCache(file) {
  const { hash, source } = readBundle(file);
  const script = new vm.Script(source, { filename: file });
  writeFileSync(`${file}.cache`, Buffer.concat([hash, script.createCachedData()]), { mode: 0o644 });
}

module.exports = { load, compile, makeCache };
