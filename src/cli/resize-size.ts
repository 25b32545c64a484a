/**
 * The size arithmetic of `vault resize` (spec/format.md §12), apart from any I/O so that it can be
 * tested in-process: what `--size` means, and the data size it gives a container.
 */
import { VaultError } from '../errors.js';
import { HEADER_SIZE, MAX_CONTAINER_BYTES } from '../format/constants.js';
import { parseSize } from './sizes.js';

/** `--size 1G` (the new size of the container file) or `--size +256M` (that much more). */
export type SizeRequest = { kind: 'absolute'; bytes: number } | { kind: 'delta'; bytes: number };

export function parseSizeRequest(text: string): SizeRequest {
  const t = text.trim();
  if (!t.startsWith('+')) return { kind: 'absolute', bytes: parseSize(t) };
  const rest = t.slice(1);
  // "+0" parses (parseSize refuses 0) so that resizePlan can say why it changes nothing.
  if (/^0+(\.0+)?\s*[KMGT]?(i?B)?$/i.test(rest)) return { kind: 'delta', bytes: 0 };
  return { kind: 'delta', bytes: parseSize(rest) };
}

export interface CurrentGeometry {
  dataOffset: number;
  dataSize: number;
  sectorSize: number;
  /** Bytes after the data area: vault's secondary header copy (the default), 0 for LUKS. */
  trailer?: number;
}

/**
 * The new data size for a request: the largest multiple of the sector size such that the file is
 * at most `bytes` long (as `vault create --size`), or the data size plus the delta rounded down to
 * whole sectors. Changing nothing is a usage error (exit 2), and so is a data area under 1 MiB.
 */
export function plannedDataSize(req: SizeRequest, g: CurrentGeometry): number {
  const ss = g.sectorSize;
  const trailer = g.trailer ?? HEADER_SIZE;
  const wanted = req.kind === 'absolute' ? req.bytes - g.dataOffset - trailer : g.dataSize + req.bytes;
  const dataSize = Math.floor(wanted / ss) * ss;
  const fileSize = g.dataOffset + dataSize + trailer;
  if (!Number.isSafeInteger(fileSize) || fileSize > MAX_CONTAINER_BYTES) throw new VaultError('usage', `a container of ${fileSize} bytes is too large`);
  if (dataSize < 1024 * 1024)
    throw new VaultError('usage', `--size ${describe(req)} leaves a data area of ${Math.max(dataSize, 0)} bytes; the smallest is 1 MiB`);
  if (dataSize === g.dataSize)
    throw new VaultError(
      'usage',
      `--size ${describe(req)} does not change the size: the data area stays ${g.dataSize} bytes (file ${g.dataOffset + g.dataSize + trailer} bytes)`,
      'give a different size, or no --size to grow the filesystem to fill the volume',
    );
  return dataSize;
}

function describe(req: SizeRequest): string {
  return req.kind === 'delta' ? `+${req.bytes}` : String(req.bytes);
}
