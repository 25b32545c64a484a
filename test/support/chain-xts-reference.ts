/**
 * XTS (IEEE 1619) over a chain of block ciphers, block by block in TypeScript: an independent
 * re-implementation of the native engine's arithmetic (tweak = data unit number as a 128-bit
 * little-endian integer, encrypted with the secondary key; T·α in GF(2^128) per block; VeraCrypt's
 * key layout and cascade order, src/crypto/cipher-chain.ts), for cross-checks only.
 */
import type { CipherChain, CipherName } from '../../src/crypto/cipher-chain.js';
import type { BlockCipher } from './blockciphers/types.js';
import { aes, camellia } from './blockciphers/openssl.js';
import { serpent } from './blockciphers/serpent.js';
import { twofish } from './blockciphers/twofish.js';
import { kuznyechik } from './blockciphers/kuznyechik.js';

export const REFERENCE: Record<CipherName, (key: Uint8Array) => BlockCipher> = { aes, serpent, twofish, camellia, kuznyechik };

function timesAlpha(t: Uint8Array): void {
  let carry = 0;
  for (let i = 0; i < 16; i++) {
    const next = t[i]! >>> 7;
    t[i] = ((t[i]! << 1) | carry) & 0xff;
    carry = next;
  }
  if (carry) t[0] = t[0]! ^ 0x87;
}

function xtsOne(data: Uint8Array, firstUnit: bigint, unit: number, k1: BlockCipher, k2: BlockCipher, decrypt: boolean): void {
  const t = new Uint8Array(16);
  const x = new Uint8Array(16);
  for (let off = 0; off < data.length; off += 16) {
    if (off % unit === 0) {
      t.fill(0);
      new DataView(t.buffer).setBigUint64(0, firstUnit + BigInt(off / unit), true);
      k2.encrypt(t);
    }
    for (let i = 0; i < 16; i++) x[i] = data[off + i]! ^ t[i]!;
    if (decrypt) k1.decrypt(x);
    else k1.encrypt(x);
    for (let i = 0; i < 16; i++) data[off + i] = x[i]! ^ t[i]!;
    timesAlpha(t);
  }
}

/** The chain's XTS over `data` in place, data units of `unit` bytes from unit `firstUnit`. */
export function referenceChainXts(chain: CipherChain, key: Uint8Array, data: Uint8Array, firstUnit: bigint, decrypt: boolean, unit = 512): void {
  const n = chain.length;
  const order = decrypt ? [...chain.keys()].reverse() : [...chain.keys()];
  for (const i of order) {
    const make = REFERENCE[chain[i]!];
    const k1 = make(key.subarray(32 * i, 32 * (i + 1)));
    const k2 = make(key.subarray(32 * (n + i), 32 * (n + i + 1)));
    xtsOne(data, firstUnit, unit, k1, k2, decrypt);
    k1.wipe();
    k2.wipe();
  }
}
