/**
 * Positional reads and writes that finish the whole buffer (pread/pwrite may return short counts).
 */
import { read as readCb, readSync, write as writeCb, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { VaultError } from '../errors.js';

const pread = promisify(readCb);
const pwrite = promisify(writeCb);

/** Reads up to `length` bytes at `position`; shorter only at end of file. */
export function readAtSync(fd: number, length: number, position: number): Buffer {
  const b = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return b.subarray(0, done);
}

export function writeAllSync(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Fills `buf` from `position`; a container that ends early is damaged. */
export async function readFully(fd: number, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await pread(fd, buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new VaultError('io', `container ended early at byte ${position + done}`);
    done += bytesRead;
  }
}

export async function writeFully(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) done += (await pwrite(fd, buf, done, buf.length - done, position + done)).bytesWritten;
}
