/**
 * dm-crypt's CBC sector encryption with the plain, plain64 and essiv:sha256 IVs, block by block in
 * TypeScript over independent block ciphers (OpenSSL's AES and Camellia through node:crypto, the
 * pure-TS Serpent and Twofish of ./blockciphers), and its AES-XTS with the plain and plain64 IVs
 * (OpenSSL's XTS through node:crypto, the IV from the same rule), written from Linux
 * drivers/md/dm-crypt.c (crypt_iv_plain_gen, crypt_iv_plain64_gen, crypt_iv_essiv_gen): a
 * cross-check of native/dm_crypt.c, for tests only.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import type { BlockCipher } from './blockciphers/types.js';
import { serpent } from './blockciphers/serpent.js';
import { twofish } from './blockciphers/twofish.js';

export type RefCipher = 'aes' | 'camellia' | 'serpent' | 'twofish';
export type RefIv = 'plain' | 'plain64' | 'essiv:sha256';

function openssl(name: 'aes' | 'camellia', key: Uint8Array): BlockCipher {
  const algo = `${name}-${key.length * 8}-ecb`;
  const run = (enc: boolean, b: Uint8Array) => {
    const c = (enc ? createCipheriv : createDecipheriv)(algo, key, null).setAutoPadding(false);
    b.set(c.update(b));
  };
  return { encrypt: (b) => run(true, b), decrypt: (b) => run(false, b), wipe: () => undefined };
}

/** A block cipher of the family under `key` (Serpent and Twofish references take 32-byte keys only). */
export function refBlock(name: RefCipher, key: Uint8Array): BlockCipher {
  if (name === 'aes' || name === 'camellia') return openssl(name, key);
  return name === 'serpent' ? serpent(key) : twofish(key);
}

function ivFor(name: RefCipher, key: Uint8Array, iv: RefIv, sector: bigint): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  if (iv === 'plain') dv.setUint32(0, Number(sector & 0xffffffffn), true);
  else dv.setBigUint64(0, sector, true);
  if (iv === 'essiv:sha256') refBlock(name, createHash('sha256').update(key).digest()).encrypt(b);
  return b;
}

/** dm-crypt's AES-XTS ("aes-xts-plain", "aes-xts-plain64"; key = key1 || key2) over whole sectors in place; sector i has IV sector number first + i * step. */
export function referenceDmAesXts(iv: 'plain' | 'plain64', key: Uint8Array, data: Uint8Array, sectorSize: number, first: bigint, step: bigint, decrypt: boolean): void {
  const algo = `aes-${key.length * 4}-xts`;
  for (let off = 0, s = first; off < data.length; off += sectorSize, s += step) {
    const c = (decrypt ? createDecipheriv : createCipheriv)(algo, key, ivFor('aes', key, iv, s));
    data.set(c.update(data.subarray(off, off + sectorSize)), off);
  }
}

/** CBC over whole sectors in place; sector i has IV sector number first + i * step. */
export function referenceDmCbc(name: RefCipher, iv: RefIv, key: Uint8Array, data: Uint8Array, sectorSize: number, first: bigint, step: bigint, decrypt: boolean): void {
  const c = refBlock(name, key);
  for (let off = 0, s = first; off < data.length; off += sectorSize, s += step) {
    let prev = ivFor(name, key, iv, s);
    for (let j = off; j < off + sectorSize; j += 16) {
      const block = data.subarray(j, j + 16);
      if (decrypt) {
        const saved = Uint8Array.from(block);
        c.decrypt(block);
        for (let k = 0; k < 16; k++) block[k]! ^= prev[k]!;
        prev = saved;
      } else {
        for (let k = 0; k < 16; k++) block[k]! ^= prev[k]!;
        c.encrypt(block);
        prev = Uint8Array.from(block);
      }
    }
  }
}
