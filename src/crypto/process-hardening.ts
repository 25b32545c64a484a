/**
 * Process-level protections and the few system calls Node lacks, through the native addon.
 */
import { nativeAddon } from './native.js';

/**
 * No core dumps and no ptrace by non-root (prctl PR_SET_DUMPABLE 0), and no inspector.
 *
 * Node starts its inspector (a debugger on 127.0.0.1:9229 with full access to the process) when it
 * receives SIGUSR1, which any process of the same user may send, so a non-dumpable process would
 * still be open to that user's other programs. A SIGUSR1 listener of our own replaces Node's, and
 * the signal is then ignored (test/e2e/leaks.test.ts sends it to the CLI and to a server).
 */
export function hardenProcess(): void {
  nativeAddon().hardenProcess();
  if (process.listenerCount('SIGUSR1') === 0) process.on('SIGUSR1', () => undefined);
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
