// An independent XTS-AES-256 (IEEE 1619-2007, section 5) for cross-checking vault's backends.
// Built only on @noble/ciphers' raw single-block AES (a pure-JS implementation, nothing shared
// with OpenSSL) and written to be read against the standard, not to be fast:
//
//   T  = AES-enc(Key2, i)             i = data unit number, 128-bit little-endian
//   for block j = 0, 1, ...:
//     C_j = AES-enc(Key1, P_j xor T) xor T       (decryption: AES-dec instead of AES-enc)
//     T   = T * alpha                 multiplication by x in GF(2^128), x^128 + x^7 + x^2 + x + 1
//
// Whole 16-byte blocks only (no ciphertext stealing): sectors are multiples of 16 bytes.
import { unsafe } from '@noble/ciphers/aes.js';

const BLOCK = 16;
const U64_MAX = (1n << 64n) - 1n;

/** T := T * alpha in place. IEEE 1619 stores T little-endian: byte 0 holds the lowest-order bits,
 *  so shifting left by one bit carries from byte k into byte k + 1, and the bit shifted out of the
 *  top (byte 15, bit 7) is reduced by x^128 = x^7 + x^2 + x + 1, i.e. xor 0x87 into byte 0. */
export function mulAlpha(t: Uint8Array): void {
  let carry = 0;
  for (let k = 0; k < BLOCK; k++) {
    const b = t[k];
    t[k] = ((b << 1) | carry) & 0xff;
    carry = b >> 7;
  }
  if (carry) t[0] ^= 0x87;
}

/** The data unit number as 16 little-endian bytes. */
export function tweakBlock(n: bigint): Uint8Array {
  if (n < 0n || n >= 1n << 128n) throw new RangeError('tweak out of range');
  const out = new Uint8Array(BLOCK);
  for (let k = 0; k < BLOCK; k++) out[k] = Number((n >> BigInt(8 * k)) & 0xffn);
  return out;
}

/**
 * XTS-AES-256 over `data` (a whole number of `sectorSize`-byte sectors); returns a new array.
 * Sector s uses data unit number firstTweak + s * tweakStep.
 */
export function xtsReference(
  key: Uint8Array,
  data: Uint8Array,
  opts: { sectorSize: number; firstTweak: bigint; tweakStep?: bigint; encrypt: boolean },
): Uint8Array {
  const { sectorSize, firstTweak, encrypt } = opts;
  const tweakStep = opts.tweakStep ?? 1n;
  if (key.length !== 64) throw new RangeError('XTS-AES-256 key must be 64 bytes');
  if (sectorSize % BLOCK !== 0 || sectorSize < BLOCK || data.length % sectorSize !== 0) throw new RangeError('bad sector size');
  // noble's expanded keys are Uint32Arrays; copies, so the caller's key is left alone.
  const key1 = key.slice(0, 32);
  const key2 = key.slice(32, 64);
  const k1 = encrypt ? unsafe.expandKeyLE(key1) : unsafe.expandKeyDecLE(key1);
  const k2 = unsafe.expandKeyLE(key2); // the tweak is always *encrypted* with Key2
  const out = new Uint8Array(data.length);
  const block = new Uint8Array(BLOCK); // fresh, hence 4-byte aligned as noble's block functions need
  for (let s = 0; s * sectorSize < data.length; s++) {
    const unit = firstTweak + BigInt(s) * tweakStep;
    if (unit > U64_MAX) throw new RangeError('tweak exceeds 64 bits');
    const t = unsafe.encryptBlock(k2, tweakBlock(unit));
    for (let off = s * sectorSize; off < (s + 1) * sectorSize; off += BLOCK) {
      for (let k = 0; k < BLOCK; k++) block[k] = data[off + k] ^ t[k];
      if (encrypt) unsafe.encryptBlock(k1, block);
      else unsafe.decryptBlock(k1, block);
      for (let k = 0; k < BLOCK; k++) out[off + k] = block[k] ^ t[k];
      mulAlpha(t);
    }
  }
  return out;
}
