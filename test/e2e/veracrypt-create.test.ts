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
import { readFileAt } from '../support/read-at.js';

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

  it('Kuznyechik-Serpent-Camellia around a hidden volume of the same chain: the reader names both, the master keys match info --dump-master-key, its sectors match what mount serves and what was written through vault', () => {
    const file = path.join(suite.dir, 'kuz.vc');
    const opts = ['--cipher', 'kuznyechik-serpent-camellia', '--hash', 'sha256', ...FAST];
    ok(vault(['create', '--type', 'veracrypt', file, '--size', '3M', '--hidden-size', '1M', ...opts], 'kuz outer\nkuz hidden\n'), 'create');
    const common = { file, prf: 'sha256', pim: 1, showKey: true } as const;
    // The Python Kuznyechik decrypts about 1 MiB in 3 s: 64 KiB of each volume is plenty.
    const [outer, hidden] = readVeraCryptMany([
      { ...common, password: 'kuz outer', dump: `${file}.outer`, dumpLength: 65536 },
      { ...common, password: 'kuz hidden', hidden: true, dump: `${file}.hidden`, dumpLength: 65536 },
    ]);
    expect(outer).toMatchObject({ ok: true, cipher: 'Kuznyechik-Serpent-Camellia', unusedKeyAreaZero: true, volumeSize: 3 * 1048576 - 262144, encryptedAreaStart: 131072 });
    expect(hidden).toMatchObject({ ok: true, cipher: 'Kuznyechik-Serpent-Camellia', hiddenVolumeSize: 1048576 - 4096, encryptedAreaStart: 3 * 1048576 - 131072 - 1048576 });
    expect(outer!.masterKey).toHaveLength(2 * 192);
    const dumped = (extra: string[], pw: string) => ok(vault(['info', file, '--dump-master-key', '--pim', '1', ...extra, '--password-stdin'], pw)).stdout.trim();
    expect(dumped([], 'kuz outer')).toBe(outer!.masterKey);
    expect(dumped(['--hidden'], 'kuz hidden')).toBe(hidden!.masterKey);
    expect(hidden!.masterKey).not.toBe(outer!.masterKey);

    // What the reader decrypted is what vault serves: the outer FAT's first 64 KiB.
    const outerDec = readFileSync(`${file}.outer`);
    expect(outerDec.readUInt16LE(510)).toBe(0xaa55); // a boot sector, as mkfs.vfat wrote it through vault
    const dev = ok(vault(['mount', file, '--no-filesystem', '--read-only', '--pim', '1', '--password-stdin'], 'kuz outer'), 'mount outer').stdout.trim();
    try {
      expect(readFileAt(dev, 65536, 0).equals(outerDec)).toBe(true);
    } finally {
      ok(vault(['dismount', dev]), 'dismount outer');
    }
    // And what vault writes into the hidden volume, the reader decrypts: random bytes at 32 KiB.
    expect(readFileSync(`${file}.hidden`).readUInt16LE(1024 + 56)).toBe(0xef53); // the ext4 superblock's magic
    const written = randomBytes(8192);
    const hdev = ok(vault(['mount', file, '--no-filesystem', '--hidden', '--pim', '1', '--password-stdin'], 'kuz hidden'), 'mount hidden').stdout.trim();
    try {
      writeFileSync(`${file}.blk`, written);
      const dd = spawnSync('dd', [`if=${file}.blk`, `of=${hdev}`, 'bs=8192', 'seek=32768', 'oflag=direct,seek_bytes', 'conv=notrunc'], { encoding: 'utf8' });
      expect(dd.status, dd.stderr).toBe(0);
    } finally {
      ok(vault(['dismount', hdev]), 'dismount hidden');
    }
    readVeraCryptMany([{ ...common, password: 'kuz hidden', hidden: true, dump: `${file}.hidden2`, dumpFrom: 32768, dumpLength: 8192 }]);
    expect(readFileSync(`${file}.hidden2`).equals(written)).toBe(true);
  });

  it('serpent-twofish-aes (as the issue spells it) under Streebog with ext4: the reader finds Serpent-Twofish-AES, decrypts a clean filesystem holding the file vault wrote', () => {
    const file = path.join(suite.dir, 'sta.vc');
    ok(vault(['create', '--type', 'veracrypt', file, '--size', '3M', '--cipher', 'serpent-twofish-aes', '--hash', 'streebog', ...FAST], 'sta pw\n'), 'create');
    const mnt = path.join(suite.dir, 'sta-mnt');
    mkdirSync(mnt);
    ok(vault(['mount', file, mnt, '--hash', 'streebog', ...FAST], 'sta pw'), 'mount');
    writeFileSync(path.join(mnt, 'note.txt'), 'through three ciphers\n');
    ok(vault(['dismount', mnt]), 'dismount');
    const [r] = readVeraCryptMany([{ file, prf: 'streebog', pim: 1, password: 'sta pw', dump: `${file}.dec` }]);
    expect(r).toMatchObject({ ok: true, cipher: 'Serpent-Twofish-AES', volumeSize: 3 * 1048576 - 262144, unusedKeyAreaZero: true });
    fsckClean('e2fsck', ['-fn'], `${file}.dec`);
    expect(spawnSync('debugfs', ['-R', 'cat /note.txt', `${file}.dec`], { encoding: 'utf8' }).stdout).toBe('through three ciphers\n');
    const info = JSON.parse(ok(vault(['info', file, '--json', '--hash', 'streebog', ...FAST], 'sta pw')).stdout) as { algorithm: string; kdf: { hash: string } };
    expect(info).toMatchObject({ algorithm: 'Serpent-Twofish-AES', kdf: { hash: 'streebog512' } });
  });
});
