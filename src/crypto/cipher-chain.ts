/**
 * XTS cipher chains: the block ciphers of VeraCrypt's encryption algorithms, single or cascaded,
 * as the native engine runs them (native/cipher_engine.h).
 *
 * A chain lists its ciphers in ENCRYPTION order (the first is applied first); VeraCrypt names it
 * in the reverse order, so ['serpent', 'twofish', 'aes'] is VeraCrypt's "AES-Twofish-Serpent"
 * (Crypto.c EncryptionAlgorithms; cryptsetup lib/tcrypt/tcrypt.c names chains in encryption order).
 * Key layout (Crypto.c EAInit/EAInitMode): the primary XTS keys of all ciphers first, 32 bytes each
 * in chain order, then all the secondary (tweak) keys: 64 bytes per cipher. Each cipher makes a
 * full XTS pass over the buffer; decryption runs the chain backwards.
 */
export type CipherName = 'aes' | 'serpent' | 'twofish' | 'camellia' | 'kuznyechik';

/** Ciphers in encryption order. */
export type CipherChain = readonly CipherName[];

/** XTS-AES-256: vault's own format, LUKS, and VeraCrypt's default. */
export const AES_XTS: CipherChain = Object.freeze(['aes'] as const);

export const CIPHER_KEY_BYTES = 32;

/** Key bytes a chain takes: a primary and a secondary key per cipher. */
export function chainKeyBytes(c: CipherChain): number {
  return 2 * CIPHER_KEY_BYTES * c.length;
}

/** The native engine's spelling: names in encryption order joined by '-', e.g. "serpent-twofish-aes". */
export function chainSpec(c: CipherChain): string {
  return c.join('-');
}

const DISPLAY: Record<CipherName, string> = { aes: 'AES', serpent: 'Serpent', twofish: 'Twofish', camellia: 'Camellia', kuznyechik: 'Kuznyechik' };

/** VeraCrypt's name, e.g. "AES-Twofish-Serpent" for ['serpent', 'twofish', 'aes']. */
export function veracryptName(c: CipherChain): string {
  return [...c].reverse().map((n) => DISPLAY[n]).join('-');
}

/** Lower-case cipher spec for `vault info` (cryptsetup style: "aes-256-xts", "serpent-twofish-aes-xts"). */
export function chainLabel(c: CipherChain): string {
  return c.length === 1 && c[0] === 'aes' ? 'aes-256-xts' : `${chainSpec(c)}-xts`;
}

/** Is this a chain the engine runs (1-3 known ciphers)? */
export function isCipherChain(x: unknown): x is CipherChain {
  return Array.isArray(x) && x.length >= 1 && x.length <= 3 && x.every((n) => typeof n === 'string' && n in DISPLAY);
}
