/**
 * The filesystem inside a volume: detect, create, mount, unmount, and read the mount table.
 */
import { chmodSync, closeSync, constants as fsc, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { constants as osc, release } from 'node:os';
import path from 'node:path';
import { getSystemErrorName } from 'node:util';
import { VaultError, isVaultError } from '../errors.js';
import { firstLine, run, runOk, type RunResult } from './run.js';
import { ensurePrivateDir, runDir } from '../system/private-dir.js';
import { CHILD_FD_PATH, mountIdOf, pinDir, pinnedChild, withPinned, type PinnedDir } from './pinned.js';
import { nativeAddon } from '../crypto/native.js';

export type FsType = 'ext4' | 'vfat' | 'exfat';
export const FS_TYPES: readonly FsType[] = ['ext4', 'vfat', 'exfat'];

export function isFsType(s: string): s is FsType {
  return (FS_TYPES as readonly string[]).includes(s);
}

/**
 * Refuses a filesystem type vault does not mount by default (issue 13). The type comes from blkid
 * reading the volume's content, which whoever made the container controls; every other type the
 * kernel can load a driver for (ext2, btrfs, xfs, squashfs, hfsplus, …) would expose that driver's
 * parser to a crafted image, as root. `allowed` lists the types the user named with --allow-fs.
 */
export function checkFsAllowed(type: string, allowed: readonly string[] = []): void {
  if (isFsType(type) || allowed.includes(type)) return;
  throw new VaultError('unsafe', `the volume holds a ${type} filesystem, which vault does not mount by default`, `if you trust whoever made this volume, mount it with --allow-fs ${type}`);
}

export interface MakeFsOptions {
  ownerUid?: number;
  ownerGid?: number;
  label?: string;
  /** The device is a brand-new container: nothing old can be mistaken for a journal (see ext4 below). */
  fresh?: boolean;
}

export interface MountOptions {
  type: string;
  readOnly: boolean;
  /** Comma-separated mount options from the user, applied after vault's defaults (so they win). */
  extraOptions?: string;
  ownerUid?: number;
  ownerGid?: number;
}

export type UnmountResult = { ok: true } | { ok: false; busy: boolean; message: string };

export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem, as in /proc/self/mountinfo. */
  devno: string;
  /** Directory of the filesystem that is mounted here ("/" unless a bind mount of a subdirectory). */
  root: string;
  mountpoint: string;
  source: string;
  fstype: string;
  /** Per-mount options followed by the filesystem's own options, without repeats. */
  options: string[];
}

/** The tool that creates each filesystem, and the Debian package that ships it. */
export const MKFS: Record<FsType, { tool: string; pkg: string }> = {
  ext4: { tool: 'mkfs.ext4', pkg: 'e2fsprogs' },
  vfat: { tool: 'mkfs.vfat', pkg: 'dosfstools' },
  exfat: { tool: 'mkfs.exfat', pkg: 'exfatprogs' },
};
/** Filesystems without Unix ownership: owner and permissions come from mount options. */
const NO_UNIX_OWNERS = new Set(['vfat', 'exfat', 'msdos']);
/** Options that would make mount do something else than mounting this device here. */
const FORBIDDEN_OPTIONS = /^(remount|bind|rbind|move|loop|offset|sizelimit|encryption|helper|uhelper|x-mount\..*)$/i;
const MKFS_TIMEOUT_MS = 60 * 60_000;
/** Mode of a volume's root directory: its owner's only (issue 13). */
export const PRIVATE_DIR_MODE = 0o700;
const NO_DRIVER_HINT: Record<string, string> = {
  exfat: 'the running kernel has no exFAT driver: load the exfat module, or install the Debian package exfat-fuse',
  vfat: 'the running kernel has no FAT driver: load the vfat module, or install the Debian package fusefat',
  ext4: 'the running kernel has no ext4 driver: load the ext4 module',
};

/**
 * Filesystem type found on `device` (e.g. "ext4"), or null when nothing is recognised: libblkid's
 * low-level probe in this process (the addon's blkidProbe), as `blkid -p` would answer, without
 * spawning it. It looks for the types vault mounts (FS_TYPES and `allowed`, --allow-fs) first:
 * about 1 ms against 11-13 for every type on a mounted volume, whose every read is a FUSE round
 * trip. Only when none is there does it look for every type, to name what the volume holds.
 * Signatures of two types it mounts make the volume ambiguous; a second signature of a type it
 * would refuse anyway does not (the mount names its type: only that driver reads the volume).
 */
