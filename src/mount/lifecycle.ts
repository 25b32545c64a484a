/**
 * Mounting a volume: the one place that orders the steps.
 *
 * mount:    open + lock container → unlock → volume server (FUSE) → loop device → filesystem → record
 * A failed mount undoes what it did (UndoStack). Dismounting, listing and cleanup live in
 * dismount.ts, which loads no crypto.
 */
import { chmodSync, chownSync, closeSync, constants as fsc, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { VaultError, isVaultError } from '../errors.js';
import { flockFd } from '../crypto/process-hardening.js';
import { closeContainer, openContainer, type ContainerFile } from '../volume/container-file.js';
import type { FormatAdapter, FormatChoice, UnlockSecret, UnlockedVolume } from '../formats/types.js';
import { abandonServer, handOver, launchServer, type LaunchedServer } from '../server/spawn.js';
import { BLOCK_FILE_NAME, type ServerConfig, type TransportChoice } from '../server/protocol.js';
import { attachLoop, detachLoop } from './loop.js';
import { checkFsAllowed, detectFilesystem, kernelSupports, makeRootPrivate, mountFilesystem, readMountInfo, unmountFilesystem } from './filesystem.js';
import { entriesOf, mountIdOf, pinDir, type PinnedDir } from './pinned.js';
import { run } from './run.js';
import { createVolumeDir, newVolumeId, records, removeVolumeDir, saveRecord, selfIdentity, type VolumeRecord } from './state.js';
import { NO_POLICY, type DismountPolicy } from './policy.js';
import { UndoStack } from './undo.js';
import { stopServer } from './dismount.js';
import { chooseRoute, type Route, type RouteChoice } from './route.js';
import { loopDelete, loopSetup, mountFs, unmountFs, type UdisksLoop } from './udisks.js';
import { fuseDriverNote, fuseUnmount, mountWithDriver, waitReleased } from './fuse-fs.js';

export const DEFAULT_MOUNT_BASE = '/media/vault';

export interface MountOptions extends FormatChoice {
  container: string;
  mountpoint?: string;
  readOnly: boolean;
  fsOptions?: string;
  noFilesystem: boolean;
  /**
   * Produces the secret (passphrase and keyfiles, read the way `adapter` wants them); called after
   * the container is open, locked and its format known. Wiped after the unlock.
   */
  secret: (adapter: FormatAdapter) => Promise<UnlockSecret> | UnlockSecret;
  warn: (message: string) => void;
  /** The user who ran sudo: owns FAT/exFAT mounts, the default mount point and the volume record. */
  owner?: { uid: number; gid: number };
  /** Filesystem types to mount besides ext4, vfat and exfat (--allow-fs). */
  allowFs?: string[];
  signal?: AbortSignal;
  /** When the volume closes by itself: on lock/sleep (through `vault watch`) and after idle time. */
  policy?: DismountPolicy;
  /** Mounted only for a moment by this process (create's mkfs): cleaned up if the process dies. */
  transient?: boolean;
  /** The route forced with --via; otherwise chosen (src/mount/route.ts). */
  via?: Route;
  /** Told which route was taken, and why an earlier one was passed over. */
  note?: (message: string) => void;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new VaultError('interrupted', 'interrupted; everything done so far was undone');
}

/** Opens the container and takes its exclusive lock, or says who holds it. */
export function openLocked(containerPath: string, readOnly: boolean): ContainerFile {
  const c = openContainer(containerPath, readOnly);
  try {
    lockContainer(c);
  } catch (e) {
    closeContainer(c);
    throw e;
  }
  return c;
}

/** Takes the exclusive lock of an open container (held by its volume server while mounted). */
export function lockContainer(c: ContainerFile): void {
  if (flockFd(c.fd, true, true) !== 0)
    throw new VaultError('already-mounted', `${c.path} is already mounted or in use by another vault process`, 'see `vault list`');
}

export async function mountVolume(o: MountOptions): Promise<VolumeRecord> {
  const route = routeFor(o);
  const c = openLocked(resolveContainer(o.container), o.readOnly);
  let headerFile: ContainerFile | undefined;
  let early: PreparedVolume | undefined;
  try {
    // The server starts now, so that its Node start-up overlaps this process's loading of the
    // format code, the passphrase and the KDF.
    early = prepareVolume(c);
    const { detectFormat, unlockVolume } = await import('../formats/index.js');
    if (o.headerPath) headerFile = openContainer(resolveContainer(o.headerPath), true);
    const adapter = detectFormat(c, { ...(o.type ? { type: o.type } : {}), ...(headerFile ? { headerFile } : {}) });
    // A failed or cancelled passphrase (Ctrl-C at the prompt) lands in the finally below, which
    // takes the launched server and its directory away.
    const secret = await o.secret(adapter);
    const volume = await unlockVolume(adapter, c, secret, {
      readOnly: o.readOnly,
      ...(o.slot !== undefined ? { slot: o.slot } : {}),
      ...(o.pim !== undefined ? { pim: o.pim } : {}),
      ...(o.hidden ? { hidden: true } : {}),
      ...(o.useBackupHeader ? { useBackupHeader: true } : {}),
      ...(headerFile ? { headerFile } : {}),
    });
    for (const w of volume.warnings) o.warn(w);
    if (o.signal?.aborted) {
      volume.key.dispose();
      checkAborted(o.signal);
    }
    const prepared = early;
    early = undefined; // from here on, mountUnlocked's undo owns it
    return await mountUnlocked(c, volume, { ...o, route }, prepared);
  } finally {
    if (early) await discardPrepared(early);
    if (headerFile) closeContainer(headerFile);
    closeContainer(c); // the server holds its own descriptor, and with it the lock
  }
}

/** A volume directory and a server launched into it, waiting for the unlocked volume. */
interface PreparedVolume {
  id: string;
  dir: string;
  server: LaunchedServer;
}

/** Makes the volume directory and launches its server, so that Node starts there while this process unlocks. */
function prepareVolume(c: ContainerFile): PreparedVolume {
  const id = newVolumeId();
  const dir = createVolumeDir(id);
  try {
    return { id, dir, server: launchServer(id, c.fd, path.join(dir, 'server.log')) };
  } catch (e) {
    removeVolumeDir(id);
    throw e;
  }
}

async function discardPrepared(p: PreparedVolume): Promise<void> {
  await abandonServer(p.server);
  removeVolumeDir(p.id);
}

export type MountUnlockedOptions = Omit<MountOptions, 'container' | 'secret' | 'via' | keyof FormatChoice> & { route: RouteChoice };

/**
 * The route for this mount, checked before any passphrase is asked: what it needs of the user and
 * the machine, and the options it cannot honour.
 */
export function routeFor(o: Pick<MountOptions, 'via' | 'noFilesystem' | 'mountpoint' | 'note'>): RouteChoice {
  const choice = chooseRoute(o.via, !o.noFilesystem);
  if (choice.route === 'udisks' && o.mountpoint)
    throw new VaultError('usage', 'udisks chooses the mount point itself (/media/$USER/…)', 'omit the mount point, or mount with `--via fuse`');
  if (choice.route !== 'root') o.note?.(`route: ${choice.route}${choice.note ? ` (${choice.note})` : ''}`);
  return choice;
}

/**
 * Mounts a container that is already open, locked and unlocked (used by mount, and by create to
 * format through the same path), whatever its format. Consumes `volume.key`. On failure, undoes
 * every step it took. The caller has checked requireMountPrivileges() before asking for secrets.
 */
export async function mountUnlocked(c: ContainerFile, volume: UnlockedVolume, o: MountUnlockedOptions, prepared?: PreparedVolume): Promise<VolumeRecord> {
  const undo = new UndoStack();
  try {
    const record = await startVolume(c, volume, o, undo, prepared);
    undo.commit();
    return record;
  } catch (e) {
    volume.key.dispose();
    const failed = await undo.unwind();
    for (const f of failed) o.warn(`cleanup: ${f}`);
    throw e;
  }
}

/** Server, loop device, filesystem and record for an unlocked container. Consumes `v.key`. */
async function startVolume(c: ContainerFile, v: UnlockedVolume, o: MountUnlockedOptions, undo: UndoStack, prepared?: PreparedVolume): Promise<VolumeRecord> {
  const key = v.key;
  const { id, dir, server: launched } = prepared ?? prepareVolume(c);
  undo.push('remove volume directory', () => removeVolumeDir(id));
  let handed = false;
  undo.push('abandon the volume server', async () => {
    if (!handed) await abandonServer(launched);
  });
  const config: ServerConfig = {
    volumeId: id,
    containerPath: c.path,
    fuseDir: path.join(dir, 'fuse'),
    readOnly: o.readOnly,
    sectorSize: v.sectorSize,
    dataOffset: v.dataOffset,
    dataSize: v.dataSize,
    firstTweak: v.firstTweak.toString(),
    tweakStep: v.tweakStep.toString(),
    transport: transportChoice(),
    idleSeconds: o.policy?.idleSeconds ?? null,
    // udisksd (root) and the loop driver open the block file of a user's FUSE mount.
    allowRoot: o.route.route === 'udisks',
  };
  let server;
  try {
    handed = true;
    server = await handOver(launched, config, key);
  } finally {
    key.dispose();
  }
  undo.push('stop volume server', () => stopServer(server.pid, server.startTime, config.fuseDir));
  checkAborted(o.signal);

  const st = fstatSync(c.fd); // the file this command opened, not whatever the path names now
  const record: VolumeRecord = {
    id,
    container: c.path,
    containerId: `${st.dev}:${st.ino}`,
    uuid: v.uuid,
    format: v.format,
    mountpoint: null,
    mountpointCreated: false,
    fuseDir: config.fuseDir,
    blockFile: path.join(config.fuseDir, BLOCK_FILE_NAME),
    loopDevice: null,
    fsType: null,
    readOnly: o.readOnly,
    serverPid: server.pid,
    transport: server.transport,
    serverStartTime: server.startTime,
    mountedAt: new Date().toISOString(),
    policy: o.policy ?? NO_POLICY,
    ...(o.transient ? { transientOwner: selfIdentity() } : {}),
    ownerUid: actingUid(o.owner),
    route: o.route.route,
  };
  if (o.route.route === 'root') await attachRoot(record, v.sectorSize, o, undo);
  else if (o.route.route === 'udisks') await attachUdisks(record, o, undo);
  else if (!o.noFilesystem) mountDriver(record, o, undo);
  checkAborted(o.signal);
  saveRecord(record);
  return record;
}

/** The root route: vault's own loop device and mount(2). */
async function attachRoot(record: VolumeRecord, sectorSize: number, o: MountUnlockedOptions, undo: UndoStack): Promise<void> {
  const loop = attachLoop(record.blockFile, { readOnly: o.readOnly, directIo: true, sectorSize });
  undo.push(`detach ${loop.device}`, () => detachLoop(loop.device));
  record.loopDevice = loop.device;
  checkAborted(o.signal);
  if (o.noFilesystem) return;
  const fsType = detectFilesystem(loop.device);
  if (!fsType)
    throw new VaultError('mount-failed', 'the volume holds no filesystem that could be recognised', 'mount it with --no-filesystem to reach the raw block device');
  checkFsAllowed(fsType, o.allowFs);
  const mp = prepareMountpoint(o.mountpoint, record.container, o.owner);
  try {
    if (mp.created) undo.push(`remove ${mp.path}`, () => rmdirSync(mp.path));
    const entry = mountFilesystem(loop.device, mp.dir, {
      type: fsType,
      readOnly: o.readOnly,
      ...(o.fsOptions ? { extraOptions: o.fsOptions } : {}),
      ...(o.owner ? { ownerUid: o.owner.uid, ownerGid: o.owner.gid } : {}),
    });
    undo.push(`unmount ${entry.mountpoint}`, () => unmountFilesystem(entry, { lazy: true }));
    record.mountpoint = entry.mountpoint;
    record.mountId = entry.id;
    record.mountDevno = entry.devno;
  } finally {
    mp.dir.close();
  }
  record.mountpointCreated = mp.created;
  record.fsType = fsType;
  if (fsType === 'ext4') keepRootPrivate(record, o);
}

/**
 * The udisks route: udisksd sets up a loop device on the descriptor of the block file (root never
 * opens the user's path) and mounts its filesystem under /media/<user>, as a desktop does. No
 * autoclear: udev's probe would detach the device before the mount (issue 15).
 */
async function attachUdisks(record: VolumeRecord, o: MountUnlockedOptions, undo: UndoStack): Promise<void> {
  let fsType: string | null = null;
  if (!o.noFilesystem) {
    fsType = detectFilesystem(record.blockFile);
    if (!fsType)
      throw new VaultError('mount-failed', 'the volume holds no filesystem that could be recognised', 'mount it with --no-filesystem to reach the raw block file');
    checkFsAllowed(fsType, o.allowFs);
    if (!kernelSupports(fsType)) {
      // udisksd mounts with the kernel's drivers only; FAT and exFAT are often modules not loaded.
      o.warn(`the running kernel has no ${fsType} driver, so udisks cannot mount it: taking the fuse route instead`);
      record.route = 'fuse';
      mountDriver(record, o, undo);
      return;
    }
  }
  const fd = openSync(record.blockFile, (o.readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | fsc.O_NOFOLLOW);
  let loop: UdisksLoop;
  try {
    loop = loopSetup(fd, o.readOnly);
  } finally {
    closeSync(fd);
  }
  undo.push(`delete ${loop.device}`, () => loopDelete(loop.object));
  record.loopDevice = loop.device;
  record.udisksObject = loop.object;
  checkAborted(o.signal);
  if (!fsType) return;
  await mountFs(loop, fsType, o.readOnly);
  undo.push(`unmount ${loop.device}`, () => unmountFs(loop.object, true));
  const devno = readFileSync(`/sys/block/${path.basename(loop.device)}/dev`, 'utf8').trim();
  const entry = readMountInfo().filter((e) => e.devno === devno).at(-1);
  if (!entry) throw new VaultError('mount-failed', `udisks reported ${loop.device} mounted, but it is not in the mount table`);
  record.mountpoint = entry.mountpoint;
  record.mountId = entry.id;
  record.mountDevno = entry.devno;
  record.fsType = fsType;
  if (fsType === 'ext4') keepRootPrivate(record, o);
}

/** The fuse route: the filesystem's user-space driver (fuse2fs…) on the block file. */
function mountDriver(record: VolumeRecord, o: MountUnlockedOptions, undo: UndoStack): void {
  const fsType = detectFilesystem(record.blockFile);
  if (!fsType)
    throw new VaultError('mount-failed', 'the volume holds no filesystem that could be recognised', 'mount it with --no-filesystem to reach the raw block file');
  checkFsAllowed(fsType, o.allowFs);
  const mp = prepareMountpoint(o.mountpoint, record.container, o.owner);
  mp.dir.close();
  if (mp.created) undo.push(`remove ${mp.path}`, () => rmdirSync(mp.path));
  const entry = mountWithDriver(record.blockFile, mp.path, fsType, o.readOnly);
  undo.push(`unmount ${mp.path}`, async () => {
    fuseUnmount(mp.path, true);
    await waitReleased(record.blockFile, 30_000);
  });
  o.warn(fuseDriverNote(fsType));
  record.mountpoint = entry.mountpoint;
  record.mountId = entry.id;
  record.mountDevno = entry.devno;
  record.mountpointCreated = mp.created;
  record.fsType = fsType;
}

/**
 * FUSE over io_uring where this kernel offers it, classic /dev/fuse otherwise; VAULT_FUSE_TRANSPORT
 * (io_uring, classic or auto) chooses explicitly (README, "Environment"). An unknown value is an
 * error rather than a guess.
 */
function transportChoice(): TransportChoice {
  const v = process.env['VAULT_FUSE_TRANSPORT'];
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'io_uring' || v === 'classic') return v;
  throw new VaultError('usage', `VAULT_FUSE_TRANSPORT is "${v}"`, 'set it to io_uring, classic or auto, or unset it');
}

export function resolveContainer(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    throw new VaultError('not-a-container', `${p} does not exist`);
  }
}

