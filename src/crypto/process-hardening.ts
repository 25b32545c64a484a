/**
 * Process-level protections and the few system calls Node lacks, through the native addon, with
 * fallbacks where an honest one exists.
 */
import { spawnSync } from 'node:child_process';
import { nativeAddon } from './native.js';

/** No core dumps and no ptrace by non-root (prctl PR_SET_DUMPABLE 0). Returns false without the addon. */
export function hardenProcess(): boolean {
  const n = nativeAddon();
  if (!n) return false;
  n.hardenProcess();
  return true;
}

export function isDumpable(): boolean | null {
  return nativeAddon()?.isDumpable() ?? null;
}

/**
 * flock(2) on a descriptor; returns 0 or an errno (11, EWOULDBLOCK, when held elsewhere).
 * Without the addon, util-linux's flock(1) takes the lock on the inherited descriptor: a flock
 * belongs to the open file description, which the child shares, so it outlives the child.
 */
export function flockFd(fd: number, exclusive: boolean, nonBlocking: boolean): number {
  const n = nativeAddon();
  if (n) return n.flock(fd, exclusive, nonBlocking);
  const args = [exclusive ? '-x' : '-s', ...(nonBlocking ? ['-n'] : []), '-E', '11', '3'];
  const r = spawnSync('flock', args, { stdio: ['ignore', 'ignore', 'ignore', fd] });
  return r.status ?? 5;
}

/** pipe2(O_CLOEXEC) as [read, write], or null without the addon (callers then use a Node stdio pipe). */
export function makePipe(): [number, number] | null {
  return nativeAddon()?.pipe() ?? null;
}
