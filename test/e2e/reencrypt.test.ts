/**
 * Issue 17, re-encryption: `vault reencrypt` under a new master key (and sector size), every keyslot
 * kept, the old master key useless afterwards, resumable after kill -9 at random points, and its bad
 * inputs (wrong passphrase, a mounted container, a read-only file, a full disk) refused with the
 * container unchanged. The plaintext is compared through an independent decryption of the file
 * (test/support/plaintext.ts) and, once, through a real read-only mount of the loop device.
 *
 * VAULT_REENCRYPT_CRASH_ROUNDS sets the kill -9 rounds (default 3; `npm run test:long` runs 60).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, FAST_KDF, ROOT, e2eSuite, ok, sha256File, vault } from './harness.js';
import { plaintextSha256 } from '../support/plaintext.js';
import { expectValid } from '../support/schemas.js';
import { fixturePlaintext } from '../fixtures/make-v1.js';
import { REENCRYPT_FIXTURE } from '../fixtures/make-reencrypt.js';
import { RECORD_OFFSETS } from '../../src/volume/reencrypt/journal.js';

const ROUNDS = Number(process.env.VAULT_REENCRYPT_CRASH_ROUNDS ?? 3);
const suite = e2eSuite('reencrypt');
const PW = 'pw\n';
/** Slot 0: a passphrase; slot 1: a keyfile alone. */
const BOTH = 'pw\n\n';

let base = '';
let keyfile = '';
let mkBefore = '';
let plainBefore = '';
let fullRunMs = 1000;
let writtenBefore = '';
/** The two ranges of the device written with random data, in MiB: [seek, count]. */
const WRITTEN = [[1, 5], [11, 2]] as const;

/** SHA-256 of the written ranges, read through the decrypted device of a real mount. */
function writtenSha(dev: string): string {
  const h = createHash('sha256');
  for (const [skip, count] of WRITTEN) h.update(spawnSync('dd', [`if=${dev}`, 'bs=1M', `skip=${skip}`, `count=${count}`, 'iflag=direct', 'status=none'], { maxBuffer: 64 << 20 }).stdout);
  return h.digest('hex');
}

function dumpKey(file: string, extra: string[] = [], input = PW): string {
  return ok(vault(['info', file, '--dump-master-key', '--password-stdin', ...extra], input), 'dump-master-key').stdout.trim();
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whether the primary header has the REENCRYPT flag (spec §2, `flags` at byte 12). */
function flagged(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 12);
    return (b.readUInt32LE(0) & 1) === 1;
  } finally {
    closeSync(fd);
  }
}
function sectorSizeOf(file: string): number {
  return JSON.parse(ok(vault(['info', file, '--json'])).stdout).sectorSize as number;
}
function copyOfBase(name: string): string {
  const f = path.join(suite.dir, name);
  expect(spawnSync('cp', ['--sparse=always', base, f]).status).toBe(0);
  return f;
}
function reencrypt(file: string, args: string[] = [], input = BOTH) {
  return vault(['reencrypt', file, '--password-stdin', '--slot-keyfile', `1:${keyfile}`, ...args], input);
}
/** After a run: the new key differs, decrypts the same plaintext, and both keyslots give it; the old key decrypts nothing. */
function expectReencrypted(file: string, sectorSize: number, oldKeyToo = false): string {
  const mk = dumpKey(file);
  expect(mk).not.toBe(mkBefore);
  expect(dumpKey(file, ['--keyfile', keyfile], '')).toBe(mk);
  expect(plaintextSha256(file, mk, sectorSize)).toBe(plainBefore);
  if (oldKeyToo) expect(plaintextSha256(file, mkBefore, sectorSize)).not.toBe(plainBefore);
  return mk;
}

