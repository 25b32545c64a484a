/**
 * Trying keyslots in order until one yields a volume key that matches its digest (LUKS1 and LUKS2).
 * One at a time: each derivation may be memory-hard, and the order (priority) is meaningful.
 */
import { VaultError } from '../../errors.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { wipe } from '../../crypto/wipe.js';
import type { LuksHash } from './af.js';
import { pbkdf2DigestMatches } from './kdf.js';
import { recoverCandidateKey, type AfKeyslot } from './keyslot.js';

/**
 * Key derivations one unlock may run: each can cost seconds and gigabytes, so a header may not ask
 * for more than cryptsetup could ever have written (LUKS2_KEYSLOTS_MAX; LUKS1 has 8). The LUKS2
 * reader already refuses more keyslots; this holds for every caller, whatever the format.
 */
export const MAX_KDF_ATTEMPTS = 32;

export interface KeyslotAttempt {
  slot: AfKeyslot;
  digest: { hash: LuksHash; iterations: number; salt: Buffer; digest: Buffer };
}

/**
 * Returns the volume key in locked memory and the name of the keyslot that opened, or throws
 * wrong-password. `passphrase` stays the caller's to wipe; every intermediate is wiped here.
 */
export async function openFirstKeyslot(fd: number, attempts: KeyslotAttempt[], passphrase: Buffer): Promise<{ key: KeyHandle; slot: string }> {
  // A keyslot that cannot be tried here (its material cut off, Argon2 out of memory) does not stop
  // the others; if none opens, its reason is the error, since the passphrase may have been its.
  if (attempts.length > MAX_KDF_ATTEMPTS)
    throw new VaultError('invalid-field', `the header has ${attempts.length} keyslots to try, more than the ${MAX_KDF_ATTEMPTS} allowed`);
  let failure: VaultError | null = null;
  for (const a of attempts) {
    let candidate: Buffer;
    try {
      candidate = await recoverCandidateKey(fd, a.slot, passphrase);
    } catch (e) {
      failure ??= e instanceof VaultError ? e : new VaultError('io', `${a.slot.name}: the key derivation failed: ${String((e as Error).message).split('\n')[0]}`);
      continue;
    }
    let matches = false;
    try {
      matches = await pbkdf2DigestMatches(candidate, a.digest, a.slot.name);
    } finally {
      if (!matches) wipe(candidate);
    }
    if (matches) return { key: KeyHandle.fromBytes(candidate), slot: a.slot.name }; // fromBytes zeroes candidate
  }
  if (failure) throw failure;
  throw new VaultError('wrong-password', 'wrong passphrase or keyfile', 'check the passphrase or keyfile, then try again');
}
