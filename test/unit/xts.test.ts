// XTS-AES-256: known answers (IEEE 1619), cross-checks between every backend and an independent
// reference, and argument validation.
//
// Native tests skip (loudly) when the addon is not built, but FAIL when VAULT_REQUIRE_NATIVE=1.
// With VAULT_DISABLE_NATIVE=1 the fallback and reference tests still run.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { nativeAddon, requireNative } from '../../src/crypto/native.js';
import type { XtsBackend, XtsParams } from '../../src/crypto/xts.js';
import {
  __forceBackendForTests,
  xtsBackend,
  xtsDecrypt,
  xtsDecryptAsync,
  xtsEncrypt,
  xtsEncryptAsync,
} from '../../src/crypto/xts.js';
import { mulAlpha, tweakBlock, xtsReference } from '../support/xts-reference.js';

interface Vector {
  source: string;
  key1: string;
  key2: string;
  dataUnitSequenceNumber: number;
  plaintext: string;
  ciphertext: string;
}
const { vectors } = JSON.parse(readFileSync(new URL('../vectors/xts-aes-256-ieee1619.json', import.meta.url), 'utf8')) as {
  vectors: Vector[];
};

const U64_MAX = (1n << 64n) - 1n;
const requireNativeEnv = process.env['VAULT_REQUIRE_NATIVE'] === '1';
let nativeAvailable = false;
try {
  nativeAvailable = nativeAddon() !== null;
} catch {
  nativeAvailable = false; // VAULT_REQUIRE_NATIVE=1 and missing: the native tests below will fail
}
/** Run the native tests when the addon is there, or when its absence must fail the suite. */
const runNative = nativeAvailable || requireNativeEnv;
if (!runNative) {
  console.warn(
    '\n*** vault: native addon NOT available: native XTS tests are SKIPPED, only the node:crypto fallback is tested. ***\n' +
      '*** Build it with `npm run build:native`; set VAULT_REQUIRE_NATIVE=1 to make its absence fail. ***\n',
  );
}

/** Fresh random 64-byte key whose halves differ (they do with overwhelming probability). */
function randomKey(): Buffer {
  for (;;) {
    const k = randomBytes(64);
    if (!k.subarray(0, 32).equals(k.subarray(32))) return k;
  }
}

function randomU64(): bigint {
  return randomBytes(8).readBigUInt64LE(0);
}

type Path = 'native-sync' | 'native-async' | 'node-crypto' | 'reference';

/** Runs one path over a copy of `data` and returns the result. */
async function runPath(path: Path, keyBytes: Uint8Array, data: Uint8Array, p: XtsParams, encrypt: boolean): Promise<Buffer> {
  const out = Buffer.from(data);
  if (path === 'reference') {
    return Buffer.from(xtsReference(keyBytes, data, { ...p, encrypt }));
  }
  const backend: XtsBackend = path === 'node-crypto' ? 'node-crypto' : 'native';
  if (backend === 'native') requireNative(); // throws (fails the test) if the addon is missing
  const key = KeyHandle.fromBytes(Buffer.from(keyBytes));
  __forceBackendForTests(backend);
  try {
    expect(xtsBackend()).toBe(backend);
    if (path === 'native-async') await (encrypt ? xtsEncryptAsync : xtsDecryptAsync)(key, out, p);
    else (encrypt ? xtsEncrypt : xtsDecrypt)(key, out, p);
  } finally {
    __forceBackendForTests(null);
    key.dispose();
  }
  return out;
}

const nativePaths: Path[] = ['native-sync', 'native-async'];
const portablePaths: Path[] = ['node-crypto', 'reference'];
const allPaths: Path[] = runNative ? [...nativePaths, ...portablePaths] : portablePaths;

afterEach(() => {
  __forceBackendForTests(null);
});

describe('reference implementation sanity', () => {
  it('multiplies by alpha with the little-endian convention of IEEE 1619', () => {
    const t = tweakBlock(1n);
    mulAlpha(t);
    expect(Buffer.from(t).toString('hex')).toBe('02' + '00'.repeat(15));
    const top = tweakBlock(1n << 127n);
    mulAlpha(top);
    expect(Buffer.from(top).toString('hex')).toBe('87' + '00'.repeat(15));
    const carry = tweakBlock(0x80n);
    mulAlpha(carry);
    expect(Buffer.from(carry).toString('hex')).toBe('0001' + '00'.repeat(14));
  });
});

