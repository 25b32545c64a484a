/**
 * Naming an algorithm vault does not support. When a header key does not open a header with AES,
 * the header may still be encrypted under that key with another of VeraCrypt's algorithms: a
 * single cipher (Serpent, Twofish, Camellia, Kuznyechik) or a cascade. Each is tried on the
 * header's encrypted 448 bytes (XTS data unit 0); the one under which the magic and both CRCs
 * check is named, so the user learns the password was right and why vault still refuses.
 *
 * Cost: at most 14 chains × 28 blocks, with a fresh key schedule per cipher, per derived key that
 * AES did not open: about 15 ms with a 64-byte key (single ciphers) and 30 ms with 192 bytes
 * (everything), against the key derivation's hundreds.
 */
import { CHAINS, chainKeyBytes, chainXts } from './cipher-chains.js';
import { HEADER_SIZE, SALT_SIZE, headerChecksPass } from './header.js';

/**
 * The VeraCrypt name of the non-AES algorithm (e.g. "Serpent-Twofish-AES") under which `key`
 * decrypts the 512-byte header `raw` to a valid header, or null. Chains needing more key bytes
 * than `key` holds (64 bytes cover single ciphers, 128 two-cipher and 192 three-cipher cascades)
 * are not tried.
 */
export function unsupportedCipher(raw: Buffer, key: Buffer): string | null {
  const plain = Buffer.alloc(HEADER_SIZE);
  try {
    for (const c of CHAINS) {
      if (c.name === 'AES' || chainKeyBytes(c) > key.length) continue;
      raw.copy(plain, 0, 0, HEADER_SIZE);
      chainXts(c, key, plain.subarray(SALT_SIZE), 0n, true);
      if (headerChecksPass(plain)) return c.name;
    }
    return null;
  } finally {
    plain.fill(0);
  }
}
