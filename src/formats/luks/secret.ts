/**
 * What LUKS takes as the passphrase. cryptsetup feeds the KDF the passphrase bytes exactly, and
 * with --key-file the file's raw bytes (a trailing newline included) instead. vault maps its
 * UnlockSecret the same way:
 *   no keyfile  → the passphrase bytes;
 *   one keyfile → that file's bytes, and the typed passphrase must be empty (LUKS has no way to
 *                 combine the two, and silently ignoring one of them would hide a mistake);
 *   several keyfiles → refused.
 * The returned buffer is the caller's own copy; it wipes it.
 */
import { VaultError } from '../../errors.js';
import { secretCopy } from '../../crypto/wipe.js';
import type { UnlockSecret } from '../types.js';

export function luksPassphrase(secret: UnlockSecret): Buffer {
  if (secret.keyfiles.length > 1)
    throw new VaultError('usage', 'a LUKS keyslot takes one keyfile, not several', 'give one --keyfile (its raw bytes are the LUKS passphrase)');
  const [keyfile] = secret.keyfiles;
  if (keyfile !== undefined) {
    if (secret.passphrase.length > 0)
      throw new VaultError('usage', 'a LUKS keyslot takes a passphrase or a keyfile, not both', 'leave the passphrase empty when giving a keyfile');
    return secretCopy(keyfile);
  }
  return secretCopy(secret.passphrase);
}
