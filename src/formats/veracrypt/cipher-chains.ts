/**
 * VeraCrypt's encryption algorithms (single ciphers and cascades) and XTS over any chain of them,
 * used only to recognise a header vault cannot open so that it can name the algorithm.
 *
 * Source: VeraCrypt src/Common/Crypto.c, table EncryptionAlgorithms. Each entry lists its ciphers
 * in the order they ENCRYPT (the first is applied first); its name is that list reversed, so
 * "Serpent-Twofish-AES" encrypts with AES, then Twofish, then Serpent. Key layout (EAInit and
 * EAInitMode, Crypto.c): the primary XTS keys of all ciphers come first, 32 bytes each in that
 * same order, then all the secondary (tweak) keys, so a three-cipher cascade uses 192 bytes.
 * cryptsetup lib/tcrypt/tcrypt.c (tcrypt_cipher) agrees; it names chains in encryption order,
 * e.g. "serpent-twofish-aes" for AES-Twofish-Serpent. XTS is applied per cipher over the whole buffer (Crypto.c
 * EncryptBuffer: one full XTS pass per cipher), decryption in reverse order. VeraCrypt's own
 * self-test (src/Common/Tests.c, TestSectorBufEncryption) pins all of this down with CRCs, which
 * test/unit/veracrypt-ciphers.test.ts reproduces.
 */
import { type BlockCipher, offHeapBytes } from '../../crypto/blockciphers/types.js';
import { aes, camellia } from '../../crypto/blockciphers/openssl.js';
import { serpent } from '../../crypto/blockciphers/serpent.js';
import { twofish } from '../../crypto/blockciphers/twofish.js';
import { kuznyechik } from '../../crypto/blockciphers/kuznyechik.js';

export type CipherName = 'AES' | 'Serpent' | 'Twofish' | 'Camellia' | 'Kuznyechik';

const MAKE: Record<CipherName, (key: Uint8Array) => BlockCipher> = { AES: aes, Serpent: serpent, Twofish: twofish, Camellia: camellia, Kuznyechik: kuznyechik };

export const CIPHER_KEY_BYTES = 32;
/** XTS data unit (bytes per tweak value). */
export const DATA_UNIT_BYTES = 512;

export interface Chain {
  /** VeraCrypt's name, e.g. "Serpent-Twofish-AES". */
  name: string;
  /** The ciphers in encryption order. */
  ciphers: readonly CipherName[];
}

function chain(...ciphers: CipherName[]): Chain {
  return { name: [...ciphers].reverse().join('-'), ciphers };
}

/** Every algorithm of VeraCrypt 1.26 (Crypto.c EncryptionAlgorithms; GOST89 is no longer offered). */
export const CHAINS: readonly Chain[] = [
  chain('AES'),
  chain('Serpent'),
  chain('Twofish'),
  chain('Camellia'),
  chain('Kuznyechik'),
  chain('Twofish', 'AES'), // AES-Twofish
  chain('Serpent', 'Twofish', 'AES'), // AES-Twofish-Serpent
  chain('AES', 'Serpent'), // Serpent-AES
  chain('AES', 'Twofish', 'Serpent'), // Serpent-Twofish-AES
  chain('Serpent', 'Twofish'), // Twofish-Serpent
  chain('Kuznyechik', 'Camellia'), // Camellia-Kuznyechik
  chain('Twofish', 'Kuznyechik'), // Kuznyechik-Twofish
  chain('Serpent', 'Camellia'), // Camellia-Serpent
  chain('AES', 'Kuznyechik'), // Kuznyechik-AES
  chain('Camellia', 'Serpent', 'Kuznyechik'), // Kuznyechik-Serpent-Camellia
];

/** Header-key bytes a chain needs: a primary and a secondary key per cipher. */
export function chainKeyBytes(c: Chain): number {
  return 2 * CIPHER_KEY_BYTES * c.ciphers.length;
}

/** T·α in GF(2^128) on the little-endian tweak (IEEE 1619). */
function timesAlpha(t: Uint8Array): void {
  let carry = 0;
  for (let i = 0; i < 16; i++) {
    const next = t[i]! >>> 7;
    t[i] = ((t[i]! << 1) | carry) & 0xff;
    carry = next;
  }
  if (carry) t[0] = t[0]! ^ 0x87;
}

/**
 * One cipher's XTS over `data` in place, whose first byte starts data unit `firstUnit`; each
 * 512-byte unit takes the next tweak, as VeraCrypt's EncryptBufferXTS does.
 */
function xts(data: Uint8Array, firstUnit: bigint, k1: BlockCipher, k2: BlockCipher, decrypt: boolean): void {
  const t = offHeapBytes(16);
  const x = offHeapBytes(16);
  for (let off = 0; off < data.length; off += 16) {
    if (off % DATA_UNIT_BYTES === 0) {
      t.fill(0);
      new DataView(t.buffer).setBigUint64(0, firstUnit + BigInt(off / DATA_UNIT_BYTES), true);
      k2.encrypt(t);
    }
    for (let i = 0; i < 16; i++) x[i] = data[off + i]! ^ t[i]!;
    if (decrypt) k1.decrypt(x);
    else k1.encrypt(x);
    for (let i = 0; i < 16; i++) data[off + i] = x[i]! ^ t[i]!;
    timesAlpha(t);
  }
  t.fill(0);
  x.fill(0);
}

/**
 * Encrypts or decrypts `data` (a multiple of 16 bytes) in place with a chain in XTS mode, from
 * data unit `firstUnit`. `key` holds at least chainKeyBytes(c) bytes; key schedules are wiped.
 */
export function chainXts(c: Chain, key: Uint8Array, data: Uint8Array, firstUnit: bigint, decrypt: boolean): void {
  const n = c.ciphers.length;
  if (key.length < chainKeyBytes(c)) throw new RangeError(`${c.name} needs ${chainKeyBytes(c)} key bytes, got ${key.length}`);
  if (data.length % 16 !== 0) throw new RangeError('XTS here takes whole 16-byte blocks');
  const order = decrypt ? [...c.ciphers.keys()].reverse() : [...c.ciphers.keys()];
  for (const i of order) {
    const make = MAKE[c.ciphers[i]!];
    const k1 = make(key.subarray(CIPHER_KEY_BYTES * i, CIPHER_KEY_BYTES * (i + 1)));
    const k2 = make(key.subarray(CIPHER_KEY_BYTES * (n + i), CIPHER_KEY_BYTES * (n + i + 1)));
    try {
      xts(data, firstUnit, k1, k2, decrypt);
    } finally {
      k1.wipe();
      k2.wipe();
    }
  }
}
