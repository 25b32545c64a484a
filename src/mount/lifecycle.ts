/**
 * Mounting a volume: the one place that orders the steps.
 *
 * mount:    open + lock container → unlock → volume server (FUSE) → loop device → filesystem → record
 * A failed mount undoes what it did (UndoStack). Dismounting, listing and cleanup live in
 * dismount.ts, which loads no crypto.
 */
import { existsSync, fstatSync, mkdirSync, readdirSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { flockFd } from '../crypto/process-hardening.js';
import { closeContainer, openContainer, type ContainerFile } from '../volume/container.js';
import { detectFormat, unlockVolume } from '../formats/index.js';
import type { FormatAdapter, FormatChoice, UnlockSecret, UnlockedVolume } from '../formats/types.js';
import { startServer } from '../server/spawn.js';
import { BLOCK_FILE_NAME, type ServerConfig, type ServerEngine } from '../server/protocol.js';
import { nativeFuseAddon } from '../crypto/native-fuse.js';
import { attachLoop, detachLoop } from './loop.js';
import { detectFilesystem, isMountPoint, mountFilesystem, unmountFilesystem } from './filesystem.js';
import { createVolumeDir, newVolumeId, records, removeVolumeDir, saveRecord, selfIdentity, type VolumeRecord } from './state.js';
import { NO_POLICY, type DismountPolicy } from './policy.js';
import { UndoStack } from './undo.js';
import { requireMountPrivileges } from './privileges.js';
import { stopServer } from './dismount.js';

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
  /** Owner for FAT/exFAT mounts (the user who ran sudo). */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
  /** When the volume closes by itself: on lock/sleep (through `vault watch`) and after idle time. */
  policy?: DismountPolicy;
  /** Mounted only for a moment by this process (create's mkfs): cleaned up if the process dies. */
  transient?: boolean;
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
  requireMountPrivileges('vault mount');
  const c = openLocked(resolveContainer(o.container), o.readOnly);
  let headerFile: ContainerFile | undefined;
  try {
    if (o.headerPath) headerFile = openContainer(resolveContainer(o.headerPath), true);
    const adapter = detectFormat(c, { ...(o.type ? { type: o.type } : {}), ...(headerFile ? { headerFile } : {}) });
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
    return await mountUnlocked(c, volume, o);
  } finally {
    if (headerFile) closeContainer(headerFile);
    closeContainer(c); // the server holds its own descriptor, and with it the lock
  }
}

export type MountUnlockedOptions = Omit<MountOptions, 'container' | 'secret' | keyof FormatChoice>;

/**
 * Mounts a container that is already open, locked and unlocked (used by mount, and by create to
 * format through the same path), whatever its format. Consumes `volume.key`. On failure, undoes
 * every step it took. The caller has checked requireMountPrivileges() before asking for secrets.
 */
