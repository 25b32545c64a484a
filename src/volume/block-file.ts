/**
 * The decrypted view of a container's data area: byte-addressed reads and writes at any offset and
 * length, over XTS-encrypted sectors. This is what the volume server exposes as its block file.
 *
 * - Reads fetch the whole sectors covering the range, decrypt them, and return the requested bytes.
 * - Writes of whole sectors are encrypted and written; partial head or tail sectors are read,
 *   decrypted, merged, re-encrypted and written (read-modify-write) under a range lock.
 * - sync() is fdatasync of the container: what the filesystem inside has synced is on disk.
 * Crypto runs on the libuv threadpool (xts*Async), so the main thread only dispatches.
 */
import { fdatasync } from 'node:fs';
import { promisify } from 'node:util';
import { VaultError } from '../errors.js';
import type { KeyHandle } from '../crypto/key-handle.js';
import { xtsDecryptAsync, xtsEncryptAsync } from '../crypto/xts.js';
import { readFully, writeFully } from './fd-io.js';
import { RangeLock } from './range-lock.js';

const fdatasyncAsync = promisify(fdatasync);

export interface DataArea {
  dataOffset: number;
  dataSize: number;
  sectorSize: number;
  /** Tweak of data sector i is firstTweak + i * tweakStep (vault: 0n and 1n). */
  firstTweak: bigint;
  tweakStep: bigint;
}

export class EncryptedBlockFile {
  private readonly lock = new RangeLock();
  /** Time of the last read or write (ms since epoch), for idle detection. */
  lastIo = Date.now();

  constructor(
    private readonly fd: number,
    private readonly area: DataArea,
    private readonly key: KeyHandle,
    readonly readOnly: boolean,
  ) {}

  get size(): number {
    return this.area.dataSize;
  }

  private tweakOf(sector: number): bigint {
    return this.area.firstTweak + BigInt(sector) * this.area.tweakStep;
  }

  private xtsParams(firstSector: number) {
    return { sectorSize: this.area.sectorSize, firstTweak: this.tweakOf(firstSector), tweakStep: this.area.tweakStep };
  }

  /** Reads and decrypts whole sectors [first, first + count). */
  private async readSectors(first: number, count: number): Promise<Buffer> {
    const ss = this.area.sectorSize;
    const buf = Buffer.allocUnsafe(count * ss);
    await readFully(this.fd, buf, this.area.dataOffset + first * ss);
    await xtsDecryptAsync(this.key, buf, this.xtsParams(first));
    return buf;
  }

  /** Decrypted bytes [position, position + length), clamped to the end of the data area. */
  async read(position: number, length: number): Promise<Buffer> {
    this.lastIo = Date.now();
    const end = Math.min(position + length, this.area.dataSize);
    if (position >= end) return Buffer.alloc(0);
    const ss = this.area.sectorSize;
    const first = Math.floor(position / ss);
    const last = Math.ceil(end / ss);
    const plain = await this.readSectors(first, last - first);
    const from = position - first * ss;
    return plain.subarray(from, from + (end - position));
  }

  /** Encrypts and writes `data` at `position`; returns the number of bytes written. */
  async write(position: number, data: Uint8Array): Promise<number> {
    if (this.readOnly) throw new VaultError('io', 'the volume is read-only');
    this.lastIo = Date.now();
    const end = position + data.length;
    if (end > this.area.dataSize) throw new VaultError('io', 'write beyond the end of the volume');
    if (data.length === 0) return 0;
    const ss = this.area.sectorSize;
    const first = Math.floor(position / ss);
    const last = Math.ceil(end / ss);
    const release = await this.lock.acquire(first, last);
    try {
      const aligned = position % ss === 0 && end % ss === 0;
      let buf: Buffer;
      if (aligned) {
        buf = Buffer.from(data); // a copy: the caller's buffer is not ours to encrypt in place
      } else {
        // Read-modify-write: only the partial head and tail sectors need their old contents.
        buf = Buffer.allocUnsafe((last - first) * ss);
        if (position % ss !== 0) (await this.readSectors(first, 1)).copy(buf, 0);
        if (end % ss !== 0 && (last - 1 !== first || position % ss === 0))
          (await this.readSectors(last - 1, 1)).copy(buf, (last - 1 - first) * ss);
        buf.set(data, position - first * ss);
      }
      await xtsEncryptAsync(this.key, buf, this.xtsParams(first));
      await writeFully(this.fd, buf, this.area.dataOffset + first * ss);
      return data.length;
    } finally {
      release();
    }
  }

  async sync(): Promise<void> {
    if (!this.readOnly) await fdatasyncAsync(this.fd);
  }
}
