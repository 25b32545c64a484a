/**
 * Issue 20, I/O faults under the container: vault stays correct when the disk under the container
 * misbehaves. Real parts only: a tiny tmpfs (ENOSPC under a sparse --quick container), a small
 * loop-mounted ext4 that goes read-only under the mounted volume, and faultfs
 * (test/support/faultfs), a FUSE passthrough that fails or delays the container's reads and writes.
 * In each case: the error reaches the writer on the vault block device (ENOSPC for a full host, EIO
 * otherwise), no sector outside the failed request changes (container ciphertext and volume
 * plaintext compared), what was written and synced before reads back intact, `vault dismount`
 * works, and `vault list` / `list --json` and the dismount say what happened. The cases are split
 * between the two transports, each faulting on the raw device and under ext4: EIO on the device,
 * ENOSPC under ext4 and the slow disk on FUSE over io_uring (where the kernel has it); ENOSPC on the
 * device, the host going read-only and EIO under ext4 on classic /dev/fuse. The transports share the
 * container I/O path (native/fuse_io.c); they differ in how the error reaches the kernel.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_KDF, TRANSPORTS, e2eSuite, ok, removeDir, tempDir, useTransport, vault, type Transport } from './harness.js';
import { buildFaultfs, mountFaultfs } from '../support/faultfs.js';
import { expectValid } from '../support/schemas.js';
import type { ListedVolume } from '../../src/cli/list-json.js';

const suite = e2eSuite('io-faults');
const PW = 'pw\n';
const KiB = 1024;
const MiB = 1 << 20;

let bin = '';
let binDir = '';
beforeAll(() => {
  if (!suite.run) return;
  binDir = tempDir('faultfs-bin'); // not suite.dir: forEachTransport replaces that
  bin = buildFaultfs(binDir);
});
afterAll(() => {
  if (binDir) removeDir(binDir);
});

function sh(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A --quick container without filesystem; its data area's offset and size. */
function create(file: string, size: string): { dataOffset: number; dataSize: number } {
  ok(vault(['create', file, '--size', size, '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], PW), 'create');
  return JSON.parse(ok(vault(['info', file, '--json'])).stdout) as { dataOffset: number; dataSize: number };
}

/**
 * A --quick container without filesystem, made in a new directory `<name>` and served through
 * faultfs at `<name>-ffs`: the faultfs, the container's path through it and underneath it
 * (`stored`), and its data area.
 */
async function onFaultfs(name: string, size: string) {
  const backing = path.join(suite.dir, name);
  const mnt = path.join(suite.dir, `${name}-ffs`);
  mkdirSync(backing);
  mkdirSync(mnt);
  const stored = path.join(backing, 'c.vol');
  const area = create(stored, size);
  const ffs = await mountFaultfs(bin, backing, mnt);
  return { ffs, stored, container: path.join(mnt, 'c.vol'), ...area };
}

/** Mounts without filesystem; the decrypted block device. */
function mountRaw(file: string): string {
  return ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], PW), 'mount').stdout.trim();
}

/** dd of `len` bytes of `src` (from srcOff) onto the device at `off`, O_DIRECT and fsync'ed. */
function writeAt(dev: string, src: string, srcOff: number, off: number, len: number) {
  return sh('dd', [`if=${src}`, `of=${dev}`, 'bs=64K', `skip=${srcOff}`, `seek=${off}`, `count=${len}`, 'iflag=skip_bytes,count_bytes', 'oflag=direct,seek_bytes', 'conv=fsync,notrunc', 'status=none']);
}

/** `len` bytes of the device at `off`, read O_DIRECT (no page cache between us and the server). */
function readAt(dev: string, off: number, len: number): { status: number; data: Buffer; stderr: string } {
  const r = spawnSync('dd', [`if=${dev}`, 'bs=64K', `skip=${off}`, `count=${len}`, 'iflag=direct,skip_bytes,count_bytes', 'status=none'], { maxBuffer: 256 * MiB });
  return { status: r.status ?? -1, data: r.stdout, stderr: r.stderr.toString() };
}

