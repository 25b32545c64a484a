/**
 * `vault resize` size arithmetic (src/cli/resize-size.ts), and its refusals that come before any
 * passphrase, in-process through the commander program on a real container made here: `+0`, the
 * same size and a data area under 1 MiB are usage errors (exit 2) that change no byte.
 */
import { closeSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import { parseSizeRequest, plannedDataSize } from '../../src/cli/resize-size.js';
import { isVaultError } from '../../src/errors.js';
import { finishContainer, openTarget, writeNewContainer } from '../../src/volume/create.js';
import { requireResizable } from '../../src/mount/resize-fs.js';

const MIB = 1024 * 1024;
const G = { dataOffset: MIB, dataSize: 63 * MIB - 4096, sectorSize: 4096 }; // a 64 MiB container

describe('resize size arithmetic', () => {
  it('parses absolute sizes and +deltas, +0 included', () => {
    expect(parseSizeRequest('256M')).toEqual({ kind: 'absolute', bytes: 256 * MIB });
    expect(parseSizeRequest('+1G')).toEqual({ kind: 'delta', bytes: 1024 * MIB });
    expect(parseSizeRequest('+0')).toEqual({ kind: 'delta', bytes: 0 });
    expect(parseSizeRequest('+0M')).toEqual({ kind: 'delta', bytes: 0 });
    expect(() => parseSizeRequest('+')).toThrow(/invalid size/);
  });

  it('an absolute size is the file size, as for create: data = size - 1 MiB - 4 KiB, whole sectors', () => {
    expect(plannedDataSize({ kind: 'absolute', bytes: 256 * MIB }, G)).toBe(255 * MIB - 4096);
    expect(plannedDataSize({ kind: 'absolute', bytes: 256 * MIB + 100 }, G)).toBe(255 * MIB - 4096);
    expect(plannedDataSize({ kind: 'absolute', bytes: 32 * MIB }, G)).toBe(31 * MIB - 4096);
    expect(plannedDataSize({ kind: 'absolute', bytes: 256 * MIB }, { ...G, sectorSize: 512 })).toBe(255 * MIB - 4096);
  });

  it('a delta adds to the data area, rounded down to whole sectors', () => {
    expect(plannedDataSize({ kind: 'delta', bytes: 192 * MIB }, G)).toBe(255 * MIB - 4096);
    expect(plannedDataSize({ kind: 'delta', bytes: 8192 + 100 }, G)).toBe(G.dataSize + 8192);
  });

  it('refuses what changes nothing, a data area under 1 MiB, and more than 2^53 bytes', () => {
    for (const req of [{ kind: 'delta', bytes: 0 }, { kind: 'delta', bytes: 4095 }, { kind: 'absolute', bytes: 64 * MIB + 4000 }] as const)
      expect(() => plannedDataSize(req, G)).toThrow(/does not change the size/);
    expect(() => plannedDataSize({ kind: 'absolute', bytes: 2 * MIB }, G)).toThrow(/smallest is 1 MiB/);
    expect(() => plannedDataSize({ kind: 'delta', bytes: Number.MAX_SAFE_INTEGER }, G)).toThrow(/too large/);
  });
});

describe('which filesystems resize', () => {
  it('ext4 grows and shrinks; no filesystem only grows; FAT, exFAT and others are refused (exit 8)', () => {
    for (const what of ['grow', 'shrink'] as const) expect(() => requireResizable('ext4', what)).not.toThrow();
    expect(() => requireResizable(null, 'grow')).not.toThrow();
    const refusal = (fs: string | null, what: 'grow' | 'shrink') => {
      try {
        requireResizable(fs, what);
      } catch (e) {
        if (isVaultError(e)) return { exit: exitCodeFor(e.code), message: e.message };
      }
      throw new Error('accepted');
    };
    expect(refusal(null, 'shrink')).toMatchObject({ exit: EXIT.refused, message: expect.stringMatching(/cannot tell whether a shrink would cut off data/) });
    expect(refusal('vfat', 'grow')).toMatchObject({ exit: EXIT.refused, message: expect.stringMatching(/no tool can grow a FAT filesystem.*not changed/) });
    expect(refusal('exfat', 'shrink')).toMatchObject({ exit: EXIT.refused, message: expect.stringMatching(/no tool can shrink an exFAT filesystem/) });
    expect(refusal('btrfs', 'grow')).toMatchObject({ exit: EXIT.refused, message: expect.stringMatching(/ext4 filesystems only.*btrfs/) });
  });
});

describe('vault resize refusals before the passphrase, in-process', () => {
  let dir = '';
  let file = '';
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vault-resize-unit-'));
    file = path.join(dir, 'c.vol');
    const t = openTarget(file);
    const made = await writeNewContainer(t, {
      size: 4 * MIB, sectorSize: 4096, kdf: { memoryKiB: 1024, iterations: 1, parallelism: 1 }, kdfInput: Buffer.from('pw'), quick: true,
    });
    made.key.dispose();
    finishContainer(t, made, false);
    closeSync(made.fd);
    closeSync(t.dir.fd);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const sha = () => createHash('sha256').update(readFileSync(file)).digest('hex');

  async function refusal(...args: string[]): Promise<{ message: string; exit: number }> {
    const argv = ['node', 'vault', 'resize', file, ...args];
    try {
      await (await buildProgram(argv)).parseAsync(argv);
    } catch (e) {
      if (isVaultError(e)) return { message: e.message, exit: exitCodeFor(e.code) };
      throw e;
    }
    throw new Error('accepted');
  }

  for (const [size, pattern] of [['+0', /does not change the size/], ['4M', /does not change the size/], ['+0K', /does not change the size/], ['1M', /smallest is 1 MiB/]] as const)
    it(`--size ${size}: exit 2, the container unchanged`, async () => {
      const before = sha();
      const r = await refusal('--size', size);
      expect(r.exit).toBe(EXIT.usage);
      expect(r.message).toMatch(pattern);
      expect(sha()).toBe(before);
    });
});
