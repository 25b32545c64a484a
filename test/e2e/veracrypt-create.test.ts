/**
 * Issue 18: `vault create --type veracrypt` through the real CLI, with filesystems inside (made
 * through the mount path), checked by the independent reader (test/support/vc_reader.py) and by
 * the filesystem tools on what it decrypts, then reopened, written and read back by vault; and
 * `mount --protect-hidden` on it: writes to the outer volume pass, the first one into the hidden
 * volume fails and turns the volume read-only, `vault list` says so, the hidden volume is intact.
 * (The option checks that refuse a create before anything is written are in
 * test/unit/veracrypt-create.test.ts, in-process.)
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { e2eSuite, ok, vault } from './harness.js';
import { readVeraCryptMany } from '../support/vc-reader.js';

const suite = e2eSuite('veracrypt-create');
const FAST = ['--pim', '1', '--password-stdin'];
/** The hidden volume's keyfile (written by the first test): its secret is a passphrase and this. */
const hiddenKey = () => path.join(suite.dir, 'hidden.key');

function fsckClean(tool: string, args: string[], image: string): void {
  const r = spawnSync(tool, [...args, image], { encoding: 'utf8' });
  expect(r.status, `${tool}: ${r.stdout}${r.stderr}`).toBe(0);
}

describe.runIf(suite.run)('vault create --type veracrypt', () => {
  it('FAT outer with an ext4 hidden volume: the reader decrypts two clean filesystems; vault mounts the hidden one and its files land there', () => {
    const file = path.join(suite.dir, 'hv.vc');
    writeFileSync(hiddenKey(), randomBytes(100));
    ok(vault(['create', '--type', 'veracrypt', file, '--size', '4M', '--hidden-size', '1M', '--hidden-keyfile', hiddenKey(), ...FAST], 'outer pw\nhidden pw\n'), 'create');
    const exfat = path.join(suite.dir, 'ex.vc'); // and exFAT, with SHA-256, in a volume of its own
    ok(vault(['create', '--type', 'veracrypt', exfat, '--size', '3M', '--fs', 'exfat', '--hash', 'sha256', '--quick', ...FAST], 'exfat pw\n'), 'create exfat');
    const [outer, hidden, ex] = readVeraCryptMany([
      { file, prf: 'sha512', pim: 1, password: 'outer pw', dump: `${file}.outer` },
      { file, prf: 'sha512', pim: 1, password: 'hidden pw', keyfiles: [hiddenKey()], hidden: true, dump: `${file}.hidden` },
      { file: exfat, prf: 'sha256', pim: 1, password: 'exfat pw', dump: `${exfat}.dec` },
    ]);
    expect(outer).toMatchObject({ ok: true, volumeSize: 4 * 1048576 - 262144, encryptedAreaStart: 131072 });
    expect(hidden).toMatchObject({ ok: true, hiddenVolumeSize: 1048576 - 4096, encryptedAreaStart: 4 * 1048576 - 131072 - 1048576 });
    expect(ex).toMatchObject({ ok: true, volumeSize: 3 * 1048576 - 262144 });
    fsckClean('fsck.vfat', ['-n'], `${file}.outer`); // FAT: the outer filesystem when a hidden volume is asked for
    fsckClean('e2fsck', ['-fn'], `${file}.hidden`);
    fsckClean('fsck.exfat', ['-n'], `${exfat}.dec`);

    const mnt = path.join(suite.dir, 'hidden-mnt');
    mkdirSync(mnt);
    ok(vault(['mount', file, mnt, '--hidden', '--keyfile', hiddenKey(), ...FAST], 'hidden pw'), 'mount hidden');
    writeFileSync(path.join(mnt, 'secret.txt'), 'in the hidden volume\n');
    ok(vault(['dismount', mnt]), 'dismount');
    readVeraCryptMany([
      { file, prf: 'sha512', pim: 1, password: 'hidden pw', keyfiles: [hiddenKey()], hidden: true, dump: `${file}.hidden` },
      { file, prf: 'sha512', pim: 1, password: 'outer pw', dump: `${file}.outer2` },
    ]);
    const cat = spawnSync('debugfs', ['-R', 'cat /secret.txt', `${file}.hidden`], { encoding: 'utf8' });
    expect(cat.stdout).toBe('in the hidden volume\n');
    // The outer FAT is untouched by all that.
    expect(readFileSync(`${file}.outer2`).subarray(0, 65536).equals(readFileSync(`${file}.outer`).subarray(0, 65536))).toBe(true);
  });

  it('--protect-hidden: an outer write passes, a write into the hidden volume fails with EIO, the volume turns read-only, list says so, the hidden volume is intact', async () => {
    const file = path.join(suite.dir, 'hv.vc'); // made by the test above
    const hiddenStart = 4 * 1048576 - 131072 - 1048576 - 131072; // in the outer data area
    const hiddenBefore = readVeraCryptMany([{ file, prf: 'sha512', pim: 1, password: 'hidden pw', keyfiles: [hiddenKey()], hidden: true, dump: `${file}.h1` }]);
    expect(hiddenBefore[0]!.ok).toBe(true);
    const wrong = vault(['mount', file, '--no-filesystem', '--protect-hidden', ...FAST], 'outer pw\nhidden pw\n'); // without its keyfile
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toMatch(/hidden volume's password .* opened no hidden volume/);
    const swapped = vault(['mount', file, '--no-filesystem', '--protect-hidden', '--keyfile', hiddenKey(), ...FAST], 'hidden pw\nouter pw\n');
    expect(swapped.status).toBe(2);
    expect(swapped.stderr).toMatch(/the first password opened the hidden volume/);

    const dev = ok(vault(['mount', file, '--no-filesystem', '--protect-hidden', '--protect-hidden-keyfile', hiddenKey(), ...FAST], 'outer pw\nhidden pw\n'), 'mount').stdout.trim();
    const listed = () => (JSON.parse(ok(vault(['list', '--json'])).stdout) as Array<{ container: string; readOnly: boolean; hiddenProtection: string }>).find((v) => v.container === file);
    expect(listed()).toMatchObject({ readOnly: false, hiddenProtection: 'on' });
    const dd = (offset: number, data: Buffer) => {
      writeFileSync(`${file}.blk`, data);
      return spawnSync('dd', [`if=${file}.blk`, `of=${dev}`, `bs=${data.length}`, `seek=${offset}`, 'oflag=direct,seek_bytes', 'conv=notrunc'], { encoding: 'utf8' });
    };
    const outerData = randomBytes(4096);
    expect(dd(hiddenStart - 4096, outerData).status).toBe(0); // the last bytes before the hidden volume
    const refused = dd(hiddenStart, randomBytes(4096));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/Input\/output error/);
    expect(dd(0, randomBytes(512)).status).not.toBe(0); // read-only now, wherever the write goes
    let after = listed();
    for (let i = 0; i < 30 && after?.hiddenProtection !== 'tripped'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = listed();
    }
    expect(after).toMatchObject({ readOnly: true, hiddenProtection: 'tripped' });
    const text = ok(vault(['list']));
    expect(text.stdout + text.stderr).toMatch(/ ro,hidden-protected \(a write into the hidden volume was refused: read-only since\)/);
    ok(vault(['dismount', dev]), 'dismount');

    readVeraCryptMany([
      { file, prf: 'sha512', pim: 1, password: 'hidden pw', keyfiles: [hiddenKey()], hidden: true, dump: `${file}.h2` },
      { file, prf: 'sha512', pim: 1, password: 'outer pw', dump: `${file}.o2` },
    ]);
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(sha(`${file}.h2`)).toBe(sha(`${file}.h1`));
    expect(readFileSync(`${file}.o2`).subarray(hiddenStart - 4096, hiddenStart).equals(outerData)).toBe(true);
  });
});
