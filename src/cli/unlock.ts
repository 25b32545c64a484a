/** Opening and unlocking a container for the key-management commands. */
import { VaultError } from '../errors.js';
import { KEYSLOT_COUNT } from '../format/constants.js';
import { candidateHeaders, readHeaderCopies, unfinishedReencryption, unlockContainer, type UnlockResult } from '../volume/container.js';
import { closeContainer, openContainer, resolveContainer, type ContainerFile } from '../volume/container-file.js';
import { lockHeaderUpdates } from '../volume/header-lock.js';
import { requireVaultFormat } from '../formats/index.js';
import { warn } from './output.js';

export interface Unlocked {
  c: ContainerFile;
  u: UnlockResult;
  /** Wipes the master key and releases the header lock (the container stays open). */
  close(): void;
}

/**
 * Runs a key-management command on one descriptor: opens the container once (read-write unless
 * `readOnly`), stops on a VeraCrypt, TrueCrypt or LUKS container before any passphrase is asked
 * and without writing a byte, and closes it at the end. Every later step uses this descriptor:
 * opening the path again would let whoever owns its directory swap the file in between (issue 13).
 */
export async function withVaultContainer<T>(path: string, what: string, readOnly: boolean, fn: (c: ContainerFile) => T | Promise<T>): Promise<T> {
  const c = openContainer(resolveContainer(path), readOnly);
  try {
    await requireVaultFormat(c, what);
    if (!FINISH_OR_LOOK.includes(what)) refuseUnfinished(c);
    return await fn(c);
  } finally {
    closeContainer(c);
  }
}

/** The commands that may see a container part-way through a re-encryption: the one that finishes it, and listing. */
const FINISH_OR_LOOK = ['vault reencrypt', 'vault keyslot list'];

/** Every other key-management command refuses it before a passphrase is asked (exit 5, spec §13). */
function refuseUnfinished(c: ContainerFile): void {
  let flagged = false;
  try {
    flagged = !!candidateHeaders(c, readHeaderCopies(c)).candidates[0]!.reencrypt;
  } catch {
    return; // damaged headers: the command's own checks say so (header restore exists for them)
  }
  if (flagged) throw unfinishedReencryption(c.path);
}

/**
 * Takes the header-update lock for writers and unlocks the open container with `kdfInput` (wiped
 * afterwards). Warnings (a damaged copy) are printed.
 */
export async function unlockOpened(c: ContainerFile, kdfInput: Buffer, o: { slot?: number } = {}): Promise<Unlocked> {
  let release = () => {};
  try {
    if (!c.readOnly) release = lockHeaderUpdates(c);
    const u = await unlockContainer(c, kdfInput, o.slot);
    for (const w of u.warnings) warn(w);
    return {
      c,
      u,
      close: () => {
        u.masterKey.fill(0);
        release();
      },
    };
  } catch (e) {
    release();
    throw e;
  } finally {
    kdfInput.fill(0);
  }
}

export function parseSlot(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new VaultError('usage', `--slot must be a number, got "${v}"`);
  if (Number(v) >= KEYSLOT_COUNT) throw new VaultError('usage', `--slot ${v}: a vault container has keyslots 0 to ${KEYSLOT_COUNT - 1}`);
  return Number(v);
}
