/**
 * How `npm run xfstests` reads xfstests' `./check` output and splits a group into shards
 * (test/xfstests/check.ts). The sample is check's real output from a run on this project's
 * machine (paths shortened), including a test stopped by the time budget.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCheckOutput, shardOf } from '../xfstests/check.js';
import { compare } from '../xfstests/compare.js';
import { deviceSectorSize } from '../xfstests/devices.js';
import { parseOptions } from '../xfstests/options.js';

const OUT = `FSTYP         -- ext4
MKFS_OPTIONS  -- -F /dev/loop2

ext4/001            32s
ext4/029           [not run] This test requires a valid $SCRATCH_LOGDEV
generic/398        [failed, exit status 1]- output mismatch (see /r/generic/398.out.bad)
    --- tests/generic/398.out
    +++ /r/generic/398.out.bad
generic/564        - output mismatch (see /r/generic/564.out.bad)
    +ulimit: file size: cannot modify limit: Operation not permitted
generic/600         3s ...  4s
generic/601        _check_generic_filesystem: filesystem on /dev/loop2 is inconsistent
(see /r/generic/601.full for details)
generic/634        `;

const TESTS = ['ext4/001', 'ext4/029', 'generic/398', 'generic/564', 'generic/600', 'generic/601', 'generic/634', 'generic/700'];

describe('xfstests check output', () => {
  it('classes each test: pass, not run, failed (mismatch, exit status, fsck), unfinished', () => {
    const { outcomes, failures } = parseCheckOutput(OUT, TESTS);
    expect(outcomes).toEqual({
      'ext4/001': 'pass',
      'ext4/029': 'notrun',
      'generic/398': 'fail',
      'generic/564': 'fail',
      'generic/600': 'pass',
      'generic/601': 'fail',
      'generic/634': 'unfinished',
      'generic/700': 'unfinished',
    });
    expect(failures['generic/564']).toContain('cannot modify limit');
    expect(failures['generic/601']).toContain('is inconsistent');
  });

  it('shards take every N-th test, together exactly the group', () => {
    const all = Array.from({ length: 23 }, (_, i) => `generic/${String(i).padStart(3, '0')}`);
    const shards = [1, 2, 3, 4, 5].map((i) => shardOf(all, i, 5));
    expect(shards[0]!.slice(0, 2)).toEqual(['generic/000', 'generic/005']);
    expect(shards.flat().sort()).toEqual(all);
  });

  it('a failure only on vault is reported as such; unfinished tests are not judged', () => {
    const side = (outcomes: Record<string, 'pass' | 'fail' | 'notrun' | 'unfinished'>) => ({
      side: '', detail: '', tests: Object.keys(outcomes), outcomes, failures: {}, seconds: 0, budgetHit: false, exitCode: 0, log: '',
    });
    const c = compare(side({ a: 'fail', b: 'fail', c: 'pass', d: 'unfinished', e: 'fail' }), side({ a: 'pass', b: 'fail', c: 'fail', d: 'fail', e: 'unfinished' }));
    expect(c.failOnlyVault).toEqual(['a']);
    expect(c.failBoth).toEqual(['b']);
    expect(c.failOnlyPlain).toEqual(['c']);
    expect(c.otherDifferences.map((x) => x.test)).toEqual(['d', 'e']);
  });

  it('the udisks route runs without discards on both sides, and its devices (udisksd\'s loop) have 512-byte sectors', () => {
    const tree = mkdtempSync(path.join(tmpdir(), 'xfstests-tree-'));
    try {
      mkdirSync(path.join(tree, 'ltp'));
      for (const f of ['check', 'ltp/fsx', 'ltp/fsstress']) writeFileSync(path.join(tree, f), '');
      const env = { XFSTESTS_DIR: tree };
      const root = parseOptions(['--sector-size', '4096'], env);
      expect([root.route, root.discards, deviceSectorSize(root)]).toEqual(['root', true, 4096]);
      const udisks = parseOptions(['--route', 'udisks', '--transport', 'io_uring'], env);
      expect([udisks.route, udisks.discards, deviceSectorSize(udisks)]).toEqual(['udisks', false, 512]);
      expect(() => parseOptions(['--route', 'fuse'], env)).toThrow(/--route fuse: use root or udisks/);
      expect(() => parseOptions([], {})).toThrow(/XFSTESTS_DIR is not set/);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
