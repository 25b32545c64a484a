/**
 * Issue 14's create target: `vault create --fs none` of 512 MiB with the full random fill (no
 * --quick; no server, no mount) against plain sequential write, `dd if=/dev/zero bs=1M count=512
 * conv=fsync`, both to a new file in the same directory of the underlying filesystem, caches
 * dropped before each, wall-clock time of the whole command. MB/s = 10^6 bytes per second, as dd
 * prints it.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { median, progress } from './log.js';
import { runOk } from './proc.js';
import { dropCaches } from './system.js';
import type { VaultCli } from './vault.js';

export interface FillResult {
  bytes: number;
  ddSamplesMs: number[];
  vaultSamplesMs: number[];
  ddMBps: number;
  vaultMBps: number;
  ddCommand: string;
  vaultCommand: string;
}

const MiB = 1 << 20;

export async function createFill(vault: VaultCli, workDir: string, bytes: number, reps: number): Promise<FillResult> {
  const dir = path.join(workDir, 'fill');
  mkdirSync(dir, { recursive: true });
  const ddFile = path.join(dir, 'plain.dd');
  const container = path.join(dir, 'filled.vol');
  const ddArgs = ['if=/dev/zero', `of=${ddFile}`, 'bs=1M', `count=${bytes / MiB}`, 'conv=fsync', 'status=none'];
  const ddSamplesMs: number[] = [];
  const vaultSamplesMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    // Alternating, so a change in the machine's load touches both alike.
    rmSync(ddFile, { force: true });
    await dropCaches();
    ddSamplesMs.push((await runOk('dd', ddArgs, { timeoutMs: 30 * 60_000 })).ms);
    rmSync(ddFile, { force: true });
    rmSync(container, { force: true });
    await dropCaches();
    vaultSamplesMs.push(await vault.createFilled(container, bytes));
    rmSync(container, { force: true });
    progress(`create fill ${bytes / MiB} MiB: dd ${ddSamplesMs.at(-1)!.toFixed(0)} ms, vault create --fs none ${vaultSamplesMs.at(-1)!.toFixed(0)} ms`);
  }
  const mbps = (ms: number): number => bytes / 1e6 / (ms / 1000);
  return {
    bytes,
    ddSamplesMs,
    vaultSamplesMs,
    ddMBps: mbps(median(ddSamplesMs)),
    vaultMBps: mbps(median(vaultSamplesMs)),
    ddCommand: ['dd', ...ddArgs].join(' '),
    vaultCommand: `vault create ${container} --size ${bytes / MiB}M --fs none --password-stdin --kdf-memory 8 --kdf-iterations 1 --kdf-parallelism 1`,
  };
}