describe('IEEE 1619-2007 XTS-AES-256 vectors 10-12 (512-byte data units)', () => {
  it('has the three vectors with their sources', () => {
    expect(vectors.map((v) => v.dataUnitSequenceNumber)).toEqual([0xff, 0xffff, 0xffffff]);
    for (const v of vectors) expect(v.source).toMatch(/IEEE Std 1619-2007/);
  });

  for (const v of vectors) {
    const key = Buffer.from(v.key1 + v.key2, 'hex');
    const pt = Buffer.from(v.plaintext, 'hex');
    const ct = Buffer.from(v.ciphertext, 'hex');
    const p: XtsParams = { sectorSize: 512, firstTweak: BigInt(v.dataUnitSequenceNumber) };
    const name = v.source.replace(/^.*vector /, 'vector ');
    for (const path of [...nativePaths, ...portablePaths]) {
      const test = nativePaths.includes(path) && !runNative ? it.skip : it;
      test(`${name}: ${path} encrypts and decrypts`, async () => {
        expect((await runPath(path, key, pt, p, true)).toString('hex')).toBe(v.ciphertext);
        expect((await runPath(path, key, ct, p, false)).toString('hex')).toBe(v.plaintext);
      });
    }
  }

  // Two sectors in one call with a tweak step: vector 10's unit (255) then vector 11's (65535).
  // Checks that sector i really uses firstTweak + i * step through a real-world known answer.
  it.each(allPaths)('two vectors in one buffer with tweak step 65280: %s', async (path) => {
    const [v10, v11] = vectors as [Vector, Vector];
    const key = Buffer.from(v10.key1 + v10.key2, 'hex');
    const pt = Buffer.from(v10.plaintext + v11.plaintext, 'hex');
    const p: XtsParams = { sectorSize: 512, firstTweak: 255n, tweakStep: 65535n - 255n };
    expect((await runPath(path, key, pt, p, true)).toString('hex')).toBe(v10.ciphertext + v11.ciphertext);
    expect((await runPath(path, key, Buffer.from(v10.ciphertext + v11.ciphertext, 'hex'), p, false)).toString('hex')).toBe(
      v10.plaintext + v11.plaintext,
    );
  });
});

