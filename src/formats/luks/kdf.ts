/**
 * The key derivations LUKS keyslots name (PBKDF2 with SHA-1/256/512, Argon2i, Argon2id) and the
 * bounds every untrusted parameter passes before any derivation runs.
 *
 * Parameter mapping (cryptsetup lib/luks2/luks2_keyslot_luks2.c, lib/crypto_backend/argon2_generic.c):
 *   argon2 "time" = passes (t), "memory" = KiB (m), "cpus" = lanes and threads (p), version 0x13,
 *   no secret, no associated data; output length = the keyslot area's key_size.
 *   pbkdf2 "iterations" with HMAC-"hash"; output length likewise.
 */
import { pbkdf2 as pbkdf2Cb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { VaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import { argon2Raw } from '../../crypto/kdf.js';
import type { LuksHash } from './af.js';

const pbkdf2 = promisify(pbkdf2Cb);

export type LuksKdf =
  | { type: 'pbkdf2'; hash: LuksHash; iterations: number; salt: Buffer }
  | { type: 'argon2i' | 'argon2id'; time: number; memoryKiB: number; cpus: number; salt: Buffer };

/**
 * Upper bounds keep a hostile header from making us spend hours or all memory before the
 * password is even checked. cryptsetup's own ceilings: Argon2 memory 4 GiB and 4 threads when it
 * creates keyslots (lib/utils_pbkdf.c); benchmarked PBKDF2 counts are a few million at most.
 * Argon2 work (passes × memory) is capped too, so a low memory cost cannot hide an absurd pass count.
 */
export const LUKS_KDF_BOUNDS = {
  pbkdf2Iterations: { min: 1, max: 50_000_000 },
  argon2MemoryKiB: { min: 8, max: 4 * 1024 * 1024 },
  argon2Time: { min: 1, max: 1_000_000 },
  argon2Cpus: { min: 1, max: 16 },
  /** passes × KiB: 16 passes over 4 GiB. */
  argon2WorkKiB: 16 * 4 * 1024 * 1024,
} as const;

function outside(what: string, v: number, min: number, max: number): VaultError {
  return new VaultError(
    'kdf-bounds',
    `${what}: ${v} is outside the allowed range ${min}–${max}`,
    'the header may be damaged or hostile; no key derivation was attempted',
  );
}

/** Throws kdf-bounds (naming `where`, e.g. "keyslot 1") when a parameter is beyond the bounds. */
export function checkLuksKdfBounds(kdf: LuksKdf, where: string): void {
  const b = LUKS_KDF_BOUNDS;
  const check = (name: string, v: number, r: { min: number; max: number }) => {
    if (!Number.isSafeInteger(v) || v < r.min || v > r.max) throw outside(`${where}: ${name}`, v, r.min, r.max);
  };
  if (kdf.type === 'pbkdf2') {
    check('PBKDF2 iterations', kdf.iterations, b.pbkdf2Iterations);
    return;
  }
  check('Argon2 memory (KiB)', kdf.memoryKiB, b.argon2MemoryKiB);
  check('Argon2 time cost', kdf.time, b.argon2Time);
  check('Argon2 threads', kdf.cpus, b.argon2Cpus);
  // Argon2 itself requires at least 8 KiB per lane (RFC 9106 §3.1).
  if (kdf.memoryKiB < 8 * kdf.cpus) throw outside(`${where}: Argon2 memory (KiB) for ${kdf.cpus} threads`, kdf.memoryKiB, 8 * kdf.cpus, b.argon2MemoryKiB.max);
  if (kdf.time * kdf.memoryKiB > b.argon2WorkKiB)
    throw outside(`${where}: Argon2 work (time × KiB)`, kdf.time * kdf.memoryKiB, 1, b.argon2WorkKiB);
}

/** Derives `length` bytes from `secret`. Bounds are checked here too, so no caller can skip them. */
export async function deriveLuksKey(secret: Buffer, kdf: LuksKdf, length: number, where: string): Promise<Buffer> {
  checkLuksKdfBounds(kdf, where);
  if (kdf.type === 'pbkdf2') return pbkdf2(secret, kdf.salt, kdf.iterations, length, kdf.hash);
  return argon2Raw(kdf.type, secret, kdf.salt, { memoryKiB: kdf.memoryKiB, iterations: kdf.time, parallelism: kdf.cpus }, length);
}

/** The LUKS "pbkdf2" volume-key digest: PBKDF2(key, salt, iterations, hash) compared in constant time. */
export async function pbkdf2DigestMatches(
  key: Buffer,
  d: { hash: LuksHash; iterations: number; salt: Buffer; digest: Buffer },
  where: string,
): Promise<boolean> {
  checkLuksKdfBounds({ type: 'pbkdf2', hash: d.hash, iterations: d.iterations, salt: d.salt }, where);
  const computed = await pbkdf2(key, d.salt, d.iterations, d.digest.length, d.hash);
  try {
    return timingSafeEqual(computed, d.digest);
  } finally {
    wipe(computed);
  }
}
