/**
 * FUSE over io_uring for tests: the kernel's switch (/sys/module/fuse/parameters/enable_uring) is
 * machine-wide, so a test that needs it in one position sets it and puts back what it found, in a
 * finally or afterAll. Only root can write it.
 */
import { fuseOverIoUring, setFuseOverIoUring } from '../../src/system/capabilities.js';

/** Whether this kernel has FUSE over io_uring at all (CONFIG_FUSE_IO_URING). */
export function fuseUringSupported(): boolean {
  return fuseOverIoUring() !== 'absent';
}

/** The switch's position: 'Y' or 'N'. */
export function enableUring(): 'Y' | 'N' {
  return fuseOverIoUring() === 'on' ? 'Y' : 'N';
}

/** Sets the switch; returns what it was, for the caller to restore. */
export function setEnableUring(v: 'Y' | 'N'): 'Y' | 'N' {
  const was = enableUring();
  if (was !== v) setFuseOverIoUring(v === 'Y');
  return was;
}

/** Runs fn with the switch set to v, then puts it back, whatever happens. */
export async function withEnableUring<T>(v: 'Y' | 'N', fn: () => T | Promise<T>): Promise<T> {
  const was = setEnableUring(v);
  try {
    return await fn();
  } finally {
    setEnableUring(was);
  }
}
