/**
 * Issue 18: `vault create --type veracrypt` through the real CLI, with filesystems inside (made
 * through the mount path), checked by the independent reader (test/support/vc_reader.py) and by
 * the filesystem tools on what it decrypts, then reopened, written and read back by vault.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { e2eSuite, ok, vault } from './harness.js';
import { readVeraCryptMany } from '../support/vc-reader.js';

const suite = e2eSuite('veracrypt-create');
const FAST = ['--pim', '1', '--password-stdin'];

function fsckClean(tool: string, args: string[], image: string): void {
  const r = spawnSync(tool, [...args, image], { encoding: 'utf8' });
  expect(r.status, `${tool}: ${r.stdout}${r.stderr}`).toBe(0);
}

describe.runIf(suite.run)('vault create --type veracrypt', () => {
  it('FAT outer with an ext4 hidden volume: the reader decrypts two clean filesystems; vault mounts the hidden one and its files land there', () => {
    const file = path.join(suite.dir, 'hv.vc');
    ok(vault(['create', '--type', 'veracrypt', file, '--size', '4M', '--hidden-size', '1M', ...FAST], 'outer pw\nhidden pw\n'), 'create');
    const [outer, hidden] = readVeraCryptMany([
      { file, prf: 'sha512', pim: 1, password: 'outer pw', dump: `${file}.outer` },
      { file, prf: 'sha512', pim: 1, password: 'hidden pw', hidden: true, dump: `${file}.hidden` },
    ]);
    expect(outer).toMatchObject({ ok: true, volumeSize: 4 * 1048576 - 262144, encryptedAreaStart: 131072 });
    expect(hidden).toMatchObject({ ok: true, hiddenVolumeSize: 1048576 - 4096, encryptedAreaStart: 4 * 1048576 - 131072 - 1048576 });
    fsckClean('fsck.vfat', ['-n'], `${file}.outer`);
    fsckClean('e2fsck', ['-fn'], `${file}.hidden`);

    const mnt = path.join(suite.dir, 'hidden-mnt');
    mkdirSync(mnt);
    ok(vault(['mount', file, mnt, '--hidden', ...FAST], 'hidden pw'), 'mount hidden');
    writeFileSync(path.join(mnt, 'secret.txt'), 'in the hidden volume\n');
    ok(vault(['dismount', mnt]), 'dismount');
    readVeraCryptMany([{ file, prf: 'sha512', pim: 1, password: 'hidden pw', hidden: true, dump: `${file}.hidden` }]);
    const cat = spawnSync('debugfs', ['-R', 'cat /secret.txt', `${file}.hidden`], { encoding: 'utf8' });
    expect(cat.stdout).toBe('in the hidden volume\n');
    // The outer FAT is untouched by all that.
    readVeraCryptMany([{ file, prf: 'sha512', pim: 1, password: 'outer pw', dump: `${file}.outer2` }]);
    expect(readFileSync(`${file}.outer2`).subarray(0, 65536).equals(readFileSync(`${file}.outer`).subarray(0, 65536))).toBe(true);
  });

  it('refuses ext4 around a hidden volume, and a cipher it cannot make yet, before writing anything', () => {
    const file = path.join(suite.dir, 'refused.vc');
    const ext4 = vault(['create', '--type', 'veracrypt', file, '--size', '4M', '--hidden-size', '1M', '--fs', 'ext4', ...FAST], 'a\nb\n');
    expect(ext4.status).toBe(2);
    expect(ext4.stderr).toMatch(/ext4 spreads its metadata/);
    const serpent = vault(['create', '--type', 'veracrypt', file, '--size', '4M', '--cipher', 'serpent', ...FAST], 'a\n');
    expect(serpent.status).toBe(5);
    expect(serpent.stderr).toMatch(/cipher "serpent" is not supported yet/);
    expect(spawnSync('ls', [file]).status).not.toBe(0);
  });
});