/** The user vault acts for: the one who ran sudo, else whoever runs vault. */
function actingUid(owner: { uid: number } | undefined): number {
  return owner?.uid ?? process.getuid?.() ?? 0;
}

/** The checked mount point, held by descriptor (pinned.ts) until it is mounted on. */
interface PreparedMountpoint {
  path: string;
  dir: PinnedDir;
  created: boolean;
}

/**
 * Validates a given mount point, or picks and creates the default one, /media/vault/<user>/<name>.
 * Every check is made on the descriptor that is then mounted on (issue 13): a directory, owned by
 * root or the user vault runs for, empty, not already a mount point, outside any vault volume,
 * and still where the path said when it was opened.
 */
function prepareMountpoint(given: string | undefined, containerPath: string, owner: { uid: number; gid: number } | undefined): PreparedMountpoint {
  if (given) {
    const abs = path.resolve(given);
    let real: string;
    try {
      real = realpathSync(abs);
    } catch {
      throw new VaultError('usage', `mount point ${abs} does not exist`, `create it first (mkdir -p ${abs}), or omit it to use ${DEFAULT_MOUNT_BASE}/<user>/<name>`);
    }
    try {
      trustedSymlinksOnly(abs, owner);
      if (!statSync(real).isDirectory()) throw new VaultError('usage', `mount point ${abs} is not a directory`);
    } catch (e) {
      if (isVaultError(e)) throw e;
      throw new VaultError('unsafe', `mount point ${abs} changed while vault checked it`, 'use a mount point in a directory that only you and root can change');
    }
    return { path: real, dir: checkedMountpoint(real, abs, owner), created: false };
  }
  const userDir = process.geteuid?.() === 0 ? userMountBase(owner) : ownVaultsDir();
  const base = path.basename(containerPath).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'volume';
  for (let n = 1; n < 100; n++) {
    const candidate = path.join(userDir, n === 1 ? base : `${base}-${n}`);
    let created = true;
    try {
      mkdirSync(candidate, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      created = false;
    }
    try {
      return { path: candidate, dir: checkedMountpoint(candidate, candidate, owner), created };
    } catch (e) {
      if (created) rmdirSync(candidate);
      if (!isVaultError(e)) throw e; // taken (mounted, not empty, not a directory): try the next name
    }
  }
  throw new VaultError('busy', `no free mount point under ${userDir} for ${base}`);
}

/**
 * Refuses a mount point path that goes through a symlink another user owns (as the kernel's
 * protected_symlinks does in sticky directories): that user chose where it leads, and could point
 * it at an empty directory of root's. Symlinks of root or of the user vault runs for are followed.
 */
function trustedSymlinksOnly(abs: string, owner: { uid: number } | undefined): void {
  const user = actingUid(owner);
  let p = '/';
  for (const part of abs.split('/').filter(Boolean)) {
    p = path.join(p, part);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) {
      if (st.uid !== 0 && st.uid !== user)
        throw new VaultError('unsafe', `mount point ${abs} goes through ${p}, a symlink of another user (uid ${st.uid})`, 'give the real path of a directory of your own');
      p = realpathSync.native(p);
    }
  }
}