export function detectFilesystem(device: string, allowed: readonly string[] = []): string | null {
  let fd: number;
  try {
    fd = openSync(device, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    throw new VaultError('io', `cannot open ${device} to find its filesystem: ${(e as NodeJS.ErrnoException).code}`);
  }
  try {
    const mounted = probeResult(device, nativeAddon().blkidProbe(fd, [...new Set([...FS_TYPES, ...allowed])].slice(0, 16)));
    return mounted ?? probeResult(device, nativeAddon().blkidProbe(fd, null));
  } finally {
    closeSync(fd);
  }
}

function probeResult(device: string, [rc, type]: [number, string | null]): string | null {
  if (rc === -2) throw new VaultError('io', `${device} carries signatures of more than one filesystem`, 'the volume is ambiguous; recreate its filesystem');
  if (rc < 0) throw new VaultError('io', `cannot read ${device} to find its filesystem (libblkid's probe failed)`);
  return rc === 0 ? type : null;
}

/** Creates a filesystem on `device`, erasing whatever signatures were there. */
export function makeFilesystem(device: string, type: FsType, opts: MakeFsOptions = {}): void {
  if (!isFsType(type)) throw new VaultError('usage', `unsupported filesystem type: ${String(type)}`, `use one of ${FS_TYPES.join(', ')}`);
  checkId('ownerUid', opts.ownerUid);
  checkId('ownerGid', opts.ownerGid);
  const label = opts.label === undefined || opts.label === '' ? undefined : checkLabel(type, opts.label);
  if (findMount(device) !== null) throw new VaultError('busy', `${device} is mounted; refusing to create a filesystem on it`);

  // Leftover signatures of an earlier filesystem would make blkid's answer ambiguous later.
  const wipe = tool('wipefs', ['--all', '--quiet', device], 'util-linux');
  if (wipe.status !== 0) throw new VaultError('io', `wipefs ${device} failed: ${detail(wipe)}`);

  const { tool: mkfs, pkg } = MKFS[type];
  let r: RunResult;
  switch (type) {
    case 'ext4': {
      // nodiscard: discards would reach the FUSE server as hole punches, which either fail (wasted
      //   time) or reveal to anyone holding the container which regions are in use.
      // lazy_itable_init=1: zeroing the inode tables (1/64 of the volume) through encryption would
      //   make mkfs slow on large volumes. The kernel's ext4lazyinit thread zeroes them after the
      //   first mount, rate-limited; until then ext4 never reads the unused parts, and umount simply
      //   stops the thread (it finishes at most the group in progress), so dismount stays clean and
      //   quick; the remaining groups are done on a later mount.
      // lazy_journal_init: a lazily initialised journal could replay stale blocks after a crash when
      //   a device that held ext4 before is re-formatted, so by default the journal (up to 1 GiB) is
      //   zeroed. A brand-new container (`fresh`) cannot hold an old journal: its data area is
      //   encryption under a key made seconds ago, which jbd2 cannot mistake for its own blocks
      //   (those need its magic number and the journal's current sequence). Skipping the zeroing
      //   there keeps `create --quick` time and allocation independent of the volume size.
      const ext = ['nodiscard', 'lazy_itable_init=1', `lazy_journal_init=${opts.fresh ? 1 : 0}`];
      if (opts.ownerUid !== undefined || opts.ownerGid !== undefined)
        ext.push(`root_owner=${opts.ownerUid ?? process.getuid?.() ?? 0}:${opts.ownerGid ?? process.getgid?.() ?? 0}`);
      r = tool(mkfs, ['-q', '-F', '-E', ext.join(','), ...(label ? ['-L', label] : []), device], pkg, MKFS_TIMEOUT_MS);
      // mke2fs makes the root directory 0755 (this version has no root_perms): anyone who can reach
      // the mount point could read the files. The volume belongs to one user, so its root is 0700.
      if (r.status === 0) r = tool('debugfs', ['-w', '-R', `set_inode_field / mode 0${(0o40000 | PRIVATE_DIR_MODE).toString(8)}`, device], pkg);
      break;
    }
    case 'vfat': {
      const base = label ? ['-n', label] : [];
      // mkfs.vfat picks FAT12/16/32 from the size; FAT32 is invalid on small volumes.
      r = tool(mkfs, [...base, device], pkg, MKFS_TIMEOUT_MS);
      if (r.status !== 0) {
        const bits = fatBitsFor(deviceBytes(device));
        if (bits !== null) r = tool(mkfs, ['-F', String(bits), ...base, device], pkg, MKFS_TIMEOUT_MS);
      }
      break;
    }
    case 'exfat':
      r = tool(mkfs, [...(label ? ['-L', label] : []), device], pkg, MKFS_TIMEOUT_MS);
      break;
  }
  if (r.status !== 0) throw new VaultError('io', `${mkfs} ${device} failed: ${detail(r)}`);

  const found = detectFilesystem(device);
  if (found !== type) throw new VaultError('io', `${mkfs} reported success but ${device} now holds ${found ?? 'no filesystem'}`);
}

/**
 * Mounts `device` on `mountpoint` and returns the new mount's mountinfo entry. Defaults to
 * nosuid,nodev like VeraCrypt: a volume is a file anyone may have prepared, and a setuid binary or
 * device node on it must not gain privileges once mounted. The user may still ask for suid or dev
 * in extraOptions, which come last and win.
 *
 * The mount point is used by descriptor (pinned.ts): the new mount is moved onto that descriptor
 * (move_mount; a FUSE driver's through mount(8) --move to /proc/self/fd/3), so the directory that
 * was checked is the one covered even if its name, or any directory above it, is swapped
 * meanwhile. A plain path is pinned here (its last component must not be a symlink).
 */
export function mountFilesystem(device: string, mountpoint: string | PinnedDir, opts: MountOptions): MountEntry {
  if (typeof mountpoint === 'string') return withPinned(path.resolve(mountpoint), (d) => mountFilesystem(device, d, opts));
  if (!/^[a-z0-9][a-z0-9_.+-]*$/.test(opts.type)) throw new VaultError('usage', `invalid filesystem type: ${opts.type}`);
  checkId('ownerUid', opts.ownerUid);
  checkId('ownerGid', opts.ownerGid);
  const extra = parseExtraOptions(opts.extraOptions);
  if (opts.readOnly && extra.includes('rw'))
    throw new VaultError('usage', 'mount option "rw" contradicts a read-only mount');
  const readOnly = opts.readOnly || extra.includes('ro');

  const options = ['nosuid', 'nodev'];
  if (readOnly) options.push('ro');
  if (NO_UNIX_OWNERS.has(opts.type)) {
    if (opts.ownerUid !== undefined) options.push(`uid=${opts.ownerUid}`);
    if (opts.ownerGid !== undefined) options.push(`gid=${opts.ownerGid}`);
    // Without Unix permissions on disk, everything would otherwise be world-readable.
    options.push('umask=077');
  }
  if (opts.type === 'vfat') options.push('utf8'); // file names from Linux programs are UTF-8
  options.push(...extra);

  const where = mountpoint.where;
  if (kernelSupports(opts.type)) {
    mountWithKernelDriver(device, mountpoint, opts.type, options, readOnly);
    return mountedOn(mountpoint, device, (e) => e.source === device);
  }
  // A FUSE driver's mount (whose source is the driver's name) is told by the id it had in the
  // staging directory.
  const f = mountWithFuseDriver(device, mountpoint, opts.type, options, readOnly);
  const r = f.result;
  if (r.status === 0) return mountedOn(mountpoint, device, (e) => (f.mountId === undefined ? e.source === device : e.id === f.mountId));

  const msg = `mounting ${device} on ${where} failed: ${detail(r)}`;
  if (/unknown filesystem type/i.test(r.stderr))
    throw new VaultError('missing-component', msg, NO_DRIVER_HINT[opts.type] ?? `the running kernel has no ${opts.type} driver`);
  if (/already mounted|busy/i.test(r.stderr)) throw new VaultError('already-mounted', msg);
  if (/permission denied|operation not permitted|must be superuser/i.test(r.stderr)) throw new VaultError('privilege', msg);
  const hint =
    readOnly && opts.type === 'ext4' && /read-only/i.test(r.stderr)
      ? 'the journal probably needs recovery, which a read-only mount cannot do: mount it read-write once, or pass -o noload'
      : 'the kernel log (dmesg) usually says why';
  throw new VaultError('mount-failed', msg, hint);
}

/** MOUNT_ATTR_* of <linux/mount.h>: what fsmount(2) applies to the new mount itself. */
const MOUNT_ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME_MASK: 0x70, RELATIME: 0x0, NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80 } as const;
/** The mount flags among mount options: the bit each sets (or, `no`-less, clears). */
const ATTR_OPTIONS = new Map<string, { set?: number; clear?: number }>([
  ['nosuid', { set: MOUNT_ATTR.NOSUID }], ['suid', { clear: MOUNT_ATTR.NOSUID }],
  ['nodev', { set: MOUNT_ATTR.NODEV }], ['dev', { clear: MOUNT_ATTR.NODEV }],
  ['noexec', { set: MOUNT_ATTR.NOEXEC }], ['exec', { clear: MOUNT_ATTR.NOEXEC }],
  ['nodiratime', { set: MOUNT_ATTR.NODIRATIME }], ['diratime', { clear: MOUNT_ATTR.NODIRATIME }],
]);
const ATIME_OPTIONS = new Map<string, number>([['noatime', MOUNT_ATTR.NOATIME], ['relatime', MOUNT_ATTR.RELATIME], ['strictatime', MOUNT_ATTR.STRICTATIME], ['atime', MOUNT_ATTR.RELATIME]]);
/** Options only mount(8) and fstab know (libmount drops them before mount(2)). */
const USERSPACE_OPTION = /^(defaults|auto|noauto|user|nouser|users|owner|group|nofail|_netdev|x-.*|comment=.*)$/;

