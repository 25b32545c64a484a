/**
 * What `vault benchmark` measures: XTS throughput of the native data path (the same code the
 * volume server runs), each direction, for AES and for each of VeraCrypt's algorithms beside
 * libgcrypt's own XTS, and Argon2id time per memory size.
 */
import { randomBytes } from 'node:crypto';
import { KeyHandle } from './key-handle.js';
import { generateMasterKey } from './master-key.js';
import { xtsDecrypt, xtsEncrypt } from './xts.js';
import { type CipherChain, chainKeyBytes } from './cipher-chain.js';
import { libgcryptXts } from './cipher-probes.js';
import { timeArgon2 } from './calibrate.js';

export type XtsDirection = 'encrypt' | 'decrypt';

/** Bytes per second of `once` over a 1 MiB buffer (given the bytes done so far), on one thread, over ~`ms`. */
function throughput(key: KeyHandle, ms: number, once: (buf: Buffer, done: number) => void): number {
  const buf = randomBytes(1 << 20);
  try {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      once(buf, bytes);
      bytes += buf.length;
    }
    return bytes / ((performance.now() - t0) / 1000);
  } finally {
    buf.fill(0);
    key.dispose();
  }
}

/** Bytes per second of in-place XTS on one thread, over ~`ms` of work in 1 MiB calls (AES unless `cipher`). */
export function xtsThroughput(direction: XtsDirection, sectorSize: number, ms = 400, cipher?: CipherChain): number {
  const key = KeyHandle.fromBytes(cipher ? randomBytes(chainKeyBytes(cipher)) : generateMasterKey());
  const run = direction === 'encrypt' ? xtsEncrypt : xtsDecrypt;
  return throughput(key, ms, (buf, done) => run(key, buf, { sectorSize, firstTweak: BigInt(done / sectorSize), ...(cipher ? { cipher } : {}) }));
}

/**
 * The reference for one libgcrypt cipher: libgcrypt's own XTS encryption at its best, one call per
 * 1 MiB (a single data unit: no per-sector tweak setup), on one thread.
 */
export function libgcryptXtsThroughput(cipher: 'serpent' | 'twofish' | 'camellia', ms = 400): number {
  const key = KeyHandle.fromBytes(randomBytes(64));
  return throughput(key, ms, (buf) => libgcryptXts(cipher, key, buf, buf.length));
}

export async function argon2Time(memoryKiB: number, iterations: number, parallelism: number): Promise<number> {
  return timeArgon2({ memoryKiB, iterations, parallelism });
}
