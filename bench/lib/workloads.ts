/**
 * One setup, start to finish: bring it up (mount-time cycles included), run the workloads in a
 * fixed order on one file, read the server's peak RSS, tear it down. The order and the cache drops
 * are the same for every setup, and fio does all the I/O:
 *
 *   1. sync and caches dropped, sequential write of `seqBytes` to a new file, fsync at the end
 *      (fio end_fsync); `seqReps` times, the median reported;
 *   2. caches dropped, sequential read of that file; `seqReps` times, the median reported;
 *   3. caches dropped, 4 KiB random read, O_DIRECT, iodepth 16, time-based, on that same file
 *      (so it is "pre-laid-out" by step 1 and every read hits written data);
 *   4. caches dropped, the same with random writes (overwrites: no block allocation measured).
 *
 * A failing step ends this setup (with what it measured so far kept); the other setups still run.
 * A setup that cannot run here (io_uring without kernel or build support) comes back unavailable.
 * On a rootless route's volume fio runs as the volume's user; everything else is the same.
 */
import path from 'node:path';
import { progress } from './log.js';
import { runFio, type FioResult } from './fio.js';
import { describeFailure, Interrupted, runAs, StepError } from './proc.js';
import { bringUp, medianMs, Unavailable, type SetupContext, type SetupName } from './setups.js';
import type { TransportCheck } from './report.js';
import { dropCaches } from './system.js';

export interface BenchParams {
  quick: boolean;
  volumeBytes: number;
  seqBytes: number;
  randRuntimeS: number;
  /** Mounts per setup; the median is reported. */
  mountReps: number;
  /** Sequential writes (each to a new file) and cold reads per setup; the median is reported. */
  seqReps: number;
  /** The 8-volume phase: volumes, size of each, bytes written then read on each. */
  multiVolumes: number;
  multiVolumeBytes: number;
  multiBytes: number;
  /** create-with-fill vs dd: size (the issue's 512 MiB) and repetitions (median). */
  fillBytes: number;
  fillReps: number;
  ceilingSeconds: number;
}

export interface SetupResult {
  name: SetupName;
  ok: boolean;
  unavailable?: string;
  error?: string;
  createMs?: number;
  mountMs?: number;
  mountSamplesMs?: number[];
  mountLabel?: string;
  transport?: TransportCheck | null;
  peakRssBytes?: number | null;
  seqWrite?: FioResult;
  seqRead?: FioResult;
  randRead?: FioResult;
  randWrite?: FioResult;
  info?: Record<string, unknown>;
  notes: string[];
  durationS?: number;
}

const MiB = 1 << 20;
const mibps = (r: FioResult): string => `${(r.bytesPerS / MiB).toFixed(1)} MiB/s`;

/** The run of median throughput (the lower middle of an even count); runs must not be empty. */
export function medianRun<T extends Pick<FioResult, 'bytesPerS'>>(runs: readonly T[]): T {
  if (runs.length === 0) throw new Error('medianRun: no runs');
  return [...runs].sort((a, b) => a.bytesPerS - b.bytesPerS)[(runs.length - 1) >> 1]!;
}

/**
 * Runs a sequential workload `reps` times and returns the run of median throughput (whole, so its
 * command and latencies stay its own); every sample goes into the notes.
 */
async function medianOf(name: string, what: string, how: string, reps: number, notes: string[], once: () => Promise<FioResult>): Promise<FioResult> {
  const runs: FioResult[] = [];
  for (let i = 1; i <= reps; i++) {
    progress(`${name}: ${what} ${i}/${reps} (${how})`);
    const r = await once();
    progress(`${name}:   ${mibps(r)}`);
    runs.push(r);
  }
  const median = medianRun(runs);
  if (reps > 1) notes.push(`${name}: ${what} samples ${runs.map((r) => (r.bytesPerS / MiB).toFixed(0)).join(' / ')} MiB/s, median ${(median.bytesPerS / MiB).toFixed(0)}`);
  return median;
}

