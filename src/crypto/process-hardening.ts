/**
 * Process-level protections and the few system calls Node lacks, through the native addon.
 */
import { nativeAddon } from './native.js';

/** No core dumps and no ptrace by non-root (prctl PR_SET_DUMPABLE 0). */
export function hardenProcess(): void {
  nativeAddon().hardenProcess();
}

export function isDumpable(): boolean {
  return nativeAddon().isDumpable();
}

/** flock(2) on a descriptor; returns 0 or an errno (11, EWOULDBLOCK, when held elsewhere). */
export function flockFd(fd: number, exclusive: boolean, nonBlocking: boolean): number {
  return nativeAddon().flock(fd, exclusive, nonBlocking);
}

/** pipe2(O_CLOEXEC) as [read, write]. */
export function makePipe(): [number, number] {
  return nativeAddon().pipe();
}
