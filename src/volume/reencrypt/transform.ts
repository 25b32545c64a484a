/**
 * One segment's old ciphertext to new (spec §13.4): decrypt with the old key and sector size,
 * encrypt with the new ones. Tweaks come from the data-area byte offset: the old sector index is
 * offset / old_sector_size, the new one offset / new_sector_size. A stored sector of all-zero bytes
 * reads as zeros (spec §8) and a new sector made only of such sectors stays all-zero: holes stay holes.
 */
import type { KeyHandle } from '../../crypto/key-handle.js';
import { xtsDecryptAsync, xtsEncryptAsync } from '../../crypto/xts.js';
import { nativeAddon } from '../../crypto/native.js';
import { HASH_SIZE, UNIT_SIZE, unitHash } from './journal.js';

export interface Sides {
  oldKey: KeyHandle;
  newKey: KeyHandle;
  oldSectorSize: number;
  newSectorSize: number;
}

/** Work is split into pieces this big, run on the libuv threadpool side by side. */
const PIECE = 2 * 1024 * 1024;
let zeroSegment = Buffer.alloc(0);

/** Whether a stretch of stored bytes is all zero (a hole: nothing to re-encrypt, spec §13.4). */
export function isHole(b: Buffer): boolean {
  if (zeroSegment.length < b.length) zeroSegment = Buffer.alloc(b.length);
  return b.equals(zeroSegment.subarray(0, b.length));
}

/** One flag per `size`-byte unit of `buf` (the last may be shorter): 1 where it is all zero bytes (native scan). */
export function zeroUnits(buf: Buffer, size: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(buf.length / size));
  nativeAddon().zeroUnits(buf, size, out);
  return out;
}

/**
 * Returns the new ciphertext of `old` (the stored bytes at data-area byte `offset`, a multiple of
 * 4096). `old` is left as it was, unless `into` is `old` itself (in place).
 */
export async function reencryptSegment(old: Buffer, offset: number, s: Sides, into?: Buffer): Promise<Buffer> {
  const out = into ?? Buffer.allocUnsafe(old.length);
  if (out !== old) old.copy(out);
  if (!isHole(old)) await reencryptStored(out, offset, s);
  return out;
}

/** reencryptSegment's work, in place on stored bytes known not to be one hole. */
export async function reencryptStored(out: Buffer, offset: number, s: Sides): Promise<void> {
  const zeroOld = zeroUnits(out, s.oldSectorSize);
  const jobs: Promise<void>[] = [];
  for (let at = 0; at < out.length; at += PIECE) {
    const piece = out.subarray(at, Math.min(at + PIECE, out.length));
    jobs.push(
      (async () => {
        await xtsDecryptAsync(s.oldKey, piece, { sectorSize: s.oldSectorSize, firstTweak: BigInt((offset + at) / s.oldSectorSize) });
        for (let j = 0; j < piece.length; j += s.oldSectorSize) if (zeroOld[(at + j) / s.oldSectorSize]) piece.fill(0, j, j + s.oldSectorSize);
        await xtsEncryptAsync(s.newKey, piece, { sectorSize: s.newSectorSize, firstTweak: BigInt((offset + at) / s.newSectorSize) });
      })(),
    );
  }
  await Promise.all(jobs);
  // A new sector whose bytes all came from zero stored sectors stays a hole.
  const ratio = s.newSectorSize / s.oldSectorSize;
  for (let k = 0; k * s.newSectorSize < out.length; k++) {
    const from = Math.floor((k * s.newSectorSize) / s.oldSectorSize);
    const count = Math.max(1, ratio);
    let allZero = true;
    for (let j = from; j < from + count; j++) if (!zeroOld[j]) allZero = false;
    if (allZero) out.fill(0, k * s.newSectorSize, (k + 1) * s.newSectorSize);
  }
}

export function unitHashes(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; at += UNIT_SIZE) out.push(unitHash(buf.subarray(at, at + UNIT_SIZE)));
  return out;
}

/** unitHashes on the libuv threadpool (native, OpenSSL's SHA-256), in pieces side by side, back to back in one buffer. */
export async function unitHashesAsync(buf: Buffer): Promise<Buffer> {
  const out = Buffer.alloc(Math.ceil(buf.length / UNIT_SIZE) * HASH_SIZE);
  const jobs: Promise<void>[] = [];
  for (let at = 0; at < buf.length; at += PIECE) {
    const piece = buf.subarray(at, Math.min(at + PIECE, buf.length));
    const first = at / UNIT_SIZE;
    jobs.push(nativeAddon().unitHashesAsync(piece, UNIT_SIZE, out.subarray(first * HASH_SIZE, (first + Math.ceil(piece.length / UNIT_SIZE)) * HASH_SIZE)));
  }
  await Promise.all(jobs);
  return out;
}