export async function benchSetup(name: SetupName, ctx: SetupContext, p: BenchParams): Promise<SetupResult> {
  const result: SetupResult = { name, ok: false, notes: [] };
  const t0 = Date.now();
  progress(`${name}: setting up`);
  let setup;
  try {
    setup = await bringUp(name, ctx, p.volumeBytes, p.mountReps);
  } catch (e) {
    if (e instanceof Interrupted) throw e;
    if (e instanceof Unavailable) {
      result.unavailable = e.message;
      progress(`${name}: UNAVAILABLE: ${e.message}`);
      return result;
    }
    result.error = `setup failed: ${(e as Error).message}`;
    progress(`${name}: ${result.error}`);
    return result;
  }
  Object.assign(result, {
    createMs: setup.createMs,
    mountSamplesMs: setup.mountSamplesMs,
    mountMs: medianMs(setup.mountSamplesMs),
    mountLabel: setup.mountLabel,
    transport: setup.transport,
    info: setup.info,
  });
  result.notes.push(...setup.notes);
  const tr = setup.transport ? `, transport ${setup.transport.reported ?? '?'} (${setup.transport.status})` : '';
  progress(`${name}: created in ${setup.createMs.toFixed(0)} ms; mounts ${setup.mountSamplesMs.map((m) => m.toFixed(0)).join('/')} ms (${setup.mountLabel})${tr}`);

  const file = path.join(setup.mountpoint, 'fio.dat');
  // A rootless route's mount is its user's: fio runs as them there (cache drops stay root's, as everywhere).
  const asUser = setup.asUser ? { asUser: setup.asUser } : {};
  const rand = (rw: 'randread' | 'randwrite') =>
    runFio({
      name: rw, filename: file, rw, bs: '4k', sizeBytes: p.seqBytes, ioengine: 'libaio', iodepth: 16, direct: true,
      runtimeS: p.randRuntimeS, ...asUser,
    });
  let failure: unknown = null;
  try {
    // Each write goes to a new file, after a sync: no setup inherits the host's writeback of the
    // one before it (single runs on one volume varied 2x on 2026-12-07: bench/RESULTS.md).
    result.seqWrite = await medianOf(name, 'sequential write', `${p.seqBytes / MiB} MiB, bs 1M, new file, end_fsync`, p.seqReps, result.notes, async () => {
      const rm = await runAs(setup.asUser, 'rm', ['-f', file]);
      if (rm.code !== 0) throw new StepError(describeFailure(rm));
      await dropCaches();
      return runFio({ name: 'seqwrite', filename: file, rw: 'write', bs: '1M', sizeBytes: p.seqBytes, ioengine: 'psync', endFsync: true, ...asUser });
    });
    result.seqRead = await medianOf(name, 'sequential read', `${p.seqBytes / MiB} MiB, bs 1M, caches dropped`, p.seqReps, result.notes, async () => {
      await dropCaches();
      return runFio({ name: 'seqread', filename: file, rw: 'read', bs: '1M', sizeBytes: p.seqBytes, ioengine: 'psync', ...asUser });
    });

    await dropCaches();
    progress(`${name}: random read 4 KiB, iodepth 16, O_DIRECT, ${p.randRuntimeS} s`);
    result.randRead = await rand('randread');
    progress(`${name}:   ${result.randRead.iops.toFixed(0)} IOPS${result.randRead.note ? ` (${result.randRead.note})` : ''}`);

    await dropCaches();
    progress(`${name}: random write 4 KiB, iodepth 16, O_DIRECT, ${p.randRuntimeS} s`);
    result.randWrite = await rand('randwrite');
    progress(`${name}:   ${result.randWrite.iops.toFixed(0)} IOPS${result.randWrite.note ? ` (${result.randWrite.note})` : ''}`);
    for (const r of [result.randRead, result.randWrite]) if (r.note) result.notes.push(`${name}: ${r.note}`);

    result.ok = true;
  } catch (e) {
    failure = e;
  } finally {
    // Read just before teardown: VmHWM is the peak over the whole run of this setup.
    result.peakRssBytes = setup.peakRssBytes();
    progress(`${name}: tearing down`);
    try {
      await setup.teardown();
    } catch (e) {
      result.ok = false;
      result.notes.push(`${name}: teardown failed: ${(e as Error).message}`);
      if (failure === null) failure = e;
    }
  }
  result.durationS = (Date.now() - t0) / 1000;
  if (failure instanceof Interrupted) throw failure;
  if (failure !== null) {
    result.error = (failure as Error).message;
    progress(`${name}: FAILED: ${result.error}`);
  }
  return result;
}
