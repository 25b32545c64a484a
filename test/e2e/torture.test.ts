/**
 * Issue 20, in every CI run: the project's own exercisers (test/torture/fsx.c and fsstress.c,
 * compiled here with cc) on a mounted vault container, then `e2fsck -fn` on its plaintext.
 *  - fsx, 20,000 random operations on one file (buffered, mmap and O_DIRECT I/O, truncate,
 *    fallocate, punch hole, zero/collapse/insert range, fsync, reopen), every read checked against
 *    its model; the file checked again after drop_caches and after a remount. Classic transport.
 *  - fsstress, 4 workers for 10 s of racing namespace and data operations. io_uring transport
 *    (classic where the kernel has none).
 * `npm run soak` runs the same for hours' worth of operations on every transport and route.
 * VAULT_TORTURE_SEED reruns a failure with its seed.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VaultCli } from '../../bench/lib/vault.js';
import { fsstressSession, fsxSession } from '../torture/sessions.js';
import { buildOwnTools, type Tools } from '../torture/tools.js';
import { TortureVolume, type Transport } from '../torture/volume.js';
import { CLI, RUN_DIR, TRANSPORTS, e2eSuite, useTransport } from './harness.js';

const suite = e2eSuite('torture');
const SEED = Number(process.env.VAULT_TORTURE_SEED ?? Date.now() % 1_000_000);
const FSX_OPS = 20_000;
const FSX_OPERATIONS = [
  'read', 'write', 'mapread', 'mapwrite', 'truncate', 'falloc_keep', 'falloc_extend', 'punch_hole', 'zero_keep',
  'zero_extend', 'collapse', 'insert', 'fsync', 'fdatasync', 'reopen', 'direct_read', 'direct_write',
];
const FSSTRESS_OPERATIONS = [
  'creat', 'mkdir', 'rmdir', 'unlink', 'rename', 'link', 'symlink', 'readlink', 'write', 'append', 'read', 'truncate',
  'fallocate', 'punch', 'setxattr', 'getxattr', 'chmod', 'fsync', 'fdatasync', 'sync', 'readdir', 'stat',
];

/** The own tools, compiled once for the file. */
let built: Tools | null = null;
function tools(): Tools {
  if (!built) {
    const bin = path.join(suite.dir, 'bin');
    mkdirSync(bin);
    built = buildOwnTools(bin);
  }
  return built;
}

async function volume(name: string, transport: Transport): Promise<TortureVolume> {
  useTransport(transport); // the kernel's enable_uring for io_uring; put back in afterAll
  const dir = path.join(suite.dir, `${name}-volume`);
  return TortureVolume.create({ route: 'root', transport, dir, sizeBytes: 128 << 20, rootCli: new VaultCli(CLI, RUN_DIR) });
}

describe.runIf(suite.run)(`own exercisers on a mounted container (issue 20, seed ${SEED})`, () => {
  afterAll(() => useTransport('classic'));

  it(`fsx: ${FSX_OPS} operations checked against the model, the file again after drop_caches and a remount, e2fsck clean (classic)`, async () => {
    const vol = await volume('fsx', 'classic');
    const r = await fsxSession(vol, tools(), tools().fsx, { ops: FSX_OPS, seed: SEED, direct: true, workDir: suite.dir });
    expect(r.failure, `seed ${SEED}`).toBe('');
    expect(r.passed).toBe(true);
    expect(r.ops).toBe(FSX_OPS);
    // Every kind of operation ran, and ext4 refused none of them (an unsupported one is switched off after one try).
    for (const op of FSX_OPERATIONS) expect(r.counts[op] ?? 0, `fsx operation ${op}`).toBeGreaterThan(10);
  }, 180_000);

  const transport: Transport = TRANSPORTS.includes('io_uring') ? 'io_uring' : 'classic';
  it(`fsstress: 4 workers for 10 s, no unexpected error, e2fsck clean (${transport})`, async () => {
    const vol = await volume('fsstress', transport);
    const r = await fsstressSession(vol, tools(), { procs: 4, seconds: 10, seed: SEED, maxSize: 1 << 20 });
    expect(r.failure, `seed ${SEED}`).toBe('');
    expect(r.passed).toBe(true);
    expect(r.ops).toBeGreaterThan(1000);
    for (const op of FSSTRESS_OPERATIONS) expect(r.counts[op] ?? 0, `fsstress operation ${op} never succeeded`).toBeGreaterThan(0);
  }, 180_000);
});
