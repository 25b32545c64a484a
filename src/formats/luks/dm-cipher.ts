/**
 * The dm-crypt cipher specs vault opens in LUKS1 and LUKS2, parsed from the header into a typed
 * value that says how the native engine runs them (spec/interop-luks.md, "Ciphers"):
 *
 *   <cipher>-xts-<plain64|plain>           aes, serpent, twofish, camellia; 256-, 384- or 512-bit keys
 *   <cipher>-cbc-<plain64|plain|essiv:sha256>  the same ciphers; 128-, 192- or 256-bit keys
 *
 * (twofish has no 192-bit key, hence no 384-bit XTS key). XTS-plain64 with a 512-bit key runs on
 * the XTS chain path, the data path of vault's own format; everything else on the engine's
 * dm-crypt path (native/dm_crypt.h). The IV is the 512-byte sector number: plain64 as 64 bits,
 * plain its low 32 bits (cryptsetup's "aes-xts-plain", common on volumes made before plain64),
 * essiv:sha256 encrypted under SHA-256 of the key. The chain path computes 64-bit tweaks, so
 * "plain" always runs on the dm-crypt path, which wraps the IV at sector 2^32 exactly as dm-crypt
 * does: a data area past 2 TiB of IV sectors opens (that is the format), with a warning that
 * sectors 2 TiB apart share an IV, and a resize does not grow it past that point.
 */
import { VaultError } from '../../errors.js';
import type { CipherChain } from '../../crypto/cipher-chain.js';
import { quote } from './quote.js';

export type DmCipherName = 'aes' | 'serpent' | 'twofish' | 'camellia';
export type DmMode = 'xts' | 'cbc';
export type DmIv = 'plain64' | 'plain' | 'essiv:sha256';

/** A spec whose name vault runs, before its key length is known (LUKS2 keeps that in the keyslots). */
export interface DmSpec {
  /** As the header spells it: "aes-cbc-essiv:sha256". */
  spec: string;
  format: 'LUKS1' | 'LUKS2';
  cipher: DmCipherName;
  mode: DmMode;
  iv: DmIv;
}

export interface DmCipher extends DmSpec {
  /** The volume key (and keyslot area key) length in bytes. */
  keyBytes: number;
  /** How the engine runs it: an XTS chain, or a dm-crypt engine spec ("aes-cbc-essiv:sha256/256"). */
  run: { chain: CipherChain } | { engine: string };
}

const CIPHERS: readonly DmCipherName[] = ['aes', 'serpent', 'twofish', 'camellia'];
const IVS: Record<DmMode, readonly DmIv[]> = { xts: ['plain64', 'plain'], cbc: ['plain64', 'plain', 'essiv:sha256'] };
/** Block cipher key lengths (bytes) each cipher takes. */
const CIPHER_KEYS: Record<DmCipherName, readonly number[]> = { aes: [16, 24, 32], serpent: [16, 24, 32], twofish: [16, 32], camellia: [16, 24, 32] };
/** Sector numbers the 32-bit plain IV can hold. */
const PLAIN_SECTORS = 1n << 32n;

export const SUPPORTED_SPECS = 'aes, serpent, twofish or camellia in xts-plain64, xts-plain, cbc-essiv:sha256, cbc-plain64 or cbc-plain';

function unsupported(format: 'LUKS1' | 'LUKS2', spec: string, why: string): VaultError {
  return new VaultError('unsupported-feature', `the ${format} cipher ${quote(spec)} ${why}; vault opens ${SUPPORTED_SPECS}`);
}

/** Parses a header's cipher spec; refuses anything vault does not run by name, before any derivation. */
export function parseDmSpec(format: 'LUKS1' | 'LUKS2', spec: string): DmSpec {
  const m = /^([a-z0-9]+)-(xts|cbc)-([a-z0-9:]+)$/.exec(spec);
  if (!m) throw unsupported(format, spec, 'is not supported');
  const [, name, mode, iv] = m as unknown as [string, string, DmMode, string];
  if (!(CIPHERS as readonly string[]).includes(name)) throw unsupported(format, spec, `uses the cipher ${quote(name)}, which vault does not run`);
  if (!(IVS[mode] as readonly string[]).includes(iv)) throw unsupported(format, spec, `uses the IV mode ${quote(iv)}, which vault does not run with ${mode}`);
  return { spec, format, cipher: name as DmCipherName, mode, iv: iv as DmIv };
}

