/**
 * Hidden-volume protection, seen from the volume server (mount --protect-hidden): the native data
 * path refuses writes into the hidden volume and latches read-only by itself
 * (native/fuse_protect.c); this only tells the rest of vault. Once the latch is set, it leaves a
 * marker in the volume's directory, which `vault list` reads (src/mount/state.ts).
 */
import { markProtectionTripped } from '../mount/state.js';

/** How often the latch is looked at: a stats() call, cheap; `vault list` sees it this soon. */
const EVERY_MS = 200;

export function watchProtection(o: { fuseDir: string; tripped: () => boolean; log: (m: string) => void }): { stop(): void } {
  const timer = setInterval(() => {
    if (!o.tripped()) return;
    clearInterval(timer);
    o.log('a write into the protected hidden volume was refused: the volume is read-only from now on');
    try {
      markProtectionTripped(o.fuseDir);
    } catch (e) {
      o.log(`could not record the refused write for vault list: ${(e as Error).message}`);
    }
  }, EVERY_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
