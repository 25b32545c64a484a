/**
 * What `vault benchmark` measures: XTS throughput of the native data path (the same code the
 * volume server runs), each direction, and Argon2id time per memory size.
 */
import { randomBytes } from 'node:crypto';
import { KeyHandle } from './key-handle.js';
import { generateMasterKey } from './master-key.js';
import { xtsDecrypt, xtsEncrypt } from './xts.js';
import { timeArgon2 } from './calibrate.js';

export type XtsDirection = 'encrypt' | 'decrypt';

/** Bytes per second of in-place XTS on one thread, over ~`ms` of work in 1 MiB calls. */
export function xtsThroughput(direction: XtsDirection, sectorSize: number, ms = 400): number {
  const key = KeyHandle.fromBytes(generateMasterKey());
  const buf = randomBytes(1 << 20);
  const run = direction === 'encrypt' ? xtsEncrypt : xtsDecrypt;
  try {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      run(key, buf, { sectorSize, firstTweak: BigInt(bytes / sectorSize) });
      bytes += buf.length;
    }
    return bytes / ((performance.now() - t0) / 1000);
  } finally {
    buf.fill(0);
    key.dispose();
  }
}

export async function argon2Time(memoryKiB: number, iterations: number, parallelism: number): Promise<number> {
  return timeArgon2({ memoryKiB, iterations, parallelism });
}
