/** Issue 20: how the volume server's container error counters become `vault list`'s line and JSON, and survive the state file. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeIoErrors, ioErrorsOf, NO_IO_ERRORS, parseIoErrors, writeIoErrors } from '../../src/mount/state.js';
import { ioErrorReport } from '../../src/server/io-error-watch.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vault-io-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('container I/O errors in vault list', () => {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5);
  const report = ioErrorReport({
    containerErrors: { eio: 1, enospc: 2, erofs: 0, other: 0 },
    lastContainerError: { op: 'write', errno: 'ENOSPC', offset: 1048576, atMs: at },
  });

  it('the server\'s stats become counts by kind, their sum and the latest with an ISO time', () => {
    expect(report).toEqual({ count: 3, eio: 1, enospc: 2, erofs: 0, other: 0, last: { op: 'write', errno: 'ENOSPC', offset: 1048576, at: '2026-01-02T03:04:05.000Z' } });
    expect(ioErrorReport({ containerErrors: { eio: 0, enospc: 0, erofs: 0, other: 0 } })).toEqual(NO_IO_ERRORS);
  });

  it('the plain list line names the count, errno, what failed, where and when; nothing when none', () => {
    expect(describeIoErrors(report)).toBe('I/O errors: 3 (last: ENOSPC writing the container at offset 1048576, at 2026-01-02T03:04:05.000Z)');
    expect(describeIoErrors({ ...report, last: { op: 'sync', errno: 'EIO', offset: null, at: report.last!.at } })).toBe('I/O errors: 3 (last: EIO syncing the container, at 2026-01-02T03:04:05.000Z)');
    expect(describeIoErrors(NO_IO_ERRORS)).toBe('');
  });

  it('io-errors.json round-trips through the volume directory; a missing or broken one reads as none', () => {
    const fuseDir = path.join(dir, 'v1', 'fuse');
    mkdirSync(fuseDir, { recursive: true });
    expect(ioErrorsOf({ fuseDir })).toEqual(NO_IO_ERRORS);
    writeIoErrors(fuseDir, report);
    expect(ioErrorsOf({ fuseDir })).toEqual(report);
    writeFileSync(path.join(dir, 'v1', 'io-errors.json'), '{"count":');
    expect(ioErrorsOf({ fuseDir })).toEqual(NO_IO_ERRORS);
  });

  it('a FIFO, a symlink or an endless file in its place reads as none, without hanging or following it', () => {
    const fuseDir = path.join(dir, 'v2', 'fuse');
    mkdirSync(fuseDir, { recursive: true });
    const file = path.join(dir, 'v2', 'io-errors.json');
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    expect(ioErrorsOf({ fuseDir })).toEqual(NO_IO_ERRORS);
    rmSync(file);
    writeIoErrors(path.join(dir, 'v1', 'fuse'), report);
    symlinkSync(path.join(dir, 'v1', 'io-errors.json'), file);
    expect(ioErrorsOf({ fuseDir })).toEqual(NO_IO_ERRORS);
    rmSync(file);
    symlinkSync('/dev/zero', file);
    expect(ioErrorsOf({ fuseDir })).toEqual(NO_IO_ERRORS);
  });

  it('a record another user could have written is checked field by field before root prints it', () => {
    const good = JSON.parse(JSON.stringify(report));
    expect(parseIoErrors(good)).toEqual(report);
    const bad = (change: (r: Record<string, any>) => void) => {
      const r = JSON.parse(JSON.stringify(report));
      change(r);
      return parseIoErrors(r);
    };
    expect(bad((r) => (r.last.errno = 'ENOSPC\u001b]0;owned\u0007'))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.last.op = 'write\nroot: all fine'))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.last.at = 'now'))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.last.offset = -1))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.count = '3'))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.eio = 1.5))).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.last = 'x'))).toEqual(NO_IO_ERRORS);
    expect(parseIoErrors(null)).toEqual(NO_IO_ERRORS);
    expect(bad((r) => (r.last = null))).toEqual({ ...report, last: null });
  });
});
