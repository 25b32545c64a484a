/**
 * VeraCrypt's encryption algorithms (single ciphers and cascades), and decrypting a header with
 * them through the native XTS engine (native/cipher_engine.c; chain order and key layout in
 * src/crypto/cipher-chain.ts).
 *
 * Source: VeraCrypt src/Common/Crypto.c, table EncryptionAlgorithms. Each entry below lists its
 * ciphers in the order they ENCRYPT; VeraCrypt's name is that list reversed, so
 * "Serpent-Twofish-AES" encrypts with AES, then Twofish, then Serpent. VeraCrypt's own self-test
 * (src/Common/Tests.c, TestSectorBufEncryption) pins cipher byte order, cascade order, key layout
 * and tweaks down with CRCs, which test/unit/veracrypt-ciphers.test.ts reproduces.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CIPHER_KEY_BYTES, type CipherChain, chainKeyBytes, veracryptName } from '../../crypto/cipher-chain.js';
import { VaultError } from '../../errors.js';
import { decryptHeaderWith, headerChecksPass } from './header.js';

export { decryptHeaderWith };

/** Every algorithm of VeraCrypt 1.26 (GOST89 is no longer offered), AES first. */
export const CHAINS: readonly CipherChain[] = [
  ['aes'],
  ['serpent'],
  ['twofish'],
  ['camellia'],
  ['kuznyechik'],
  ['twofish', 'aes'], // AES-Twofish
  ['serpent', 'twofish', 'aes'], // AES-Twofish-Serpent
  ['aes', 'serpent'], // Serpent-AES
  ['aes', 'twofish', 'serpent'], // Serpent-Twofish-AES
  ['serpent', 'twofish'], // Twofish-Serpent
  ['kuznyechik', 'camellia'], // Camellia-Kuznyechik
  ['twofish', 'kuznyechik'], // Kuznyechik-Twofish
  ['serpent', 'camellia'], // Camellia-Serpent
  ['aes', 'kuznyechik'], // Kuznyechik-AES
  ['camellia', 'serpent', 'kuznyechik'], // Kuznyechik-Serpent-Camellia
];

/** VeraCrypt's names of CHAINS, in its order: "AES", ..., "Kuznyechik-Serpent-Camellia". */
export const ALGORITHM_NAMES: readonly string[] = CHAINS.map(veracryptName);

/**
 * The algorithm VeraCrypt calls `name` (case-insensitive, e.g. "Serpent-Twofish-AES" or
 * "serpent-twofish-aes", which encrypts with AES first), or a usage error listing the names. Only
 * VeraCrypt's order is accepted: vault's own spelling (`info`'s `cipher`, in encryption order)
 * would read a cascade backwards.
 */
export function parseAlgorithm(name: string): CipherChain {
  const i = ALGORITHM_NAMES.findIndex((n) => n.toLowerCase() === name.toLowerCase());
  if (i < 0)
    throw new VaultError(
      'usage',
      `unknown VeraCrypt encryption algorithm "${name}"`,
      `use one of ${ALGORITHM_NAMES.join(', ')} (VeraCrypt's names, any case; a cascade is named in reverse order of encryption)`,
    );
  return CHAINS[i]!;
}

/**
 * A new master key for `chain` (64 random bytes per cipher, laid out as the header key: primary
 * keys first, then the secondary ones), with each cipher's two XTS keys different.
 */
export function generateChainKey(chain: CipherChain): Buffer {
  for (;;) {
    const mk = randomBytes(chainKeyBytes(chain));
    const half = mk.length / 2;
    const distinct = chain.every((_, i) => !timingSafeEqual(mk.subarray(i * CIPHER_KEY_BYTES, (i + 1) * CIPHER_KEY_BYTES), mk.subarray(half + i * CIPHER_KEY_BYTES, half + (i + 1) * CIPHER_KEY_BYTES)));
    if (distinct) return mk;
    mk.fill(0);
  }
}

/**
 * The first non-AES algorithm under which `key` decrypts `raw` to a header whose magic and CRCs
 * check (headerChecksPass: a wrong key passes with probability about 2^-96), with that plaintext;
 * or null. Chains needing more key bytes than `key` holds (64 bytes cover single ciphers, 128
 * two-cipher and 192 three-cipher cascades) are not tried, nor with `cascadesOnly` the single
 * ciphers (a first, 64-byte pass tried them). Cost: at most 14 native key setups and 448-byte
 * decryptions per derived key, well under a millisecond against the key derivation's hundreds.
 */
export function openWithOtherChain(raw: Buffer, key: Buffer, cascadesOnly = false): { chain: CipherChain; plain: Buffer } | null {
  for (const chain of CHAINS) {
    if ((chain.length === 1 && (chain[0] === 'aes' || cascadesOnly)) || chainKeyBytes(chain) > key.length) continue;
    let plain: Buffer;
    try {
      plain = decryptHeaderWith(chain, raw, key);
    } catch {
      continue; // e.g. a derived key with a cipher's two halves equal, which XTS refuses
    }
    if (headerChecksPass(plain)) return { chain, plain };
    plain.fill(0);
  }
  return null;
}
