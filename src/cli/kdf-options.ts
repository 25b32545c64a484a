/** The --kdf-memory/--kdf-iterations/--kdf-parallelism options shared by create, passwd and keyslot add. */
import type { Command } from 'commander';
import { VaultError } from '../errors.js';
import { KDF_BOUNDS } from '../format/constants.js';
import type { KdfParams } from '../format/types.js';
import { calibrateKdf, DEFAULT_PARALLELISM } from '../crypto/calibrate.js';
import { warn } from './output.js';

export interface KdfCliOptions {
  kdfMemory?: string;
  kdfIterations?: string;
  kdfParallelism?: string;
}

/** Each value is checked as the command line is parsed, before any prompt or calibration. */
export function addKdfOptions(cmd: Command): Command {
  const checked = (name: string, max: number) => (v: string) => (intOption(name, v, 1, max), v);
  return cmd
    .option('--kdf-memory <MiB>', 'Argon2id memory in MiB (default: calibrated to about 2 s)', checked('--kdf-memory', MAX_MEMORY_MIB))
    .option('--kdf-iterations <n>', 'Argon2id iterations (default: calibrated)', checked('--kdf-iterations', KDF_BOUNDS.iterations.max))
    .option('--kdf-parallelism <n>', `Argon2id lanes (default: ${DEFAULT_PARALLELISM})`, checked('--kdf-parallelism', KDF_BOUNDS.parallelism.max));
}

export const MAX_MEMORY_MIB = KDF_BOUNDS.memoryKiB.max / 1024;

export function intOption(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new VaultError('usage', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** Explicit flags win; any flag left out comes from calibration on this machine. Warns when weak. */
export async function kdfFromOptions(o: KdfCliOptions): Promise<KdfParams> {
  const allGiven = o.kdfMemory !== undefined && o.kdfIterations !== undefined && o.kdfParallelism !== undefined;
  const base = allGiven ? null : (await calibrateKdf()).kdf;
  const kdf: KdfParams = {
    memoryKiB: o.kdfMemory !== undefined ? intOption('--kdf-memory', o.kdfMemory, 1, MAX_MEMORY_MIB) * 1024 : base!.memoryKiB,
    iterations: o.kdfIterations !== undefined ? intOption('--kdf-iterations', o.kdfIterations, 1, KDF_BOUNDS.iterations.max) : base!.iterations,
    parallelism: o.kdfParallelism !== undefined ? intOption('--kdf-parallelism', o.kdfParallelism, 1, KDF_BOUNDS.parallelism.max) : base!.parallelism,
  };
  if (kdf.memoryKiB < 64 * 1024 || kdf.iterations < 3)
    warn(`weak key derivation (${kdf.memoryKiB / 1024} MiB, ${kdf.iterations} iterations): a passphrase is much easier to guess below 64 MiB and 3 iterations`);
  return kdf;
}
