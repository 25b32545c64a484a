/**
 * mount --protect-hidden: where the hidden volume inside a VeraCrypt/TrueCrypt outer volume lies,
 * learnt as VeraCrypt learns it, by opening the hidden volume's header with its own password. Its
 * key is dropped at once: only the byte range goes to the volume server, which refuses writes into
 * it (native/fuse_protect.c).
 */
import { VaultError, isVaultError } from '../errors.js';
import type { FormatAdapter, UnlockSecret, UnlockedVolume } from '../formats/types.js';
import type { ContainerFile } from '../volume/container-file.js';
import { wipe } from '../crypto/wipe.js';

export interface ProtectedRange {
  /** Byte offsets in the outer volume's data area. */
  start: number;
  end: number;
}

/** Why --protect-hidden cannot apply to this unlocked volume, or null. */
function refusal(adapter: FormatAdapter, outer: UnlockedVolume): VaultError | null {
  if (adapter.name !== 'veracrypt') return new VaultError('usage', `--protect-hidden applies to VeraCrypt and TrueCrypt volumes, not ${adapter.name} containers`);
  const info = outer.info?.json;
  if (info && 'volumeType' in info && info.volumeType === 'hidden')
    return new VaultError('usage', 'the first password opened the hidden volume: --protect-hidden mounts the outer volume', "give the outer volume's password first and the hidden volume's second");
  return null;
}

/** The hidden volume's range in the outer data area. Consumes (wipes) `secret`, whatever happens. */
export async function hiddenVolumeRange(adapter: FormatAdapter, c: ContainerFile, secret: UnlockSecret, pim: number | undefined, outer: UnlockedVolume): Promise<ProtectedRange> {
  const refused = refusal(adapter, outer);
  if (refused) {
    wipe(secret.passphrase, ...secret.keyfiles);
    throw refused;
  }
  const { unlockVolume } = await import('../formats/index.js'); // wipes the secret
  let hidden: UnlockedVolume;
  try {
    hidden = await unlockVolume(adapter, c, secret, { readOnly: true, hidden: true, ...(pim !== undefined ? { pim } : {}) });
  } catch (e) {
    if (isVaultError(e, 'wrong-password'))
      throw new VaultError('wrong-password', `the hidden volume's password (second, for --protect-hidden) opened no hidden volume in ${c.path}`, 'check it; without a hidden volume, mount without --protect-hidden', { cause: e });
    throw e;
  }
  hidden.key.dispose();
  const start = hidden.dataOffset - outer.dataOffset;
  const end = start + hidden.dataSize;
  if (start < 0 || end > outer.dataSize)
    throw new VaultError('invalid-field', `the hidden volume (bytes ${hidden.dataOffset}..${hidden.dataOffset + hidden.dataSize}) does not lie inside the outer volume's data area`);
  return { start, end };
}
