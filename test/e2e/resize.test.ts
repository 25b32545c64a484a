/**
 * Issue 17, `vault resize`: offline grow (filled and --quick) and shrink of an ext4 container,
 * online grow through the root route, and the bad inputs of the Checks, each with its exit
 * code and the container unchanged (sha256 before and after).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TRANSPORTS, e2eSuite, ok, useTransport, vault } from './harness.js';
import { cryptsetup, cryptsetupAccepts, FAST_PBKDF2, mutateJson } from '../support/luks.js';
import { PW, contents, copyOf, expectHealthy, fileSize, makeTemplate, mib, sha256Of } from './resize-support.js';

const suite = e2eSuite('resize');
let template = '';
let dataSha = '';

/** Runs `vault resize` and expects `status`; returns its stderr. */
function resize(args: string[], status: number, input = PW): string {
  const r = vault(['resize', ...args, '--password-stdin'], input);
  expect(r.status, `vault resize ${args.join(' ')}: ${r.stderr}`).toBe(status);
  return r.stderr;
}

/** Runs `vault resize` expecting failure `status` and checks that the container did not change. */
function refused(file: string, args: string[], status: number, input = PW): string {
  const before = sha256Of(file);
  const err = resize([file, ...args], status, input);
  expect(sha256Of(file)).toBe(before);
  return err;
}