describe('cross-check: ' + allPaths.join(' == '), () => {
  // Tweaks around the interesting boundaries: byte carries, 2^32 (32-bit counters), 2^53 (where a
  // JS number stops being exact) and the very top of the 64-bit range.
  function firstTweaks(sectors: number, step: bigint): bigint[] {
    const span = BigInt(sectors - 1) * step;
    return [
      0n,
      randomU64() % (1n << 32n),
      (1n << 32n) - 1n, // crosses 2^32 inside the buffer
      (1n << 32n) + (randomU64() % (1n << 20n)),
      (1n << 53n) - 1n, // crosses 2^53
      (1n << 53n) + (randomU64() % (1n << 40n)),
      randomU64() % (U64_MAX - span),
      U64_MAX - span, // the last sector's tweak is 2^64 - 1
    ];
  }

  for (const sectorSize of [512, 4096]) {
    for (const step of [1n, 8n, 7n]) {
      it(`sector ${sectorSize}, step ${step}: every path agrees, decrypt inverts`, async () => {
        const sectors = sectorSize === 512 ? 5 : 3;
        for (const firstTweak of firstTweaks(sectors, step)) {
          const key = randomKey();
          const pt = randomBytes(sectorSize * sectors);
          const p: XtsParams = { sectorSize, firstTweak, tweakStep: step };
          const label = `tweak ${firstTweak}`;
          const expected = await runPath('reference', key, pt, p, true);
          expect(expected.equals(pt), label).toBe(false);
          for (const path of allPaths) {
            const ct = await runPath(path, key, pt, p, true);
            expect(ct.toString('hex'), `${path} encrypt, ${label}`).toBe(expected.toString('hex'));
            const back = await runPath(path, key, ct, p, false);
            expect(back.equals(pt), `${path} decrypt, ${label}`).toBe(true);
          }
          // Sector i alone with tweak firstTweak + i*step gives the same bytes as in the batch.
          const last = sectors - 1;
          const alone = await runPath(
            allPaths[0]!,
            key,
            pt.subarray(last * sectorSize),
            { sectorSize, firstTweak: firstTweak + BigInt(last) * step },
            true,
          );
          expect(alone.equals(expected.subarray(last * sectorSize)), label).toBe(true);
        }
      });
    }
  }

  // The native addon computes small sectors (<= 1024 bytes) itself on top of AES-ECB, in chunks of
  // whole sectors (4 KiB) with the initial tweaks encrypted 128 sectors at a time, and larger ones
  // through OpenSSL's XTS. Sector counts here span several chunks, a shorter last chunk and (for
  // the smallest sectors) several tweak groups; sizes straddle the switch between the two paths.
  for (const sectorSize of [16, 32, 48, 496, 1008, 1024, 1040, 2048, 65536]) {
    it.skipIf(!runNative)(`sector ${sectorSize}: native sync and async match node:crypto across chunks`, async () => {
      const sectors = Math.max(2, Math.ceil((3 * 4096) / sectorSize) + 1);
      for (const [firstTweak, step] of [
        [0n, 1n],
        [(1n << 32n) - 5n, 7n],
        [(1n << 53n) + (randomU64() % (1n << 40n)), 8n],
        [U64_MAX - BigInt(sectors - 1), 1n],
      ] as const) {
        const key = randomKey();
        const pt = randomBytes(sectorSize * sectors);
        const p: XtsParams = { sectorSize, firstTweak, tweakStep: step };
        const label = `sector ${sectorSize}, tweak ${firstTweak}, step ${step}`;
        const expected = await runPath('node-crypto', key, pt, p, true);
        for (const path of nativePaths) {
          const ct = await runPath(path, key, pt, p, true);
          expect(ct.equals(expected), `${path} encrypt, ${label}`).toBe(true);
          const back = await runPath(path, key, expected, p, false);
          expect(back.equals(pt), `${path} decrypt, ${label}`).toBe(true);
        }
      }
    });
  }

  it('defaults tweakStep to 1', async () => {
    const key = randomKey();
    const pt = randomBytes(4 * 512);
    for (const path of allPaths) {
      const a = await runPath(path, key, pt, { sectorSize: 512, firstTweak: 10n }, true);
      const b = await runPath(path, key, pt, { sectorSize: 512, firstTweak: 10n, tweakStep: 1n }, true);
      expect(a.equals(b), path).toBe(true);
    }
  });
});

