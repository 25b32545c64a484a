import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { argon2id, buildKdfInput, deriveKek } from '../../src/crypto/kdf.js';
import { isVaultError } from '../../src/errors.js';

const rfc = JSON.parse(readFileSync(new URL('../vectors/argon2id-rfc9106.json', import.meta.url), 'utf8'));
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
