/**
 * `vault mount --allow-discards` (README, "TRIM"): where discards may reach the container.
 *
 * With it, fstrim and `discard` mounts punch holes in the container (the volume server's hole
 * punch, through the loop device): the freed space shrinks on disk, and anyone who can read the
 * container sees which sectors are free (SECURITY.md). Without it, a hole punch is refused and the
 * loop device stops passing discards. Each check runs before the passphrase is asked for.
 *
 * An explicit flag that cannot be honoured is an error; the config file's `allowDiscards` default
 * is simply not applied there, with a note.
 */
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { nativeAddon } from '../crypto/native.js';
import { VaultError } from '../errors.js';
import type { FormatName } from '../formats/types.js';
import { queueLimits } from '../system/capabilities.js';
import type { Route } from './route.js';

/** Where --allow-discards came from: the command line, or the config file's default. */
export type DiscardSource = 'flag' | 'config';

interface DiscardRequest {
  allowDiscards?: DiscardSource;
  readOnly: boolean;
  fsOptions?: string;
  note?: (message: string) => void;
}

/** Why discards cannot be allowed for this mount, or null: read-only, or a route without a loop device of vault's. */
function blockedBy(o: DiscardRequest, route: Route): { why: string; fix: string } | null {
  if (o.readOnly) return READ_ONLY;
  if (route === 'fuse')
    return { why: 'the fuse route mounts through fuse2fs, which sends no discards (fstrim cannot reach it)', fix: 'mount as root (sudo vault mount --allow-discards)' };
  if (route === 'udisks')
    return { why: 'the udisks route cannot trim: fstrim needs root, and udisks does not allow the discard mount option for ext4 (its default mount_options)', fix: 'mount as root (sudo vault mount --allow-discards)' };
  return null;
}

/** What the options alone contradict (checked by the command before anything else). */
export function checkDiscardOptions(o: DiscardRequest): void {
  if (!o.allowDiscards && hasDiscardOption(o.fsOptions))
    throw new VaultError('usage', '--fs-options discard needs --allow-discards: without it the volume refuses discards', 'add --allow-discards (see "TRIM" in README.md for what it reveals)');
  if (o.allowDiscards === 'flag' && o.readOnly) throw new VaultError('usage', `--allow-discards: ${READ_ONLY.why}`, READ_ONLY.fix);
}

const READ_ONLY = { why: 'a read-only mount writes nothing, discards included', fix: 'drop --read-only or --allow-discards' };

/** The options' verdict before anything is opened: whether discards are allowed. Throws for a flag that cannot be honoured. */
export function discardsForOptions(o: DiscardRequest, route: Route): boolean {
  checkDiscardOptions(o);
  if (!o.allowDiscards) return false;
  const blocked = blockedBy(o, route);
  if (blocked === null) return true;
  if (o.allowDiscards === 'flag') throw new VaultError('usage', `--allow-discards: ${blocked.why}`, blocked.fix);
  o.note?.(`allowDiscards from the config file not applied: ${blocked.why}`);
  return false;
}

/**
 * Discards are for vault's own format only: its readers see a hole as zeros (spec/format.md §8).
 * LUKS and VeraCrypt/TrueCrypt readers decrypt a hole to garbage, and on VeraCrypt the free-space
 * pattern could betray a hidden volume.
 */
export function discardsForFormat(format: FormatName, source: DiscardSource | undefined, note?: (message: string) => void): boolean {
  if (!source) return false;
  if (format === 'vault') return true;
  const why = `discards are refused for ${format} containers: their other readers (cryptsetup, VeraCrypt) decrypt a punched hole to garbage, and the free-space pattern${format === 'veracrypt' || format === 'truecrypt' ? ' could betray a hidden volume' : ' is revealed'}`;
  if (source === 'flag') throw new VaultError('unsafe', `--allow-discards: ${why}`, 'mount it without --allow-discards');
  note?.(`allowDiscards from the config file not applied: ${why}`);
  return false;
}

/** Whether a comma-separated mount option list turns on online discard. */
function hasDiscardOption(opts: string | undefined): boolean {
  return (opts ?? '').split(',').some((x) => x.trim() === 'discard' || x.trim().startsWith('discard='));
}

/** A loop device that passes no discards (some kernels' loop drivers, issue 21) makes --allow-discards moot: say so. */
export function warnIfNoLoopDiscard(device: string, warn: (message: string) => void): void {
  let max: number;
  try {
    max = queueLimits(device).discardMaxBytes;
  } catch {
    return; // nothing to read: nothing known to warn about
  }
  if (max === 0)
    warn(`${device} passes no discards (its discard_max_bytes is 0): fstrim and discard mounts will not reach the container, which will not shrink`);
}

/**
 * Without --allow-discards the server refuses hole punches (EOPNOTSUPP), and the loop driver then
 * stops offering discard on that device; but the block layer reports a refused discard as success,
 * so the first fstrim would claim to have trimmed the free space. One refused discard of the
 * first sector, before any filesystem is mounted, makes the device say "not supported" from the
 * start. It changes nothing: the server refuses it. Re-attaching the device restores its discard.
 */
export function refuseDiscardsNow(device: string, sectorSize: number): void {
  let fd: number;
  try {
    fd = openSync(device, fsc.O_WRONLY | fsc.O_NOFOLLOW);
  } catch {
    return; // the device is gone: the steps after this one will say so
  }
  try {
    // What `blkdiscard --force --length <sector>` does, without a process. Any error (EOPNOTSUPP:
    // the device offers no discard already; ENOTTY: not a block device) leaves nothing to do.
    nativeAddon().blkDiscard(fd, 0, sectorSize);
  } finally {
    closeSync(fd);
  }
}
