/**
 * Key management on a container (cryptsetup's luksChangeKey/luksAddKey/luksKillSlot, header backup,
 * restore and repair). Every change is one writeHeaderUpdate(): both copies, stale one first, each
 * synced (spec §6), so a crash at any instant leaves the old or the new state, never neither.
 * Nothing touches the data area, so a mounted volume keeps working.
 */
import { closeSync, fstatSync, fsyncSync } from 'node:fs';
import { VaultError, isVaultError } from '../errors.js';
import { HEADER_SIZE, KEYSLOT_COUNT } from '../format/constants.js';
import { parseHeaderCopy } from '../format/header.js';
import { containerFileSize, secondaryOffset } from '../format/layout.js';
import type { Header, KdfParams } from '../format/types.js';
import { createKeyslot, emptyKeyslot } from '../crypto/keyslot.js';
import { verifyHeaderMac } from '../crypto/master-key.js';
import { wipe } from '../crypto/wipe.js';
import { createNewFile } from '../system/safe-open.js';
import { candidateHeaders, readHeaderCopies, unlockHeaders, writeHeaderUpdate, type UnlockResult } from './container.js';
import { type ContainerFile } from './container-file.js';
import { readAtSync, writeAllSync } from './fd-io.js';
import { finishInterruptedResize, interruptedResize, resizeOwed } from './finish-resize.js';

function withSlots(h: Header): Header {
  return { ...h, keyslots: [...h.keyslots] };
}

/** Re-wraps the master key of the slot that was unlocked under a new passphrase (and KDF parameters). */
export async function changePassphrase(c: ContainerFile, u: UnlockResult, newInput: Uint8Array, kdf: KdfParams): Promise<Header> {
  const next = withSlots(u.header);
  next.keyslots[u.slot] = await createKeyslot(newInput, u.masterKey, next.uuid, u.slot, kdf);
  return writeHeaderUpdate(c, next, u.masterKey, u.header.copy);
}

export function firstFreeSlot(h: Header): number | null {
  const i = h.keyslots.findIndex((s) => s.state === 'empty');
  return i < 0 ? null : i;
}

/** Adds a keyslot (the first free one unless `slot` is given) for a new passphrase or keyfiles. */
export async function addKeyslot(c: ContainerFile, u: UnlockResult, newInput: Uint8Array, kdf: KdfParams, slot?: number): Promise<{ header: Header; slot: number }> {
  const target = slot ?? firstFreeSlot(u.header);
  if (target === null) throw new VaultError('usage', `all ${KEYSLOT_COUNT} keyslots are in use`, 'remove one with `vault keyslot remove`');
  checkSlotIndex(target);
  if (u.header.keyslots[target]!.state === 'active') throw new VaultError('usage', `keyslot ${target} is already in use`);
  const next = withSlots(u.header);
  next.keyslots[target] = await createKeyslot(newInput, u.masterKey, next.uuid, target, kdf);
  return { header: writeHeaderUpdate(c, next, u.masterKey, u.header.copy), slot: target };
}

/**
 * Empties a keyslot, overwriting its bytes with random data (not just a flag). Removing the last
 * active slot makes the data unrecoverable, so it needs `force`.
 */
export function removeKeyslot(c: ContainerFile, u: UnlockResult, slot: number, force: boolean): Header {
  checkSlotIndex(slot);
  if (u.header.keyslots[slot]!.state !== 'active') throw new VaultError('usage', `keyslot ${slot} is not in use`);
  const remaining = u.header.keyslots.filter((s, i) => s.state === 'active' && i !== slot).length;
  if (remaining === 0 && !force)
    throw new VaultError(
      'usage',
      `keyslot ${slot} is the last one that opens this container`,
      'removing it makes every byte in the container unrecoverable; add another keyslot first, or use --force if that is what you want',
    );
  const next = withSlots(u.header);
  next.keyslots[slot] = emptyKeyslot();
  // The slot's token (spec §14) goes with it.
  const tokens = (u.header.tokens ?? []).filter((t) => t.slot !== slot);
  if (tokens.length > 0) next.tokens = tokens;
  else delete next.tokens;
  return writeHeaderUpdate(c, next, u.masterKey, u.header.copy);
}

export function checkSlotIndex(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= KEYSLOT_COUNT)
    throw new VaultError('usage', `keyslot must be a number from 0 to ${KEYSLOT_COUNT - 1}`);
}

