/**
 * Passphrase and keyfile input (spec/format.md §4.2) and Argon2id key derivation (§4.3, RFC 9106).
 * Argon2id runs in the `argon2` package's native code on the libuv threadpool, off the main thread.
 */
import argon2 from 'argon2';
import { createHash } from 'node:crypto';
import { VaultError } from '../errors.js';
import { checkKdfBounds } from '../format/header.js';
import type { KdfParams } from '../format/types.js';
import { wipe } from './wipe.js';

export const KEK_SIZE = 32;
export const MAX_KEYFILE_SIZE = 1024 * 1024;
const KEYFILE_DOMAIN = Buffer.from('vault-keyfiles-v1', 'ascii');

/**
 * Builds the Argon2id password input P from passphrase bytes and keyfile contents.
 * Keyfiles are hashed and sorted, so their order does not matter (spec §4.2).
 */
export function buildKdfInput(passphrase: Uint8Array, keyfiles: readonly Uint8Array[] = []): Buffer {
  if (keyfiles.length === 0) {
    if (passphrase.length === 0)
      throw new VaultError('usage', 'the passphrase is empty', 'an empty passphrase is allowed only together with a keyfile');
    return Buffer.from(passphrase);
  }
  const hashes = keyfiles.map((k, i) => {
    if (k.length === 0 || k.length > MAX_KEYFILE_SIZE)
      throw new VaultError('usage', `keyfile ${i + 1} is ${k.length} bytes; a keyfile must be 1 byte to 1 MiB`);
    return createHash('sha256').update(k).digest();
  });
  hashes.sort(Buffer.compare);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(passphrase.length);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(keyfiles.length);
  const out = Buffer.concat([KEYFILE_DOMAIN, len, passphrase, count, ...hashes]);
  wipe(...hashes);
  return out;
}

/** Derives the 32-byte key-encryption key. Bounds are checked first: untrusted parameters never reach argon2. */
export async function deriveKek(input: Uint8Array, salt: Uint8Array, kdf: KdfParams): Promise<Buffer> {
  checkKdfBounds(kdf);
  return argon2id(input, salt, kdf, KEK_SIZE);
}

/** Raw Argon2id (version 0x13). Exposed separately so the RFC 9106 vector (with secret and AD) can test it. */
export async function argon2id(
  password: Uint8Array,
  salt: Uint8Array,
  kdf: KdfParams,
  length: number,
  extra: { secret?: Uint8Array; associatedData?: Uint8Array } = {},
): Promise<Buffer> {
  return hashWipingCopy(Buffer.from(password.buffer, password.byteOffset, password.length), {
    raw: true,
    type: argon2.argon2id,
    version: 0x13,
    salt: Buffer.from(salt),
    memoryCost: kdf.memoryKiB,
    timeCost: kdf.iterations,
    parallelism: kdf.parallelism,
    hashLength: length,
    ...(extra.secret ? { secret: Buffer.from(extra.secret) } : {}),
    ...(extra.associatedData ? { associatedData: Buffer.from(extra.associatedData) } : {}),
  });
}

/**
 * Raw Argon2i or Argon2id (version 0x13, no secret, no associated data) for foreign formats: LUKS
 * keyslots name either variant. Callers check their format's bounds first.
 */
export function argon2Raw(
  variant: 'argon2i' | 'argon2id',
  password: Uint8Array,
  salt: Uint8Array,
  p: { memoryKiB: number; iterations: number; parallelism: number },
  length: number,
): Promise<Buffer> {
  return hashWipingCopy(Buffer.from(password.buffer, password.byteOffset, password.length), {
    raw: true,
    type: variant === 'argon2i' ? argon2.argon2i : argon2.argon2id,
    version: 0x13,
    salt: Buffer.from(salt),
    memoryCost: p.memoryKiB,
    timeCost: p.iterations,
    parallelism: p.parallelism,
    hashLength: length,
  });
}

/**
 * argon2.hash(), minus the stray copy of the password it leaves behind.
 *
 * The package's JS wrapper copies the password with Buffer.from() before handing it to its C++
 * binding, and nothing ever wipes that copy (the C++ side copies it again and wipes its own copy,
 * ARGON2_FLAG_CLEAR_PASSWORD). Buffer.from() of a small buffer takes its memory from Node's shared
 * buffer pool, and both copies are made synchronously inside the call, before it returns its
 * promise. So: raise the pool's size limit so the copy is pooled whatever its length, bracket the
 * call with two one-byte pooled allocations, and wipe every occurrence of the password between
 * them, which can only be that copy. Checked by test/e2e/leaks.test.ts, which scans the memory of
 * an exiting CLI for the passphrase.
 */
function hashWipingCopy(password: Buffer, options: Parameters<typeof argon2.hash>[1] & { raw: true }): Promise<Buffer> {
  const poolSize = Buffer.poolSize;
  Buffer.poolSize = Math.max(poolSize, 2 * (password.length + 16));
  let pending: Promise<Buffer>;
  let before: Buffer;
  let after: Buffer;
  try {
    before = Buffer.allocUnsafe(1);
    pending = argon2.hash(password, options);
    after = Buffer.allocUnsafe(1);
  } finally {
    Buffer.poolSize = poolSize;
  }
  if (password.length > 0) {
    const ranges: Buffer[] =
      before.buffer === after.buffer
        ? [Buffer.from(before.buffer, before.byteOffset + 1, after.byteOffset - before.byteOffset - 1)]
        : [Buffer.from(before.buffer, before.byteOffset + 1), Buffer.from(after.buffer, 0, after.byteOffset)];
    for (const r of ranges) for (let i = r.indexOf(password); i >= 0; i = r.indexOf(password, i + 1)) r.fill(0, i, i + password.length);
  }
  return pending;
}
