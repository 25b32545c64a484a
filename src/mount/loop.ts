/**
 * Loop devices over the FUSE-served block file: attach, detach, inspect.
 *
 * What the kernel actually did is read back from sysfs (/sys/block/loopN/...) rather than trusted
 * from the attach's success: direct I/O, read-only and the logical block size can all come out
 * different from what was asked for without LOOP_CONFIGURE failing.
 */
import { closeSync, constants as fsc, existsSync, openSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { constants as osc } from 'node:os';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';
import { VaultError, isVaultError } from '../errors.js';
import { nativeAddon } from '../crypto/native.js';
import { firstLine, run, type RunResult } from './run.js';

export interface LoopAttachOptions {
  readOnly: boolean;
  /** Ask for direct I/O (no double caching of the block file); the result says whether it was granted. */
  directIo: boolean;
  /** Logical sector size of the loop device: 512, 1024, 2048 or 4096. Default: the kernel's choice. */
  sectorSize?: number;
}

export interface LoopDevice {
  /** /dev/loopN */
  device: string;
  /** Whether the kernel really does direct I/O on the backing file (it may refuse silently). */
  directIo: boolean;
  readOnly: boolean;
  /** Logical block size the kernel gave the device. */
  sectorSize: number;
}

export interface LoopInfo {
  /** Backing file path as the kernel reports it, without the " (deleted)" suffix. */
  backingFile: string;
  /** The backing file was unlinked after attaching (the kernel appended " (deleted)"). */
  backingDeleted: boolean;
  readOnly: boolean;
  directIo: boolean;
  /** The device detaches itself when its last user closes it (set by a deferred `losetup -d`). */
  autoclear: boolean;
}

const LOOP_DEVICE = /^\/dev\/loop(\d+)$/;
const SECTOR_SIZES = [512, 1024, 2048, 4096];
const DETACH_TRIES = 10;
/** How long a detach may stay deferred (udev or blkid briefly holding the device) before we report busy. */
const DETACH_SETTLE_MS = 2000;
const DELETED_SUFFIX = ' (deleted)';

/**
 * Attaches `file` to a free loop device: the file is opened here (never through a symbolic link)
 * and bound with one LOOP_CONFIGURE ioctl (the addon's loopAttach), as losetup --find would, without
 * its process. Synchronous: callers must not be the process serving the file.
 */
export function attachLoop(file: string, opts: LoopAttachOptions): LoopDevice {
  if (opts.sectorSize !== undefined && !SECTOR_SIZES.includes(opts.sectorSize))
    throw new VaultError('usage', `invalid loop sector size ${opts.sectorSize}`, `use one of ${SECTOR_SIZES.join(', ')}`);
  const backing = path.resolve(file);
  let fd: number;
  try {
    fd = openSync(backing, (opts.readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | fsc.O_NOFOLLOW); // libuv adds O_CLOEXEC
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? `${code}: it lies on a read-only filesystem` : code;
    throw new VaultError(code === 'EACCES' || code === 'EPERM' ? 'privilege' : 'io', `cannot open ${backing} to attach it to a loop device: ${why}`,
      code === 'EROFS' ? 'mount it read-only (--read-only)' : undefined);
  }
  let n: number;
  try {
    const attach = (directIo: boolean) => nativeAddon().loopAttach(fd, opts.readOnly, directIo, opts.sectorSize ?? 0);
    n = attach(opts.directIo);
    // Some backing filesystems (ramfs, FUSE without direct_io support) make the kernel reject the
    // whole setup when direct I/O is requested; buffered I/O still works there.
    if (n < 0 && opts.directIo && -n !== osc.errno.EBUSY) n = attach(false);
  } finally {
    closeSync(fd); // the loop device holds the file itself
  }
  if (n < 0) throw attachError(backing, -n);
  const device = `/dev/loop${n}`;

  const info = loopInfo(device);
  if (info === null) throw new VaultError('io', `${device} vanished right after being attached`);
  const sectorSize = Number(readSys(`/sys/block/loop${n}/queue/logical_block_size`));
  resetRequestSize(device);
  // A volume the user asked to be writable must not come up read-only, whatever the kernel did.
  if (!opts.readOnly && info.readOnly) {
    detachQuietly(device);
    throw new VaultError('io', `${device} came up read-only although read-write was requested`, `check that ${backing} is writable`);
  }
  if (opts.sectorSize !== undefined && sectorSize !== opts.sectorSize) {
    detachQuietly(device);
    throw new VaultError('io', `${device} got sector size ${sectorSize} instead of ${opts.sectorSize}`);
  }
  return { device, directIo: info.directIo, readOnly: info.readOnly, sectorSize };
}

/**
 * Gives a just-attached loop device the kernel's request size for a fresh one (max_sectors_kb =
 * max_hw_sectors_kb). A loop device keeps the max_sectors_kb (and read_ahead_kb) its earlier user
 * set, across detach and attach, and 1024 KiB requests halved the first sequential write into a
 * --quick container here (300-342 against 558-778 MiB/s at the kernel's 1280; bench/RESULTS.md,
 * 2026-12-07 evening). Best effort: a device whose sysfs refuses stays as it is.
 */
export function resetRequestSize(device: string): void {
  const queue = `/sys/block/loop${checkDeviceName(device)}/queue`;
  try {
    const hw = readFileSync(`${queue}/max_hw_sectors_kb`, 'utf8').trim();
    if (readFileSync(`${queue}/max_sectors_kb`, 'utf8').trim() !== hw) writeFileSync(`${queue}/max_sectors_kb`, hw);
  } catch {
    // tuning only: the device works with whatever request size it has
  }
}

/**
 * Detaches a loop device; a device that is already gone is fine. Throws VaultError('busy') when the
 * kernel only deferred the detach because something (a mount, an open file) still uses the device:
 * it will then vanish by itself once that user closes it.
 */
export function detachLoop(device: string): void {
  checkDeviceName(device);
  for (let attempt = 1; ; attempt++) {
    if (loopInfo(device) === null) return;
    const r = losetup(['-d', device]);
    if (r.status === 0) break;
    if (isGone(r.stderr)) return;
    // Older kernels answer EBUSY instead of deferring while another opener (udev, blkid) holds the device.
    if (isBusy(r.stderr) && attempt < DETACH_TRIES) {
      sleepMs(50 * attempt);
      continue;
    }
    throw new VaultError(isBusy(r.stderr) ? 'busy' : codeFor(r.stderr), `losetup -d ${device} failed: ${detail(r)}`);
  }
  // Since Linux 5.x LOOP_CLR_FD succeeds while the device is open elsewhere and merely sets autoclear.
  const deadline = Date.now() + DETACH_SETTLE_MS;
  while (loopInfo(device) !== null) {
    if (Date.now() >= deadline)
      throw new VaultError('busy', `${device} is still in use; it will detach itself when its last user closes it`,
        `unmount whatever is mounted from ${device} and close programs that opened it`);
    sleepMs(20);
  }
}

/** Loop devices whose backing file is `file`, including ones whose file has since been unlinked. */
export function loopsBackedBy(file: string): string[] {
  const wanted = path.resolve(file);
  const loops = listLoops();
  let hits = loops.filter((l) => l.backingFile === wanted);
  if (hits.length === 0) {
    // The caller may have named the file through a symlinked directory; the kernel reports the real path.
    const real = realParentPath(wanted);
    if (real !== null && real !== wanted) hits = loops.filter((l) => l.backingFile === real);
  }
  return hits.map((l) => l.device);
}

/** State of a loop device from sysfs, or null when it is not bound to a file (or does not exist). */
export function loopInfo(device: string): LoopInfo | null {
  const n = checkDeviceName(device);
  const dir = `/sys/block/loop${n}`;
  let raw: string;
  try {
    raw = readFileSync(`${dir}/loop/backing_file`, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT', 'ENXIO', 'ENODEV')) return null;
    throw new VaultError('io', `cannot read ${dir}/loop/backing_file: ${(e as Error).message}`);
  }
  // sysfs ends the value with a newline; a path may itself end in whitespace, so strip exactly one.
  const reported = raw.endsWith('\n') ? raw.slice(0, -1) : raw;
  // A file genuinely named "… (deleted)" that still exists is not deleted.
  const backingDeleted = reported.endsWith(DELETED_SUFFIX) && !existsSync(reported);
  try {
    return {
      backingFile: backingDeleted ? reported.slice(0, -DELETED_SUFFIX.length) : reported,
      backingDeleted,
      readOnly: readSys(`${dir}/ro`) === '1',
      directIo: readSys(`${dir}/loop/dio`) === '1',
      autoclear: readSys(`${dir}/loop/autoclear`) === '1',
    };
  } catch (e) {
    // Detached between the reads.
    if (isVaultError(e, 'io') && loopInfoGone(dir)) return null;
    throw e;
  }
}

/** Every bound loop device, in device-number order. */
export function listLoops(): (LoopInfo & { device: string })[] {
  let names: string[];
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch (e) {
    throw new VaultError('io', `cannot list /sys/block: ${(e as Error).message}`);
  }
  names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const out: (LoopInfo & { device: string })[] = [];
  for (const name of names) {
    const device = `/dev/${name}`;
    const info = loopInfo(device);
    if (info !== null) out.push({ device, ...info });
  }
  return out;
}

function losetup(args: string[]): RunResult {
  try {
    return run('losetup', args);
  } catch (e) {
    if (isVaultError(e, 'missing-component'))
      throw new VaultError('missing-component', e.message, 'install the Debian package "mount" (it provides losetup)');
    throw e;
  }
}

function attachError(file: string, errno: number): VaultError {
  const name = getSystemErrorName(-errno);
  const msg = `cannot attach ${file} to a loop device: ${name}`;
  if (errno === osc.errno.EBUSY) return new VaultError('busy', msg, 'another program kept grabbing the free loop device; try again');
  if (errno === osc.errno.ENOENT || errno === osc.errno.ENODEV || errno === osc.errno.ENOSPC)
    return new VaultError('missing-component', msg, 'the kernel needs loop device support (modprobe loop; /dev/loop-control must exist)');
  return new VaultError(errno === osc.errno.EPERM || errno === osc.errno.EACCES ? 'privilege' : 'io', msg);
}

function detachQuietly(device: string): void {
  try {
    detachLoop(device);
  } catch {
    // The caller gets the original error; a deferred detach cleans up by itself.
  }
}

/** The "major:minor" of a loop device as mountinfo shows it, or null when it does not exist. */
export function loopDevno(device: string): string | null {
  try {
    return readFileSync(`/sys/block/loop${checkDeviceName(device)}/dev`, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function checkDeviceName(device: string): string {
  const m = LOOP_DEVICE.exec(device);
  if (!m) throw new VaultError('usage', `not a loop device: ${device}`);
  return m[1]!;
}

function loopInfoGone(dir: string): boolean {
  return !existsSync(`${dir}/loop`);
}

function readSys(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new VaultError('io', `cannot read ${file}: ${(e as Error).message}`);
  }
}

function realParentPath(p: string): string | null {
  try {
    // Only the directory is resolved: the file itself may live on a FUSE mount that is slow to answer.
    return path.join(realpathSync.native(path.dirname(p)), path.basename(p));
  } catch {
    return null;
  }
}

function isBusy(stderr: string): boolean {
  return /resource busy|device is busy|EBUSY/i.test(stderr);
}

function isGone(stderr: string): boolean {
  return /No such device or address|No such device|No such file or directory|ENXIO/i.test(stderr);
}

function codeFor(stderr: string): 'privilege' | 'io' {
  return /permission denied|operation not permitted/i.test(stderr) ? 'privilege' : 'io';
}

function detail(r: RunResult): string {
  return firstLine(r.stderr) || firstLine(r.stdout) || `exit status ${r.status}`;
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
