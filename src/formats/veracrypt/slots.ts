/**
 * Where VeraCrypt/TrueCrypt headers and data are in a file or drive: which files could be such a
 * volume at all, which header positions to try for the given options, which derivations apply
 * to each, and where the data area of the header that opened lies.
 *
 * Sources: VeraCrypt Common/Volumes.h, cryptsetup lib/tcrypt/tcrypt.h and tcrypt.c
 * (TCRYPT_read_phdr, TCRYPT_get_data_offset).
 */
import { VaultError } from '../../errors.js';
import { readAtSync } from '../../volume/fd-io.js';
import type { ContainerFile } from '../../volume/container-file.js';
import type { UnlockOptions } from '../types.js';
import {
  BACKUP_HIDDEN_FROM_END, BACKUP_NORMAL_FROM_END, DATA_UNIT, HEADER_SIZE, HIDDEN_HEADER_OFFSET, LEGACY_HIDDEN_FROM_END,
  SYSTEM_HEADER_OFFSET, type HeaderKind, type VcHeader,
} from './header.js';
import type { KdfCandidate } from './kdf.js';

/** The smallest file VeraCrypt (and TrueCrypt 6, 7) makes holds four 64 KiB header areas, two at each end. */
const MIN_VOLUME_FILE = 4 * 65536 + DATA_UNIT;
/** TrueCrypt 5.x (header version 3) wrote just the header before the data: a header and one unit. */
const MIN_LEGACY_FILE = HEADER_SIZE + DATA_UNIT;

export interface HeaderSlot {
  kind: HeaderKind;
  copy: 'primary' | 'backup';
  /** Byte offset of the header in the file. */
  at: number;
  /** TrueCrypt 5.x's hidden-volume header near the end: only TrueCrypt's derivations apply. */
  legacy?: boolean;
  /** The boot-track header of system encryption (`--system`). */
  system?: boolean;
  raw: Buffer;
}

/**
 * Could this file be a VeraCrypt/TrueCrypt volume? VeraCrypt fills the hidden-header area with
 * random bytes on every volume, so 512 zero bytes there (vault's zero padding) rule it out. A
 * file too small for that (TrueCrypt 5.x made volumes of a header and the data) is claimed when
 * its first 512 bytes look random, as a salt and an encrypted header do.
 */
export function claims(c: ContainerFile): boolean {
  if (c.size >= MIN_VOLUME_FILE) return !readAtSync(c.fd, HEADER_SIZE, HIDDEN_HEADER_OFFSET).every((b) => b === 0);
  return c.size >= MIN_LEGACY_FILE && looksRandom(readAtSync(c.fd, HEADER_SIZE, 0));
}

/**
 * 512 random bytes hold about 221 distinct values (σ ≈ 5); text, zeros and structured data far
 * fewer. The threshold is 20 σ below, so a real header is never refused.
 */
export function looksRandom(b: Buffer): boolean {
  return new Set(b).size >= 120;
}

/**
 * The headers to try: the normal and hidden ones at the start (and TrueCrypt 5.x's hidden one near
 * the end), `--hidden` only the hidden ones, `--use-backup-header` the copies at the end,
 * `--system` the boot-track header. Headers that would lie outside the file are left out.
 */
export function headerSlots(c: ContainerFile, o: UnlockOptions): HeaderSlot[] {
  const at = (kind: HeaderKind, copy: 'primary' | 'backup', offset: number, extra: Partial<HeaderSlot> = {}): HeaderSlot[] =>
    offset >= 0 && offset + HEADER_SIZE <= c.size ? [{ kind, copy, at: offset, ...extra, raw: readAtSync(c.fd, HEADER_SIZE, offset) }] : [];
  if (o.system) {
    if (o.hidden || o.useBackupHeader) throw new VaultError('usage', '--system opens the boot-track header only: --hidden and --use-backup-header do not apply');
    const s = at('normal', 'primary', SYSTEM_HEADER_OFFSET, { system: true });
    if (!s.length) throw new VaultError('not-a-container', `${c.path} is too small to hold a system-encryption header (at byte ${SYSTEM_HEADER_OFFSET} of the drive)`, 'give the whole drive or its image, not a partition');
    return s;
  }
  if (c.size < MIN_LEGACY_FILE)
    throw new VaultError('not-a-container', `${c.path} is too small (${c.size} bytes) to be a VeraCrypt or TrueCrypt volume: it needs at least a ${HEADER_SIZE}-byte header and one ${DATA_UNIT}-byte sector`);
  const slots = o.useBackupHeader
    ? [...at('normal', 'backup', c.size - BACKUP_NORMAL_FROM_END), ...at('hidden', 'backup', c.size - BACKUP_HIDDEN_FROM_END)]
    : [
        ...at('normal', 'primary', 0),
        ...at('hidden', 'primary', HIDDEN_HEADER_OFFSET),
        ...at('hidden', 'primary', c.size - LEGACY_HIDDEN_FROM_END, { legacy: true }),
      ];
  if (o.useBackupHeader && slots.length === 0)
    throw new VaultError('not-a-container', `${c.path} is too small to hold backup headers (TrueCrypt before 6.0 wrote none)`, 'open it without --use-backup-header');
  return o.hidden ? slots.filter((s) => s.kind === 'hidden') : slots;
}

/** Which derivations a header position can have been made with. */
export function applies(slot: HeaderSlot, k: KdfCandidate): boolean {
  return !slot.legacy || k.flavour === 'truecrypt';
}

/** "the normal and hidden-volume headers at bytes 0, 65536", for an error. */
export function describeSlots(slots: HeaderSlot[]): string {
  const kinds = [...new Set(slots.map((s) => (s.system ? 'system-encryption' : s.kind === 'hidden' ? 'hidden-volume' : 'normal')))];
  const copy = slots.some((s) => s.copy === 'backup') ? 'backup ' : '';
  return `the ${copy}${kinds.join(' and ')} header${slots.length === 1 ? '' : 's'} at byte${slots.length === 1 ? '' : 's'} ${slots.map((s) => s.at).join(', ')}`;
}

/**
 * Where the data is. Normally the header says (its encrypted-area start and volume size); the
 * tweak of a data unit is its byte offset in the container / 512 (VeraCrypt Core/Volume.cpp,
 * cryptsetup TCRYPT_get_iv_offset for XTS). TrueCrypt 5.x's hidden volume sits right before its
 * header near the end of the file (cryptsetup TCRYPT_get_data_offset). A system-encryption header
 * gives the encrypted partition's (or, for whole-drive encryption, area's) offset in the drive.
 */
export function dataArea(h: VcHeader, slot: HeaderSlot, c: ContainerFile): { offset: number; size: number } {
  if (slot.legacy) return { offset: c.size - h.hiddenVolumeSize - LEGACY_HIDDEN_FROM_END, size: h.hiddenVolumeSize };
  return { offset: h.encryptedAreaStart, size: h.volumeSize };
}
