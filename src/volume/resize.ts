/**
 * Growing and shrinking a vault container file in the crash-safe write order of spec/format.md
 * §12. The filesystem inside is resized by the caller (src/mount/resize-fs.ts): before the
 * container shrinks, after it grows. Every step is synced before the next, so that a kill at any
 * point leaves a container that opens with its old or its new size.
 */
import { fdatasyncSync, fstatSync, fsyncSync, ftruncateSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { HEADER_SIZE } from '../format/constants.js';
import { containerFileSize, secondaryOffset } from '../format/layout.js';
import type { Header } from '../format/types.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { secretCopy } from '../crypto/wipe.js';
import { readHeaderCopies, sealHeaderCopies } from './container.js';
import type { ContainerFile } from './container-file.js';
import { fillWithEncryptedZeros, type FillGeometry } from './create.js';
import { readAtSync, writeAllSync } from './fd-io.js';

export interface GrowOptions {
  /** Leave the new part sparse instead of filling it with encrypted zeros. */
  quick: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/** The header with the new data size and the next sequence number (spec §6: largest valid + 1). */
function nextHeader(c: ContainerFile, h: Header, dataSize: number): Header {
  const copies = readHeaderCopies(c);
  let seq = h.sequence;
  for (const r of [copies.primary, copies.secondary]) if (r.ok && r.header.sequence > seq) seq = r.header.sequence;
  return { ...h, dataSize, sequence: seq + 1n };
}

function ioError(what: string, e: unknown): VaultError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOSPC')
    return new VaultError('io', `${what}: no space left on the device holding the container`, 'free space there (or give a smaller --size), then run vault resize again');
  if (err.code === 'EROFS' || err.code === 'EACCES' || err.code === 'EPERM')
    return new VaultError('privilege', `${what}: the container cannot be written (${err.code})`, 'make it writable, then run vault resize again');
  return new VaultError('io', `${what}: ${err.message}`);
}

/**
 * Grows the container to `dataSize` (spec §12 "Grow"): extend the file; fill the new data area
 * past the old secondary copy; write the new secondary copy at the new end; then the primary; then
 * overwrite the old secondary copy, now inside the data area, with data-area ciphertext. A failure
 * before the new primary is written puts the file back byte for byte (old primary, old length).
 * Returns the new header (as the primary copy).
 */
export async function growContainer(c: ContainerFile, h: Header, masterKey: Uint8Array, dataSize: number, o: GrowOptions): Promise<Header> {
  if (dataSize <= h.dataSize) throw new VaultError('internal', 'growContainer needs a larger size');
  const oldLength = fstatSync(c.fd).size;
  const oldPrimary = readAtSync(c.fd, HEADER_SIZE, 0);
  const next = nextHeader(c, h, dataSize);
  const [primary, secondary] = sealHeaderCopies(next, masterKey);
  const key = KeyHandle.fromBytes(secretCopy(masterKey));
  let committed = false;
  try {
    try {
      ftruncateSync(c.fd, containerFileSize(next));
      if (!o.quick)
        await fillWithEncryptedZeros(c.fd, h, key, { from: h.dataSize + HEADER_SIZE, to: dataSize, signal: o.signal, onProgress: o.onProgress });
      fdatasyncSync(c.fd);
      writeAllSync(c.fd, secondary, secondaryOffset(next));
      fsyncSync(c.fd);
      writeAllSync(c.fd, primary, 0);
      fsyncSync(c.fd);
      committed = true;
    } catch (e) {
      restore(c, oldPrimary, oldLength);
      if (e instanceof VaultError) throw e;
      throw ioError('growing the container failed; it was put back as it was', e);
    }
    // The old secondary copy lies inside the new data area: it becomes ciphertext like the rest.
    await fillWithEncryptedZeros(c.fd, h, key, { from: h.dataSize, to: h.dataSize + HEADER_SIZE });
    fsyncSync(c.fd);
  } catch (e) {
    if (committed) throw ioError('the container grew, but wiping its old secondary header failed', e);
    throw e;
  } finally {
    key.dispose();
  }
  return { ...next, copy: 0 };
}

/** Puts back what growContainer changed: the old primary copy and the old length. */
function restore(c: ContainerFile, oldPrimary: Buffer | null, oldLength: number): void {
  try {
    if (oldPrimary) writeAllSync(c.fd, oldPrimary, 0);
    ftruncateSync(c.fd, oldLength);
    fsyncSync(c.fd);
  } catch {
    // The primary is written in place (no allocation) and truncation frees space: neither fails
    // for lack of space. If they fail anyway, the old secondary copy still opens the container.
  }
}

/**
 * Grows the data area of a LUKS container to `dataSize`: extends the file where it is shorter
 * than that, fills the new part unless quick, syncs. Where the area runs to the end of the file
 * (LUKS1, LUKS2 with a "dynamic" segment) no header describes the size and this is the whole grow;
 * a LUKS2 segment of fixed size has its header rewritten afterwards (src/cli/resize-luks.ts). A
 * failure truncates the file back to its old length.
 */
export async function growToEnd(c: ContainerFile, v: FillGeometry & { dataSize: number; key: KeyHandle }, dataSize: number, o: GrowOptions): Promise<void> {
  const oldLength = fstatSync(c.fd).size;
  try {
    if (v.dataOffset + dataSize > oldLength) ftruncateSync(c.fd, v.dataOffset + dataSize);
    if (!o.quick) await fillWithEncryptedZeros(c.fd, v, v.key, { from: v.dataSize, to: dataSize, signal: o.signal, onProgress: o.onProgress });
    fsyncSync(c.fd);
  } catch (e) {
    restore(c, null, oldLength);
    if (e instanceof VaultError) throw e;
    throw ioError('growing the container failed; it was put back as it was', e);
  }
}

/** Shrinks such a container (its filesystem already ends before `dataSize`): truncation is all. */
export function shrinkToEnd(c: ContainerFile, v: { dataOffset: number }, dataSize: number): void {
  try {
    ftruncateSync(c.fd, v.dataOffset + dataSize);
    fsyncSync(c.fd);
  } catch (e) {
    throw ioError('shrinking the container failed', e);
  }
}

/**
 * Shrinks the container to `dataSize` (spec §12 "Shrink"), once the filesystem inside ends
 * before it: the new secondary copy at the new end, then the primary, then the file is truncated.
 */
export function shrinkContainer(c: ContainerFile, h: Header, masterKey: Uint8Array, dataSize: number): Header {
  if (dataSize >= h.dataSize) throw new VaultError('internal', 'shrinkContainer needs a smaller size');
  const next = nextHeader(c, h, dataSize);
  const [primary, secondary] = sealHeaderCopies(next, masterKey);
  try {
    writeAllSync(c.fd, secondary, secondaryOffset(next));
    fsyncSync(c.fd);
    writeAllSync(c.fd, primary, 0);
    fsyncSync(c.fd);
    ftruncateSync(c.fd, containerFileSize(next));
    fsyncSync(c.fd);
  } catch (e) {
    throw ioError('shrinking the container failed part-way (it still opens; run vault resize again)', e);
  }
  return { ...next, copy: 0 };
}
