/**
 * Issue 20: the own exercisers check what they claim to, on a plain file and directory (no vault):
 * fsx is deterministic per seed, and a byte changed behind its back is reported with its offset;
 * fsstress's workers run every operation and report their counts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildOwnTools } from '../torture/tools.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'vault-torture-unit-'));
const tools = buildOwnTools(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fsx = (...args: string[]) => spawnSync(tools.fsx, args, { encoding: 'utf8' });

describe('own fsx', () => {
  it('the same seed gives the same file; a byte changed behind its back is found, with its offset', () => {
    const [a, b] = ['a', 'b'].map((n) => path.join(dir, n));
    for (const f of [a!, b!]) {
      const r = fsx('-q', '-N', '1500', '-S', '42', '-x', 'r', '-W', `${f}.model`, f);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^fsx: PASSED seed 42 ops 1500/m);
    }
    expect(readFileSync(a!).equals(readFileSync(b!))).toBe(true);
    expect(fsx('-c', `${a}.model`, a!).status).toBe(0);

    const size = readFileSync(a!).length;
    expect(size).toBeGreaterThan(100);
    const at = Math.floor(size / 2);
    const fd = openSync(a!, 'r+');
    writeSync(fd, Buffer.from([readFileSync(a!)[at]! ^ 0xff]), 0, 1, at);
    closeSync(fd);
    const bad = fsx('-c', `${a}.model`, a!);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`mismatch at file offset 0x${at.toString(16)} (${at})`);
  });

  it('a file cut short is a size mismatch', () => {
    const f = path.join(dir, 'c');
    expect(fsx('-q', '-N', '500', '-S', '7', '-W', `${f}.model`, f).status).toBe(0);
    spawnSync('truncate', ['-s', '-1', f]);
    const bad = fsx('-c', `${f}.model`, f);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/file size is 0x[0-9a-f]+, expected/);
  });
});

describe('own fsstress', () => {
  it('runs every operation in 2 workers and reports the counts', () => {
    const r = spawnSync(tools.fsstress, ['-d', path.join(dir, 'stress'), '-p', '2', '-n', '3000', '-s', '3', '-m', '65536'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^fsstress: PASSED: 6000 ops/m);
    const counts = [...r.stdout.matchAll(/^fsstress-count (\S+) (\d+) ok/gm)];
    expect(counts.length).toBe(22);
    for (const [, op, n] of counts) expect(Number(n), op).toBeGreaterThan(0);
  });
});