/**
 * mount(8)'s options as the kernel's mount API takes them: the mount's own flags (`attrs`, for
 * fsmount) and the filesystem's parameters (`params`, for fsconfig: name and value, or null for a
 * flag). "ro" is both: the superblock read-only (ext4 then replays no journal) and the mount.
 * Later options win, as with mount(8).
 */
export function kernelMountArgs(options: readonly string[]): { params: [string, string | null][]; attrs: number } {
  let attrs = 0;
  let readOnly = false;
  const params: [string, string | null][] = [];
  for (const o of options) {
    const flag = ATTR_OPTIONS.get(o);
    const atime = ATIME_OPTIONS.get(o);
    if (flag) attrs = (attrs | (flag.set ?? 0)) & ~(flag.clear ?? 0);
    else if (atime !== undefined) attrs = (attrs & ~MOUNT_ATTR.ATIME_MASK) | atime;
    else if (o === 'ro' || o === 'rw') readOnly = o === 'ro';
    else if (USERSPACE_OPTION.test(o)) continue;
    else {
      const eq = o.indexOf('=');
      if (eq === 0 || eq === o.length - 1) throw new VaultError('usage', `mount option "${o}" has no ${eq === 0 ? 'name' : 'value'}`);
      params.push(eq < 0 ? [o, null] : [o.slice(0, eq), o.slice(eq + 1)]);
    }
  }
  if (readOnly) {
    attrs |= MOUNT_ATTR.RDONLY;
    params.push(['ro', null]);
  }
  return { params, attrs };
}

