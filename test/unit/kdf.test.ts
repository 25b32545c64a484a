import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { argon2id, argon2Raw, buildKdfInput, deriveKek } from '../../src/crypto/kdf.js';
import { nativeAddon } from '../../src/crypto/native.js';
import { isVaultError } from '../../src/errors.js';

const rfc = JSON.parse(readFileSync(new URL('../vectors/argon2id-rfc9106.json', import.meta.url), 'utf8'));
const rfcArgon2i = JSON.parse(readFileSync(new URL('../vectors/argon2i-rfc9106.json', import.meta.url), 'utf8'));
const hex = (s: string) => Buffer.from(s, 'hex');

describe('Argon2id (RFC 9106 §5.3)', () => {
  it('reproduces the RFC 9106 Argon2id tag', async () => {
    const tag = await argon2id(
      hex(rfc.password),
      hex(rfc.salt),
      { memoryKiB: rfc.memoryKiB, iterations: rfc.passes, parallelism: rfc.lanes },
      rfc.tagLength,
      { secret: hex(rfc.secret), associatedData: hex(rfc.associatedData) },
    );
    expect(tag.toString('hex')).toBe(rfc.tag);
  });

  it('reproduces the RFC 9106 Argon2i tag (§5.2) through the same libargon2 path LUKS keyslots use', async () => {
    const out = Buffer.alloc(rfcArgon2i.tagLength);
    await nativeAddon().argon2Async(
      'argon2i',
      hex(rfcArgon2i.password),
      hex(rfcArgon2i.salt),
      rfcArgon2i.memoryKiB,
      rfcArgon2i.passes,
      rfcArgon2i.lanes,
      out,
      hex(rfcArgon2i.secret),
      hex(rfcArgon2i.associatedData),
    );
    expect(out.toString('hex')).toBe(rfcArgon2i.tag);
  });

  // Two other implementations: libgcrypt's Argon2id (VeraCrypt's path, native/kdf.c) and the argon2
  // npm package (the reference code, built by its own package). Memory sizes that are not a
  // multiple of 4·lanes, several lanes (threads), a memory size above the 2 MiB alignment of our
  // mapping, and tags of several lengths.
  it('agrees with libgcrypt and with the argon2 package over varied parameters', async () => {
    const cases = [
      { memoryKiB: 8, iterations: 1, parallelism: 1, length: 4 },
      { memoryKiB: 1000, iterations: 2, parallelism: 3, length: 32 },
      { memoryKiB: 2049, iterations: 1, parallelism: 1, length: 64 },
      { memoryKiB: 4100, iterations: 3, parallelism: 4, length: 100 },
    ];
    for (const c of cases) {
      const password = randomBytes(1 + (c.memoryKiB % 61));
      const salt = randomBytes(16 + (c.length % 17));
      const kdf = { memoryKiB: c.memoryKiB, iterations: c.iterations, parallelism: c.parallelism };
      const ours = await argon2Raw('argon2id', password, salt, kdf, c.length);
      const gcry = Buffer.alloc(c.length);
      await nativeAddon().argon2idAsync(password, salt, c.memoryKiB, c.iterations, c.parallelism, gcry, null);
      const opts = { raw: true as const, version: 0x13, salt, memoryCost: c.memoryKiB, timeCost: c.iterations, parallelism: c.parallelism, hashLength: c.length };
      const pkg = await argon2.hash(password, { ...opts, type: argon2.argon2id });
      expect(ours.toString('hex'), JSON.stringify(c)).toBe(gcry.toString('hex'));
      expect(ours.toString('hex'), JSON.stringify(c)).toBe(pkg.toString('hex'));
      const oursI = await argon2Raw('argon2i', password, salt, kdf, c.length);
      expect(oursI.toString('hex'), JSON.stringify(c)).toBe((await argon2.hash(password, { ...opts, type: argon2.argon2i })).toString('hex'));
      expect(oursI.equals(ours)).toBe(false);
    }
  });

  it('refuses what RFC 9106 does not define, in the addon itself', async () => {
    const a = nativeAddon();
    const run = (variant: string, salt: number, memoryKiB: number, passes: number, lanes: number, out: number) => () =>
      a.argon2Async(variant as 'argon2id', Buffer.from('pw'), Buffer.alloc(salt), memoryKiB, passes, lanes, Buffer.alloc(out), null, null);
    expect(run('argon2d', 16, 64, 1, 1, 32)).toThrow(/variant/);
    expect(run('argon2id', 7, 64, 1, 1, 32)).toThrow(/salt/); // salt < 8 bytes
    expect(run('argon2id', 16, 64, 1, 1, 3)).toThrow(/out 4 to 1024/);
    expect(run('argon2id', 16, 31, 1, 4, 32)).toThrow(/memory ≥ 8·lanes/);
    expect(run('argon2id', 16, 64, 0, 1, 32)).toThrow(/passes/);
    expect(run('argon2id', 16, 4 * 1024 * 1024 + 1, 1, 1, 32)).toThrow(/memoryKiB/);
    expect(() => a.argon2Async('argon2id', Buffer.from('pw'), Buffer.alloc(16), 64, 1, 1, Buffer.alloc(32), Buffer.alloc(1025), null)).toThrow(/at most 1024/);
  });

  it('refuses parameters above the bounds before deriving anything, fast', async () => {
    const salt = Buffer.alloc(32);
    for (const kdf of [
      { memoryKiB: 100 * 1024 * 1024, iterations: 3, parallelism: 4 }, // 100 GiB
      { memoryKiB: 65536, iterations: 1_000_000, parallelism: 4 },
      { memoryKiB: 65536, iterations: 3, parallelism: 255 },
      { memoryKiB: 512, iterations: 3, parallelism: 1 },
      { memoryKiB: 1024, iterations: 0, parallelism: 1 },
      { memoryKiB: 1024, iterations: 1, parallelism: 0 },
      { memoryKiB: 1024.5, iterations: 1, parallelism: 1 },
    ]) {
      const t0 = performance.now();
      const err = await deriveKek(Buffer.from('pw'), salt, kdf).catch((e) => e);
      expect(isVaultError(err, 'kdf-bounds'), JSON.stringify(kdf)).toBe(true);
      expect(performance.now() - t0).toBeLessThan(50);
    }
  });
});