function listed(container: string): ListedVolume {
  const all = expectValid('list', ok(vault(['list', '--json'])).stdout) as ListedVolume[];
  const v = all.find((x) => x.container === container);
  if (!v) throw new Error(`${container} is not in vault list --json`);
  return v;
}

/** The volume's ioErrors once its server has reported at least `n` (it looks every 200 ms). */
async function ioErrorsAtLeast(container: string, n: number): Promise<ListedVolume['ioErrors']> {
  for (let i = 0; ; i++) {
    const e = listed(container).ioErrors;
    if (e.count >= n || i === 25) return e;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Dismounts, timed; it must succeed and leave nothing (afterEach checks the leftovers). What it said on stdout. */
function dismount(dev: string): { ms: number; said: string } {
  const t0 = Date.now();
  const r = ok(vault(['dismount', dev]), 'dismount');
  return { ms: Date.now() - t0, said: r.stdout };
}

/** Whether a and b are equal outside [from, to). */
function sameOutside(a: Buffer, b: Buffer, from: number, to: number): boolean {
  return a.length === b.length && a.subarray(0, from).equals(b.subarray(0, from)) && a.subarray(to).equals(b.subarray(to));
}

/** The io_uring half of the cases (classic where the kernel has no FUSE over io_uring). */
const URING_CASE: Transport = TRANSPORTS[TRANSPORTS.length - 1]!;

describe.runIf(suite.run)('I/O faults under the container', () => {
  describe(`${URING_CASE} transport`, () => {
    beforeAll(() => {
      if (suite.run) useTransport(URING_CASE);
    });
    afterAll(() => {
      if (suite.run) useTransport('classic'); // puts enable_uring back
    });

    it('EIO on writes and reads of the container (faultfs): the writer and reader get EIO, nothing else changes, list counts them', async () => {
      const { ffs, stored, container, dataOffset, dataSize } = await onFaultfs('eio', '8M');
      const pattern = path.join(suite.dir, 'pattern');
      writeFileSync(pattern, randomBytes(dataSize));
      const fresh = path.join(suite.dir, 'fresh');
      writeFileSync(fresh, randomBytes(256 * KiB));
      try {
        const dev = mountRaw(container);
        expect(writeAt(dev, pattern, 0, 0, dataSize).status, 'the whole volume written and synced before any fault').toBe(0);
        const before = readFileSync(stored);

        // A 256 KiB write whose middle 64 KiB fails on the host.
        const w = 2 * MiB;
        ffs.set(`write ${dataOffset + w + 64 * KiB} ${dataOffset + w + 128 * KiB} EIO`);
        const bad = writeAt(dev, fresh, 0, w, 256 * KiB);
        expect(bad.status).not.toBe(0);
        expect(bad.stderr).toMatch(/Input\/output error/);

        // A read whose middle 4 KiB fails on the host.
        const r = 5 * MiB;
        ffs.set(`read ${dataOffset + r + 32 * KiB} ${dataOffset + r + 36 * KiB} EIO`);
        const unread = readAt(dev, r, 64 * KiB);
        expect(unread.status).not.toBe(0);
        expect(unread.stderr).toMatch(/Input\/output error/);
        const injected = ffs.counts().faults;
        ffs.set('');

        // The container outside the failed write is byte for byte what it was.
        const after = readFileSync(stored);
        expect(sameOutside(before, after, dataOffset + w, dataOffset + w + 256 * KiB), 'ciphertext outside the failed write changed').toBe(true);
        // The plaintext: all as written before, and each sector of the failed write old or new, never garbage.
        const volume = readAt(dev, 0, dataSize);
        expect(volume.status, volume.stderr).toBe(0);
        const old = readFileSync(pattern);
        const neu = readFileSync(fresh);
        expect(sameOutside(volume.data, old, w, w + 256 * KiB), 'plaintext outside the failed write changed').toBe(true);
        let newSectors = 0;
        for (let s = 0; s < 256 * KiB; s += 4 * KiB) {
          const got = volume.data.subarray(w + s, w + s + 4 * KiB);
          const isNew = got.equals(neu.subarray(s, s + 4 * KiB));
          expect(isNew || got.equals(old.subarray(w + s, w + s + 4 * KiB)), `sector at ${w + s} is neither the old nor the new data`).toBe(true);
          if (isNew) newSectors++;
        }
        // With the fault gone, the same write succeeds and reads back.
        expect(writeAt(dev, fresh, 0, w, 256 * KiB).status).toBe(0);
        expect(readAt(dev, w, 256 * KiB).data.equals(neu)).toBe(true);

        const e = await ioErrorsAtLeast(container, 2);
        expect(e.eio).toBeGreaterThanOrEqual(2);
        expect(e.count).toBe(e.eio);
        expect(e.last).toMatchObject({ op: 'read', errno: 'EIO' });
        expect(e.last!.offset).toBeGreaterThanOrEqual(dataOffset + r);
        expect(e.last!.offset).toBeLessThanOrEqual(dataOffset + r + 32 * KiB);
        expect(ok(vault(['list'])).stdout).toContain(`I/O errors: ${e.count} (last: EIO reading the container at offset ${e.last!.offset}, at ${e.last!.at})`);
        const { ms, said } = dismount(dev);
        expect(said, 'the dismount tells it once more, since the record goes with the mount').toMatch(new RegExp(`I/O errors: \\d+ \\(last: EIO .*\\) while mounted: the disk under the container failed or was full`));
        console.log(`[io-faults] EIO (${URING_CASE}): host faults injected ${injected}, server counted ${e.count} (eio ${e.eio}), ${newSectors}/64 sectors of the failed write already new, dismount ${ms} ms`);
      } finally {
        await ffs.stop();
      }
    }, 90_000);

    it('ENOSPC under the mounted filesystem (ext4 in a sparse container on a full tmpfs): fsync says so, a synced file survives, e2fsck is clean', async () => {
      const tiny = path.join(suite.dir, 'tiny-fs');
      const mp = path.join(suite.dir, 'mp');
      mkdirSync(tiny);
      mkdirSync(mp);
      expect(sh('mount', ['-t', 'tmpfs', '-o', 'size=12M,mode=0700', 'tmpfs', tiny]).status).toBe(0);
      try {
        const file = path.join(tiny, 'c.vol');
        ok(vault(['create', file, '--size', '64M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], PW), 'create');
        ok(vault(['mount', file, mp, '--password-stdin'], PW), 'mount');
        const keep = randomBytes(2 * MiB);
        const kept = path.join(mp, 'before');
        const k = openSync(kept, 'w');
        writeSync(k, keep);
        fsyncSync(k);
        closeSync(k);

        // 32 MiB into a filesystem with room for it, on a host with 12 MiB: the page cache takes
        // it all; writeback fails on the host, and fsync tells the writer.
        const fd = openSync(path.join(mp, 'big'), 'w');
        let err: NodeJS.ErrnoException | null = null;
        try {
          const chunk = randomBytes(MiB);
          for (let i = 0; i < 32; i++) writeSync(fd, chunk);
          fsyncSync(fd);
        } catch (e) {
          err = e as NodeJS.ErrnoException;
        } finally {
          closeSync(fd);
        }
        expect(err?.code).toMatch(/^(ENOSPC|EIO)$/);
        const e = await ioErrorsAtLeast(file, 1);
        expect(e.enospc).toBeGreaterThanOrEqual(1);
        expect(e.count).toBe(e.enospc);
        const { ms, said } = dismount(mp);
        expect(said).toMatch(/I\/O errors: \d+ \(last: ENOSPC .* while mounted/);

        // The user frees space on the host: the volume mounts, the file synced before is intact,
        // and the filesystem checks clean.
        expect(sh('mount', ['-o', 'remount,size=96M', tiny]).status).toBe(0);
        ok(vault(['mount', file, mp, '--password-stdin'], PW), 'mount again');
        expect(readFileSync(kept).equals(keep), 'the file synced before the host filled up').toBe(true);
        dismount(mp);
        const dev = mountRaw(file);
        const fsck = sh('e2fsck', ['-fn', dev]);
        dismount(dev);
        expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
        console.log(`[io-faults] ENOSPC under ext4: the writer's ${err?.syscall ?? '?'} said ${err?.code}; the server counted ${e.enospc} ENOSPC; dismount ${ms} ms; e2fsck clean after freeing space`);
      } finally {
        sh('umount', [tiny]);
      }
    }, 90_000);

    it('a slow disk (every container I/O 200 ms late) and short host reads/writes: correct data, no error, dismount in bounded time', async () => {
      const { ffs, container, dataOffset } = await onFaultfs('slow', '16M');
      const pattern = path.join(suite.dir, 'pattern');
      writeFileSync(pattern, randomBytes(1 * MiB));
      try {
        const dev = mountRaw(container);
        ffs.set('rw 0 max delay 200');
        const t0 = Date.now();
        const w = writeAt(dev, pattern, 0, 3 * MiB, 256 * KiB);
        const writeMs = Date.now() - t0;
        expect(w.status, w.stderr).toBe(0);
        const t1 = Date.now();
        const r = readAt(dev, 3 * MiB, 256 * KiB);
        const readMs = Date.now() - t1;
        expect(r.status, r.stderr).toBe(0);
        expect(r.data.equals(readFileSync(pattern).subarray(0, 256 * KiB))).toBe(true);
        const delays = ffs.counts().delays;
        expect(delays).toBeGreaterThan(0);

        // Short reads and writes (the host does part of each request): the server goes on from
        // where the host stopped, so nothing fails and everything lands.
        const cut = 2 * MiB + 100 * KiB;
        ffs.set(`rw ${dataOffset + cut} max short`);
        expect(writeAt(dev, pattern, 0, 2 * MiB, 1 * MiB).status).toBe(0);
        const shortRead = readAt(dev, 2 * MiB, 1 * MiB);
        const shorts = ffs.counts().faults;
        ffs.set('');
        expect(shorts).toBeGreaterThanOrEqual(2);
        expect(shortRead.data.equals(readFileSync(pattern))).toBe(true);
        expect(readAt(dev, 2 * MiB, 1 * MiB).data.equals(readFileSync(pattern))).toBe(true);
        expect(listed(container).ioErrors.count).toBe(0);
        const { ms, said } = dismount(dev);
        expect(ms).toBeLessThan(10_000);
        expect(said).not.toMatch(/I\/O errors/);
        console.log(`[io-faults] slow disk: 256 KiB written in ${writeMs} ms, read in ${readMs} ms, ${delays} host I/Os delayed; ${shorts} host I/Os cut short, no error; dismount ${ms} ms`);
      } finally {
        await ffs.stop();
      }
    }, 90_000);
  });

  describe('classic transport', () => {
    beforeAll(() => {
      if (suite.run) useTransport('classic');
    });

    it('ENOSPC part-way through a write to a sparse container on a full tmpfs: ENOSPC reaches the writer; synced data intact; retry after freeing space', async () => {
      const tiny = path.join(suite.dir, 'tiny');
      mkdirSync(tiny);
      expect(sh('mount', ['-t', 'tmpfs', '-o', 'size=8M,mode=0700', 'tmpfs', tiny]).status).toBe(0);
      try {
        const file = path.join(tiny, 'c.vol');
        const { dataOffset } = create(file, '32M');
        const pattern = path.join(suite.dir, 'pattern');
        writeFileSync(pattern, randomBytes(18 * MiB));
        const dev = mountRaw(file);
        expect(writeAt(dev, pattern, 0, 0, 2 * MiB).status, 'synced before the host filled up').toBe(0);
        const before = readFileSync(file);

        const from = 4 * MiB;
        const full = writeAt(dev, pattern, 2 * MiB, from, 16 * MiB);
        expect(full.status).not.toBe(0);
        expect(full.stderr).toMatch(/No space left on device/);
        const after = readFileSync(file);
        expect(sameOutside(before, after, dataOffset + from, dataOffset + from + 16 * MiB), 'ciphertext outside the failed write changed').toBe(true);
        expect(readAt(dev, 0, 2 * MiB).data.equals(readFileSync(pattern).subarray(0, 2 * MiB)), 'data synced before the fault').toBe(true);

        const e = await ioErrorsAtLeast(file, 1);
        expect(e.enospc).toBeGreaterThanOrEqual(1);
        expect(e.last).toMatchObject({ op: 'write', errno: 'ENOSPC' });
        expect(e.last!.offset).toBeGreaterThanOrEqual(dataOffset + from);
        expect(ok(vault(['list'])).stdout).toMatch(/I\/O errors: \d+ \(last: ENOSPC writing the container at offset \d+/);

        // The user frees space on the host: the same write now goes through, without a remount.
        expect(sh('mount', ['-o', 'remount,size=64M', tiny]).status).toBe(0);
        expect(writeAt(dev, pattern, 2 * MiB, from, 16 * MiB).status).toBe(0);
        expect(readAt(dev, from, 16 * MiB).data.equals(readFileSync(pattern).subarray(2 * MiB, 18 * MiB))).toBe(true);
        const { ms, said } = dismount(dev);
        expect(said).toMatch(/I\/O errors: \d+ \(last: ENOSPC writing the container .* while mounted/);
        console.log(`[io-faults] ENOSPC: the 16 MiB write failed at container offset ${e.last!.offset} (${e.enospc} ENOSPC counted), dismount ${ms} ms`);
      } finally {
        sh('umount', [tiny]);
      }
    }, 90_000);

    it('--allow-discards on a host filesystem that cannot punch holes (faultfs: EOPNOTSUPP): a discard still reads back as zeros, stored as encrypted zeros, no I/O error', async () => {
      const { ffs, stored, container, dataOffset, dataSize } = await onFaultfs('nopunch', '8M');
      const pattern = path.join(suite.dir, 'pattern');
      writeFileSync(pattern, randomBytes(dataSize));
      try {
        ffs.set('punch 0 max EOPNOTSUPP');
        const dev = ok(vault(['mount', container, '--no-filesystem', '--allow-discards', '--password-stdin'], PW), 'mount').stdout.trim();
        expect(writeAt(dev, pattern, 0, 0, dataSize).status).toBe(0);
        const before = readFileSync(stored);
        const from = MiB - 4 * KiB;
        const to = 2 * MiB + 4 * KiB;
        const d = sh('blkdiscard', ['-o', String(from), '-l', String(to - from), dev]);
        expect(d.status, d.stderr).toBe(0);
        const refused = ffs.counts().faults;
        expect(refused, 'the server tried to punch, and the host refused').toBeGreaterThanOrEqual(1);
        const volume = readAt(dev, 0, dataSize);
        expect(volume.status, volume.stderr).toBe(0);
        expect(volume.data.subarray(from, to).equals(Buffer.alloc(to - from)), 'the discarded range reads as zeros').toBe(true);
        expect(sameOutside(volume.data, readFileSync(pattern), from, to), 'plaintext outside the discard changed').toBe(true);
        const after = readFileSync(stored);
        expect(sameOutside(before, after, dataOffset + from, dataOffset + to), 'ciphertext outside the discard changed').toBe(true);
        const discarded = after.subarray(dataOffset + from, dataOffset + to);
        for (let s = 0; s < discarded.length; s += 4 * KiB)
          expect(discarded.subarray(s, s + 4 * KiB).equals(Buffer.alloc(4 * KiB)), `stored sector at data offset ${from + s} is zero bytes: a hole where the host cannot make one`).toBe(false);
        expect(listed(container).ioErrors.count, 'a refused punch is not an I/O error').toBe(0);
        dismount(dev);
        console.log(`[io-faults] no hole punching on the host: ${refused} punches refused, ${to - from} discarded bytes stored as encrypted zeros`);
      } finally {
        await ffs.stop();
      }
    }, 90_000);

    it('the host filesystem goes read-only under the mounted volume: writes get EIO, reads go on, list says EROFS, dismount works', async () => {
      const img = path.join(suite.dir, 'host.img');
      const host = path.join(suite.dir, 'host');
      mkdirSync(host);
      expect(sh('truncate', ['-s', '48M', img]).status).toBe(0);
      expect(sh('mkfs.ext4', ['-q', img]).status).toBe(0);
      expect(sh('mount', ['-o', 'loop,errors=remount-ro', img, host]).status).toBe(0);
      try {
        const file = path.join(host, 'c.vol');
        create(file, '16M');
        const pattern = path.join(suite.dir, 'pattern');
        writeFileSync(pattern, randomBytes(4 * MiB));
        const dev = mountRaw(file);
        expect(writeAt(dev, pattern, 0, 0, 4 * MiB).status).toBe(0);
        const before = readFileSync(file);

        // `mount -o remount,ro` is refused while the server has the container open for writing;
        // ext4 then turns itself read-only the way it does on a disk error (errors=remount-ro).
        const remount = sh('mount', ['-o', 'remount,ro', host]);
        if (remount.status !== 0) {
          expect(remount.stderr).toMatch(/busy/);
          const loop = path.basename(sh('findmnt', ['-no', 'SOURCE', host]).stdout.trim());
          writeFileSync(`/sys/fs/ext4/${loop}/trigger_fs_error`, 'vault io-faults test: host goes read-only');
        }
        const refused = writeAt(dev, pattern, 0, 1 * MiB, 64 * KiB);
        expect(refused.status).not.toBe(0);
        expect(refused.stderr).toMatch(/Input\/output error/);
        const back = readAt(dev, 0, 4 * MiB);
        expect(back.status, back.stderr).toBe(0);
        expect(back.data.equals(readFileSync(pattern)), 'data synced before the host went read-only').toBe(true);
        expect(readFileSync(file).equals(before), 'the container changed').toBe(true);

        const e = await ioErrorsAtLeast(file, 1);
        expect(e.erofs).toBeGreaterThanOrEqual(1);
        expect(e.last).toMatchObject({ errno: 'EROFS' });
        expect(ok(vault(['list'])).stdout).toMatch(/I\/O errors: \d+ \(last: EROFS (writing|syncing) the container/);
        const { ms, said } = dismount(dev);
        expect(said).toMatch(/I\/O errors: \d+ \(last: EROFS .* while mounted/);
        console.log(`[io-faults] read-only host (${remount.status === 0 ? 'remount,ro' : 'ext4 errors=remount-ro'}): ${e.erofs} EROFS counted, dismount ${ms} ms`);
      } finally {
        sh('umount', [host]);
      }
    }, 90_000);

    it('EIO under the mounted filesystem (ext4; the host fails every write of the data area): fsync says EIO, a file synced before reads back, list and dismount say so', async () => {
      const backing = path.join(suite.dir, 'eio-fs-backing');
      const mnt = path.join(suite.dir, 'eio-fs');
      const mp = path.join(suite.dir, 'eio-fs-mp');
      for (const d of [backing, mnt, mp]) mkdirSync(d);
      ok(vault(['create', path.join(backing, 'c.vol'), '--size', '64M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], PW), 'create');
      const { dataOffset } = JSON.parse(ok(vault(['info', path.join(backing, 'c.vol'), '--json'])).stdout) as { dataOffset: number };
      const ffs = await mountFaultfs(bin, backing, mnt);
      const container = path.join(mnt, 'c.vol');
      try {
        ok(vault(['mount', container, mp, '--password-stdin'], PW), 'mount');
        const keep = randomBytes(MiB);
        const kept = path.join(mp, 'before');
        const k = openSync(kept, 'w');
        writeSync(k, keep);
        fsyncSync(k);
        closeSync(k);

        ffs.set(`write ${dataOffset} max EIO`);
        const fd = openSync(path.join(mp, 'lost'), 'w');
        let err: NodeJS.ErrnoException | null = null;
        try {
          writeSync(fd, randomBytes(4 * MiB)); // the page cache takes it
          fsyncSync(fd); // writeback fails on the host
        } catch (e) {
          err = e as NodeJS.ErrnoException;
        } finally {
          closeSync(fd);
        }
        expect(err?.code, 'fsync tells the writer').toBe('EIO');
        ffs.set('');
        // The file synced before, read from the container again (not from the page cache).
        writeFileSync('/proc/sys/vm/drop_caches', '3');
        expect(readFileSync(kept).equals(keep), 'the file synced before the fault').toBe(true);
        const e = await ioErrorsAtLeast(container, 1);
        expect(e.eio).toBeGreaterThanOrEqual(1);
        expect(e.last).toMatchObject({ op: 'write', errno: 'EIO' });
        expect(ok(vault(['list'])).stdout).toMatch(/I\/O errors: \d+ \(last: EIO writing the container/);
        const { ms, said } = dismount(mp);
        expect(said).toMatch(/I\/O errors: \d+ \(last: EIO writing the container .* while mounted/);
        console.log(`[io-faults] EIO under ext4 (classic): fsync said ${err?.code}; the server counted ${e.eio} EIO; dismount ${ms} ms`);
      } finally {
        await ffs.stop();
      }
    }, 90_000);
  });
});

describe.runIf(suite.run)('a filled create on a host without room', () => {
  const filled = (file: string) => vault(['create', file, '--size', '32M', '--fs', 'none', '--password-stdin', ...FAST_KDF], PW);

  it('is refused before anything is written where the filesystem is too small, and said as such where the host fills up during the fill (faultfs ENOSPC); exit 7, nothing left behind', async () => {
    const tiny = path.join(suite.dir, 'fill-tiny');
    mkdirSync(tiny);
    expect(sh('mount', ['-t', 'tmpfs', '-o', 'size=16M,mode=0700', 'tmpfs', tiny]).status).toBe(0);
    try {
      const r = filled(path.join(tiny, 'a.vol'));
      expect(r.status, r.stderr).toBe(7);
      expect(r.stderr).toMatch(/no space left for the container in .*fill-tiny: it takes 32 MiB and the filesystem has 1[56] MiB free; nothing was created/);
      expect(r.stderr).toMatch(/hint: .*--quick/);
      // A VeraCrypt volume the same way (its own create, the same check).
      const vc = vault(['create', '--type', 'veracrypt', path.join(tiny, 'v.hc'), '--size', '32M', '--fs', 'none', '--pim', '1', '--password-stdin'], PW);
      expect(vc.status, vc.stderr).toBe(7);
      expect(vc.stderr).toMatch(/no space left for the container in .*fill-tiny: it takes 32 MiB and the filesystem has 1[56] MiB free; nothing was created/);
      expect(readdirSync(tiny)).toEqual([]);
    } finally {
      sh('umount', [tiny]);
    }

    const backing = path.join(suite.dir, 'fill-backing');
    const mnt = path.join(suite.dir, 'fill-ffs');
    mkdirSync(backing);
    mkdirSync(mnt);
    const ffs = await mountFaultfs(bin, backing, mnt);
    try {
      ffs.set(`write ${8 * MiB} max ENOSPC`);
      const r = filled(path.join(mnt, 'b.vol'));
      expect(r.status, r.stderr).toBe(7);
      expect(r.stderr).toMatch(/no space left for the container in .*fill-ffs: the filesystem filled up while vault wrote the 32 MiB container; nothing was created/);
      expect(ffs.counts().faults, 'the host refused a write of the fill').toBeGreaterThan(0);
      expect(readdirSync(backing), 'the partial file is removed').toEqual([]);
    } finally {
      await ffs.stop();
    }
  }, 60_000);
});
