/**
 * VeraCrypt's keyfile pool (Common/Keyfiles.c KeyFileProcess/KeyFilesApply; the same in
 * cryptsetup lib/tcrypt/tcrypt.c TCRYPT_pool_keyfile) and how it is mixed into the password.
 *
 * For each keyfile, in order: a CRC-32 register starts at 0xFFFFFFFF and a write position at 0;
 * for each of the file's first 1 MiB of bytes the register is updated and its four bytes (most
 * significant first) are added, modulo 256, to the pool at the write position, which wraps at the
 * pool size. The pool is 64 bytes when the password is at most 64 bytes (TrueCrypt's size) and 128
 * bytes for longer passwords. The pool is then added byte-wise to the password, which is padded
 * with zeros to the pool size: the PBKDF input is exactly pool-size bytes long.
 */
import { VaultError } from '../../errors.js';
import { crc32Step } from './crc32.js';
import { secretBuffer, secretCopy } from '../../crypto/wipe.js';

export const KEYFILE_MAX_READ = 1024 * 1024;
export const LEGACY_POOL_SIZE = 64;
export const POOL_SIZE = 128;
/** VeraCrypt's longest password (MAX_PASSWORD); TrueCrypt's was 64. */
export const MAX_PASSWORD = 128;

/**
 * The password bytes the KDF sees: the password alone without keyfiles, else the password mixed
 * with the keyfile pool. The caller wipes the result.
 */
export function mixKeyfiles(password: Uint8Array, keyfiles: readonly Uint8Array[]): Buffer {
  if (password.length > MAX_PASSWORD)
    throw new VaultError('usage', `the password is ${password.length} bytes; VeraCrypt passwords are at most ${MAX_PASSWORD} bytes`);
  if (keyfiles.length === 0) return secretCopy(password);
  const size = password.length <= LEGACY_POOL_SIZE ? LEGACY_POOL_SIZE : POOL_SIZE;
  // Every keyfile is checked before the pool gets its first byte, so no error leaves a partly
  // mixed pool behind unwiped.
  const empty = keyfiles.findIndex((k) => k.length === 0);
  if (empty >= 0) throw new VaultError('usage', `keyfile ${empty + 1} is empty`);
  const pool = secretBuffer(size);
  for (const k of keyfiles) {
    let crc = 0xffffffff;
    let pos = 0;
    const n = Math.min(k.length, KEYFILE_MAX_READ);
    for (let j = 0; j < n; j++) {
      crc = crc32Step(crc, k[j]!);
      pool[pos] = pool[pos]! + (crc >>> 24);
      pool[pos + 1] = pool[pos + 1]! + (crc >>> 16);
      pool[pos + 2] = pool[pos + 2]! + (crc >>> 8);
      pool[pos + 3] = pool[pos + 3]! + crc;
      pos = (pos + 4) % size;
    }
    crc = 0;
  }
  for (let i = 0; i < password.length; i++) pool[i] = pool[i]! + password[i]!;
  return pool;
}
