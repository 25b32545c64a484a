/** Opening and unlocking a container for the key-management commands. */
import { VaultError } from '../errors.js';
import { closeContainer, openContainer, unlockContainer, type ContainerFile, type UnlockResult } from '../volume/container.js';
import { lockHeaderUpdates } from '../volume/header-lock.js';
import { resolveContainer } from '../mount/lifecycle.js';
import { requireVaultFormat } from '../formats/index.js';
import { warn } from './output.js';

export interface Unlocked {
  c: ContainerFile;
  u: UnlockResult;
  /** Wipes the master key, releases the header lock and closes the container. */
  close(): void;
}

/**
 * Opens the container (read-write unless `readOnly`), takes the header-update lock for writers, and
 * unlocks it with `kdfInput` (wiped afterwards). Warnings (a damaged copy) are printed.
 */
export async function openUnlocked(path: string, kdfInput: Buffer, o: { readOnly: boolean; slot?: number }): Promise<Unlocked> {
  const c = openContainer(resolveContainer(path), o.readOnly);
  let release = () => {};
  try {
    if (!o.readOnly) release = lockHeaderUpdates(c);
    const u = await unlockContainer(c, kdfInput, o.slot);
    for (const w of u.warnings) warn(w);
    return {
      c,
      u,
      close: () => {
        u.masterKey.fill(0);
        release();
        closeContainer(c);
      },
    };
  } catch (e) {
    release();
    closeContainer(c);
    throw e;
  } finally {
    kdfInput.fill(0);
  }
}

export function parseSlot(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new VaultError('usage', `--slot must be a number, got "${v}"`);
  return Number(v);
}

/**
 * Key management changes vault headers only: on a VeraCrypt, TrueCrypt or LUKS container it stops
 * here, before any passphrase is asked and without writing a byte.
 */
export function refuseForeign(path: string, what: string): void {
  const c = openContainer(resolveContainer(path), true);
  try {
    requireVaultFormat(c, what);
  } finally {
    closeContainer(c);
  }
}