/** The spec with its key length (bytes), refused by name when the cipher takes no such key. */
export function withKeyLength(s: DmSpec, keyBytes: number): DmCipher {
  const cipherKey = s.mode === 'xts' ? keyBytes / 2 : keyBytes;
  if (!Number.isInteger(cipherKey) || !CIPHER_KEYS[s.cipher].includes(cipherKey))
    throw unsupported(s.format, s.spec, `has a ${keyBytes * 8}-bit key, which ${s.cipher}-${s.mode} does not take`);
  // The chain path's tweaks are 64 bits: "plain" (32 bits, wrapping) runs on the dm-crypt path.
  const chain = s.mode === 'xts' && s.iv === 'plain64' && keyBytes === 64;
  const run = chain ? { chain: Object.freeze([s.cipher]) as CipherChain } : { engine: `${s.spec}/${keyBytes * 8}` };
  return { ...s, keyBytes, run };
}

/** parseDmSpec and withKeyLength at once (LUKS1 headers, LUKS2 keyslot areas). */
export function parseDmCipher(format: 'LUKS1' | 'LUKS2', spec: string, keyBytes: number): DmCipher {
  return withKeyLength(parseDmSpec(format, spec), keyBytes);
}

/** "aes-cbc-essiv:sha256, 256-bit key", for `vault info` and messages. */
export function dmCipherLabel(c: DmCipher): string {
  return `${c.spec}, ${c.keyBytes * 8}-bit key`;
}

/**
 * The largest data area (bytes) whose 512-byte IV sectors, counted from `firstSector`, all have
 * distinct IVs: unbounded (null) except for "plain", whose 32-bit IV wraps at sector 2^32.
 */
export function maxDataSize(c: DmCipher, firstSector: bigint): number | null {
  if (c.iv !== 'plain') return null;
  const left = PLAIN_SECTORS - firstSector;
  return Number((left > 0n ? left : 0n) * 512n);
}

/**
 * The warning for a "plain" volume whose data area reaches IV sector 2^32 (null otherwise): it
 * opens, as dm-crypt opens it, but sectors 2 TiB apart share an IV.
 */
export function ivWrapWarning(c: DmCipher, firstSector: bigint, dataSize: number): string | null {
  const max = maxDataSize(c, firstSector);
  if (max === null || dataSize <= max) return null;
  return (
    `this ${c.format} volume uses ${c.spec}, whose 32-bit IV wraps at IV sector 2^32, and its data area goes past it ` +
    `(${dataSize} bytes from IV sector ${firstSector}): sectors 2 TiB apart share an IV, so their ciphertexts show where their contents are equal ` +
    `(dm-crypt's plain64 IV exists for devices this large); re-encrypt it with \`cryptsetup reencrypt --cipher ${c.cipher}-${c.mode}-plain64\``
  );
}

/** What an UnlockedVolume carries for `c`: the chain, or the engine spec, and a bound if any. */
export function volumeCipher(c: DmCipher, firstSector: bigint): { cipher: CipherChain; engine?: string; maxDataSize?: number } {
  const max = maxDataSize(c, firstSector);
  return {
    cipher: 'chain' in c.run ? c.run.chain : Object.freeze([c.cipher]) as CipherChain,
    ...('engine' in c.run ? { engine: c.run.engine } : {}),
    ...(max === null ? {} : { maxDataSize: max }),
  };
}

/** How keyslot area material is decrypted: XTS parameters for src/crypto/xts.ts. */
export function areaRun(c: DmCipher): { cipher: CipherChain } | { engine: string } {
  return 'chain' in c.run ? { cipher: c.run.chain } : { engine: c.run.engine };
}
