/**
 * `vault resize` of LUKS containers (spec/interop-luks.md §6.2), offline, the filesystem inside as
 * for vault (resize-offline.ts). Where the data segment runs to the end of the file (LUKS1 always,
 * LUKS2 when its size is "dynamic", what cryptsetup luksFormat makes), the headers (both LUKS2
 * copies included) sit before the data and say nothing of its size: the file's length alone
 * changes. A LUKS2 segment of fixed size also has its `size` rewritten in both header copies
 * (src/formats/luks2/write.ts): a grow extends and fills the file first, then writes the header;
 * a shrink writes the header after the filesystem shrank, then truncates the file if it ended
 * where the segment did.
 */
import { fstatSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { keyfilePolicy, type FormatAdapter } from '../formats/types.js';
import { unlockVolume } from '../formats/index.js';
import { readLuks2Header } from '../formats/luks2/read.js';
import { prepareSegmentResize, resizableSegment, writeSegmentSize, type SegmentResize } from '../formats/luks2/write.js';
import type { Luks2Segment } from '../formats/luks2/metadata.js';
import type { ContainerFile } from '../volume/container-file.js';
import { growToEnd, shrinkToEnd } from '../volume/resize.js';
import { plannedDataSize, type SizeRequest } from './resize-size.js';
import { resizeOffline } from './resize-offline.js';
import { gatherSecret, type SecretOptions } from './secrets.js';

/**
 * The LUKS2 data segment of fixed size whose `size` a resize rewrites, or null when the file's
 * length is the size (LUKS1, a "dynamic" segment). Refuses, before any passphrase, what vault does
 * not resize (exit 5): more than one segment, reencryption, flags and features it does not know.
 */
export function fixedSegment(c: ContainerFile, adapter: FormatAdapter): Luks2Segment | null {
  if (adapter.name !== 'luks2') return null;
  return resizableSegment(readLuks2Header(c.fd, c.size, c.path).metadata);
}

/** Writes both header copies; a failure part-way leaves one copy or the other in use (old or new size). */
function commitSize(c: ContainerFile, r: SegmentResize): void {
  try {
    writeSegmentSize(c, r);
  } catch (e) {
    if (e instanceof VaultError) throw e;
    throw new VaultError('io', `writing the LUKS2 header failed part-way (${(e as Error).message}); the container opens with its old or its new size`, 'run vault resize again');
  }
}

export async function resizeLuks(
  c: ContainerFile,
  adapter: FormatAdapter,
  o: SecretOptions & { quick?: boolean },
  req: SizeRequest | undefined,
  signal: AbortSignal,
): Promise<void> {
  const v = await unlockVolume(adapter, c, gatherSecret(o, keyfilePolicy(adapter)), { readOnly: false });
  try {
    const fixed = fixedSegment(c, adapter);
    const dataSize = req ? plannedDataSize(req, { ...v, trailer: 0 }) : undefined;
    // A "plain" IV wraps at IV sector 2^32: never grow a data area into (or further past) the wrap.
    // A volume already past it opens (with a warning) and may shrink.
    if (dataSize !== undefined && v.maxDataSize !== undefined && dataSize > v.maxDataSize && dataSize > v.dataSize) {
      const spec = (v.engine ?? '').replace(/\/\d+$/, '');
      throw new VaultError(
        'unsupported-feature',
        `${c.path} uses ${spec}, whose 32-bit IV gives distinct IVs to at most ${v.maxDataSize} bytes of data here; a data area of ${dataSize} bytes would repeat them; the container was not changed`,
        `stay below that size, or re-encrypt it to ${spec.replace(/-plain$/, '-plain64')} with \`cryptsetup reencrypt --cipher ${spec.replace(/-plain$/, '-plain64')}\``,
      );
    }
    // A fixed segment: everything that can refuse its new header runs now, before any change.
    const update = fixed && dataSize !== undefined ? prepareSegmentResize(c, BigInt(dataSize)) : null;
    if (update && (update.oldSize !== BigInt(v.dataSize) || update.offset !== BigInt(v.dataOffset)))
      throw new VaultError('busy', `the LUKS2 header of ${c.path} changed while vault resized it; the container was not changed`, 'run vault resize again');
    // The bytes after a fixed segment that ends before the file does are not the volume's: a
    // shrink leaves them (and the file's length) alone; a grow over them makes them data.
    const truncate = !update || fstatSync(c.fd).size === v.dataOffset + v.dataSize;
    await resizeOffline({
      c, volume: v, dataSize, quick: !!o.quick, signal, overhead: v.dataOffset,
      growFile: async (size, g) => {
        await growToEnd(c, v, size, g);
        if (update) commitSize(c, update);
      },
      shrinkFile: (size) => {
        if (update) commitSize(c, update);
        if (truncate) shrinkToEnd(c, v, size);
      },
    });
  } finally {
    v.key.dispose();
  }
}
