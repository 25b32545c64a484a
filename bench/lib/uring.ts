/**
 * FUSE over io_uring needs the fuse module's `enable_uring` parameter set to Y. The benchmark sets
 * it only around the mounts of its io_uring setup and puts the previous value back at once: on
 * success, on failure, on Ctrl-C (cleanup stack), and — should this process die outright — at the
 * start of the next run, from a marker file that records the value to restore and who changed it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CleanupStack } from './cleanup.js';
import { pidAlive } from './system.js';

import { ENABLE_URING as URING_PARAM, setFuseOverIoUring } from '../../src/system/capabilities.js';

export { URING_PARAM };
export const URING_MARKER = '/run/vault-bench/enable_uring.saved';

interface Marker {
  pid: number;
  previous: string;
  at: string;
}

/** 'Y', 'N', or null when this kernel's fuse has no such parameter (no FUSE over io_uring). */
export function readUringParam(): string | null {
  try {
    return readFileSync(URING_PARAM, 'utf8').trim();
  } catch {
    return null;
  }
}

function writeParam(v: string): void {
  setFuseOverIoUring(v === 'Y' || v === '1');
}

/** A marker left by a run that died while the parameter was changed: restore and say so. */
export function restoreStaleUringParam(): string | null {
  if (!existsSync(URING_MARKER)) return null;
  let m: Marker;
  try {
    m = JSON.parse(readFileSync(URING_MARKER, 'utf8')) as Marker;
  } catch {
    rmSync(URING_MARKER, { force: true });
    return `removed an unreadable ${URING_MARKER}`;
  }
  if (m.pid !== process.pid && pidAlive(m.pid)) return null; // another bench run is inside its window
  const now = readUringParam();
  if (now !== null && now !== m.previous) writeParam(m.previous);
  rmSync(URING_MARKER, { force: true });
  return `restored ${URING_PARAM} to ${m.previous} (was ${now}), left changed by bench run ${m.pid} at ${m.at}`;
}

export class UringParam {
  /** Times the parameter was switched, for the report. */
  switches = 0;

  constructor(private readonly cleanup: CleanupStack) {}

  /** Runs `fn` with enable_uring = Y, then restores the previous value whatever happens. */
  async around<T>(fn: () => Promise<T>): Promise<T> {
    const previous = readUringParam();
    if (previous === null || previous === 'Y') return fn();
    mkdirSync(path.dirname(URING_MARKER), { recursive: true, mode: 0o700 });
    const marker: Marker = { pid: process.pid, previous, at: new Date().toISOString() };
    writeFileSync(URING_MARKER, JSON.stringify(marker) + '\n', { mode: 0o600 });
    const restore = this.cleanup.push(`restore ${URING_PARAM}=${previous}`, async () => {
      writeParam(previous);
      rmSync(URING_MARKER, { force: true });
    });
    this.switches++;
    try {
      writeParam('Y');
      return await fn();
    } finally {
      await restore.run();
    }
  }
}