describe.runIf(suite.run)('vault reencrypt', () => {
  beforeAll(() => {
    // A quick (sparse) container with a passphrase slot and a keyfile slot, random data in two
    // places and holes elsewhere, written through a real mount of its block device.
    base = path.join(suite.dir, 'base.vol');
    keyfile = path.join(suite.dir, 'key');
    writeFileSync(keyfile, randomBytes(64));
    ok(vault(['create', base, '--size', '16M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], PW));
    ok(vault(['keyslot', 'add', base, '--password-stdin', '--new-keyfile', keyfile, ...FAST_KDF], 'pw\n\n'));
    const dev = ok(vault(['mount', base, '--no-filesystem', '--password-stdin'], PW)).stdout.trim();
    for (const [seek, count] of WRITTEN) expect(spawnSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=1M', `seek=${seek}`, `count=${count}`, 'oflag=direct', 'status=none']).status).toBe(0);
    writtenBefore = writtenSha(dev);
    ok(vault(['dismount', base]));
    mkBefore = dumpKey(base);
    plainBefore = plaintextSha256(base, mkBefore, 4096);
  });

  it('re-encrypts under a new key: the plaintext (and a real read-only mount) is unchanged, both slots open it, the old key decrypts nothing', () => {
    const f = copyOfBase('new-key.vol');
    const t = Date.now();
    ok(reencrypt(f), 'reencrypt');
    fullRunMs = Date.now() - t;
    expectReencrypted(f, 4096, true);
    expect(sectorSizeOf(f)).toBe(4096);
    const dev = ok(vault(['mount', f, '--no-filesystem', '--read-only', '--password-stdin'], PW)).stdout.trim();
    try {
      // The written ranges, then the whole device: its holes read as zeros (spec §8's all-zero rule).
      expect(writtenSha(dev)).toBe(writtenBefore);
      expect(spawnSync('sha256sum', [dev], { encoding: 'utf8' }).stdout.split(' ')[0]).toBe(plainBefore);
    } finally {
      ok(vault(['dismount', f]));
    }
    // Holes stayed holes: only the journal's 1 MiB was allocated.
    expect(statSync(f).blocks * 512).toBeLessThanOrEqual(statSync(base).blocks * 512 + (1 << 20));
  });

  it('changes the sector size (4096 to 512; every direction of the transform is in the unit tests)', () => {
    const f = copyOfBase('sector.vol');
    ok(reencrypt(f, ['--sector-size', '512']));
    expect(sectorSizeOf(f)).toBe(512);
    expectReencrypted(f, 512);
  });

  it(`kill -9 at random points, ${ROUNDS} rounds: resume (or a read-write mount) finishes it and every plaintext byte is intact`, async () => {
    const seed = Number(process.env.VAULT_CRASH_SEED ?? Date.now() % 1_000_000);
    let s = seed || 1;
    const random = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let partWay = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const where = `seed ${seed}, round ${round}`;
      const f = copyOfBase(`crash${round}.vol`);
      const sector = round % 2 === 0 ? [] : ['--sector-size', '512'];
      const child = spawn(process.execPath, [CLI, 'reencrypt', f, '--password-stdin', '--slot-keyfile', `1:${keyfile}`, ...sector], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.stdin.end(BOTH);
      let done = false;
      const exited = new Promise((r) => child.on('close', r)).then(() => (done = true));
      // Two rounds in three aim at the data phase: wait for the flag (§13.1 step 3), then a random
      // moment of the segment writes; the third kills at any moment of the whole run.
      if (round % 3 === 2) await sleep(100 + random() * fullRunMs);
      else {
        while (!done && !flagged(f)) await sleep(1);
        await sleep(random() * 80);
      }
      child.kill('SIGKILL');
      await exited;
      const unfinished = /reencrypt: +unfinished/.test(ok(vault(['info', f]), where).stdout);
      if (unfinished) {
        partWay++;
        if (round % 4 === 3) {
          const dev = ok(vault(['mount', f, '--no-filesystem', '--password-stdin'], PW), `${where}: mount finishes it`).stdout.trim();
          ok(vault(['dismount', f]));
          expect(dev).toMatch(/^\/dev\/loop/);
        } else ok(vault(['reencrypt', f, '--resume', '--password-stdin'], PW), `${where}: resume`);
      }
      expect(plaintextSha256(f, dumpKey(f), sectorSizeOf(f)), where).toBe(plainBefore);
    }
    console.log(`reencrypt crash: seed ${seed}, ${partWay} of ${ROUNDS} rounds killed part-way (the others before the flag or after the end)`);
  });

  it('a wrong passphrase of any slot: exit 3, container unchanged', () => {
    const f = copyOfBase('wrong.vol');
    const before = sha256File(f);
    const r = reencrypt(f, [], 'wrong\n\n');
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/keyslot 0/);
    const r2 = vault(['reencrypt', f, '--password-stdin'], 'pw\nx\n'); // slot 1 without its keyfile
    expect(r2.status, r2.stderr).toBe(3);
    expect(sha256File(f)).toBe(before);
  });

  it('a mounted container: exit 4, unchanged', () => {
    const f = copyOfBase('mounted.vol');
    ok(vault(['mount', f, '--no-filesystem', '--password-stdin'], PW));
    try {
      const before = sha256File(f);
      const r = reencrypt(f);
      expect(r.status, r.stderr).toBe(4);
      expect(sha256File(f)).toBe(before);
    } finally {
      ok(vault(['dismount', f]));
    }
  });

  it('a read-only container file (read-only filesystem): exit 6, unchanged', () => {
    const mnt = path.join(suite.dir, 'ro');
    mkdirSync(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const f = path.join(mnt, 'ro.vol');
      copyFileSync(base, f);
      expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
      const before = sha256File(f);
      const r = reencrypt(f);
      expect(r.status, r.stderr).toBe(6);
      expect(r.stderr).toMatch(/read-only/);
      expect(sha256File(f)).toBe(before);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('a full disk (ENOSPC): exit 7 before anything changes; with space it then succeeds', () => {
    // Holes are never written, so the only space re-encryption needs is its journal (1 MiB, a hole
    // in a --quick container): it is allocated first, before the header is flagged.
    const mnt = path.join(suite.dir, 'full');
    mkdirSync(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt]).status).toBe(0);
    try {
      const f = path.join(mnt, 'full.vol');
      spawnSync('cp', ['--sparse=always', base, f]);
      spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=64k', 'status=none']); // until ENOSPC
      const before = sha256File(f);
      const r = reencrypt(f);
      expect(r.status, r.stderr).toBe(7);
      expect(r.stderr).toMatch(/ENOSPC/);
      expect(sha256File(f)).toBe(before);
      expect(ok(vault(['info', f])).stdout).not.toMatch(/reencrypt/);
      spawnSync('truncate', ['-s', '4m', path.join(mnt, 'filler')]);
      ok(reencrypt(f));
      expectReencrypted(f, 4096);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('the interrupted fixture v1-reencrypt.vol: other commands refuse it (exit 5), info shows it, resume and a read-write mount finish it', () => {
    const fx = REENCRYPT_FIXTURE;
    const pw = `${fx.password}\n`;
    const expected = createHash('sha256');
    for (let i = 0; i < fx.dataSize / fx.sectorSize; i++) expected.update(fixturePlaintext(i, fx.sectorSize));
    const want = expected.digest('hex');
    const copy = (name: string) => {
      const f = path.join(suite.dir, name);
      copyFileSync(path.join(ROOT, 'test/fixtures/v1', fx.file), f);
      return f;
    };
    const f = copy('fixture.vol');
    const before = sha256File(f);
    expect(ok(vault(['info', f])).stdout).toMatch(/reencrypt: +unfinished \(to 512-byte sectors\)/);
    expect((expectValid('info', ok(vault(['info', f, '--json'])).stdout) as { reencrypt: unknown }).reencrypt).toEqual({ newSectorSize: 512 });
    for (const [args, input] of [
      [['passwd', f, '--password-stdin'], `${pw}new passphrase\n`],
      [['keyslot', 'add', f, '--password-stdin'], `${pw}new passphrase\n`],
      [['header', 'backup', f, path.join(suite.dir, 'fixture.hdr')], ''],
      [['info', f, '--dump-master-key', '--password-stdin'], pw],
      [['mount', f, '--read-only', '--no-filesystem', '--password-stdin'], pw],
    ] as const) {
      const r = vault([...args], input);
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(5);
      expect(r.stderr).toMatch(/part-way through a re-encryption[\s\S]*vault reencrypt --resume/);
    }
    expect(sha256File(f)).toBe(before);
    // Both journal records damaged from outside: resume refuses (exit 5) and changes nothing.
    const d = copy('fixture-journal.vol');
    const fd = openSync(d, 'r+');
    for (const at of RECORD_OFFSETS) writeSync(fd, randomBytes(4096), 0, 4096, at);
    closeSync(fd);
    const damagedSha = sha256File(d);
    const r = vault(['reencrypt', d, '--resume', '--password-stdin'], pw);
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/journal records are damaged/);
    expect(sha256File(d)).toBe(damagedSha);
    ok(vault(['reencrypt', f, '--resume', '--password-stdin'], pw));
    expect(plaintextSha256(f, dumpKey(f, [], pw), 512)).toBe(want);

    const g = copy('fixture-mount.vol');
    ok(vault(['mount', g, '--no-filesystem', '--password-stdin'], pw));
    ok(vault(['dismount', g]));
    expect(ok(vault(['info', g])).stdout).not.toMatch(/reencrypt/);
    expect((expectValid('info', ok(vault(['info', g, '--json'])).stdout) as { reencrypt: unknown }).reencrypt).toBeNull();
    expect(plaintextSha256(g, dumpKey(g, [], pw), 512)).toBe(want);
  });
});
