/**
 * Naming a cipher vault does not support. When a header key does not open a header with AES, the
 * header may still be encrypted with another of VeraCrypt's ciphers under the right key. Of those,
 * only Camellia exists in node:crypto (no Serpent, Twofish or Kuznyechik), so Camellia-256-XTS is
 * the one vault can recognise and name; cascades need all of their ciphers and stay unnamed.
 *
 * XTS (IEEE 1619) decryption of one data unit, written out over the cipher's ECB mode: tweak
 * T = E_K2(data unit number), then per 16-byte block P = D_K1(C ⊕ T) ⊕ T and T = T·α in GF(2^128).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

function ecb(name: string, key: Buffer, decrypt: boolean): (block: Buffer) => Buffer {
  const c = decrypt ? createDecipheriv(name, key, null) : createCipheriv(name, key, null);
  c.setAutoPadding(false);
  return (block) => c.update(block);
}

/** T·α: a left shift of the 128-bit little-endian value, reduced by x^128 + x^7 + x^2 + x + 1. */
function timesAlpha(t: Buffer): void {
  let carry = 0;
  for (let i = 0; i < 16; i++) {
    const next = t[i]! >>> 7;
    t[i] = ((t[i]! << 1) | carry) & 0xff;
    carry = next;
  }
  if (carry) t[0] = t[0]! ^ 0x87;
}

/** XTS over an ECB block cipher for data unit 0 (VeraCrypt's header unit). */
export function xtsUnit0(ecbName: string, key: Buffer, data: Buffer, decrypt: boolean): Buffer {
  const t = ecb(ecbName, key.subarray(32, 64), false)(Buffer.alloc(16));
  const block = ecb(ecbName, key.subarray(0, 32), decrypt);
  const out = Buffer.alloc(data.length);
  for (let off = 0; off < data.length; off += 16) {
    const x = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) x[i] = data[off + i]! ^ t[i]!;
    const y = block(x);
    for (let i = 0; i < 16; i++) out[off + i] = y[i]! ^ t[i]!;
    x.fill(0);
    y.fill(0);
    timesAlpha(t);
  }
  t.fill(0);
  return out;
}

/** The name of a supported-to-recognise cipher that opens this header with `key`, or null. */
export function unsupportedCipher(raw: Buffer, key: Buffer): string | null {
  const body = xtsUnit0('camellia-256-ecb', key, raw.subarray(64, 512), true);
  const magic = body.toString('latin1', 0, 4);
  body.fill(0);
  return magic === 'VERA' || magic === 'TRUE' ? 'Camellia' : null;
}