/** Opens `real` by descriptor and checks it there; `shown` is the path the user gave. */
function checkedMountpoint(real: string, shown: string, owner: { uid: number } | undefined): PinnedDir {
  const dir = pinDir(real);
  try {
    if (dir.where !== real) throw new VaultError('unsafe', `mount point ${shown} was moved while vault checked it`, 'use a mount point in a directory that only you and root can change');
    const st = dir.stat();
    const user = actingUid(owner);
    if (st.uid !== 0 && st.uid !== user)
      throw new VaultError('unsafe', `mount point ${shown} belongs to another user (uid ${st.uid})`, 'mount on a directory of your own, or omit the mount point');
    const host = records().find((r) => r.mountpoint && (real === r.mountpoint || real.startsWith(r.mountpoint + '/')));
    if (host) throw new VaultError('usage', `mount point ${shown} is inside the mounted vault volume ${host.container}`, 'choose a mount point outside any vault volume');
    // Opening a mount point lands on the root of what is mounted there, whose mount sits at `real`.
    const on = readMountInfo().find((e) => e.id === mountIdOf(dir.fd));
    if (on?.mountpoint === real) throw new VaultError('busy', `${shown} is already a mount point`);
    if (entriesOf(dir).length > 0) throw new VaultError('usage', `mount point ${shown} is not empty`, 'mount on an empty directory');
    return dir;
  } catch (e) {
    dir.close();
    throw e;
  }
}

