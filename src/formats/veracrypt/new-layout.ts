/**
 * Where a new file-hosted VeraCrypt volume puts things (VeraCrypt Common/Volumes.h, Core/
 * VolumeCreator.cpp CreateVolume, Volume/VolumeLayout.cpp), for a file of `fileSize` bytes:
 *
 *        0  64 KiB  normal header (512 bytes, then random)
 *    65536  64 KiB  hidden header, or random bytes when there is no hidden volume
 *   131072          outer data area, up to fileSize − 131072
 *    ...            hidden area: the last `hiddenArea` bytes of the outer data area; the hidden
 *                   volume's data starts there and is hiddenArea − reserve long (VeraCrypt keeps
 *                   4 KiB, or 128 KiB from 2 MiB up, free at its end: GetMaxDataSize)
 *   size − 131072   backup normal header (own salt), size − 65536 backup hidden header (or random)
 */
import { VaultError } from '../../errors.js';
import { DATA_UNIT } from './header.js';
import type { NewHeaderFields } from './header-write.js';

export const HEADER_AREA = 65536;
export const HEADER_GROUP = 2 * HEADER_AREA;
/** VeraCrypt's hidden-volume reserve (TC_HIDDEN_VOLUME_HOST_FS_RESERVED_END_AREA_SIZE(_HIGH)). */
const SMALL_THRESHOLD = 2 * 1024 * 1024;
const RESERVE_SMALL = 4096;
const RESERVE_LARGE = HEADER_GROUP;
/** Smallest data area vault makes (a tiny FAT12 fits; VeraCrypt's own test volumes are this small). */
export const MIN_DATA = 32 * 1024;

export interface NewVolumeLayout {
  fileSize: number;
  outer: NewHeaderFields;
  hidden: NewHeaderFields | null;
}

export function hiddenReserve(hiddenArea: number): number {
  return hiddenArea < SMALL_THRESHOLD ? RESERVE_SMALL : RESERVE_LARGE;
}

/** The layout for a container of `fileSize` bytes, with a hidden area of `hiddenArea` bytes or none. */
export function newVolumeLayout(fileSize: number, hiddenArea?: number): NewVolumeLayout {
  if (fileSize % DATA_UNIT !== 0) throw new VaultError('usage', `a VeraCrypt volume's size must be a multiple of ${DATA_UNIT} bytes, not ${fileSize}`);
  const dataSize = fileSize - 2 * HEADER_GROUP;
  if (dataSize < MIN_DATA) throw new VaultError('usage', `--size ${fileSize} is too small for a VeraCrypt volume`, `give at least ${(2 * HEADER_GROUP + MIN_DATA) / 1024} KiB`);
  const outer = { hiddenVolumeSize: 0, volumeSize: dataSize, encryptedAreaStart: HEADER_GROUP, encryptedAreaSize: dataSize };
  if (hiddenArea === undefined) return { fileSize, outer, hidden: null };
  if (hiddenArea % DATA_UNIT !== 0) throw new VaultError('usage', `--hidden-size must be a multiple of ${DATA_UNIT} bytes, not ${hiddenArea}`);
  const hiddenData = hiddenArea - hiddenReserve(hiddenArea);
  if (hiddenData < MIN_DATA) throw new VaultError('usage', `--hidden-size ${hiddenArea} is too small for a hidden volume`, `give at least ${(RESERVE_SMALL + MIN_DATA) / 1024} KiB`);
  // The outer filesystem needs room before the hidden area; VeraCrypt asks the same (the outer
  // volume must have free space at its end as large as the hidden volume).
  if (hiddenArea > dataSize - MIN_DATA)
    throw new VaultError('usage', `--hidden-size ${hiddenArea} leaves no room for the outer volume (${dataSize} bytes of data)`, 'make --size larger or --hidden-size smaller');
  const start = fileSize - HEADER_GROUP - hiddenArea;
  return { fileSize, outer, hidden: { hiddenVolumeSize: hiddenData, volumeSize: hiddenData, encryptedAreaStart: start, encryptedAreaSize: hiddenData } };
}
