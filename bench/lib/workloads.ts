/**
 * One setup, start to finish: bring it up, run the workloads in a fixed order on one file, read
 * the server's peak RSS, tear it down. The order matters and is the same for every setup:
 *
 *   1. sequential write of `seqBytes` to a new file, fsync at the end (fio end_fsync);
 *   2. caches dropped, sequential read of that file;
 *   3. caches dropped, 4 KiB random read, O_DIRECT, iodepth 16, time-based, on that same file
 *      (so it is "pre-laid-out" by step 1 and every read hits written data);
 *   4. the same with random writes (overwrites: no block allocation in the measured path);
 *   5. the metadata workload (metadata.ts);
 *   6. peak RSS (VmHWM) of the user-space server, read just before teardown.
 *
 * A failing step ends this setup (with what it measured so far kept); the other setups still run.
 */
import path from 'node:path';
import { progress } from './log.js';
import { runFio, type FioResult } from './fio.js';
import { metadataWorkload, type MetaResult } from './metadata.js';
import { Interrupted } from './proc.js';
import { bringUp, type SetupContext, type SetupName } from './setups.js';
import { dropCaches } from './system.js';

export interface BenchParams {
  quick: boolean;
  volumeBytes: number;
  seqBytes: number;
  randRuntimeS: number;
  metaFiles: number;
  /** Mounts per container size in the size-independence test. */
  sizeTestReps: number;
}

export interface SetupResult {
  name: SetupName;
  ok: boolean;
  error?: string;
  createMs?: number;
  createLabel?: string;
  mountMs?: number;
  mountLabel?: string;
  mountEndToEndMs?: number;
  peakRssBytes?: number | null;
  peakRssLabel?: string;
  seqWrite?: FioResult;
  seqRead?: FioResult;
  randRead?: FioResult;
  randWrite?: FioResult;
  metadata?: MetaResult;
  info?: Record<string, unknown>;
  notes: string[];
  durationS?: number;
}

const MiB = 1 << 20;
const mibps = (r: FioResult): string => `${(r.bytesPerS / MiB).toFixed(1)} MiB/s`;

export async function benchSetup(name: SetupName, ctx: SetupContext, p: BenchParams): Promise<SetupResult> {
  const result: SetupResult = { name, ok: false, notes: [] };
  const t0 = Date.now();
  progress(`${name}: setting up`);
  let setup;
  try {
    setup = await bringUp(name, ctx);
  } catch (e) {
    if (e instanceof Interrupted) throw e;
    result.error = `setup failed: ${(e as Error).message}`;
    progress(`${name}: ${result.error}`);
    return result;
  }
  Object.assign(result, {
    createMs: setup.createMs,
    createLabel: setup.createLabel,
    mountMs: setup.mountMs,
    mountLabel: setup.mountLabel,
    peakRssLabel: setup.peakRssLabel,
    info: setup.info,
  });
  if (setup.mountEndToEndMs !== undefined) result.mountEndToEndMs = setup.mountEndToEndMs;
  result.notes.push(...setup.notes);
  progress(`${name}: created in ${setup.createMs.toFixed(0)} ms, mounted in ${setup.mountMs.toFixed(0)} ms (${setup.mountLabel})`);

  const file = path.join(setup.mountpoint, 'fio.dat');
  const rand = (rw: 'randread' | 'randwrite') =>
    runFio({
      name: rw, filename: file, rw, bs: '4k', sizeBytes: p.seqBytes, ioengine: 'libaio', iodepth: 16, direct: true,
      runtimeS: p.randRuntimeS,
    });
  let failure: unknown = null;
  try {
    progress(`${name}: sequential write ${p.seqBytes / MiB} MiB (bs 1M, end_fsync)`);
    result.seqWrite = await runFio({
      name: 'seqwrite', filename: file, rw: 'write', bs: '1M', sizeBytes: p.seqBytes, ioengine: 'psync', endFsync: true,
    });
    progress(`${name}:   ${mibps(result.seqWrite)}`);

    await dropCaches();
    progress(`${name}: sequential read ${p.seqBytes / MiB} MiB (bs 1M, caches dropped)`);
    result.seqRead = await runFio({ name: 'seqread', filename: file, rw: 'read', bs: '1M', sizeBytes: p.seqBytes, ioengine: 'psync' });
    progress(`${name}:   ${mibps(result.seqRead)}`);

    await dropCaches();
    progress(`${name}: random read 4 KiB, iodepth 16, O_DIRECT, ${p.randRuntimeS} s`);
    result.randRead = await rand('randread');
    progress(`${name}:   ${result.randRead.iops.toFixed(0)} IOPS${result.randRead.note ? ` (${result.randRead.note})` : ''}`);

    await dropCaches();
    progress(`${name}: random write 4 KiB, iodepth 16, O_DIRECT, ${p.randRuntimeS} s`);
    result.randWrite = await rand('randwrite');
    progress(`${name}:   ${result.randWrite.iops.toFixed(0)} IOPS${result.randWrite.note ? ` (${result.randWrite.note})` : ''}`);
    for (const r of [result.randRead, result.randWrite]) if (r.note) result.notes.push(`${name}: ${r.note}`);

    await dropCaches();
    progress(`${name}: metadata: create, stat, delete ${p.metaFiles} files of 4 KiB`);
    result.metadata = await metadataWorkload(path.join(setup.mountpoint, 'meta'), p.metaFiles, {
      syncfs: () => setup.syncfs(),
      dropCaches,
    });
    const m = result.metadata;
    progress(
      `${name}:   create ${m.create.filesPerS.toFixed(0)}/s, stat ${m.stat.filesPerS.toFixed(0)}/s, delete ${m.delete.filesPerS.toFixed(0)}/s`,
    );
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
