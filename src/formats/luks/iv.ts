/**
 * The dm-crypt cipher specs vault opens in LUKS1 and LUKS2: AES in XTS mode with the plain64 IV
 * (the 512-byte sector number as a 64-bit little-endian tweak) or the plain IV (its low 32 bits,
 * cryptsetup's "aes-xts-plain", common on volumes made before plain64 became the default).
 *
 * The two give the same tweak while the sector number stays below 2^32, the first 2 TiB. vault's
 * data path computes 64-bit tweaks, so "plain" is accepted where the data area never reaches
 * sector 2^32, and refused (by name) where it would wrap. Keyslot areas are far smaller: there the
 * two are always the same.
 */
import { VaultError } from '../../errors.js';
import { quote } from './quote.js';

export const AES_XTS_SPECS = ['aes-xts-plain64', 'aes-xts-plain'] as const;
export type AesXtsSpec = (typeof AES_XTS_SPECS)[number];

/** Sector numbers the 32-bit plain IV can hold. */
const PLAIN_SECTORS = 1n << 32n;

export function isAesXts(spec: string): spec is AesXtsSpec {
  return (AES_XTS_SPECS as readonly string[]).includes(spec);
}

/** The refusal for any other cipher spec, naming it and what vault opens. */
export function unsupportedCipher(format: 'LUKS1' | 'LUKS2', spec: string): VaultError {
  return new VaultError('unsupported-feature', `the ${format} cipher ${quote(spec)} is not supported; vault opens aes-xts-plain64 and aes-xts-plain`);
}

/**
 * The largest data area (bytes) whose 512-byte IV sectors, counted from `firstSector`, all fit the
 * spec's IV: unbounded (null) for plain64, below sector 2^32 for plain.
 */
export function maxDataSize(spec: AesXtsSpec, firstSector: bigint): number | null {
  if (spec === 'aes-xts-plain64') return null;
  return Number((PLAIN_SECTORS - firstSector) * 512n);
}

/** Refuses a data area whose last IV sector would wrap the spec's IV. */
export function checkIvRange(format: 'LUKS1' | 'LUKS2', spec: AesXtsSpec, firstSector: bigint, dataSize: number): void {
  const max = maxDataSize(spec, firstSector);
  if (max !== null && dataSize > max)
    throw new VaultError(
      'unsupported-feature',
      `this ${format} volume uses aes-xts-plain, whose 32-bit IV wraps after 2 TiB, and its data area is larger (${dataSize} bytes from IV sector ${firstSector}); vault computes 64-bit tweaks and does not emulate the wrap`,
      'open it with cryptsetup, or re-encrypt it to aes-xts-plain64 with `cryptsetup reencrypt --cipher aes-xts-plain64`',
    );
}

/** `{ maxDataSize }` for a bounded spec, nothing for an unbounded one (spread into an UnlockedVolume). */
export function optionalMax(max: number | null): { maxDataSize?: number } {
  return max === null ? {} : { maxDataSize: max };
}
