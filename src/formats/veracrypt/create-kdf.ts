/**
 * The header-key derivation a new VeraCrypt volume uses, by `--hash` name. VeraCrypt 1.26 creates
 * volumes with SHA-512 (its default), SHA-256, BLAKE2s-256 or Argon2id (and Whirlpool and
 * Streebog, which vault's kdf.ts does not derive yet); RIPEMD-160 it no longer offers at all.
 * The counts come from kdfCandidates, so that what is written is what the reader tries.
 */
import { VaultError } from '../../errors.js';
import { kdfCandidates, type KdfCandidate } from './kdf.js';

/** `--hash` names, VeraCrypt's own spelling (its --hash option), to the candidate's match. */
const BY_NAME: Record<string, (k: KdfCandidate) => boolean> = {
  sha512: (k) => k.kind === 'pbkdf2' && k.digest === 'sha512',
  sha256: (k) => k.kind === 'pbkdf2' && k.digest === 'sha256',
  blake2s: (k) => k.kind === 'pbkdf2' && k.digest === 'blake2s256',
  argon2id: (k) => k.kind === 'argon2id',
};

export const CREATE_HASHES = Object.keys(BY_NAME);

export function creationKdf(hash: string | undefined, pim: number): KdfCandidate {
  const name = (hash ?? 'sha512').toLowerCase().replace(/-/g, '');
  const match = BY_NAME[name === 'blake2s256' ? 'blake2s' : name];
  if (!match) throw new VaultError('usage', `--hash "${hash}" is not one vault creates VeraCrypt volumes with`, `use one of ${CREATE_HASHES.join(', ')}`);
  return kdfCandidates(pim).find((k) => k.flavour === 'veracrypt' && match(k))!;
}