/**
 * Mounts with the kernel's own driver through the addon's mountAt (fsopen, fsconfig, fsmount,
 * move_mount onto the pinned directory's descriptor): what `mount -i -w|-r -t type` did, without
 * its process. It never falls back to a read-only mount on its own: a write-protected device is an
 * error for a read-write request.
 */
function mountWithKernelDriver(device: string, mountpoint: PinnedDir, type: string, options: readonly string[], readOnly: boolean): void {
  const { params, attrs } = kernelMountArgs(options);
  const [errno, log] = nativeAddon().mountAt(type, device, params, attrs, mountpoint.fd);
  if (errno === 0) return;
  const name = getSystemErrorName(-errno);
  const msg = `mounting ${device} on ${mountpoint.where} failed: ${name}${log ? ` (${log})` : ''}`;
  if (errno === osc.errno.ENODEV) throw new VaultError('missing-component', msg, NO_DRIVER_HINT[type] ?? `the running kernel has no ${type} driver`);
  if (errno === osc.errno.EBUSY) throw new VaultError('already-mounted', msg);
  // A read-write mount of a write-protected device fails with EACCES (or EROFS): not a privilege problem.
  if (!readOnly && (errno === osc.errno.EACCES || errno === osc.errno.EROFS) && writeProtected(device))
    throw new VaultError('mount-failed', `${msg}: ${device} is write-protected`, 'mount it read-only (--read-only)');
  if (errno === osc.errno.EPERM || errno === osc.errno.EACCES) throw new VaultError('privilege', msg);
  const hint =
    readOnly && type === 'ext4' && errno === osc.errno.EROFS
      ? 'the journal probably needs recovery, which a read-only mount cannot do: mount it read-write once, or pass -o noload'
      : 'the kernel log (dmesg) usually says why';
  throw new VaultError('mount-failed', msg, hint);
}

