/**
 * `vault resize` on a container that is not mounted (spec/format.md §12): the filesystem is
 * reached through a transient mount without a filesystem (as `vault create` formats), so that
 * resize2fs works on decrypted sectors in memory only. The container file itself is resized by
 * its format's two steps (vault: headers in crash-safe order; LUKS: the file's length, and a fixed
 * LUKS2 segment's size in both header copies): after the filesystem when shrinking, before it when
 * growing.
 */
import { fstatSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { secretCopy } from '../crypto/wipe.js';
import type { UnlockedVolume } from '../formats/types.js';
import { dismountVolume } from '../mount/dismount.js';
import { detectFilesystem } from '../mount/filesystem.js';
import { mountUnlocked } from '../mount/lifecycle.js';
import { checkExt4, ext4MinimumBytes, requireResizable, resizeExt4 } from '../mount/resize-fs.js';
import { chooseRoute } from '../mount/route.js';
import type { ContainerFile } from '../volume/container-file.js';
import type { GrowOptions } from '../volume/resize.js';
import { formatSize } from './sizes.js';
import { info, progress, warn } from './output.js';

export interface OfflineResize {
  c: ContainerFile;
  /** The unlocked volume as it is now; its key stays the caller's (each mount gets a copy). */
  volume: UnlockedVolume;
  /** The new data size; undefined: grow the filesystem to fill the volume as it is. */
  dataSize: number | undefined;
  quick: boolean;
  signal: AbortSignal;
  /** Bytes of the file outside the data area (for the size a hint suggests). */
  overhead: number;
  growFile(dataSize: number, o: GrowOptions): Promise<void>;
  shrinkFile(dataSize: number): void;
}

/** Runs `fn` on the decrypted device of the volume at `dataSize`, mounted for this moment only. */
async function withDevice<T>(x: OfflineResize, dataSize: number, fn: (device: string) => T): Promise<T> {
  const key = x.volume.key.withBytes((b) => KeyHandle.fromBytes(secretCopy(b)));
  const record = await mountUnlocked(x.c, { ...x.volume, key, dataSize, warnings: [] }, {
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
  if (target === undefined) return finishGrow(x, x.volume.dataSize);
  if (target > x.volume.dataSize) return grow(x, target);
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
  const fs = await withDevice(x, x.volume.dataSize, (dev) => inspect(dev, 'grow'));
  const started = Date.now();
  await x.growFile(dataSize, { quick: x.quick, signal: x.signal, onProgress: (done, total) => progress('encrypting', done, total, started) });
  if (x.quick) warn('--quick: the new part is sparse, so anyone who sees the file can tell which parts hold data');
  info(`the container grew from ${formatSize(x.volume.dataSize)} to ${formatSize(dataSize)} of data (file ${fstatSync(x.c.fd).size} bytes)`);
  if (fs === 'ext4') await finishGrow(x, dataSize);
  else info('the volume has no filesystem vault knows; grow what is inside yourself (vault mount --no-filesystem)');
}

/** Grows the ext4 filesystem to fill the volume (also `vault resize` without --size, after an online grow). */
async function finishGrow(x: OfflineResize, dataSize: number): Promise<void> {
  const r = await withDevice(x, dataSize, (dev) => {
    inspect(dev, 'grow');
    checkExt4(dev); // resize2fs wants a freshly checked filesystem offline
    return resizeExt4(dev);
  });
  if (!r.ok) throw new VaultError('io', `resize2fs failed: ${r.message}; the container itself was resized and opens`, 'run `vault resize` on it again without --size');
  info(r.nothingToDo ? 'the filesystem already fills the volume' : `the filesystem now fills the volume (${formatSize(dataSize)})`);
}

async function shrink(x: OfflineResize, dataSize: number): Promise<void> {
  await withDevice(x, x.volume.dataSize, (dev) => {
    inspect(dev, 'shrink');
    const min = ext4MinimumBytes(dev);
    if (dataSize < min)
      throw new VaultError('unsafe', `refusing to shrink to ${formatSize(dataSize)} of data: the filesystem needs at least ${formatSize(min)} (resize2fs -P); the container was not changed`, `give a --size of at least ${min + x.overhead} bytes, or delete files first`);
    checkExt4(dev);
    const r = resizeExt4(dev, dataSize);
    if (!r.ok) throw new VaultError('io', `resize2fs failed: ${r.message}; the container was not changed`);
  });
  x.shrinkFile(dataSize);
  info(`the filesystem and the container shrank from ${formatSize(x.volume.dataSize)} to ${formatSize(dataSize)} of data`);
}
