/**
 * Where Argon2's memory lives while it runs (native/kdf.c, argon2Async through libargon2): locked
 * (VmLck), on transparent huge pages where the kernel offers them, and all of it gone again once
 * the derivation settles. The blocks are derived from the passphrase: SECURITY.md says they are
 * locked where RLIMIT_MEMLOCK has room, which root (CAP_IPC_LOCK) always has.
 *
 * Needs root; fails instead of skipping on CI.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { argon2id } from '../../src/crypto/kdf.js';
import { requirementsMet } from '../support/requirements.js';

const run = requirementsMet('kdf-memory', process.getuid?.() === 0 ? [] : ['root']);

/** kB figures of this process: VmLck from /proc/self/status, AnonHugePages from smaps_rollup. */
function memory(): { lockedKiB: number; hugeKiB: number } {
  const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { lockedKiB: kb(readFileSync('/proc/self/status', 'utf8'), 'VmLck'), hugeKiB: kb(readFileSync('/proc/self/smaps_rollup', 'utf8'), 'AnonHugePages') };
}

function thpMode(): string {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'absent';
  } catch {
    return 'absent';
  }
}

describe.runIf(run)("Argon2's memory", () => {
  it('is locked and on huge pages while a derivation runs, and released when it settles', async () => {
    const memoryKiB = 256 * 1024;
    // A first small derivation: whatever the process sets up once (other locked memory of the addon's
    // users) is not counted as Argon2's.
    await argon2id(Buffer.from('warm-up'), Buffer.alloc(16), { memoryKiB: 1024, iterations: 1, parallelism: 1 }, 32);
    const before = memory();
    let peak = { lockedKiB: 0, hugeKiB: 0 };
    let done = false;
    const derivation = argon2id(Buffer.from('a passphrase'), Buffer.alloc(32, 1), { memoryKiB, iterations: 2, parallelism: 1 }, 32).finally(() => (done = true));
    // The derivation runs on the threadpool: this thread samples meanwhile.
    while (!done) {
      const m = memory();
      peak = { lockedKiB: Math.max(peak.lockedKiB, m.lockedKiB - before.lockedKiB), hugeKiB: Math.max(peak.hugeKiB, m.hugeKiB - before.hugeKiB) };
      await new Promise((r) => setTimeout(r, 2));
    }
    expect((await derivation).length).toBe(32);
    const after = memory();
    console.log(`[kdf-memory] 256 MiB Argon2id: peak locked ${peak.lockedKiB} KiB, on huge pages ${peak.hugeKiB} KiB (THP: ${thpMode()})`);
    // Locked as it is written (MLOCK_ONFAULT): by the second pass every block has been.
    expect(peak.lockedKiB).toBeGreaterThanOrEqual(memoryKiB * 0.9);
    // Huge pages are the kernel's to give (a fragmented machine falls back to 4 KiB pages for some):
    // most of it, not all, where THP is on at all.
    if (thpMode() !== 'never' && thpMode() !== 'absent') expect(peak.hugeKiB).toBeGreaterThanOrEqual(memoryKiB / 4);
    expect(after.lockedKiB - before.lockedKiB).toBeLessThan(1024);
    expect(after.hugeKiB - before.hugeKiB).toBeLessThan(4096);
  });
});