/** A header backup file: the primary copy then the secondary copy, 8192 bytes (spec §10). */
export function writeHeaderBackup(c: ContainerFile, file: string): { uuid: Buffer } {
  const read = readHeaderCopies(c);
  const { candidates } = candidateHeaders(c, read); // throws when neither copy is usable
  const newest = candidates[0]!;
  // Refuse a backup that restore would refuse (spec §10): the same rule, on the copies as they are.
  const problem = backupFitProblem(c, candidates);
  if (problem?.kind === 'geometries')
    throw new VaultError(
      'unsafe',
      `the two header copies of ${c.path} describe different geometries (${[problem.a, problem.b].sort((x, y) => x.copy - y.copy).map(geometryOf).join('; ')}: a resize or a re-encryption was interrupted), and a backup of them could not be restored`,
      `finish it first: \`vault header repair ${c.path}\` makes both copies the one your passphrase opens (the newer); then back up`,
    );
  if (problem?.kind === 'size')
    throw new VaultError(
      'unsafe',
      `${c.path} is ${c.size} bytes, but its headers describe a container of ${problem.end} bytes (a shrink was interrupted, or bytes were appended), so a backup of them could not be restored into it`,
      `\`vault header repair ${c.path}\` finishes an interrupted shrink; bytes appended by something else must go before a backup can be restored`,
    );
  // Back up valid copies only, as they are on disk; a damaged copy becomes zeros (spec §10), and the
  // restore rebuilds nothing from it. Restored copies are authenticated by MAC at the next unlock.
  const copies = [
    read.primary.ok ? readAtSync(c.fd, HEADER_SIZE, 0) : null,
    read.secondary.ok ? readAtSync(c.fd, HEADER_SIZE, secondaryOffset(read.secondary.header)) : null,
  ];
  const fd = createNewFile(file, 'header backup');
  try {
    writeAllSync(fd, copies[0] ?? Buffer.alloc(HEADER_SIZE), 0);
    writeAllSync(fd, copies[1] ?? Buffer.alloc(HEADER_SIZE), HEADER_SIZE);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { uuid: newest.uuid };
}

export interface BackupContents {
  copies: Header[];
  uuid: Buffer;
  raw: Buffer;
}

/** Reads and validates a header backup file's bytes (at least one valid copy, and one uuid). */
export function parseHeaderBackup(raw: Buffer): BackupContents {
  if (raw.length !== 2 * HEADER_SIZE) throw new VaultError('not-a-container', `a header backup is ${2 * HEADER_SIZE} bytes; this file has ${raw.length}`);
  const copies: Header[] = [];
  for (const i of [0, 1] as const) {
    try {
      copies.push(parseHeaderCopy(raw.subarray(i * HEADER_SIZE, (i + 1) * HEADER_SIZE), i));
    } catch {
      // a missing copy in the backup is tolerated; the other one restores both
    }
  }
  if (copies.length === 0) throw new VaultError('not-a-container', 'the file is not a vault header backup (no valid header copy)');
  if (copies.length === 2 && !copies[0]!.uuid.equals(copies[1]!.uuid)) throw new VaultError('invalid-field', 'the backup holds headers of two different containers');
  return { copies, uuid: copies[0]!.uuid, raw };
}

/** Why header copies could not be restored into `c`, or null (spec §10). */
type FitProblem = { kind: 'size'; end: number } | { kind: 'geometries'; a: Header; b: Header };

/**
 * The rule for restoring copies into a container, which `header backup` also applies before it
 * writes one: every copy of one geometry, whose secondary copy (written at `data_offset +
 * data_size`) ends inside the container; a regular file ends exactly there (spec §9), a block
 * device may be larger than its container. A smaller geometry would put the secondary inside the
 * data area.
 */
function backupFitProblem(c: ContainerFile, copies: Header[]): FitProblem | null {
  const odd = copies.find((h) => !sameGeometry(h, copies[0]!));
  if (odd) return { kind: 'geometries', a: copies[0]!, b: odd };
  const end = containerFileSize(copies[0]!);
  return end > c.size || (fstatSync(c.fd).isFile() && end !== c.size) ? { kind: 'size', end } : null;
}

/** Refuses a backup whose copies do not fit this container (backupFitProblem). */
export function requireBackupFits(c: ContainerFile, backup: BackupContents): void {
  const problem = backupFitProblem(c, backup.copies);
  if (problem?.kind === 'size')
    throw new VaultError('invalid-field', `the backup describes a container of ${problem.end} bytes; ${c.path} has ${c.size}`, 'restore a backup of this container');
  if (problem) throw new VaultError('invalid-field', 'the two copies in the backup describe different geometries');
}

const geometryOf = (h: Header) => `${h.copy === 0 ? 'primary' : 'secondary'}: ${h.dataSize} bytes of ${h.sectorSize}-byte sectors`;

function sameGeometry(a: Header, b: Header): boolean {
  return a.uuid.equals(b.uuid) && a.version === b.version && a.cipher === b.cipher && a.sectorSize === b.sectorSize && a.dataOffset === b.dataOffset && a.dataSize === b.dataSize;
}

function macValid(masterKey: Uint8Array, h: Header): boolean {
  try {
    verifyHeaderMac(masterKey, h);
    return true;
  } catch {
    return false;
  }
}

/**
 * Proves a backup before it is restored (spec §10). Its UUID is public, so it proves nothing:
 * `kdfInput` must unlock the backup, every copy in it must carry a valid MAC under that master key,
 * and each current copy that authenticates under the same key must have the backup's geometry.
 * Returns whether any current copy authenticated (none: the headers are damaged, the repair case).
 */
export async function authenticateBackup(c: ContainerFile, backup: BackupContents, kdfInput: Uint8Array): Promise<{ currentAuthenticated: boolean }> {
  requireBackupFits(c, backup);
  const newestFirst = [...backup.copies].sort((a, b) => (a.sequence === b.sequence ? a.copy - b.copy : a.sequence > b.sequence ? -1 : 1));
  const altered = () => new VaultError('header-tampered', 'a header copy in the backup fails its MAC: it was altered', 'restore an unaltered backup of this container');
  let u;
  try {
    u = await unlockHeaders(newestFirst, [], kdfInput);
  } catch (e) {
    throw isVaultError(e, 'header-tampered') ? altered() : e;
  }
  try {
    for (const h of backup.copies) if (!macValid(u.masterKey, h)) throw altered();
    const read = readHeaderCopies(c);
    const current = [read.primary, read.secondary].flatMap((r) => (r.ok && macValid(u.masterKey, r.header) ? [r.header] : []));
    for (const h of current)
      if (!sameGeometry(h, backup.copies[0]!))
        throw new VaultError('invalid-field', "the backup's geometry differs from the container's authenticated header", 'restore a backup of this container');
    return { currentAuthenticated: current.length > 0 };
  } finally {
    wipe(u.masterKey, u.newMasterKey);
  }
}

/** Writes a backup's copies over the container's headers (secondary first, then primary, each synced). */
export function restoreHeaders(c: ContainerFile, backup: BackupContents): void {
  requireBackupFits(c, backup);
  const h = backup.copies[0]!;
  const bytesOf = (copy: 0 | 1) => {
    const own = backup.copies.find((x) => x.copy === copy);
    // A copy missing from the backup cannot be rebuilt without the master key: keep the valid one's twin.
    return own ? backup.raw.subarray(copy * HEADER_SIZE, (copy + 1) * HEADER_SIZE) : null;
  };
  for (const copy of [1, 0] as const) {
    const bytes = bytesOf(copy);
    if (!bytes) continue;
    writeAllSync(c.fd, bytes, copy === 0 ? 0 : secondaryOffset(h));
    fsyncSync(c.fd);
  }
}

/**
 * Rewrites both copies from the copy that unlocked (unlockContainer has verified its MAC),
 * repairing a damaged or stale one, and finishes a resize interrupted between its header writes
 * (finish-resize.ts). Returns the header as written and what else was done.
 */
export async function repairHeaders(c: ContainerFile, u: UnlockResult): Promise<{ header: Header; finished: string[] }> {
  const left = interruptedResize(c, readHeaderCopies(c), u.header, u.masterKey);
  const header = writeHeaderUpdate(c, u.header, u.masterKey, u.header.copy);
  return { header, finished: await finishInterruptedResize(c, left, header, u.masterKey) };
}

/** Whether `header repair` has anything to do beyond what the unlock warned about: an interrupted resize's leftovers. */
export function repairOwed(c: ContainerFile, u: UnlockResult): boolean {
  return resizeOwed(interruptedResize(c, readHeaderCopies(c), u.header, u.masterKey));
}
