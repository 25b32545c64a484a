/**
 * Does `vault create --quick` and `vault mount` cost the same for a 1 GiB and a 1 TiB container?
 * Both are sparse (--quick), so the 1 TiB one needs about 1 GiB of real disk at most (mkfs's
 * journal and metadata). Each size is created and mounted `reps` times (medians reported);
 * mounts use vault's default mount options, as a user gets them.
 */
import { mkdirSync, realpathSync, rmSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { median, progress } from './log.js';
import type { CleanupStack } from './cleanup.js';
import type { VaultCli } from './vault.js';

const GiB = 2 ** 30;
export const SCALING_SIZES = [GiB, 1024 * GiB] as const;

export interface SizePoint {
  sizeBytes: number;
  /** Median of createSamplesMs. */
  createMs: number;
  createSamplesMs: number[];
  /** Bytes really allocated by the sparse container after create. */
  allocatedBytes: number;
  mountMs: number[];
  mountMedianMs: number;
  /** Median end-to-end mount minus the Argon2id time (computed from outside). */
  mountNoKdfMedianMs: number | null;
  dismountMedianMs: number;
}

export interface ScalingResult {
  points: SizePoint[];
  /** 1 TiB over 1 GiB. */
  createRatio: number;
  mountRatio: number;
}

export async function sizeIndependence(
  vault: VaultCli,
  workDir: string,
  cleanup: CleanupStack,
  reps: number,
  kdfMs: number | null,
): Promise<ScalingResult> {
  const dir = path.join(workDir, 'scaling');
  const mp = path.join(dir, 'mnt');
  mkdirSync(mp, { recursive: true });
  const realMp = realpathSync(mp);
  cleanup.push('vault dismount --all --force (size test)', () => vault.dismountAllForce());
  // mkfs writes a 1 GiB journal into the 1 TiB container; make sure that fits with room to spare.
  const fs = statfsSync(dir);
  if (fs.bavail * fs.bsize < 4 * GiB) throw new Error(`less than 4 GiB free under ${dir}: not enough for the 1 TiB sparse container`);

  const points: SizePoint[] = [];
  for (const size of SCALING_SIZES) {
    const label = size >= 1024 * GiB ? `${size / (1024 * GiB)} TiB` : `${size / GiB} GiB`;
    const container = path.join(dir, `scale-${label.replace(' ', '')}.vol`);
    progress(`size test: vault create --quick ${label} (×${reps}), mount (×${reps})`);
    // Created `reps` times too (--force over the previous one would also work, but a fresh path
    // is what a user times): single samples of a ~0.5 s command are too noisy on this machine.
    const creates: number[] = [];
    for (let i = 0; i < reps; i++) {
      rmSync(container, { force: true });
      creates.push(await vault.create(container, size));
    }
    const allocatedBytes = statSync(container).blocks * 512;
    const mounts: number[] = [];
    const dismounts: number[] = [];
    for (let i = 0; i < reps; i++) {
      mounts.push(await vault.mount(container, realMp));
      dismounts.push(await vault.dismount(realMp));
    }
    const list = (xs: number[]): string => xs.map((m) => m.toFixed(0)).join('/');
    progress(`size test: ${label}: create ${list(creates)} ms, mount ${list(mounts)} ms`);
    rmSync(container, { force: true });
    const mountMedianMs = median(mounts);
    const createMs = median(creates);
    points.push({
      sizeBytes: size,
      createMs,
      createSamplesMs: creates,
      allocatedBytes,
      mountMs: mounts,
      mountMedianMs,
      mountNoKdfMedianMs: kdfMs === null ? null : mountMedianMs - kdfMs,
      dismountMedianMs: median(dismounts),
    });
  }
  const [small, large] = points as [SizePoint, SizePoint];
  return { points, createRatio: large.createMs / small.createMs, mountRatio: large.mountMedianMs / small.mountMedianMs };
}
