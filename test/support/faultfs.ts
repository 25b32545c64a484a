/**
 * faultfs (test/support/faultfs/faultfs.c) for tests: compiled with cc into a temp dir, mounted as
 * a passthrough of one backing directory, and told through its control file which container
 * reads/writes fail (EIO, ENOSPC, EROFS) or are delayed. Needs libfuse3-dev and pkg-config
 * (scripts/setup-system.sh --test).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'faultfs/faultfs.c');

/** Compiles faultfs into `dir`; returns the binary's path. Throws with the compiler's words. */
export function buildFaultfs(dir: string): string {
  const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' });
  if (flags.status !== 0) throw new Error(`pkg-config fuse3 failed (run scripts/setup-system.sh --test for libfuse3-dev): ${flags.stderr}`);
  const bin = path.join(dir, 'faultfs');
  const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', bin, SOURCE, ...flags.stdout.trim().split(/\s+/)], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc faultfs.c failed: ${cc.stderr}`);
  return bin;
}

export interface Faultfs {
  /** Replaces the rules, e.g. 'write 0 max EIO', 'rw 0 max delay 200', 'rw 4096 max short' or 'punch 0 max EOPNOTSUPP'
   *  (faultfs.c says what each does); '' turns faults off. */
  set(rules: string): void;
  /** Operations failed (or cut short) and delayed so far. */
  counts(): { faults: number; delays: number };
  /** Unmounts and waits for the process to exit. */
  stop(): Promise<void>;
}

function mounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mnt && l.includes(' - fuse.faultfs '));
}

/** Mounts `backing` at `mnt` through faultfs (allow_other: the volume server is another process). */
export async function mountFaultfs(bin: string, backing: string, mnt: string): Promise<Faultfs> {
  const child: ChildProcess = spawn(bin, [backing, mnt, '-f', '-o', 'allow_other,default_permissions,fsname=faultfs,subtype=faultfs'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  for (let i = 0; !mounted(mnt); i++) {
    if (i === 100 || child.exitCode !== null) throw new Error(`faultfs did not mount ${mnt}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ctl = path.join(mnt, '.faultfs');
  return {
    set: (rules) => writeFileSync(ctl, rules === '' ? 'off\n' : `${rules}\n`),
    counts: () => {
      const m = /faults (\d+) delays (\d+)/.exec(readFileSync(ctl, 'utf8'));
      return { faults: Number(m?.[1]), delays: Number(m?.[2]) };
    },
    stop: async () => {
      spawnSync('umount', [mnt]);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
