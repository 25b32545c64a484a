/**
 * Where things are in a container file (spec/format.md §1, §6, §9).
 */
import { VaultError } from '../errors.js';
import { DEFAULT_DATA_OFFSET, HEADER_SIZE, MAX_CONTAINER_BYTES, type SectorSize } from './constants.js';

export interface Geometry {
  sectorSize: SectorSize;
  dataOffset: number;
  dataSize: number;
}

/** The geometry `vault create --size` uses: the largest data area that fits in `maxFileSize` bytes. */
export function geometryForSize(maxFileSize: number, sectorSize: SectorSize): Geometry {
  const room = maxFileSize - DEFAULT_DATA_OFFSET - HEADER_SIZE;
  const dataSize = Math.floor(room / sectorSize) * sectorSize;
  if (!Number.isSafeInteger(maxFileSize) || maxFileSize > MAX_CONTAINER_BYTES)
    throw new VaultError('usage', `size ${maxFileSize} is too large`);
  if (dataSize < sectorSize)
    throw new VaultError('usage', `size ${maxFileSize} bytes is too small: a container needs at least 1 MiB + 8 KiB`);
  return { sectorSize, dataOffset: DEFAULT_DATA_OFFSET, dataSize };
}

/** File offset of the secondary copy of a container with this geometry. */
export function secondaryOffset(g: Pick<Geometry, 'dataOffset' | 'dataSize'>): number {
  return g.dataOffset + g.dataSize;
}

export function containerFileSize(g: Pick<Geometry, 'dataOffset' | 'dataSize'>): number {
  return g.dataOffset + g.dataSize + HEADER_SIZE;
}
