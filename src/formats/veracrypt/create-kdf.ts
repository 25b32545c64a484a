/**
 * The header-key derivation a new VeraCrypt volume uses, by `--hash` name. VeraCrypt 1.26 creates
 * volumes with SHA-512 (its default), Whirlpool, SHA-256, BLAKE2s-256, Streebog or Argon2id;
 * RIPEMD-160 it no longer offers, so neither does vault (nor SHA-1, which only TrueCrypt before
 * 5.0 used). The counts come from kdfCandidates, so that what is written is what the reader tries.
 */
import { VaultError } from '../../errors.js';
import { kdfCandidates, type KdfCandidate } from './kdf.js';
import { parsePrf, PRF_NAMES } from './prf.js';

export const CREATE_HASHES = PRF_NAMES.filter((p) => p !== 'ripemd160' && p !== 'sha1');

export function creationKdf(hash: string | undefined, pim: number): KdfCandidate {
  const prf = parsePrf(hash ?? 'sha512');
  if (!(CREATE_HASHES as readonly string[]).includes(prf))
    throw new VaultError('usage', `--hash "${hash}" is not one vault creates VeraCrypt volumes with (VeraCrypt 1.26 does not offer it)`, `use one of ${CREATE_HASHES.join(', ')}`);
  return kdfCandidates({ pim, prf, flavour: 'veracrypt' })[0]!;
}
