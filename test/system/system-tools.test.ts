/**
 * The system-tool wrappers against the real kernel: loop devices, filesystems, mounts and the
 * processes holding them. Small sparse image files in a temp dir, no encryption involved.
 * Needs root and /dev/loop-control; without them the suite is skipped with a loud warning.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync, closeSync, copyFileSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync,
  rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isVaultError, type VaultError } from '../../src/errors.js';
import { attachLoop, detachLoop, listLoops, loopInfo, loopsBackedBy, resetRequestSize, type LoopDevice } from '../../src/mount/loop.js';
import {
  detectFilesystem, findMount, isMountPoint, kernelSupports, makeFilesystem, mountFilesystem, mountsUnder, parseMountInfo,
  readMountInfo, unmountFilesystem, type FsType,
} from '../../src/mount/filesystem.js';
import { describeHolders, endProcesses, findHolders } from '../../src/mount/holders.js';
import { requirementsMet } from '../support/requirements.js';

const TOOLS = ['losetup', 'mount', 'umount', 'blkid', 'wipefs', 'mkfs.ext4', 'mkfs.vfat', 'mkfs.exfat', 'chattr', 'sleep', 'tail'];
const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push('root privileges');
if (!existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
for (const t of TOOLS) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) missing.push(t);
requirementsMet('system-tools', missing);

const MiB = 1 << 20;
const OWNER = { uid: 1234, gid: 2345 };
const STRANGER = { uid: 4321, gid: 4321 };
const FS: FsType[] = ['ext4', 'vfat', 'exfat'];
// Some kernels (e.g. minimal VM kernels) ship without FAT/exFAT drivers: creating those filesystems
// still works (userspace tools), mounting them cannot.
const NO_DRIVER = FS.filter((t) => !kernelSupports(t));
if (missing.length === 0 && NO_DRIVER.length > 0)
  console.log(`[capability] the running kernel has no ${NO_DRIVER.join(', ')} driver: those mount through their FUSE drivers`);

let dir: string;
const children: ChildProcess[] = [];

function image(name: string, bytes = 64 * MiB): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'w');
  ftruncateSync(fd, bytes);
  closeSync(fd);
  return file;
}

function mountDir(name: string): string {
  const p = path.join(dir, name);
  mkdirSync(p, { recursive: true });
  return p;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function sysBlock(device: string, attr: string): string {
  return readFileSync(`/sys/block/${path.basename(device)}/${attr}`, 'utf8').trim();
}

function thrown(fn: () => unknown): VaultError {
  try {
    fn();
  } catch (e) {
    if (isVaultError(e)) return e;
    throw e;
  }
  throw new Error('expected a VaultError');
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
  return undefined;
}

function start(cmd: string, args: string[], cwd: string): ChildProcess {
  const child = spawn(cmd, args, { cwd, stdio: 'ignore' });
  children.push(child);
  return child;
}

/** Waits until `pred` holds (the kernel needs a moment after exec, e.g. for tail to open its file). */
async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Loop devices and mounts that still refer to the temp dir, straight from losetup and the kernel. */
function leftovers(): { loops: string[]; mounts: string[] } {
  const json = JSON.parse(sh('losetup', ['--json', '--list']) || '{"loopdevices":[]}') as { loopdevices: { name: string; 'back-file': string }[] };
  const loops = json.loopdevices.filter((l) => l['back-file'].startsWith(`${dir}/`)).map((l) => `${l.name} ${l['back-file']}`);
  const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((m) => m.mountpoint.startsWith(`${dir}/`))
    .map((m) => m.mountpoint);
  return { loops, mounts };
}

function forceCleanup(): void {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountpoint.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m.mountpoint]);
  for (const l of listLoops()) if (l.backingFile.startsWith(`${dir}/`)) spawnSync('losetup', ['-d', l.device]);
}

