// XTS-AES-256: known answers (IEEE 1619), cross-checks of the native path (sync and async) against
// two independent implementations (node:crypto's aes-256-xts, one sector per call, and a reference
// written from the standard in test/support), and argument validation.
import { readFileSync } from 'node:fs';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { nativeAddon } from '../../src/crypto/native.js';
import type { XtsParams } from '../../src/crypto/xts.js';
import {
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

/** node:crypto's aes-256-xts, one data unit per call: independent of our native code. */
function nodeCryptoXts(keyBytes: Uint8Array, data: Buffer, p: XtsParams, encrypt: boolean): void {
  const iv = Buffer.alloc(16);
  let tweak = p.firstTweak;
  for (let off = 0; off < data.length; off += p.sectorSize, tweak += p.tweakStep ?? 1n) {
    iv.writeBigUInt64LE(tweak, 0);
    const c = encrypt ? createCipheriv('aes-256-xts', keyBytes, iv) : createDecipheriv('aes-256-xts', keyBytes, iv);
    const sector = data.subarray(off, off + p.sectorSize);
    c.update(sector).copy(sector);
  }
}

/** Runs one path over a copy of `data` and returns the result. */
async function runPath(path: Path, keyBytes: Uint8Array, data: Uint8Array, p: XtsParams, encrypt: boolean): Promise<Buffer> {
  const out = Buffer.from(data);
  if (path === 'reference') {
    return Buffer.from(xtsReference(keyBytes, data, { ...p, encrypt }));
  }
  if (path === 'node-crypto') {
    nodeCryptoXts(keyBytes, out, p, encrypt);
    return out;
  }
  const key = KeyHandle.fromBytes(Buffer.from(keyBytes));
  try {
    if (path === 'native-async') await (encrypt ? xtsEncryptAsync : xtsDecryptAsync)(key, out, p);
    else (encrypt ? xtsEncrypt : xtsDecrypt)(key, out, p);
  } finally {
    key.dispose();
  }
  return out;
}

const nativePaths: Path[] = ['native-sync', 'native-async'];
const allPaths: Path[] = [...nativePaths, 'node-crypto', 'reference'];

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
    for (const path of allPaths) {
      it(`${name}: ${path} encrypts and decrypts`, async () => {
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

  // The native addon runs libgcrypt's XTS one data unit at a time, for every sector size from 16
  // bytes to the 16 MiB limit; node:crypto (OpenSSL) is the independent implementation. Sector
  // counts span several 4 KiB chunks and a shorter last one; the sizes are the odd ones (single
  // blocks, 31 and 63 blocks) beside the common ones.
  for (const sectorSize of [16, 32, 48, 496, 1008, 1024, 1040, 2048, 65536]) {
    it(`sector ${sectorSize}: native sync and async match node:crypto across chunks`, async () => {
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

describe('native backend', () => {
  it('runs many async jobs concurrently on one key, each matching the sync result', async () => {
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
    const native = nativeAddon();
    const key = native.keyFromBytes(randomKey());
    const buf = Buffer.alloc(1024);
    const call = (...args: unknown[]) => (native.xts as (...a: unknown[]) => void)(...args);
    expect(() => call(key, buf, 512, -1n, 1n, true, 'aes')).toThrow(RangeError);
    expect(() => call(key, buf, 512, 1n << 64n, 1n, true, 'aes')).toThrow(RangeError);
    expect(() => call(key, buf, 512, U64_MAX, 1n, true, 'aes')).toThrow(/exceeds 2\^64/);
    expect(() => call(key, buf, 512, 1, 1n, true, 'aes')).toThrow(TypeError);
    expect(() => call(key, buf, 500, 0n, 1n, true, 'aes')).toThrow(RangeError);
    expect(() => call(key, buf, 2048, 0n, 1n, true, 'aes')).toThrow(RangeError);
    expect(() => call(key, buf.subarray(0, 0), 512, 0n, 1n, true, 'aes')).toThrow(RangeError);
    expect(() => call(key, new Uint16Array(512), 512, 0n, 1n, true, 'aes')).toThrow(TypeError);
    expect(() => call({}, buf, 512, 0n, 1n, true, 'aes')).toThrow(TypeError);
    expect(() => call(key, buf, 512, 0n, 1n, 'yes', 'aes')).toThrow(TypeError);
    expect(() => call(key, buf, 512, 0n)).toThrow(TypeError);
    expect(() => call(key, buf, 512, 0n, 1n, true)).toThrow(TypeError); // no cipher chain
    expect(() => call(key, buf, 512, 0n, 1n, true, 'des')).toThrow(/unknown cipher chain 'des'/);
    expect(() => call(key, buf, 512, 0n, 1n, true, 'aes-aes-aes-aes')).toThrow(RangeError);
    expect(() => call(key, buf, 512, 0n, 1n, true, 'serpent-aes')).toThrow(/needs a 128-byte key/);
    const short = native.keyFromBytes(randomBytes(32));
    expect(() => call(short, buf, 512, 0n, 1n, true, 'aes')).toThrow(/64-byte key/);
    expect(() => (native.xtsAsync as (...a: unknown[]) => unknown)(key, buf, 24, 0n, 1n, true, 'aes')).toThrow(RangeError);
    native.keyDispose(key);
    native.keyDispose(short);
    expect(() => call(key, buf, 512, 0n, 1n, true, 'aes')).toThrow(expect.objectContaining({ code: 'ERR_VAULT_KEY_DISPOSED' }));
  });
});

describe('argument validation', () => {
  // Created on first use, so that a failure to load the addon fails each test.
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
