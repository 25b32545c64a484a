/**
 * `vault resize` on a container that is not mounted (spec/format.md §12): the filesystem is
 * reached through a transient mount without a filesystem (as `vault create` formats), so that
 * resize2fs works on decrypted sectors in memory only.
 */
import { VaultError } from '../errors.js';
import { HEADER_SIZE } from '../format/constants.js';
import type { Header } from '../format/types.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { vaultVolume } from '../formats/vault.js';
import { dismountVolume } from '../mount/dismount.js';
import { detectFilesystem } from '../mount/filesystem.js';
import { mountUnlocked } from '../mount/lifecycle.js';
import { checkExt4, ext4MinimumBytes, requireResizable, resizeExt4 } from '../mount/resize-fs.js';
import { chooseRoute } from '../mount/route.js';
import type { ContainerFile } from '../volume/container-file.js';
import { growContainer, shrinkContainer } from '../volume/resize.js';
import { formatSize } from './sizes.js';
import { info, progress, warn } from './output.js';

export interface OfflineResize {
  c: ContainerFile;
  header: Header;
  masterKey: Uint8Array;
  /** The new data size; undefined: grow the filesystem to fill the volume as it is. */
  dataSize: number | undefined;
  quick: boolean;
  signal: AbortSignal;
}

/** Runs `fn` on the decrypted device of `header`'s geometry, mounted for this moment only. */
async function withDevice<T>(x: OfflineResize, header: Header, fn: (device: string) => T): Promise<T> {
  const key = KeyHandle.fromBytes(Uint8Array.from(x.masterKey));
  const record = await mountUnlocked(x.c, vaultVolume(header, key, []), {
    readOnly: false, noFilesystem: true, warn, signal: x.signal, transient: true, route: chooseRoute(undefined, false),
  });
  try {
    return fn(record.loopDevice ?? record.blockFile);
  } finally {
    await dismountVolume(record, true);
  }
}

export async function resizeOffline(x: OfflineResize): Promise<void> {
  const target = x.dataSize;
  if (target === undefined) return finishGrow(x, x.header);
  if (target > x.header.dataSize) return grow(x, target);
  return shrink(x, target);
}

/**
 * The filesystem's type, and whether it may be resized that way. Reads only: a refused or failed
 * resize must leave the container byte for byte as it was, so e2fsck (which writes the
 * superblock's check time) runs only once the resize goes ahead.
 */
function inspect(device: string, what: 'grow' | 'shrink'): string | null {
  const fs = detectFilesystem(device);
  requireResizable(fs, what);
  return fs;
}

async function grow(x: OfflineResize, dataSize: number): Promise<void> {
  const fs = await withDevice(x, x.header, (dev) => inspect(dev, 'grow'));
  const started = Date.now();
  const grown = await growContainer(x.c, x.header, x.masterKey, dataSize, {
    quick: x.quick, signal: x.signal, onProgress: (done, total) => progress('encrypting', done, total, started),
  });
  if (x.quick) warn('--quick: the new part is sparse, so anyone who sees the file can tell which parts hold data');
  info(`the container grew from ${formatSize(x.header.dataSize)} to ${formatSize(dataSize)} of data (file ${grown.dataOffset + dataSize + HEADER_SIZE} bytes)`);
  if (fs === 'ext4') await finishGrow(x, grown);
  else info('the volume has no filesystem vault knows; grow what is inside yourself (vault mount --no-filesystem)');
}

/** Grows the ext4 filesystem to fill the volume (also `vault resize` without --size, after an online grow). */
async function finishGrow(x: OfflineResize, header: Header): Promise<void> {
  const r = await withDevice(x, header, (dev) => {
    inspect(dev, 'grow');
    checkExt4(dev); // resize2fs wants a freshly checked filesystem offline
    return resizeExt4(dev);
  });
  if (!r.ok) throw new VaultError('io', `resize2fs failed: ${r.message}; the container itself was resized and opens`, 'run `vault resize` on it again without --size');
  info(r.nothingToDo ? 'the filesystem already fills the volume' : `the filesystem now fills the volume (${formatSize(header.dataSize)})`);
}

async function shrink(x: OfflineResize, dataSize: number): Promise<void> {
  await withDevice(x, x.header, (dev) => {
    inspect(dev, 'shrink');
    const min = ext4MinimumBytes(dev);
    if (dataSize < min)
      throw new VaultError('unsafe', `refusing to shrink to ${formatSize(dataSize)} of data: the filesystem needs at least ${formatSize(min)} (resize2fs -P); the container was not changed`, `give a --size of at least ${min + x.header.dataOffset + HEADER_SIZE} bytes, or delete files first`);
    checkExt4(dev);
    const r = resizeExt4(dev, dataSize);
    if (!r.ok) throw new VaultError('io', `resize2fs failed: ${r.message}; the container was not changed`);
  });
  shrinkContainer(x.c, x.header, x.masterKey, dataSize);
  info(`the filesystem and the container shrank from ${formatSize(x.header.dataSize)} to ${formatSize(dataSize)} of data`);
}