describe('KDF input (spec §4.2)', () => {
  it('is the passphrase bytes alone without keyfiles, and refuses an empty one', () => {
    expect(buildKdfInput(Buffer.from('pässword', 'utf8')).equals(Buffer.from('pässword', 'utf8'))).toBe(true);
    expect(() => buildKdfInput(Buffer.alloc(0))).toThrow(/empty/);
  });

  it('mixes keyfiles by sorted SHA-256, independent of order, and allows an empty passphrase with them', () => {
    const k1 = Buffer.from('first keyfile');
    const k2 = Buffer.from('second keyfile');
    const a = buildKdfInput(Buffer.from('pw'), [k1, k2]);
    const b = buildKdfInput(Buffer.from('pw'), [k2, k1]);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(buildKdfInput(Buffer.from('pw'), [k1]))).toBe(false);
    expect(a.equals(buildKdfInput(Buffer.from('px'), [k1, k2]))).toBe(false);
    expect(a.equals(buildKdfInput(Buffer.from('pw'), [k1, k1]))).toBe(false);
    expect(buildKdfInput(Buffer.alloc(0), [k1]).length).toBe(17 + 4 + 0 + 4 + 32);
    expect(a.subarray(0, 17).toString()).toBe('vault-keyfiles-v1');
  });

  it('refuses empty and oversized keyfiles instead of truncating them', () => {
    expect(() => buildKdfInput(Buffer.from('pw'), [Buffer.alloc(0)])).toThrow(/1 byte to 1 MiB/);
    expect(() => buildKdfInput(Buffer.from('pw'), [Buffer.alloc(1024 * 1024 + 1)])).toThrow(/1 byte to 1 MiB/);
    expect(() => buildKdfInput(Buffer.from('pw'), [Buffer.alloc(1024 * 1024)])).not.toThrow();
  });
});
