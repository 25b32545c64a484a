/**
 * Chooses Argon2id parameters for new keyslots on this machine: about 2 s per unlock with at least
 * 256 MiB of memory (more when the machine has plenty), as cryptsetup's benchmark-based defaults do.
 */
import { totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { KDF_BOUNDS } from '../format/constants.js';
import type { KdfParams } from '../format/types.js';
import { argon2id } from './kdf.js';

export const TARGET_UNLOCK_MS = 2000;
export const DEFAULT_PARALLELISM = 4;
const MIN_MEMORY_KIB = 256 * 1024;

export function defaultMemoryKiB(): number {
  const total = totalmem();
  if (total >= 8 * 2 ** 30) return 1024 * 1024; // 1 GiB
  if (total >= 4 * 2 ** 30) return 512 * 1024;
  return MIN_MEMORY_KIB;
}

export async function timeArgon2(kdf: KdfParams): Promise<number> {
  const t0 = performance.now();
  await argon2id(randomBytes(16), randomBytes(32), kdf, 32);
  return performance.now() - t0;
}

/** Measures one pass at the default memory and picks the iteration count that reaches the target. */
export async function calibrateKdf(targetMs = TARGET_UNLOCK_MS): Promise<{ kdf: KdfParams; expectedMs: number }> {
  let memoryKiB = defaultMemoryKiB();
  for (;;) {
    const onePass = await timeArgon2({ memoryKiB, iterations: 1, parallelism: DEFAULT_PARALLELISM });
    const iterations = Math.round(targetMs / onePass);
    if (iterations >= 3 || memoryKiB <= MIN_MEMORY_KIB) {
      const t = Math.min(Math.max(iterations, 3), KDF_BOUNDS.iterations.max);
      return { kdf: { memoryKiB, iterations: t, parallelism: DEFAULT_PARALLELISM }, expectedMs: onePass * t };
    }
    memoryKiB = Math.max(MIN_MEMORY_KIB, memoryKiB / 2); // a slow machine: less memory, keep 3 passes
  }
}