/**
 * /media/vault/<user>: the user's own 0700 directory for default mount points, so no other user
 * can even reach their volumes (issue 13). /media/vault itself is root's, 0711. Either is made, or
 * checked and put right when it exists: a directory (not a symlink) of the right owner.
 */
function userMountBase(owner: { uid: number; gid: number } | undefined): string {
  ownDir(DEFAULT_MOUNT_BASE, 0, 0, 0o711);
  const uid = actingUid(owner);
  const dir = path.join(DEFAULT_MOUNT_BASE, userName(uid));
  ownDir(dir, uid, owner?.gid ?? process.getgid?.() ?? 0, 0o700);
  return dir;
}

/** An ordinary user's default mount points (fuse route): ~/Vaults, 0700. */
function ownVaultsDir(): string {
  const uid = process.geteuid?.() ?? 0;
  const dir = path.join(homedir(), 'Vaults');
  ownDir(dir, uid, process.getegid?.() ?? 0, 0o700);
  return dir;
}

function ownDir(dir: string, uid: number, gid: number, mode: number): void {
  try {
    mkdirSync(dir, { mode });
    chownSync(dir, uid, gid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid)
    throw new VaultError('unsafe', `${dir} is not a directory owned by uid ${uid}`, `remove or fix ${dir}, then mount again`);
  if ((st.mode & 0o7777) !== mode) chmodSync(dir, mode);
}

/** The login name of `uid` (getent: /etc/passwd, LDAP…), or the number when it has none. */
function userName(uid: number): string {
  const name = run('getent', ['passwd', String(uid)]).stdout.split(':')[0] ?? '';
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name) ? name : String(uid);
}

/**
 * Makes the volume's root directory 0700 when it is not (volumes from before vault did this at
 * creation): the files are the owner's only, wherever the volume is mounted. Read-only: a warning.
 */
function keepRootPrivate(record: VolumeRecord, o: MountUnlockedOptions): void {
  const entry = readMountInfo().find((e) => e.id === record.mountId);
  const old = entry ? makeRootPrivate(entry, !o.readOnly) : null;
  if (old === null) return;
  if (o.readOnly) o.warn(`the volume's root directory is mode ${old.toString(8)}: other users may read it where they can reach ${record.mountpoint}`);
  else o.warn(`made the volume's root directory private to its owner (mode ${old.toString(8)} → 700)`);
}