describe.skipIf(missing.length > 0)('system tools', () => {
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vault-systools-'));
    // The owner test runs programs as an unprivileged uid, which must be able to reach the mounts.
    chmodSync(dir, 0o755);
  });

  afterEach(async () => {
    // Give exiting children and auto-clearing loop devices a moment before judging.
    for (let i = 0; i < 50 && (leftovers().loops.length > 0 || leftovers().mounts.length > 0); i++)
      await new Promise((r) => setTimeout(r, 20));
    const left = leftovers();
    forceCleanup();
    expect(left, 'the test left loop devices or mounts behind').toEqual({ loops: [], mounts: [] });
  });

  afterAll(() => {
    if (dir === undefined) return;
    forceCleanup();
    if (leftovers().mounts.length === 0) rmSync(dir, { recursive: true, force: true });
  });

  describe('loop devices', () => {
    it('attaches read-write and detaches; loopInfo and loopsBackedBy agree', () => {
      const file = image('rw.img');
      const loop = attachLoop(file, { readOnly: false, directIo: false });
      expect(loop.device).toMatch(/^\/dev\/loop\d+$/);
      expect(loop).toMatchObject({ readOnly: false, directIo: false, sectorSize: 512 });
      expect(loopInfo(loop.device)).toMatchObject({ backingFile: file, backingDeleted: false, readOnly: false, directIo: false });
      expect(loopsBackedBy(file)).toEqual([loop.device]);
      expect(sysBlock(loop.device, 'ro')).toBe('0');
      detachLoop(loop.device);
      expect(loopInfo(loop.device)).toBeNull();
      expect(loopsBackedBy(file)).toEqual([]);
    });

    it('attaches read-only: the kernel refuses writes to the device', () => {
      const file = image('ro.img');
      const loop = attachLoop(file, { readOnly: true, directIo: false });
      try {
        expect(loop.readOnly).toBe(true);
        expect(sysBlock(loop.device, 'ro')).toBe('1');
        expect(loopInfo(loop.device)?.readOnly).toBe(true);
        const fd = openSync(loop.device, 'r+');
        try {
          expect(errnoOf(() => writeSync(fd, Buffer.alloc(512), 0, 512, 0))).toMatch(/^(EROFS|EACCES|EPERM)$/);
        } finally {
          closeSync(fd);
        }
      } finally {
        detachLoop(loop.device);
      }
    });

    it("gives the device the kernel's request size, whatever an earlier user of it left (it survives detach)", () => {
      const file = image('req.img');
      const first = attachLoop(file, { readOnly: false, directIo: false });
      const hw = sysBlock(first.device, 'queue/max_hw_sectors_kb');
      writeFileSync(`/sys/block/${path.basename(first.device)}/queue/max_sectors_kb`, '512');
      resetRequestSize(first.device);
      expect(sysBlock(first.device, 'queue/max_sectors_kb')).toBe(hw);
      writeFileSync(`/sys/block/${path.basename(first.device)}/queue/max_sectors_kb`, '512');
      detachLoop(first.device);
      // The lowest free device, so usually the same one, still at 512 until attachLoop resets it.
      const again = attachLoop(file, { readOnly: false, directIo: false });
      try {
        if (again.device === first.device) console.log(`[residue] ${first.device} came back with the 512 KiB left on it`);
        expect(sysBlock(again.device, 'queue/max_sectors_kb')).toBe(sysBlock(again.device, 'queue/max_hw_sectors_kb'));
      } finally {
        detachLoop(again.device);
        resetRequestSize(first.device); // leave no 512 KiB behind for the device's next user
      }
    });

    it('honours a 4096-byte sector size', () => {
      const loop = attachLoop(image('4k.img'), { readOnly: false, directIo: false, sectorSize: 4096 });
      try {
        expect(loop.sectorSize).toBe(4096);
        expect(sysBlock(loop.device, 'queue/logical_block_size')).toBe('4096');
      } finally {
        detachLoop(loop.device);
      }
    });

    it('reports direct I/O exactly as the kernel set it', () => {
      const file = image('dio.img');
      const off = attachLoop(file, { readOnly: false, directIo: false });
      const on = attachLoop(file, { readOnly: false, directIo: true });
      try {
        expect(off.directIo).toBe(false);
        expect(sysBlock(off.device, 'loop/dio')).toBe('0');
        expect(on.directIo).toBe(sysBlock(on.device, 'loop/dio') === '1');
        expect(loopInfo(on.device)?.directIo).toBe(on.directIo);
      } finally {
        detachLoop(on.device);
        detachLoop(off.device);
      }
    });

    it('falls back to buffered I/O when the backing filesystem rejects direct I/O outright (ramfs)', () => {
      const ram = mountDir('ramfs');
      sh('mount', ['-t', 'ramfs', 'ramfs', ram]);
      try {
        const file = path.join(ram, 'vol.img');
        writeFileSync(file, Buffer.alloc(4 * MiB));
        const loop = attachLoop(file, { readOnly: false, directIo: true });
        try {
          expect(loop.directIo).toBe(false);
          expect(sysBlock(loop.device, 'loop/dio')).toBe('0');
          expect(loopsBackedBy(file)).toEqual([loop.device]);
        } finally {
          detachLoop(loop.device);
        }
      } finally {
        sh('umount', [ram]);
      }
    });

    it('reports a direct I/O request the kernel ignored silently (512-byte loop over a 4096-byte device)', () => {
      const outer = attachLoop(image('outer.img'), { readOnly: false, directIo: false, sectorSize: 4096 });
      const mnt = mountDir('outer');
      try {
        makeFilesystem(outer.device, 'ext4', {});
        mountFilesystem(outer.device, mnt, { type: 'ext4', readOnly: false });
        const inner = path.join(mnt, 'inner.img');
        writeFileSync(inner, '');
        const fd = openSync(inner, 'r+');
        ftruncateSync(fd, 8 * MiB);
        closeSync(fd);
        const loop = attachLoop(inner, { readOnly: false, directIo: true, sectorSize: 512 });
        try {
          expect(sysBlock(loop.device, 'loop/dio')).toBe('0');
          expect(loop.directIo).toBe(false);
          expect(loop.sectorSize).toBe(512);
        } finally {
          detachLoop(loop.device);
        }
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(outer.device);
      }
    });

    it('finds loop devices whose backing file was deleted', () => {
      const file = image('deleted.img');
      const loop = attachLoop(file, { readOnly: true, directIo: false });
      try {
        rmSync(file);
        expect(loopInfo(loop.device)).toMatchObject({ backingFile: file, backingDeleted: true });
        expect(loopsBackedBy(file)).toEqual([loop.device]);
      } finally {
        detachLoop(loop.device);
      }
    });

    it('detaching tolerates a device that is already gone', () => {
      const loop = attachLoop(image('gone.img'), { readOnly: false, directIo: false });
      detachLoop(loop.device);
      expect(() => detachLoop(loop.device)).not.toThrow();
      expect(() => detachLoop('/dev/loop987654')).not.toThrow();
    });

    it('detaching a mounted device reports busy; the device goes away once unmounted', () => {
      const loop = attachLoop(image('held.img'), { readOnly: false, directIo: false });
      const mnt = mountDir('held');
      makeFilesystem(loop.device, 'ext4', {});
      mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false });
      const e = thrown(() => detachLoop(loop.device));
      expect(e.code).toBe('busy');
      expect(loopInfo(loop.device)?.autoclear).toBe(true);
      expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      // autoclear: the kernel detaches on the last close, i.e. the unmount.
      expect(loopInfo(loop.device)).toBeNull();
    });

    it('concurrent attaches from several processes all get distinct devices', async () => {
      const files = Array.from({ length: 6 }, (_, i) => image(`race-${i}.img`, 4 * MiB));
      const others = files.slice(0, 3).map((f) => {
        const c = spawn('losetup', ['--find', '--show', f], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        return new Promise<string>((resolve) => c.on('close', () => resolve(out.trim())));
      });
      const ours: LoopDevice[] = files.slice(3).map((f) => attachLoop(f, { readOnly: false, directIo: false }));
      const theirs = await Promise.all(others);
      try {
        const all = [...ours.map((l) => l.device), ...theirs];
        expect(theirs.every((d) => /^\/dev\/loop\d+$/.test(d))).toBe(true);
        expect(new Set(all).size).toBe(all.length);
        for (const [i, f] of files.entries()) expect(loopsBackedBy(f)).toEqual([all[i < 3 ? i + 3 : i - 3]]);
      } finally {
        for (const d of [...ours.map((l) => l.device), ...theirs]) if (d) detachLoop(d);
      }
    });

    it('will not silently come up read-only when read-write was asked for', () => {
      // The file cannot be opened read-write (EROFS): an error, never a read-only device instead.
      const file = image('ro-bind/vol.img');
      const view = mountDir('ro-view');
      sh('mount', ['--bind', '-o', 'ro', path.dirname(file), view]);
      try {
        const viaRo = path.join(view, 'vol.img');
        const e = thrown(() => attachLoop(viaRo, { readOnly: false, directIo: false }));
        expect(e.code).toBe('io');
        expect(e.message).toMatch(/read-only/);
        expect(loopsBackedBy(viaRo)).toEqual([]);
        const ro = attachLoop(viaRo, { readOnly: true, directIo: false });
        expect(ro.readOnly).toBe(true);
        detachLoop(ro.device);
      } finally {
        sh('umount', [view]);
      }
    });

    it('reports a backing file it may not open as a privilege problem', () => {
      const file = image('immutable.img');
      sh('chattr', ['+i', file]);
      try {
        expect(thrown(() => attachLoop(file, { readOnly: false, directIo: false })).code).toBe('privilege');
        expect(loopsBackedBy(file)).toEqual([]);
      } finally {
        sh('chattr', ['-i', file]);
      }
    });

    it('rejects bad arguments', () => {
      expect(thrown(() => attachLoop(image('bad.img'), { readOnly: false, directIo: false, sectorSize: 1000 })).code).toBe('usage');
      expect(thrown(() => detachLoop('/dev/sda')).code).toBe('usage');
      expect(thrown(() => loopInfo('loop0')).code).toBe('usage');
    });
  });

  describe('filesystems', () => {
    for (const sectorSize of [512, 4096]) {
      it(`creates and detects ext4, vfat and exfat in turn on one device (${sectorSize}-byte sectors)`, () => {
        const loop = attachLoop(image(`mkfs-${sectorSize}.img`, 48 * MiB), { readOnly: false, directIo: false, sectorSize });
        try {
          expect(detectFilesystem(loop.device)).toBeNull();
          for (const type of [...FS, 'ext4'] as FsType[]) {
            makeFilesystem(loop.device, type, { label: `vault${type}` });
            expect(detectFilesystem(loop.device)).toBe(type);
            expect(sh('blkid', ['-p', '-o', 'value', '-s', 'LABEL', loop.device]).trim()).toBe(`vault${type}`);
          }
        } finally {
          detachLoop(loop.device);
        }
      });
    }

    it('rejects labels the filesystem cannot hold and refuses a mounted device', () => {
      const loop = attachLoop(image('labels.img', 32 * MiB), { readOnly: false, directIo: false });
      const mnt = mountDir('labels');
      try {
        expect(thrown(() => makeFilesystem(loop.device, 'vfat', { label: 'twelve-chars' })).code).toBe('usage');
        expect(thrown(() => makeFilesystem(loop.device, 'ext4', { label: 'seventeen-chars!!' })).code).toBe('usage');
        expect(thrown(() => makeFilesystem(loop.device, 'exfat', { label: 'x\ny' })).code).toBe('usage');
        makeFilesystem(loop.device, 'ext4', {});
        mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false });
        expect(thrown(() => makeFilesystem(loop.device, 'ext4', {})).code).toBe('busy');
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(loop.device);
      }
    });

    for (const type of FS) {
      // Where the kernel lacks the driver, the FUSE driver (fusefat, exfat-fuse) must do the same job.
      it(`mounts ${type} owned by the user, nosuid and nodev${NO_DRIVER.includes(type) ? ' (through its FUSE driver)' : ''}`, () => {
        const loop = attachLoop(image(`own-${type}.img`), { readOnly: false, directIo: false });
        const mnt = mountDir(`own-${type}`);
        try {
          makeFilesystem(loop.device, type, { ownerUid: OWNER.uid, ownerGid: OWNER.gid });
          mountFilesystem(loop.device, mnt, { type, readOnly: false, ownerUid: OWNER.uid, ownerGid: OWNER.gid });
          const m = findMount(mnt);
          const viaFuse = NO_DRIVER.includes(type);
          expect(m).toMatchObject({ mountpoint: mnt, fstype: viaFuse ? (type === 'vfat' ? 'fuse.fusefat' : 'fuseblk') : type });
          expect(m?.options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
          if (!viaFuse) expect(findMount(loop.device)?.mountpoint).toBe(mnt);

          const root = statSync(mnt);
          expect([root.uid, root.gid]).toEqual([OWNER.uid, OWNER.gid]);
          if (type !== 'ext4') expect(root.mode & 0o777).toBe(0o700);

          const asOwner = spawnSync('sh', ['-c', 'echo hello > "$0/owned.txt"', mnt], { ...OWNER, cwd: '/', encoding: 'utf8' });
          expect(asOwner.stderr).toBe('');
          expect(asOwner.status).toBe(0);
          const file = statSync(path.join(mnt, 'owned.txt'));
          expect([file.uid, file.gid]).toEqual([OWNER.uid, OWNER.gid]);
          if (type !== 'ext4') expect(file.mode & 0o077).toBe(0);

          const asStranger = spawnSync('sh', ['-c', 'echo hi > "$0/stranger.txt"', mnt], { ...STRANGER, cwd: '/' });
          expect(asStranger.status).not.toBe(0);
          expect(existsSync(path.join(mnt, 'stranger.txt'))).toBe(false);

          expect(unmountFilesystem(mnt)).toEqual({ ok: true });
        } finally {
          detachLoop(loop.device);
        }
      });
    }

    it('lets extra options override the nosuid default', () => {
      const loop = attachLoop(image('suid.img', 32 * MiB), { readOnly: false, directIo: false });
      const mnt = mountDir('suid');
      try {
        makeFilesystem(loop.device, 'ext4', {});
        mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false, extraOptions: 'suid,noatime' });
        const opts = findMount(mnt)?.options ?? [];
        expect(opts).toContain('noatime');
        expect(opts).toContain('nodev');
        expect(opts).not.toContain('nosuid');
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(loop.device);
      }
    });

    it('read-only mounts refuse writes with EROFS, and rw is not silently degraded to ro', () => {
      const file = image('romount.img', 32 * MiB);
      const rw = attachLoop(file, { readOnly: false, directIo: false });
      try {
        makeFilesystem(rw.device, 'ext4', {});
      } finally {
        detachLoop(rw.device);
      }
      const loop = attachLoop(file, { readOnly: true, directIo: false });
      const mnt = mountDir('romount');
      try {
        // mount(8) would normally retry read-only on a write-protected device.
        expect(thrown(() => mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false })).code).toBe('mount-failed');
        expect(isMountPoint(mnt)).toBe(false);
        mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: true });
        expect(findMount(mnt)?.options).toContain('ro');
        expect(errnoOf(() => writeFileSync(path.join(mnt, 'x'), 'x'))).toBe('EROFS');
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(loop.device);
      }
    });

    it('rejects malformed or dangerous extra options before running mount', () => {
      const mnt = mountDir('opts');
      const bad = ['no atime', ',', 'noatime,,sync', 'noatime,', 'remount', 'bind', 'loop=/dev/loop0', 'X-mount.mkdir', 'a\tb'];
      for (const extraOptions of bad)
        expect(thrown(() => mountFilesystem('/dev/loop0', mnt, { type: 'ext4', readOnly: false, extraOptions })).code, extraOptions).toBe('usage');
      expect(thrown(() => mountFilesystem('/dev/loop0', mnt, { type: 'ext4', readOnly: true, extraOptions: 'rw' })).code).toBe('usage');
      expect(thrown(() => mountFilesystem('/dev/loop0', mnt, { type: 'ext4 -o', readOnly: true })).code).toBe('usage');
    });

    it('unmounting something that is not mounted fails without claiming busy', () => {
      const r = unmountFilesystem(mountDir('never'));
      expect(r).toMatchObject({ ok: false, busy: false });
    });
  });

  describe('holders', () => {
    it('names the processes keeping a mount busy, ends them, and then the unmount succeeds', async () => {
      const loop = attachLoop(image('busy.img'), { readOnly: false, directIo: false });
      const mnt = mountDir('busy');
      try {
        makeFilesystem(loop.device, 'ext4', {});
        mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false });
        writeFileSync(path.join(mnt, 'log.txt'), 'line\n');
        writeFileSync(path.join(mnt, 'doomed.txt'), 'x');
        copyFileSync(spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim(), path.join(mnt, 'mysleep'));
        chmodSync(path.join(mnt, 'mysleep'), 0o755);

        const inCwd = start('sleep', ['1000'], mnt);
        const reader = start('tail', ['-f', path.join(mnt, 'log.txt')], dir);
        // Opens a file, deletes it, keeps it open: only device matching can still see it.
        const deleted = start('sh', ['-c', 'exec 3<"$0"; rm "$0"; exec sleep 1000', path.join(mnt, 'doomed.txt')], dir);
        const mapped = start(path.join(mnt, 'mysleep'), ['1000'], dir);
        await until(() => !existsSync(path.join(mnt, 'doomed.txt')) && findHolders(mnt).length >= 4);

        const busy = unmountFilesystem(mnt);
        expect(busy).toMatchObject({ ok: false, busy: true });

        const holders = findHolders(mnt);
        const reasonOf = (pid: number | undefined) => holders.find((h) => h.pid === pid)?.reason;
        expect(reasonOf(inCwd.pid)).toBe('cwd');
        expect(reasonOf(reader.pid)).toBe('open file');
        expect(reasonOf(deleted.pid)).toBe('open file');
        expect(reasonOf(mapped.pid)).toBe('mapped file');
        expect(holders.map((h) => h.pid)).not.toContain(process.pid);
        expect(holders.find((h) => h.pid === inCwd.pid)?.command).toBe('sleep');
        expect(describeHolders(holders)).toContain(`pid ${inCwd.pid} (sleep, cwd)`);
        expect(describeHolders(holders)).toContain(`pid ${reader.pid} (tail, open file)`);

        const ended = await endProcesses(holders);
        expect(ended.terminated.map((h) => h.pid).sort()).toEqual(holders.map((h) => h.pid).sort());
        expect(ended.killed).toEqual([]);
        expect(ended.survived).toEqual([]);
        expect(findHolders(mnt)).toEqual([]);
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(loop.device);
      }
    });

    it('SIGKILLs what ignores SIGTERM after the grace period', async () => {
      const loop = attachLoop(image('stubborn.img', 32 * MiB), { readOnly: false, directIo: false });
      const mnt = mountDir('stubborn');
      try {
        makeFilesystem(loop.device, 'ext4', {});
        mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false });
        const child = start('sh', ['-c', 'trap "" TERM; exec sleep 1000'], mnt);
        await until(() => findHolders(mnt).some((h) => h.pid === child.pid && h.command === 'sleep'));
        const holders = findHolders(mnt);
        expect(holders).toEqual([expect.objectContaining({ pid: child.pid, command: 'sleep', reason: 'cwd' })]);

        const t0 = Date.now();
        const ended = await endProcesses(holders, 300);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
        expect(ended.terminated).toEqual([]);
        expect(ended.killed.map((h) => h.pid)).toEqual([child.pid]);
        expect(unmountFilesystem(mnt)).toEqual({ ok: true });
      } finally {
        detachLoop(loop.device);
      }
    });

    it('lazy unmount detaches a busy mount at once', async () => {
      const loop = attachLoop(image('lazy.img', 32 * MiB), { readOnly: false, directIo: false });
      const mnt = mountDir('lazy');
      makeFilesystem(loop.device, 'ext4', {});
      mountFilesystem(loop.device, mnt, { type: 'ext4', readOnly: false });
      const child = start('sleep', ['1000'], mnt);
      await until(() => findHolders(mnt).length === 1);
      expect(unmountFilesystem(mnt)).toMatchObject({ ok: false, busy: true });
      expect(unmountFilesystem(mnt, { lazy: true })).toEqual({ ok: true });
      expect(isMountPoint(mnt)).toBe(false);
      // The filesystem lives on until its last user is gone, and keeps the loop device open.
      expect(thrown(() => detachLoop(loop.device)).code).toBe('busy');
      child.kill('SIGKILL');
      await until(() => loopInfo(loop.device) === null);
    });

    it('refuses to look for holders of a directory that is not a mount point', () => {
      expect(thrown(() => findHolders(mountDir('plain'))).code).toBe('not-mounted');
    });

    it('refuses to signal pid 1 or itself', async () => {
      await expect(endProcesses([{ pid: 1, command: 'init', reason: 'cwd' }])).rejects.toMatchObject({ code: 'usage' });
      await expect(endProcesses([{ pid: process.pid, command: 'node', reason: 'cwd' }])).rejects.toMatchObject({ code: 'usage' });
      expect(describeHolders([])).toBe('');
    });
  });

  describe('mount table', () => {
    it('parses mountinfo, including octal escapes and optional fields', () => {
      const text = [
        '36 35 98:0 /mnt1 /mnt/with\\040space\\011tab\\134bs rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
        '40 27 7:3 / /plain rw,nosuid,nodev,relatime - vfat /dev/loop3 rw,uid=1234,gid=2345,fmask=0077',
        'garbage line',
        '',
      ].join('\n');
      const [a, b, ...rest] = parseMountInfo(text);
      expect(rest).toEqual([]);
      expect(a).toEqual({
        id: 36, parentId: 35, devno: '98:0', root: '/mnt1', mountpoint: '/mnt/with space\ttab\\bs',
        source: '/dev/root', fstype: 'ext3', options: ['rw', 'noatime', 'errors=continue'],
      });
      expect(b).toMatchObject({ devno: '7:3', mountpoint: '/plain', fstype: 'vfat', source: '/dev/loop3' });
      expect(b?.options).toEqual(['rw', 'nosuid', 'nodev', 'relatime', 'uid=1234', 'gid=2345', 'fmask=0077']);
    });

    it('finds a real mount whose path contains a space', () => {
      const outer = mountDir('mount table');
      const inner = path.join(outer, 'inner dir');
      expect(isMountPoint(outer)).toBe(false);
      const loop = attachLoop(image('table.img', 32 * MiB), { readOnly: false, directIo: false });
      try {
        makeFilesystem(loop.device, 'ext4', {});
        mountFilesystem(loop.device, outer, { type: 'ext4', readOnly: false });
        mkdirSync(inner);
        sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'vault test', inner]);
        expect(isMountPoint(outer)).toBe(true);
        expect(isMountPoint(`${outer}/`)).toBe(true);
        expect(isMountPoint(inner)).toBe(true);
        expect(findMount(inner)).toMatchObject({ mountpoint: inner, fstype: 'tmpfs', source: 'vault test' });
        expect(findMount(loop.device)).toMatchObject({ mountpoint: outer, fstype: 'ext4' });
        expect(mountsUnder(dir).map((m) => m.mountpoint)).toEqual([outer, inner]);
        expect(mountsUnder(outer).map((m) => m.mountpoint)).toEqual([outer, inner]);
        expect(readMountInfo().filter((m) => m.mountpoint === inner)).toHaveLength(1);

        expect(unmountFilesystem(outer)).toMatchObject({ ok: false, busy: true });
        expect(unmountFilesystem(inner)).toEqual({ ok: true });
        expect(unmountFilesystem(outer)).toEqual({ ok: true });
        expect(isMountPoint(outer)).toBe(false);
        expect(findMount(loop.device)).toBeNull();
      } finally {
        detachLoop(loop.device);
      }
    });
  });
});