/** Whether the block device is read-only (sysfs `ro`); false when that cannot be told. */
function writeProtected(device: string): boolean {
  try {
    return readFileSync(`/sys/class/block/${path.basename(device)}/ro`, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/**
 * The mount just made of `device` on the pinned directory: the topmost mount whose parent is the
 * directory's own mount, at the directory's path. A FUSE driver that resolved the path by name
 * itself (fusefat does) could have mounted elsewhere after a swap: that mount is detached again.
 */
function mountedOn(d: PinnedDir, device: string, ours: (e: MountEntry) => boolean): MountEntry {
  const parent = mountIdOf(d.fd);
  // mountinfo names mount points by path, and the owner of the parent may be renaming the pinned
  // directory right now (it is theirs to rename). Read where it is before and after mountinfo:
  // when both agree, that path named the pinned directory while mountinfo was read.
  for (let look = 0; look < 50; look++) {
    const before = d.where;
    const entries = readMountInfo();
    if (d.where !== before) continue;
    const hit = entries.filter((e) => e.parentId === parent && e.mountpoint === before).at(-1);
    if (hit && ours(hit)) return hit;
    break;
  }
  // Not shown to be on the pinned directory (or its owner never stopped renaming it): undo it,
  // found by what it is, not by where it is.
  const where = d.where;
  for (const stray of readMountInfo().filter(ours)) unmountFilesystem(stray, { lazy: true });
  throw new VaultError('unsafe', `${device} was not mounted on ${where}: the mount point was swapped, or kept moving, while mounting`, 'use a mount point in a directory that only you and root can change');
}
/**
 * Kernels built without FAT or exFAT drivers (as some minimal VM kernels are) can still mount them
 * in user space: exfat-fuse through its mount helper, FAT through fusefat. Being FUSE mounts, they
 * are reachable only by root unless allow_other is set; with an owner, the kernel enforces the
 * uid/gid/umask permissions (default_permissions), as the kernel drivers would.
 */
function mountWithFuseDriver(device: string, mountpoint: PinnedDir, type: string, options: string[], readOnly: boolean): { result: RunResult; mountId?: number } {
  // These drivers (libfuse2) resolve their mount point by name themselves (realpath, then mount(2)),
  // so a user who owns the mount point's parent could swap it between the two. They never see the
  // user's directory: they mount on a directory of root's own, and that mount is then moved onto the
  // pinned directory by descriptor, which no name can redirect.
  const stage = stagingDir();
  try {
    const r = runFuseDriver(device, stage.inner, type, options, readOnly);
    if (r.status !== 0) return { result: r };
    // Its id stays the same when it moves: how mountedOn knows it, wherever it lands.
    const staged = readMountInfo().filter((e) => e.mountpoint === stage.inner).at(-1);
    if (!staged) return { result: { status: 32, stdout: '', stderr: `${type}: the driver said it mounted, but nothing is mounted on ${stage.inner}` } };
    const moved = tool('mount', ['--no-canonicalize', '--move', stage.inner, CHILD_FD_PATH], 'mount', undefined, mountpoint.fd);
    if (moved.status !== 0) run('umount', ['-l', '--no-canonicalize', stage.inner]);
    return { result: moved, mountId: staged.id };
  } finally {
    stage.remove();
  }
}

function runFuseDriver(device: string, where: string, type: string, options: string[], readOnly: boolean): RunResult {
  const fuseOptions = options.filter((o) => o !== 'utf8' && o !== 'ro');
  if (fuseOptions.some((o) => o.startsWith('uid='))) fuseOptions.push('allow_other', 'default_permissions');
  if (type === 'exfat')
    return tool('mount', ['--no-canonicalize', readOnly ? '-r' : '-w', '-t', 'exfat-fuse', '-o', [...(readOnly ? ['ro'] : []), ...fuseOptions].join(','), device, where], 'exfat-fuse');
  if (type === 'vfat')
    // fusefat writes only with the explicit rw+ option.
    return tool('fusefat', ['-o', [readOnly ? 'ro' : 'rw+', ...fuseOptions].join(','), device, where], 'fusefat');
  return { status: 32, stdout: '', stderr: `unknown filesystem type '${type}'` };
}

/**
 * A directory only root can reach (inside the checked run directory), on a private bind mount of
 * its own: a mount cannot be moved away from under a shared parent (on systemd machines / is
 * shared), and a private parent also keeps the staged mount from propagating anywhere.
 */
function stagingDir(): { inner: string; remove(): void } {
  const outer = mkdtempSync(path.join(ensurePrivateDir(runDir()), '.stage-'));
  const inner = path.join(outer, 'm');
  mkdirSync(inner, { mode: 0o700 });
  let bound = false;
  const remove = () => {
    if (bound) run('umount', ['-l', '--no-canonicalize', outer]);
    rmSync(outer, { recursive: true, force: true });
  };
  try {
    runOk('mount', ['--no-canonicalize', '--bind', outer, outer], 'mount-failed');
    bound = true;
    runOk('mount', ['--no-canonicalize', '--make-private', outer], 'mount-failed');
  } catch (e) {
    remove();
    throw e;
  }
  return { inner, remove };
}

/**
 * Whether the running kernel can mount `type` by itself: built in, already loaded, or available as
 * a module it will load on demand.
 */
export function kernelSupports(type: string): boolean {
  try {
    const known = readFileSync('/proc/filesystems', 'utf8').split('\n').map((l) => l.split('\t').at(-1)?.trim());
    if (known.includes(type)) return true;
  } catch {
    // No procfs: fall through to the module list.
  }
  for (const list of ['modules.dep', 'modules.builtin']) {
    try {
      const text = readFileSync(`/lib/modules/${release()}/${list}`, 'utf8');
      if (new RegExp(`(^|/)${type.replace(/[^a-z0-9_]/g, '')}\\.ko(\\.[a-z]+)?(:|$)`, 'm').test(text)) return true;
    } catch {
      // Kernels without modules have no such files.
    }
  }
  return false;
}

/** Flags of umount2(2). */
const MNT_DETACH = 2;
const UMOUNT_NOFOLLOW = 8;

/**
 * Unmounts one mount; `lazy` detaches it now and lets the kernel finish when it is no longer used.
 * A path means the topmost mount there now. A mountinfo entry means exactly that mount (by its
 * id and device), wherever it is now: found again in mountinfo, checked through a descriptor of
 * its parent directory, and unmounted through that descriptor (withVerifiedMount), so a name
 * swapped meanwhile can never make this unmount `/` or another user's mount (issue 13).
 */
export function unmountFilesystem(target: string | MountEntry, opts: { lazy?: boolean } = {}): UnmountResult {
  const entry = typeof target === 'string' ? findMount(target) : target;
  if (entry === null) return { ok: false, busy: false, message: `${path.resolve(target as string)}: not mounted` };
  const flags = UMOUNT_NOFOLLOW | (opts.lazy ? MNT_DETACH : 0);
  const r = withVerifiedMount(entry, (parent, name, root) => {
    root.close(); // a descriptor on the mount keeps it busy
    return umountIn(parent, name, flags);
  });
  if (r === null) return { ok: false, busy: false, message: `${entry.mountpoint}: not mounted, or moved while vault was unmounting it` };
  return r;
}

/**
 * Runs `body` on a mount that is still the one `entry` describes (same id, same device): with its
 * parent directory pinned and `name` inside it checked to lead to exactly that mount. A mount point
 * cannot be renamed or removed while mounted, so `name` in that directory stays the mount. Tries
 * again when a name changed between reading mountinfo and pinning; null when the mount is gone.
 */
export function withVerifiedMount<T>(entry: MountEntry, body: (parent: PinnedDir, name: string, root: PinnedDir) => T): T | null {
  // The owner of an ancestor directory may rename it without pause (a racer in the tests does, a
  // million times a minute); each look takes about a millisecond and most land between two swaps.
  for (let attempt = 0; attempt < 200; attempt++) {
    const now = readMountInfo().find((e) => e.id === entry.id && e.devno === entry.devno);
    if (!now || now.mountpoint === '/' || now.mountpoint.endsWith(' (deleted)')) return null;
    let parent: PinnedDir;
    try {
      parent = pinDir(path.dirname(now.mountpoint));
    } catch (e) {
      if (isVaultError(e)) continue; // an ancestor was swapped: read mountinfo again
      throw e;
    }
    try {
      const name = path.basename(now.mountpoint);
      let root: PinnedDir;
      try {
        root = pinDir(pinnedChild(parent, name));
      } catch (e) {
        if (isVaultError(e)) continue;
        throw e;
      }
      let same: boolean;
      try {
        same = mountIdOf(root.fd) === now.id;
        if (same) return body(parent, name, root);
      } finally {
        root.close();
      }
    } finally {
      parent.close();
    }
  }
  return null;
}

/**
 * The mode of a mounted volume's root directory when others may reach into it (null when it is
 * private), made private (0700) on the way when `fix` is set: volumes made before vault did that
 * at creation are not. Acts on the mount verified by descriptor, not on a path.
 */
export function makeRootPrivate(entry: MountEntry, fix: boolean): number | null {
  return withVerifiedMount(entry, (_parent, _name, root) => {
    const mode = root.stat().mode & 0o7777;
    if ((mode & 0o077) === 0) return null;
    if (fix) chmodSync(`/proc/self/fd/${root.fd}`, mode & PRIVATE_DIR_MODE);
    return mode;
  });
}

/** umount2 of `name` in the pinned directory (UMOUNT_NOFOLLOW among `flags`: never a symlink's target). */
function umountIn(parent: PinnedDir, name: string, flags: number): UnmountResult {
  const err = nativeAddon().umount2(pinnedChild(parent, name), flags);
  if (err === 0) return { ok: true };
  return { ok: false, busy: err === 16 /* EBUSY */, message: err === 16 ? 'target is busy' : `umount2 failed (errno ${err})` };
}

/** Whether something is mounted exactly on `p`. */
export function isMountPoint(p: string): boolean {
  return findMountAt(readMountInfo(), p) !== null;
}

/** Mounts on `p` or anywhere below it, in mount-table order (parents before their children). */
export function mountsUnder(p: string): MountEntry[] {
  const entries = readMountInfo();
  const roots = new Set([path.resolve(p)]);
  const real = tryRealpath(p);
  if (real !== null) roots.add(real);
  return entries.filter((e) => [...roots].some((r) => isSameOrUnder(e.mountpoint, r)));
}

/**
 * The mount on a directory, or of a device (when given a /dev path); the topmost one when several are
 * stacked. Null when there is none.
 */
export function findMount(pathOrDevice: string): MountEntry | null {
  const entries = readMountInfo();
  if (!pathOrDevice.startsWith('/dev/')) return findMountAt(entries, pathOrDevice);
  let devno: string | null = null;
  try {
    const st = statSync(pathOrDevice, { bigint: true });
    if (st.isBlockDevice()) devno = devnoOf(st.rdev);
  } catch {
    // Gone or not a device node: fall back to comparing names.
  }
  const hits = entries.filter((e) => e.source === pathOrDevice || (devno !== null && e.devno === devno));
  return hits.at(-1) ?? null;
}

/** Parses /proc/<pid>/mountinfo text (see proc(5)); malformed lines are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    // Optional fields (shared:N, master:N, …) sit between the sixth field and a lone "-".
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 4) continue;
    const id = Number(f[0]);
    const parentId = Number(f[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId)) continue;
    const options = [...f[5]!.split(','), ...f[sep + 3]!.split(',')].map(unescapeField).filter((o) => o !== '');
    out.push({
      id,
      parentId,
      devno: f[2]!,
      root: unescapeField(f[3]!),
      mountpoint: unescapeField(f[4]!),
      fstype: unescapeField(f[sep + 1]!),
      source: unescapeField(f[sep + 2]!),
      options: [...new Set(options)],
    });
  }
  return out;
}

/** Reads the mount table of this process's mount namespace. */
export function readMountInfo(file = '/proc/self/mountinfo'): MountEntry[] {
  try {
    return parseMountInfo(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new VaultError('io', `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** "major:minor" of a stat() st_dev / st_rdev, decoded the way glibc encodes dev_t. */
export function devnoOf(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function findMountAt(entries: MountEntry[], p: string): MountEntry | null {
  // Compare the path as given first: resolving it touches the mounted filesystem's root, which can
  // hang when that filesystem is an unresponsive FUSE mount.
  const resolved = path.resolve(p);
  let hits = entries.filter((e) => e.mountpoint === resolved);
  if (hits.length === 0) {
    const real = tryRealpath(p);
    if (real !== null && real !== resolved) hits = entries.filter((e) => e.mountpoint === real);
  }
  return hits.at(-1) ?? null;
}

function isSameOrUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The kernel escapes space, tab, newline and backslash in mountinfo as \ooo octal. */
function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function tryRealpath(p: string): string | null {
  try {
    return realpathSync.native(p);
  } catch {
    return null;
  }
}

function parseExtraOptions(extra: string | undefined): string[] {
  if (extra === undefined || extra === '') return [];
  if (/[\s\0-\x1f\x7f]/.test(extra)) throw new VaultError('usage', 'mount options must not contain whitespace or control characters');
  const parts = extra.split(',');
  if (parts.some((o) => o === '')) throw new VaultError('usage', `malformed mount options: ${JSON.stringify(extra)}`, 'separate options with single commas, e.g. noatime,sync');
  for (const o of parts) {
    const name = o.split('=')[0]!;
    if (FORBIDDEN_OPTIONS.test(name)) throw new VaultError('usage', `mount option "${name}" is not allowed here`);
  }
  return parts;
}

function checkLabel(type: FsType, label: string): string {
  if (/[\0-\x1f\x7f]/.test(label)) throw new VaultError('usage', 'the volume label must not contain control characters');
  const limits: Record<FsType, [number, string]> = {
    ext4: [16, 'bytes'],
    vfat: [11, 'bytes'],
    exfat: [15, 'characters'],
  };
  const [max, unit] = limits[type];
  const size = type === 'exfat' ? label.length /* UTF-16 code units */ : Buffer.byteLength(label);
  if (size > max) throw new VaultError('usage', `a ${type} label holds at most ${max} ${unit}`);
  if (type === 'vfat' && /["*+,./:;<=>?[\\\]|]/.test(label))
    throw new VaultError('usage', 'a vfat label must not contain any of " * + , . / : ; < = > ? [ \\ ] |');
  return label;
}

function checkId(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v < 0xffffffff))
    throw new VaultError('usage', `invalid ${name}: ${v}`);
}

/** FAT variant to force when mkfs.vfat's own choice failed; null when the size fits none. */
function fatBitsFor(bytes: number | null): 12 | 16 | 32 | null {
  if (bytes === null) return null;
  const MiB = 1 << 20;
  if (bytes >= 512 * MiB) return 32;
  if (bytes >= 16 * MiB) return 16;
  return 12;
}

function deviceBytes(device: string): number | null {
  try {
    const name = path.basename(realpathSync.native(device));
    return Number(readFileSync(`/sys/class/block/${name}/size`, 'utf8').trim()) * 512;
  } catch {
    return null;
  }
}

/** Runs a system tool; a missing tool names the Debian package to install. */
function tool(cmd: string, args: string[], pkg: string, timeoutMs?: number, fd3?: number): RunResult {
  try {
    return run(cmd, args, { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(fd3 === undefined ? {} : { fd3 }) });
  } catch (e) {
    throw missingTool(e, pkg);
  }
}

/** A tool that is not installed, named with the Debian package that has it; other errors as they are. */
function missingTool(e: unknown, pkg: string): unknown {
  return isVaultError(e, 'missing-component') ? new VaultError('missing-component', e.message, `install the Debian package "${pkg}" (apt-get install ${pkg})`) : e;
}

function detail(r: RunResult): string {
  return firstLine(r.stderr) || firstLine(r.stdout) || `exit status ${r.status}`;
}
