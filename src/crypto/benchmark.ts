/**
 * What `vault benchmark` measures: XTS throughput of each path, and Argon2id time per memory size.
 */
import { randomBytes } from 'node:crypto';
import { KeyHandle } from './key-handle.js';
import { nativeAddon } from './native.js';
import { generateMasterKey } from './master-key.js';
import { __forceBackendForTests, xtsEncrypt, type XtsBackend } from './xts.js';
import { timeArgon2 } from './calibrate.js';

/** Bytes per second of in-place XTS encryption through `backend`, over ~`ms` of work in 1 MiB calls. */
export function xtsThroughput(backend: XtsBackend, sectorSize: number, ms = 400): number {
  if (backend === 'native' && !nativeAddon()) return NaN;
  __forceBackendForTests(backend);
  const key = KeyHandle.fromBytes(generateMasterKey());
  const buf = randomBytes(1 << 20);
  try {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      xtsEncrypt(key, buf, { sectorSize, firstTweak: BigInt(bytes / sectorSize) });
      bytes += buf.length;
    }
    return bytes / ((performance.now() - t0) / 1000);
  } finally {
    key.dispose();
    __forceBackendForTests(null);
  }
}

export async function argon2Time(memoryKiB: number, iterations: number, parallelism: number): Promise<number> {
  return timeArgon2({ memoryKiB, iterations, parallelism });
}
