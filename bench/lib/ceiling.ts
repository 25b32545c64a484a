/**
 * The ceiling issue 14 measures sequential read against: what one core can decrypt, AES-256-XTS
 * over 1 MiB buffers of 4096-byte sectors (vault's default), through the same native addon the
 * volume server uses. Synchronous calls on this thread: exactly one core.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_SECTOR_SIZE } from '../../src/format/constants.js';
import { nativeAddon } from '../../src/crypto/native.js';
import { nowMs } from './log.js';

const MiB = 1 << 20;
/** 16 distinct buffers (16 MiB): more than a core's caches, as in a real read stream. */
const BUFFERS = 16;

export interface Ceiling {
  mibps: number;
  bytes: number;
  seconds: number;
  bufferBytes: number;
  sectorSize: number;
}

export function measureCeiling(seconds: number): Ceiling {
  const addon = nativeAddon();
  const key = addon.keyFromBytes(randomBytes(64));
  try {
    const bufs = Array.from({ length: BUFFERS }, () => randomBytes(MiB));
    const sectorsPerBuf = BigInt(MiB / DEFAULT_SECTOR_SIZE);
    const once = (i: number): void => addon.xts(key, bufs[i % BUFFERS]!, DEFAULT_SECTOR_SIZE, BigInt(i) * sectorsPerBuf, 1n, false, 'aes');
    // Warm-up: page faults, first use of the cipher context, the CPU's clock ramp.
    const w0 = nowMs();
    for (let i = 0; nowMs() - w0 < 300; i++) once(i);
    let n = 0;
    const t0 = nowMs();
    let elapsed = 0;
    do {
      once(n++);
      elapsed = (nowMs() - t0) / 1000;
    } while (elapsed < seconds);
    return { mibps: n / elapsed, bytes: n * MiB, seconds: elapsed, bufferBytes: MiB, sectorSize: DEFAULT_SECTOR_SIZE };
  } finally {
    addon.keyDispose(key);
  }
}