describe.skipIf(!runNative)('native backend', () => {
  it('is the default backend when the addon is loaded', () => {
    requireNative();
    expect(xtsBackend()).toBe('native');
    const key = KeyHandle.fromBytes(randomKey());
    expect(key.isNative).toBe(true);
    key.dispose();
  });

  it('runs many async jobs concurrently on one key, each matching the sync result', async () => {
    requireNative();
    const keyBytes = randomKey();
    const key = KeyHandle.fromBytes(Buffer.from(keyBytes));
    const bufs = Array.from({ length: 16 }, () => randomBytes(64 * 4096));
    const expected = bufs.map((b, i) => {
      const c = Buffer.from(b);
      xtsEncrypt(key, c, { sectorSize: 4096, firstTweak: BigInt(i * 64) });
      return c;
    });
    const work = bufs.map((b) => Buffer.from(b));
    await Promise.all(work.map((b, i) => xtsEncryptAsync(key, b, { sectorSize: 4096, firstTweak: BigInt(i * 64) })));
    work.forEach((b, i) => expect(b.equals(expected[i]!), `buffer ${i}`).toBe(true));
    await Promise.all(work.map((b, i) => xtsDecryptAsync(key, b, { sectorSize: 4096, firstTweak: BigInt(i * 64) })));
    work.forEach((b, i) => expect(b.equals(bufs[i]!), `buffer ${i}`).toBe(true));
    key.dispose();
  });

  it('lets queued async jobs finish when the key is disposed meanwhile', async () => {
    requireNative();
    const keyBytes = randomKey();
    const key = KeyHandle.fromBytes(Buffer.from(keyBytes));
    const pt = randomBytes(1 << 20);
    const buf = Buffer.from(pt);
    const pending = xtsEncryptAsync(key, buf, { sectorSize: 4096, firstTweak: 7n });
    key.dispose();
    await pending;
    const expected = await runPath('node-crypto', keyBytes, pt, { sectorSize: 4096, firstTweak: 7n }, true);
    expect(buf.equals(expected)).toBe(true);
    expect(() => xtsEncrypt(key, buf, { sectorSize: 4096, firstTweak: 7n })).toThrow(/disposed/);
  });

  it('validates arguments in C as well (direct addon calls)', async () => {
    const native = requireNative();
    const key = native.keyFromBytes(randomKey());
    const buf = Buffer.alloc(1024);
    const call = (...args: unknown[]) => (native.xts as (...a: unknown[]) => void)(...args);
    expect(() => call(key, buf, 512, -1n, 1n, true)).toThrow(RangeError);
    expect(() => call(key, buf, 512, 1n << 64n, 1n, true)).toThrow(RangeError);
    expect(() => call(key, buf, 512, U64_MAX, 1n, true)).toThrow(/exceeds 2\^64/);
    expect(() => call(key, buf, 512, 1, 1n, true)).toThrow(TypeError);
    expect(() => call(key, buf, 500, 0n, 1n, true)).toThrow(RangeError);
    expect(() => call(key, buf, 2048, 0n, 1n, true)).toThrow(RangeError);
    expect(() => call(key, buf.subarray(0, 0), 512, 0n, 1n, true)).toThrow(RangeError);
    expect(() => call(key, new Uint16Array(512), 512, 0n, 1n, true)).toThrow(TypeError);
    expect(() => call({}, buf, 512, 0n, 1n, true)).toThrow(TypeError);
    expect(() => call(key, buf, 512, 0n, 1n, 'yes')).toThrow(TypeError);
    expect(() => call(key, buf, 512, 0n)).toThrow(TypeError);
    const short = native.keyFromBytes(randomBytes(32));
    expect(() => call(short, buf, 512, 0n, 1n, true)).toThrow(/64-byte key/);
    expect(() => (native.xtsAsync as (...a: unknown[]) => unknown)(key, buf, 24, 0n, 1n, true)).toThrow(RangeError);
    native.keyDispose(key);
    native.keyDispose(short);
    expect(() => call(key, buf, 512, 0n, 1n, true)).toThrow(expect.objectContaining({ code: 'ERR_VAULT_KEY_DISPOSED' }));
  });
});

