/**
 * Writing a new container: header with a fresh master key, then the data area filled with
 * encryptions of zeros (or left sparse with --quick). Everything is written to a temporary file
 * beside the target, which is renamed over the target only when complete, so an interrupted
 * create never leaves a half-made container at the target path.
 */
import { closeSync, existsSync, constants as fsc, fsyncSync, ftruncateSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { VaultError } from '../errors.js';
import type { SectorSize } from '../format/constants.js';
import { containerFileSize, geometryForSize } from '../format/layout.js';
import type { Header, KdfParams } from '../format/types.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { createKeyslot } from '../crypto/keyslot.js';
import { generateMasterKey } from '../crypto/master-key.js';
import { xtsEncryptAsync } from '../crypto/xts.js';
import { newHeader, writeInitialHeaders } from './container.js';
import { writeFully } from './fd-io.js';

const FILL_CHUNK = 4 * 1024 * 1024;

export interface NewContainer {
  tmpPath: string;
  header: Header;
  /** Caller owns it: dispose when done. */
  key: KeyHandle;
}

/**
 * The temporary name used while a container is being made: hidden, beside the target, and naming
 * the pid of the process making it, so that a later create can tell a partial file whose maker was
 * killed (kill -9 cannot be caught, so nobody else removes it) from one still being written.
 */
export function partialPath(target: string): string {
  return path.join(path.dirname(target), `${partialPrefix(target)}${process.pid}-${randomBytes(4).toString('hex')}`);
}

function partialPrefix(target: string): string {
  return `.${path.basename(target)}.vault-partial-`;
}

/**
 * Removes the partial files an interrupted create of `target` left behind: those whose maker no
 * longer exists. (A reused pid keeps a stale file in place, which is the safe way to be wrong.)
 * Returns the paths removed.
 */
export function removeStalePartials(target: string): string[] {
  const dir = path.dirname(target);
  const prefix = partialPrefix(target);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length));
    if (!m || existsSync(`/proc/${m[1]}`)) continue;
    rmSync(path.join(dir, name), { force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

export async function writeNewContainer(
  target: string,
  o: {
    size: number;
    sectorSize: SectorSize;
    kdf: KdfParams;
    kdfInput: Uint8Array;
    quick: boolean;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<NewContainer> {
  const geometry = geometryForSize(o.size, o.sectorSize);
  const header = newHeader(geometry);
  const mk = generateMasterKey();
  const tmpPath = partialPath(target);
  let fd = -1;
  try {
    header.keyslots[0] = await createKeyslot(o.kdfInput, mk, header.uuid, 0, o.kdf);
    fd = openSync(tmpPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    ftruncateSync(fd, containerFileSize(header)); // sparse until written
    writeInitialHeaders(fd, header, mk);
    const key = KeyHandle.fromBytes(mk); // wipes mk
    try {
      if (!o.quick) await fillWithEncryptedZeros(fd, header, key, o.signal, o.onProgress);
      fsyncSync(fd);
    } catch (e) {
      key.dispose();
      throw e;
    }
    return { tmpPath, header, key };
  } catch (e) {
    mk.fill(0);
    rmSync(tmpPath, { force: true });
    throw e;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Encrypts zero sectors into the whole data area, two chunks in flight (encrypt one, write the other). */
async function fillWithEncryptedZeros(
  fd: number,
  h: Header,
  key: KeyHandle,
  signal?: AbortSignal,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  let pendingWrite: Promise<unknown> = Promise.resolve();
  const buffers = [Buffer.alloc(FILL_CHUNK), Buffer.alloc(FILL_CHUNK)];
  let n = 0;
  for (let done = 0; done < h.dataSize; done += FILL_CHUNK, n++) {
    if (signal?.aborted) throw new VaultError('interrupted', 'interrupted');
    const len = Math.min(FILL_CHUNK, h.dataSize - done);
    const buf = buffers[n % 2]!.subarray(0, len);
    buf.fill(0);
    const first = done / h.sectorSize;
    await xtsEncryptAsync(key, buf, { sectorSize: h.sectorSize, firstTweak: BigInt(first), tweakStep: 1n });
    await pendingWrite; // the other buffer's write must finish before that buffer is reused
    pendingWrite = writeFully(fd, buf, h.dataOffset + done);
    onProgress?.(Math.min(done + len, h.dataSize), h.dataSize);
  }
  await pendingWrite;
}

/** Moves the finished container into place and makes the rename durable. */
export function finishContainer(tmpPath: string, target: string): void {
  renameSync(tmpPath, target);
  const dirFd = openSync(path.dirname(target), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
