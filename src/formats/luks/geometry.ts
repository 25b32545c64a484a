/**
 * Where a LUKS volume's data lies in the container file, from the header's offset and size.
 * A "dynamic" size (LUKS2) or LUKS1's implicit one runs to the end of the device, rounded down to
 * whole encryption sectors as dm-crypt does.
 */
import { VaultError } from '../../errors.js';

export interface GeometryInput {
  path: string;
  fileSize: number;
  offset: bigint;
  /** null: up to the end of the file. */
  size: bigint | null;
  sectorSize: number;
  /** The header is in a separate file, so the data may start at offset 0. */
  detached: boolean;
  /** First byte after the header and keyslot areas when the header is inside the container. */
  metadataEnd: bigint;
}

export function luksGeometry(g: GeometryInput): { dataOffset: number; dataSize: number } {
  if (!g.detached && g.offset < g.metadataEnd)
    throw new VaultError(
      'unsupported-feature',
      `the LUKS data offset ${g.offset} lies inside the header area (${g.metadataEnd} bytes)`,
      'a header made for detached use is opened with --header <file>',
    );
  const fileSize = BigInt(g.fileSize);
  const sector = BigInt(g.sectorSize);
  if (g.offset % sector !== 0n) throw new VaultError('unsupported-feature', `the LUKS data offset ${g.offset} is not a multiple of the ${g.sectorSize}-byte sector size`);
  let size: bigint;
  if (g.size === null) size = g.offset >= fileSize ? 0n : ((fileSize - g.offset) / sector) * sector;
  else {
    size = g.size;
    if (g.offset + size > fileSize)
      throw new VaultError('truncated', `${g.path} is truncated: its LUKS data ends at ${g.offset + size}, the file has ${g.fileSize} bytes`);
  }
  if (size === 0n) throw new VaultError('truncated', `${g.path} has no room for data after the LUKS data offset ${g.offset}`);
  return { dataOffset: Number(g.offset), dataSize: Number(size) };
}