describe('argument validation', () => {
  // Created on first use, so that a missing addon under VAULT_REQUIRE_NATIVE=1 fails each test.
  let cachedKey: KeyHandle | undefined;
  const key = (): KeyHandle => (cachedKey ??= KeyHandle.fromBytes(randomKey()));
  afterAll(() => cachedKey?.dispose());
  const buf = Buffer.alloc(2048);
  const ok: XtsParams = { sectorSize: 512, firstTweak: 0n };
  const cases: [string, () => unknown, new (...a: never[]) => Error, RegExp][] = [
    ['key not a KeyHandle', () => xtsEncrypt({} as KeyHandle, buf, ok), TypeError, /KeyHandle/],
    ['buf not a Uint8Array', () => xtsEncrypt(key(), [1, 2] as unknown as Uint8Array, ok), TypeError, /buf/],
    ['params missing', () => xtsEncrypt(key(), buf, undefined as unknown as XtsParams), TypeError, /parameters/],
    ['sectorSize a string', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: '512' as unknown as number }), TypeError, /sectorSize/],
    ['sectorSize 0', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: 0 }), RangeError, /sectorSize/],
    ['sectorSize 8', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: 8 }), RangeError, /multiple of 16/],
    ['sectorSize 24', () => xtsEncrypt(key(), Buffer.alloc(48), { ...ok, sectorSize: 24 }), RangeError, /multiple of 16/],
    ['sectorSize 512.5', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: 512.5 }), RangeError, /sectorSize/],
    ['sectorSize NaN', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: NaN }), RangeError, /sectorSize/],
    ['sectorSize 32 MiB', () => xtsEncrypt(key(), buf, { ...ok, sectorSize: 32 << 20 }), RangeError, /sectorSize/],
    ['empty buffer', () => xtsEncrypt(key(), Buffer.alloc(0), ok), RangeError, /positive multiple/],
    ['buffer not a multiple', () => xtsEncrypt(key(), Buffer.alloc(700), ok), RangeError, /positive multiple/],
    ['firstTweak a number', () => xtsEncrypt(key(), buf, { sectorSize: 512, firstTweak: 1 as unknown as bigint }), TypeError, /bigint/],
    ['firstTweak negative', () => xtsEncrypt(key(), buf, { sectorSize: 512, firstTweak: -1n }), RangeError, /firstTweak/],
    ['firstTweak 2^64', () => xtsEncrypt(key(), buf, { sectorSize: 512, firstTweak: 1n << 64n }), RangeError, /firstTweak/],
    ['tweakStep a number', () => xtsEncrypt(key(), buf, { ...ok, tweakStep: 8 as unknown as bigint }), TypeError, /tweakStep/],
    ['tweakStep 0', () => xtsEncrypt(key(), buf, { ...ok, tweakStep: 0n }), RangeError, /tweakStep/],
    ['last tweak overflows', () => xtsEncrypt(key(), buf, { sectorSize: 512, firstTweak: U64_MAX - 2n }), RangeError, /exceeds 2\^64/],
    ['overflow by step', () => xtsDecrypt(key(), buf, { sectorSize: 512, firstTweak: 0n, tweakStep: 1n << 63n }), RangeError, /exceeds/],
    ['32-byte key', () => xtsEncrypt(KeyHandle.fromBytes(randomBytes(32)), buf, ok), RangeError, /64-byte key/],
  ];
  for (const [name, fn, type, message] of cases) {
    it(`rejects ${name}`, () => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(type);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('accepts the largest tweak that still fits', () => {
    const b = Buffer.alloc(2048);
    expect(() => xtsEncrypt(key(), b, { sectorSize: 512, firstTweak: U64_MAX - 3n })).not.toThrow();
  });

  it('async variants reject (not throw) with the same errors', async () => {
    const bad = { sectorSize: 100, firstTweak: 0n };
    const p = xtsEncryptAsync(key(), buf, bad);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toThrow(RangeError);
    await expect(xtsDecryptAsync(key(), buf, { sectorSize: 512, firstTweak: -5n })).rejects.toThrow(RangeError);
    await expect(xtsDecryptAsync({} as KeyHandle, buf, ok)).rejects.toThrow(TypeError);
  });

  it('refuses a disposed key', async () => {
    const k = KeyHandle.fromBytes(randomKey());
    k.dispose();
    expect(() => xtsEncrypt(k, buf, ok)).toThrow(expect.objectContaining({ code: 'ERR_VAULT_KEY_DISPOSED' }));
    await expect(xtsEncryptAsync(k, buf, ok)).rejects.toThrow(/disposed/);
  });

  it('leaves the buffer untouched when arguments are rejected', () => {
    const b = randomBytes(1000);
    const copy = Buffer.from(b);
    expect(() => xtsEncrypt(key(), b, { sectorSize: 512, firstTweak: 0n })).toThrow(RangeError);
    expect(b.equals(copy)).toBe(true);
  });
});

describe('fallback backend', () => {
  async function stderrOf(env: Record<string, string | undefined>, force: 'node-crypto' | null): Promise<string[]> {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    // Fresh copies of the modules: the addon is looked up once per module instance.
    vi.resetModules();
    const fresh = await import('../../src/crypto/xts.js');
    const { KeyHandle: FreshKeyHandle } = await import('../../src/crypto/key-handle.js');
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      fresh.__forceBackendForTests(force);
      const key = FreshKeyHandle.fromBytes(randomKey());
      const buf = randomBytes(4096);
      fresh.xtsEncrypt(key, buf, { sectorSize: 512, firstTweak: 1n });
      fresh.xtsDecrypt(key, buf, { sectorSize: 512, firstTweak: 1n });
      await fresh.xtsEncryptAsync(key, buf, { sectorSize: 4096, firstTweak: 1n });
      key.dispose();
    } finally {
      spy.mockRestore();
      fresh.__forceBackendForTests(null);
      process.env = saved;
      vi.resetModules();
    }
    return writes;
  }

  it('warns exactly once per process on stderr when the addon is missing', async () => {
    const writes = await stderrOf({ VAULT_DISABLE_NATIVE: '1', VAULT_REQUIRE_NATIVE: undefined }, null);
    expect(writes).toEqual(['vault: native addon not available, using the slower node:crypto path\n']);
  });

  it('stays quiet when the fallback is chosen on purpose (benchmarks, tests)', async () => {
    expect(await stderrOf({}, 'node-crypto')).toEqual([]);
  });
});
