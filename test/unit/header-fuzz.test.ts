/**
 * Issue 6, header fuzzing: 10,000 seeded mutation cases through the parser and the full open and
 * unlock path (properties in test/fuzz/header-fuzz.ts, the long run in test/FUZZING.md).
 * VAULT_FUZZ_SEED and VAULT_FUZZ_CASES override the defaults to explore; a failure names its seed
 * and case index, which `npm run fuzz -- --seed S --from I --cases 1` replays alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argon2Backend } from '../../src/crypto/kdf.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OFF, KEYSLOT_SIZE, SLOT_OFF, KDF_BOUNDS } from '../../src/format/constants.js';
import { unlockContainer } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { writeAllSync } from '../../src/volume/fd-io.js';
import { VaultError } from '../../src/errors.js';
import { ALL_FIELDS, Prng, describeMutation, generateMutation } from '../fuzz/header-mutations.js';
import {
  CASE_TIMEOUT_MS, closeBases, instrumentArgon2, makeBases, newStats, runFuzz, type Base, type FuzzContext,
} from '../fuzz/header-fuzz.js';
import { fixChecksum } from '../support/headers.js';

const SEED = process.env.VAULT_FUZZ_SEED ?? '6';
const CASES = Number(process.env.VAULT_FUZZ_CASES ?? 10_000);
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/v1');

let dir: string;
let bases: Base[];
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'vault-header-fuzz-'));
  bases = await makeBases(dir, FIXTURES);
});
afterAll(() => {
  closeBases(bases);
  rmSync(dir, { recursive: true, force: true });
});

describe('header fuzz generator', () => {
  it('is deterministic per seed and case index, and differs between cases', () => {
    const draw = (seed: string, i: number) => describeMutation(generateMutation(new Prng(seed, i), bases[0]!, bases.length, 0));
    for (let i = 0; i < 50; i++) expect(draw(SEED, i)).toBe(draw(SEED, i));
    const distinct = new Set(Array.from({ length: 200 }, (_, i) => draw(SEED, i)));
    expect(distinct.size).toBeGreaterThan(150);
    expect(draw('a', 1)).not.toBe(draw('b', 1));
  });

  it('reaches every header and keyslot field with boundary values', () => {
    const hit = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const rng = new Prng(SEED, i);
      const bi = rng.int(bases.length);
      const m = generateMutation(rng, bases[bi]!, bases.length, bi);
      if (m.kind === 'field') hit.add(m.field.replace(/^keyslot \d /, 'keyslot '));
    }
    const all = new Set(ALL_FIELDS.map((f) => f.name.replace(/^keyslot \d /, 'keyslot ')));
    expect([...all].filter((f) => !hit.has(f))).toEqual([]);
  });
});

describe('header fuzz properties', () => {
  it('an argon2 call outside the spec bounds is caught and named with its seed and case', async () => {
    // The check the fuzz relies on must itself be able to fail.
    const ctx: FuzzContext = { seed: 'self-test', bases, stats: newStats(), current: 'case=7 base=x: none' };
    const restore = instrumentArgon2(ctx);
    try {
      await argon2Backend.derive('argon2id', Buffer.from('x'), Buffer.alloc(16), { memoryKiB: 512, iterations: 1, parallelism: 1 }, Buffer.alloc(32), null, null);
    } finally {
      restore();
    }
    expect(ctx.stats.violations).toEqual([expect.stringMatching(/seed=self-test case=7 .*out-of-bounds parameters m=512/)]);
  });

  it('KDF parameters above the bounds are refused before any derivation, fast', async () => {
    const base = bases.find((b) => b.name === 'v1-4096.vol')!;
    const slot0 = OFF.keyslots + 0 * KEYSLOT_SIZE;
    const cases: [number, number][] = [
      [SLOT_OFF.memoryKiB, KDF_BOUNDS.memoryKiB.max + 1],
      [SLOT_OFF.memoryKiB, 0xffffffff],
      [SLOT_OFF.iterations, KDF_BOUNDS.iterations.max + 1],
      [SLOT_OFF.iterations, 0xffffffff],
      [SLOT_OFF.parallelism, KDF_BOUNDS.parallelism.max + 1],
    ];
    const ctx: FuzzContext = { seed: 'bounds', bases, stats: newStats(), current: 'bounds' };
    const restore = instrumentArgon2(ctx);
    try {
      for (const [field, value] of cases) {
        for (const [copy, at] of [[0, 0], [1, base.fileSize - 4096]] as const) {
          const b = Buffer.from(base.copies[copy]);
          b.writeUInt32LE(value, slot0 + field);
          writeAllSync(base.fd, fixChecksum(b), at);
        }
        const t0 = performance.now();
        let err: unknown;
        const c = openContainer(base.file, true);
        try {
          await unlockContainer(c, Buffer.from('vault fixture v1'));
        } catch (e) {
          err = e;
        } finally {
          closeContainer(c);
        }
        const ms = performance.now() - t0;
        expect(err).toBeInstanceOf(VaultError);
        expect((err as VaultError).code).toBe('headers-damaged');
        expect((err as VaultError).message).toMatch(/outside the allowed range/);
        expect(ms, `refusal of ${value} took ${ms} ms`).toBeLessThan(250);
      }
    } finally {
      restore();
      writeAllSync(base.fd, base.copies[0], 0);
      writeAllSync(base.fd, base.copies[1], base.fileSize - 4096);
    }
    expect(ctx.stats.derivations).toBe(0);
    expect(ctx.stats.violations).toEqual([]);
  });

  it(`${CASES} mutation cases: typed errors only, no hang, bounded memory, no unlock of tampered headers`, async () => {
    console.log(`header fuzz: seed ${SEED}, ${CASES} cases`);
    const t0 = performance.now();
    const stats = await runFuzz(bases, { seed: SEED, from: 0, cases: CASES });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`header fuzz: ${stats.cases} cases in ${seconds.toFixed(1)} s, ${stats.derivations} derivations, slowest case ${stats.slowestCaseMs.toFixed(0)} ms`);
    expect(stats.violations, stats.violations.slice(0, 10).join('\n')).toEqual([]);
    expect(stats.cases).toBe(CASES);
    expect(stats.slowestCaseMs).toBeLessThan(CASE_TIMEOUT_MS);
    expect(stats.rssPeak - stats.rssStart, 'RSS growth').toBeLessThan(256 * 2 ** 20);
    expect(stats.heapPeak - stats.heapStart, 'heap growth').toBeLessThan(64 * 2 ** 20);
    // The run exercised what it claims to: each outcome class shows up.
    for (const k of [
      'unlocked primary', 'unlocked secondary', 'unlock refused: header-tampered', 'unlock refused: wrong-password',
      'unlock refused: headers-damaged', 'unlock refused: truncated', 'parse refused: kdf-bounds', 'parse refused: checksum-mismatch',
      'parse refused: invalid-field', 'parse accepted: forged (MAC fails under every key)', 'parse accepted: authentic copy',
    ])
      expect(stats.classes.get(k) ?? 0, k).toBeGreaterThan(CASES / 1000);
  }, 600_000);
});
