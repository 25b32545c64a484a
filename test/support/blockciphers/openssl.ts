/**
 * AES-256 and Camellia-256 as BlockCiphers, over node:crypto's ECB modes (OpenSSL has both), so
 * that cascades can mix them with the pure-TS ciphers.
 */
import { type Cipher, type Decipher, createCipheriv, createDecipheriv } from 'node:crypto';
import { type BlockCipher, checkBlock, checkKey } from './types.js';

function ecb(name: 'aes-256-ecb' | 'camellia-256-ecb', label: string, key: Uint8Array): BlockCipher {
  checkKey(key, label);
  let enc: Cipher | null = createCipheriv(name, key, null).setAutoPadding(false);
  let dec: Decipher | null = createDecipheriv(name, key, null).setAutoPadding(false);
  const run = (c: Cipher | Decipher | null, block: Uint8Array): void => {
    if (!c) throw new Error(`${label} was wiped`);
    checkBlock(block);
    const out = c.update(block);
    block.set(out);
    out.fill(0);
  };
  return {
    encrypt: (block) => run(enc, block),
    decrypt: (block) => run(dec, block),
    // OpenSSL's schedule lives in native memory that node frees with the object; drop it.
    wipe() {
      enc = null;
      dec = null;
    },
  };
}

export const aes = (key: Uint8Array): BlockCipher => ecb('aes-256-ecb', 'AES', key);
export const camellia = (key: Uint8Array): BlockCipher => ecb('camellia-256-ecb', 'Camellia', key);