export async function mountUnlocked(c: ContainerFile, volume: UnlockedVolume, o: MountUnlockedOptions): Promise<VolumeRecord> {
  const undo = new UndoStack();
  try {
    const record = await startVolume(c, volume, o, undo);
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
async function startVolume(c: ContainerFile, v: UnlockedVolume, o: MountUnlockedOptions, undo: UndoStack): Promise<VolumeRecord> {
  const key = v.key;
  const id = newVolumeId();
  const dir = createVolumeDir(id);
  undo.push('remove volume directory', () => removeVolumeDir(id));
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
    engine: serverEngine(o.warn),
    idleSeconds: o.policy?.idleSeconds ?? null,
  };
  let server;
  try {
    server = await startServer(config, c.fd, key, path.join(dir, 'server.log'));
  } finally {
    key.dispose();
  }
  undo.push('stop volume server', () => stopServer(server.pid, server.startTime, config.fuseDir));
  checkAborted(o.signal);

  const loop = attachLoop(server.blockFile, { readOnly: o.readOnly, directIo: true, sectorSize: v.sectorSize });
  undo.push(`detach ${loop.device}`, () => detachLoop(loop.device));
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
    loopDevice: loop.device,
    fsType: null,
    readOnly: o.readOnly,
    serverPid: server.pid,
    serverStartTime: server.startTime,
    mountedAt: new Date().toISOString(),
    policy: o.policy ?? NO_POLICY,
    ...(o.transient ? { transientOwner: selfIdentity() } : {}),
  };

  if (!o.noFilesystem) {
    const fsType = detectFilesystem(loop.device);
    if (!fsType)
      throw new VaultError('mount-failed', 'the volume holds no filesystem that could be recognised', 'mount it with --no-filesystem to reach the raw block device');
    const mp = prepareMountpoint(o.mountpoint, c.path);
    if (mp.created) undo.push(`remove ${mp.path}`, () => rmdirSync(mp.path));
    mountFilesystem(loop.device, mp.path, {
      type: fsType,
      readOnly: o.readOnly,
      ...(o.fsOptions ? { extraOptions: o.fsOptions } : {}),
      ...(o.owner ? { ownerUid: o.owner.uid, ownerGid: o.owner.gid } : {}),
    });
    undo.push(`unmount ${mp.path}`, () => unmountFilesystem(mp.path, { lazy: true }));
    record.mountpoint = mp.path;
    record.mountpointCreated = mp.created;
    record.fsType = fsType;
  }
  checkAborted(o.signal);
  saveRecord(record);
  return record;
}

/**
 * The native server unless it is missing (the addon did not build), or VAULT_SERVER_ENGINE names
 * the other one (the test suite runs on both engines that way).
 */
function serverEngine(warn: (m: string) => void): ServerEngine {
  const forced = process.env.VAULT_SERVER_ENGINE;
  if (forced === 'native' || forced === 'fuse-native') return forced;
  if (nativeFuseAddon()) return 'native';
  warn('the native volume server is not built; using the slower fuse-native server (run `npm run build:native`)');
  return 'fuse-native';
}

export function resolveContainer(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    throw new VaultError('not-a-container', `${p} does not exist`);
  }
}

/** Validates a given mount point, or picks and creates the default one, /media/vault/<name>. */
function prepareMountpoint(given: string | undefined, containerPath: string): { path: string; created: boolean } {
  const inVolume = (p: string) =>
    records().find((r) => r.mountpoint && (p === r.mountpoint || p.startsWith(r.mountpoint + '/')));
  if (given) {
    const abs = path.resolve(given);
    let st;
    try {
      st = statSync(abs);
    } catch {
      throw new VaultError('usage', `mount point ${abs} does not exist`, `create it first (mkdir -p ${abs}), or omit it to use ${DEFAULT_MOUNT_BASE}/<name>`);
    }
    if (!st.isDirectory()) throw new VaultError('usage', `mount point ${abs} is not a directory`);
    const real = realpathSync(abs);
    const host = inVolume(real);
    if (host) throw new VaultError('usage', `mount point ${abs} is inside the mounted vault volume ${host.container}`, 'choose a mount point outside any vault volume');
    if (isMountPoint(real)) throw new VaultError('busy', `${abs} is already a mount point`);
    if (readdirSync(real).length > 0) throw new VaultError('usage', `mount point ${abs} is not empty`, 'mount on an empty directory');
    return { path: real, created: false };
  }
  const base = path.basename(containerPath).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '_') || 'volume';
  mkdirSync(DEFAULT_MOUNT_BASE, { recursive: true, mode: 0o755 });
  for (let n = 1; n < 100; n++) {
    const candidate = path.join(DEFAULT_MOUNT_BASE, n === 1 ? base : `${base}-${n}`);
    if (!existsSync(candidate)) {
      mkdirSync(candidate, { mode: 0o700 });
      return { path: candidate, created: true };
    }
    if (statSync(candidate).isDirectory() && !isMountPoint(candidate) && readdirSync(candidate).length === 0)
      return { path: candidate, created: false };
  }
  throw new VaultError('busy', `no free mount point under ${DEFAULT_MOUNT_BASE} for ${base}`);
}

