/**
 * Passphrase and keyfile input (spec/format.md §4.2) and Argon2id key derivation (§4.3, RFC 9106).
 * Argon2id runs in Debian's libargon2 inside vault's addon, on the libuv threadpool (argon2() below).
 */
import { createHash } from 'node:crypto';
import { VaultError } from '../errors.js';
import { checkKdfBounds } from '../format/header.js';
import type { KdfParams } from '../format/types.js';
import { nativeAddon } from './native.js';
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
  return argon2('argon2id', password, salt, kdf, length, extra.secret ?? null, extra.associatedData ?? null);
}

/**
 * Raw Argon2i or Argon2id (version 0x13, no secret, no associated data) for foreign formats: LUKS
 * keyslots name either variant. Callers check their format's bounds first.
 */
export function argon2Raw(
  variant: 'argon2i' | 'argon2id',
  password: Uint8Array,
  salt: Uint8Array,
  p: Argon2Params,
  length: number,
): Promise<Buffer> {
  return argon2(variant, password, salt, p, length, null, null);
}

export interface Argon2Params {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

/**
 * The one call through which every Argon2 derivation of vault's (and LUKS's) keyslots runs. An
 * object, so that the header fuzzer (test/fuzz/header-fuzz.ts) can wrap it to check each
 * derivation's parameters against spec §3 and decline the costly ones.
 */
export const argon2Backend = {
  derive(
    variant: 'argon2i' | 'argon2id',
    password: Uint8Array,
    salt: Uint8Array,
    p: Argon2Params,
    out: Uint8Array,
    secret: Uint8Array | null,
    associatedData: Uint8Array | null,
  ): Promise<void> {
    return nativeAddon().argon2Async(variant, password, salt, p.memoryKiB, p.iterations, p.parallelism, out, secret, associatedData);
  },
};

/**
 * Debian's libargon2 in the addon (native/kdf.c), one thread per lane, on the libuv threadpool. It
 * reads the password where it lies (no copy in JS memory), and fills its memory blocks in a mapping
 * of its own: huge pages (a fresh 4 KiB page costs ~12 us to fault in on these machines, which made
 * an 8 MiB derivation 28 ms instead of 4), locked where RLIMIT_MEMLOCK has room, wiped before it is
 * unmapped.
 */
async function argon2(
  variant: 'argon2i' | 'argon2id',
  password: Uint8Array,
  salt: Uint8Array,
  p: Argon2Params,
  length: number,
  secret: Uint8Array | null,
  associatedData: Uint8Array | null,
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  try {
    await argon2Backend.derive(variant, password, salt, p, out, secret, associatedData);
  } catch (e) {
    wipe(out);
    throw e;
  }
  return out;
}