describe.runIf(suite.run)('vault resize', () => {
  beforeAll(() => {
    ({ file: template, sha: dataSha } = makeTemplate(suite.dir, 8));
  });

  it('grows offline, filling the new space with ciphertext: data intact, e2fsck clean, new size visible', () => {
    const file = copyOf(template, suite.dir, 'grow.vol');
    resize([file, '--size', '256M'], 0);
    expect(fileSize(file)).toBe(mib(256));
    // Filled: the new part is allocated (a --quick file stays mostly sparse).
    const used = Number(spawnSync('du', ['-B1', file], { encoding: 'utf8' }).stdout.split('\t')[0]);
    expect(used).toBeGreaterThan(mib(190));
    expect(expectHealthy(file, suite.dir, dataSha)).toBeGreaterThan(mib(200));
  });

  it('grows with --quick by a delta, leaving the new space sparse', () => {
    const file = copyOf(template, suite.dir, 'quick.vol');
    resize([file, '--size', '+192M', '--quick'], 0);
    expect(fileSize(file)).toBe(mib(256));
    const used = Number(spawnSync('du', ['-B1', file], { encoding: 'utf8' }).stdout.split('\t')[0]);
    expect(used).toBeLessThan(mib(100));
    expect(expectHealthy(file, suite.dir, dataSha)).toBeGreaterThan(mib(200));
  });

  it('shrinks offline to a size the filesystem fits in', () => {
    const file = copyOf(template, suite.dir, 'shrink.vol');
    const before = contents(file, suite.dir).fsBytes;
    resize([file, '--size', '40M'], 0);
    expect(fileSize(file)).toBe(mib(40));
    expect(expectHealthy(file, suite.dir, dataSha)).toBeLessThan(before);
  });

  it('refuses: below the minimum (8), +0 (2; more in test/unit/resize.test.ts), a wrong passphrase (3); the container unchanged', () => {
    const file = copyOf(template, suite.dir, 'bad.vol');
    expect(refused(file, ['--size', '10M'], 8)).toMatch(/needs at least/);
    expect(refused(file, ['--size', '+0'], 2)).toMatch(/does not change the size/);
    expect(refused(file, ['--size', '128M'], 3, 'wrong\n')).toMatch(/wrong passphrase/);
  });

  it('refuses a read-only container (mode 0444, or on a read-only mount) with exit 6', () => {
    const file = copyOf(template, suite.dir, 'ro.vol');
    chmodSync(file, 0o444);
    expect(refused(file, ['--size', '128M'], 6)).toMatch(/read-only.*chmod u\+w/s);
    chmodSync(file, 0o600);
    const ro = path.join(suite.dir, 'ro-mount');
    mkdirSync(ro);
    spawnSync('mount', ['--bind', suite.dir, ro]);
    spawnSync('mount', ['-o', 'remount,bind,ro', ro]);
    try {
      expect(refused(path.join(ro, 'ro.vol'), ['--size', '128M'], 6)).toMatch(/read-only filesystem/);
    } finally {
      spawnSync('umount', [ro]);
    }
  });

  it('runs out of space part-way (tmpfs): exit 7, the container byte-identical', () => {
    const small = path.join(suite.dir, 'small');
    mkdirSync(small);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', small]).status).toBe(0);
    try {
      const file = copyOf(template, small, 'full.vol');
      expect(refused(file, ['--size', '256M'], 7)).toMatch(/no space left/);
      expect(fileSize(file)).toBe(mib(64));
    } finally {
      spawnSync('umount', [small]);
    }
  });

  it('grows a mounted volume online; the filesystem grows online or is finished offline; a mounted shrink is refused (4)', () => {
    const file = copyOf(template, suite.dir, 'online.vol');
    const mnt = path.join(suite.dir, 'online-mnt');
    mkdirSync(mnt);
    ok(vault(['mount', file, mnt, '--password-stdin'], PW));
    let fsGrewOnline: boolean;
    try {
      expect(resize([mnt, '--size', '32M'], 4)).toMatch(/shrinking works offline only/);
      expect(resize([mnt], 4)).toMatch(/works offline only/);
      const r = vault(['resize', mnt, '--size', '128M', '--password-stdin'], PW);
      // Root without CAP_SYS_RESOURCE: the device grows, resize2fs gets EPERM, exit 6 says what is left.
      fsGrewOnline = r.status === 0;
      if (!fsGrewOnline) {
        expect(r.status, r.stderr).toBe(6);
        expect(r.stderr).toMatch(/vault resize .*online\.vol \(without --size\)/);
      }
      expect(fileSize(file)).toBe(mib(128));
      const loop = spawnSync('findmnt', ['-no', 'SOURCE', mnt], { encoding: 'utf8' }).stdout.trim();
      expect(Number(spawnSync('blockdev', ['--getsize64', loop], { encoding: 'utf8' }).stdout)).toBe(mib(128) - mib(1) - 4096);
    } finally {
      ok(vault(['dismount', mnt]));
    }
    if (!fsGrewOnline) resize([file], 0);
    expect(expectHealthy(file, suite.dir, dataSha)).toBeGreaterThan(mib(100));
    // Already done: nothing to do, still exit 0.
    expect(ok(vault(['resize', file, '--password-stdin'], PW)).stdout).toMatch(/already fills/);
  });

  // The online grow's notice to the kernel (FUSE_NOTIFY_INVAL_INODE) is written on /dev/fuse,
  // whichever transport serves the requests: check that the io_uring one sees the new size too.
  it.runIf(TRANSPORTS.includes('io_uring'))('grows a volume served over FUSE io_uring online: the loop device takes the new size', () => {
    const file = copyOf(template, suite.dir, 'online-uring.vol');
    const mnt = path.join(suite.dir, 'online-uring-mnt');
    mkdirSync(mnt);
    useTransport('io_uring');
    try {
      ok(vault(['mount', file, mnt, '--password-stdin'], PW));
      try {
        const listed = JSON.parse(ok(vault(['list', '--json'])).stdout) as { mountpoint: string; transport: string }[];
        expect(listed.find((v) => v.mountpoint === mnt)?.transport).toBe('io_uring');
        const r = vault(['resize', mnt, '--size', '96M', '--password-stdin'], PW);
        expect([0, 6], r.stderr).toContain(r.status);
        const loop = spawnSync('findmnt', ['-no', 'SOURCE', mnt], { encoding: 'utf8' }).stdout.trim();
        expect(Number(spawnSync('blockdev', ['--getsize64', loop], { encoding: 'utf8' }).stdout)).toBe(mib(96) - mib(1) - 4096);
      } finally {
        ok(vault(['dismount', mnt]));
      }
    } finally {
      useTransport('classic');
    }
  });

  it('resizes a LUKS2 container by its length (dynamic segment) and by its header (fixed segment), grow and shrink; refuses two segments, aes-xts-plain past 2 TiB and VeraCrypt (5)', () => {
    const file = path.join(suite.dir, 'luks.vol');
    writeFileSync(file, '');
    truncateSync(file, mib(64));
    writeFileSync(`${file}.pw`, 'pw');
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', `${file}.pw`, file]);
    const dev = ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], PW)).stdout.trim();
    const mnt = path.join(suite.dir, 'luks-mnt');
    mkdirSync(mnt);
    expect(spawnSync('mkfs.ext4', ['-q', dev]).status).toBe(0);
    expect(spawnSync('mount', ['-t', 'ext4', dev, mnt]).status).toBe(0);
    spawnSync('dd', ['if=/dev/urandom', `of=${mnt}/data.bin`, 'bs=1M', 'count=2', 'status=none']);
    const sha = sha256Of(`${mnt}/data.bin`);
    expect(spawnSync('umount', [mnt]).status).toBe(0);
    ok(vault(['dismount', file]));
    resize([file, '--size', '128M'], 0);
    expect(fileSize(file)).toBe(mib(128));
    expect(expectHealthy(file, suite.dir, sha)).toBeGreaterThan(mib(100)); // was 48 MiB of data
    resize([file, '--size', '48M'], 0);
    expect(fileSize(file)).toBe(mib(48));
    expect(cryptsetupAccepts(file)).toBe(true); // its filesystem and data: checked after the next resize

    // A segment of fixed size (32 MiB, to the end of the file): its size is rewritten in both
    // header copies, which cryptsetup then reads without a repair, one seqid (epoch) further.
    mutateJson(file, (j) => (j.segments['0'].size = String(mib(32))));
    let epoch = Number(/Epoch:\s+(\d+)/.exec(cryptsetup(['luksDump', file]))![1]);
    const fixedSize = (size: number) => {
      const dump = cryptsetup(['luksDump', '--debug', file]);
      expect(dump).toContain(`length: ${size} [bytes]`);
      expect(dump).toMatch(new RegExp(`Epoch:\\s+${++epoch}\\n`));
      expect(dump).not.toMatch(/requires recovery|checksum error/);
      cryptsetup(['open', '--test-passphrase', '--key-file', `${file}.pw`, file]);
      return expectHealthy(file, suite.dir, sha);
    };
    resize([file, '--size', '64M', '--quick'], 0);
    expect(fileSize(file)).toBe(mib(64));
    expect(fixedSize(mib(48))).toBeGreaterThan(mib(40));
    resize([file, '--size', '40M'], 0);
    expect(fileSize(file)).toBe(mib(40));
    expect(fixedSize(mib(24))).toBeLessThan(mib(25));
    // Two data segments (a reencryption's layout): refused before any passphrase, nothing written.
    mutateJson(file, (j) => {
      j.segments['0'].size = String(mib(8));
      j.segments['1'] = { ...j.segments['0'], offset: String(mib(24)), size: 'dynamic' };
      j.digests['0'].segments.push('1');
    });
    expect(refused(file, ['--size', '64M'], 5, '')).toMatch(/2 segments; vault resizes a container with one data segment only/);

    // aes-xts-plain: a grow past its 32-bit IV's 2 TiB is refused after the unlock, before any change.
    const plainIv = path.join(suite.dir, 'plain-iv.luks');
    writeFileSync(plainIv, '');
    truncateSync(plainIv, mib(20));
    cryptsetup(['luksFormat', '--type', 'luks2', '--cipher', 'aes-xts-plain', '--key-size', '512', ...FAST_PBKDF2, '--key-file', `${file}.pw`, plainIv]);
    expect(refused(plainIv, ['--size', '3T'], 5)).toMatch(/aes-xts-plain, whose 32-bit IV gives distinct IVs to at most/);

    const vc = path.join(suite.dir, 'random.vc');
    writeFileSync(vc, randomBytes(mib(2)));
    expect(refused(vc, ['--size', '8M'], 5)).toMatch(/VeraCrypt.*hidden volume/);
  });
});
