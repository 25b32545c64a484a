/**
 * The safety net under the cleanup stack. Everything a run makes lives below two directories
 * unique to it (the work dir, `<base>/vault-bench-<pid>`, and vault's state dir,
 * `/run/vault-bench/<pid>`), so whatever is left — a loop device attached by a `losetup` that was
 * interrupted before it could report its name, a daemon from a crashed step — can be found from
 * the kernel's own tables and removed. The same sweep clears debris of earlier runs that were
 * killed outright (SIGKILL, power loss of the terminal), before a new run starts.
 */
import { existsSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { sleep, progress } from './log.js';
import { run } from './proc.js';
import { loopDevices, mountsUnder, pidAlive, processesMentioning, under } from './system.js';
import { VaultCli } from './vault.js';

export const RUN_DIR_BASE = '/run/vault-bench';
export const WORK_PREFIX = 'vault-bench-';

export function runDirFor(pid: number): string {
  return path.join(RUN_DIR_BASE, String(pid));
}

/** What of a run is still there: mounts, loop devices, processes. Empty means nothing left behind. */
export function leftovers(workDir: string, runDir: string): string[] {
  const out: string[] = [];
  for (const d of [workDir, runDir]) {
    for (const m of mountsUnder(d)) out.push(`mount ${m.mountpoint} (${m.fstype})`);
    for (const l of loopDevices()) if (under(d, l.backingFile)) out.push(`loop device ${l.device} → ${l.backingFile}`);
    for (const p of processesMentioning(d)) out.push(`process ${p.pid}: ${p.cmdline.slice(0, 120)}`);
  }
  return [...new Set(out)];
}

/** Removes whatever of a run is left, then its directories. Returns what it had to do. */
export async function sweep(workDir: string, runDir: string, cliPath: string): Promise<string[]> {
  const actions: string[] = [];
  if (existsSync(runDir) && readdirSync(runDir).length > 0) {
    // Each volume of this run's private state dir by name (never --all): only what it mounted.
    const cli = new VaultCli(cliPath, runDir);
    let recs: { container: string; mountpoint: string | null }[] = [];
    try {
      recs = await cli.list();
    } catch {
      recs = [];
    }
    for (const rec of recs) {
      if (!under(workDir, rec.container)) continue;
      const r = await cli.exec(['dismount', rec.mountpoint ?? rec.container, '--force', '--quiet'], { cleanup: true });
      actions.push(`vault dismount ${rec.mountpoint ?? rec.container} --force${r.code === 0 ? '' : ' — FAILED'}`);
    }
  }
  for (const d of [workDir, runDir]) {
    for (const m of mountsUnder(d)) {
      const r = m.fstype.startsWith('fuse')
        ? await run('fusermount', ['-u', '-z', m.mountpoint], { cleanup: true })
        : await run('umount', ['-l', m.mountpoint], { cleanup: true });
      actions.push(`unmounted ${m.mountpoint} (${m.fstype})${r.code === 0 ? '' : ' — FAILED'}`);
    }
  }
  const detachLoops = async (): Promise<void> => {
    for (const l of loopDevices()) {
      if (!under(workDir, l.backingFile) && !under(runDir, l.backingFile)) continue;
      const r = await run('losetup', ['-d', l.device], { cleanup: true });
      actions.push(`detached ${l.device}${r.code === 0 ? '' : ' — FAILED'}`);
    }
  };
  await detachLoops();
  const procs = [...processesMentioning(workDir), ...processesMentioning(runDir)];
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGTERM');
      actions.push(`SIGTERM to ${p.pid} (${p.cmdline.slice(0, 60)})`);
    } catch {
      // gone
    }
  }
  if (procs.length > 0) {
    for (let i = 0; i < 60 && procs.some((p) => pidAlive(p.pid)); i++) await sleep(50);
    for (const p of procs) {
      if (!pidAlive(p.pid)) continue;
      try {
        process.kill(p.pid, 'SIGKILL');
        actions.push(`SIGKILL to ${p.pid}`);
      } catch {
        // gone
      }
    }
    await detachLoops();
  }
  if (mountsUnder(workDir).length === 0 && mountsUnder(runDir).length === 0) {
    rmSync(workDir, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
    try {
      rmdirSync(RUN_DIR_BASE); // only when empty: another run may be using it
    } catch {
      // not empty, or already gone
    }
  } else {
    actions.push(`left ${workDir} in place: something is still mounted below it`);
  }
  return actions;
}

/** Sweeps work dirs of earlier runs whose process is gone. */
export async function sweepStale(base: string, cliPath: string): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  const stale = new Set<number>();
  for (const n of names) {
    const m = new RegExp(`^${WORK_PREFIX}(\\d+)$`).exec(n);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) stale.add(Number(m[1]));
  }
  try {
    for (const n of readdirSync(RUN_DIR_BASE)) if (/^\d+$/.test(n) && Number(n) !== process.pid && !pidAlive(Number(n))) stale.add(Number(n));
  } catch {
    // no run dir base yet
  }
  for (const pid of stale) {
    const actions = await sweep(path.join(base, `${WORK_PREFIX}${pid}`), runDirFor(pid), cliPath);
    progress(`cleared debris of an earlier run (pid ${pid})${actions.length ? `: ${actions.join('; ')}` : ''}`);
  }
}
