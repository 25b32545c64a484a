/**
 * native/secure_mem.c, probed from a small C program (test/support/secure-mem-probe.c, built here
 * with cc against the system's libcrypto): memory is locked as it is first written
 * (MLOCK_ONFAULT), so an allocation faults nothing in, and freeing wipes exactly the pages that
 * were written, leaving no byte of them behind and faulting no untouched page in.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../support/secure-mem-probe.c');

interface Facts {
  residentAtAlloc: number;
  written: number;
  lockedKb: number;
  lockFlags: boolean;
  residentAfterWipe: number;
  nonZero: number;
}

function probe(): Facts {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-secure-mem-'));
  try {
    const bin = path.join(dir, 'probe');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-D_GNU_SOURCE', '-o', bin, PROBE, '-lcrypto'], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`cc secure-mem-probe.c failed (needs gcc and libssl-dev: scripts/setup-system.sh): ${cc.stderr}`);
    const run = spawnSync(bin, { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`the probe failed: ${run.stdout}${run.stderr}`);
    return JSON.parse(run.stdout) as Facts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('secure memory (native/secure_mem.c)', () => {
  it('locks pages as they are written, and the wipe covers exactly those pages', () => {
    const f = probe();
    // 512 pages, every third written (171), and a write across pages 100-102 adds 101 and 102.
    expect(f.written).toBe(173);
    expect(f.residentAtAlloc).toBe(0); // nothing faulted in by the allocation
    expect(f.lockFlags).toBe(true); // the mapping is locked (VmFlags "lo")...
    expect(f.lockedKb).toBe(f.written * 4); // ...and every written page is locked in RAM
    expect(f.residentAfterWipe).toBe(f.written); // the wipe faulted no untouched page in
    expect(f.nonZero).toBe(0); // and left no written byte behind
  });
});
