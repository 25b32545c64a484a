/**
 * Mounting a volume: the one place that orders the steps.
 *
 * mount:    open + lock container → unlock → volume server (FUSE) → loop device → filesystem → record
 * A failed mount undoes what it did (UndoStack). Dismounting, listing and cleanup live in
 * dismount.ts, which loads no crypto.
 */
import { closeSync, constants as fsc, fstatSync, openSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { envValue } from '../env.js';
import { VaultError } from '../errors.js';
import { flockFd } from '../crypto/process-hardening.js';
import { closeContainer, openContainer, resolveContainer, type ContainerFile } from '../volume/container-file.js';
import type { FormatAdapter, FormatChoice, UnlockSecret, UnlockedVolume } from '../formats/types.js';
import type { TokenUnlockOptions } from '../formats/vault-tokens.js';
import { abandonServer, handOver, launchServer, type LaunchedServer } from '../server/spawn.js';
import { BLOCK_FILE_NAME, type ServerConfig, type TransportChoice } from '../server/protocol.js';
import { attachLoop, detachLoop, loopDevno } from './loop.js';
import { checkFsAllowed, detectFilesystem, kernelSupports, makeRootPrivate, mountFilesystem, readMountInfo, unmountFilesystem } from './filesystem.js';
import { actingUid, prepareMountpoint } from './mountpoint.js';
import { createVolumeDir, newVolumeId, removeVolumeDir, saveRecord, selfIdentity, type VolumeRecord } from './state.js';
import { NO_POLICY, type DismountPolicy } from './policy.js';
import { UndoStack } from './undo.js';
import { wipe } from '../crypto/wipe.js';
import type { ProtectedRange } from './hidden-protection.js';
import { chooseRoute, type Route, type RouteChoice } from './route.js';
import type { UdisksLoop } from './udisks.js';
import { discardsForFormat, discardsForOptions, refuseDiscardsNow, warnIfNoLoopDiscard, type DiscardSource } from './discards.js';

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
  /** Progress of work done before the mount (finishing an interrupted re-encryption). */
  progress?: (label: string, done: number, total: number) => void;
  /** How a vault container's TPM2/FIDO2 tokens are tried before the passphrase (absent: never). */
  tokens?: TokenUnlockOptions & { use: 'auto' | 'only' | 'never' };
  /** --allow-legacy-write: serve a TrueCrypt LRW/CBC volume read-write (otherwise read-only, with a warning). */
  allowLegacyWrite?: boolean;
  /** --allow-discards, or the config file's allowDiscards (src/mount/discards.ts); off when absent. */
  allowDiscards?: DiscardSource;
  /**
   * --protect-hidden: the hidden volume's secret, called after `secret`. Its header is opened to
   * learn where it lies, and writes there are refused (src/mount/hidden-protection.ts).
   */
  protectHidden?: (adapter: FormatAdapter) => Promise<UnlockSecret> | UnlockSecret;
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
  const discards = discardsForOptions(o, route.route);
  const c = openLocked(resolveContainer(o.container), o.readOnly);
  let headerFile: ContainerFile | undefined;
  let early: PreparedVolume | undefined;
  try {
    // The server starts now, so that its Node start-up overlaps this process's loading of the
    // format code, the passphrase and the KDF.
    early = prepareVolume(c);
    const { detectFormat, unlockVolume, useHeaderCopy } = await import('../formats/index.js');
    if (o.headerPath) headerFile = openContainer(resolveContainer(o.headerPath), true);
    const adapter = await detectFormat(c, { ...(o.type ? { type: o.type } : {}), ...(headerFile ? { headerFile } : {}) });
    useHeaderCopy(adapter.name, c, o.headerCopy);
    const allowDiscards = discards && discardsForFormat(adapter.name, o.allowDiscards, o.note);
    // A vault container's TPM2 and FIDO2 tokens first (spec §14.5), then the passphrase.
    const byToken = await tokenUnlock(adapter.name, c, o, headerFile);
    // A failed or cancelled passphrase (Ctrl-C at the prompt) lands in the finally below, which
    // takes the launched server and its directory away.
    const secret = byToken ? null : await o.secret(adapter);
    const hiddenSecret = o.protectHidden ? await o.protectHidden(adapter) : undefined;
    const volume = byToken ?? await unlockVolume(adapter, c, secret!, {
      readOnly: o.readOnly,
      ...(hiddenSecret ? { protectHidden: true } : {}),
      ...(o.slot !== undefined ? { slot: o.slot } : {}),
      ...(o.pim !== undefined ? { pim: o.pim } : {}),
      ...(o.hidden ? { hidden: true } : {}),
      ...(o.useBackupHeader ? { useBackupHeader: true } : {}),
      ...(o.hash ? { hash: o.hash } : {}),
      ...(o.system ? { system: true } : {}),
      ...(headerFile ? { headerFile } : {}),
      ...(o.progress ? { onProgress: o.progress } : {}),
    }).catch((e: unknown) => {
      if (hiddenSecret) wipe(hiddenSecret.passphrase, ...hiddenSecret.keyfiles); // never reached its unlock
      throw e;
    });
    let protectedRange: ProtectedRange | undefined;
    const readOnly = o.readOnly || legacyReadOnly(volume, o);
    try {
      if (hiddenSecret) protectedRange = await (await import('./hidden-protection.js')).hiddenVolumeRange(adapter, c, hiddenSecret, o.pim, volume);
    } catch (e) {
      volume.key.dispose();
      throw e;
    }
    for (const w of volume.warnings) o.warn(w);
    if (o.signal?.aborted) {
      volume.key.dispose();
      checkAborted(o.signal);
    }
    const prepared = early;
    early = undefined; // from here on, mountUnlocked's undo owns it
    return await mountUnlocked(c, volume, { ...o, readOnly, route, discards: allowDiscards, ...(protectedRange ? { protectedRange } : {}) }, prepared);
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

export type MountUnlockedOptions = Omit<MountOptions, 'container' | 'secret' | 'via' | 'allowDiscards' | 'protectHidden' | keyof FormatChoice> & {
  route: RouteChoice;
  /** --protect-hidden: data-area bytes the server refuses to write (hidden-protection.ts). */
  protectedRange?: ProtectedRange;
  /** Discards punch holes in the container: checked against route, read-only and format (discards.ts). */
  discards?: boolean;
};

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
    cipher: [...v.cipher],
    ...(v.legacy ? { engine: v.legacy.chain } : v.engine !== undefined ? { engine: v.engine } : {}),
    transport: transportChoice(),
    idleSeconds: o.policy?.idleSeconds ?? null,
    // udisksd (root) and the loop driver open the block file of a user's FUSE mount.
    allowRoot: o.route.route === 'udisks',
    pageCache: o.route.route === 'fuse',
    allowDiscards: !!o.discards,
    // A hole (a discarded sector, or one a quick container never wrote) reads as zeros: vault's own
    // format only (spec/format.md §8); other formats' readers decrypt it, and so does vault for them.
    zeroSectors: v.format === 'vault',
    ...(o.protectedRange ? { protectedRange: o.protectedRange } : {}),
  };
  let server;
  try {
    handed = true;
    server = await handOver(launched, config, key);
  } finally {
    key.dispose();
  }
  // dismount.ts is loaded only if it is needed (it and its imports are ~5 modules of a mount's start).
  undo.push('stop volume server', async () => (await import('./dismount.js')).stopServer(server.pid, server.startTime, config.fuseDir));
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
    allowDiscards: !!o.discards,
    ...(o.protectedRange ? { protectHidden: true } : {}),
  };
  if (o.route.route === 'root') await attachRoot(record, v.sectorSize, o, undo);
  else if (o.route.route === 'udisks') await attachUdisks(record, o, undo);
  else if (!o.noFilesystem) await mountDriver(record, o, undo);
  checkAborted(o.signal);
  saveRecord(record);
  return record;
}

/** The filesystem on the decrypted device or block file, if it is one vault may mount. */
function allowedFilesystem(device: string, o: MountUnlockedOptions): string {
  const fsType = detectFilesystem(device, o.allowFs);
  if (!fsType)
    throw new VaultError('mount-failed', 'the volume holds no filesystem that could be recognised', `mount it with --no-filesystem to reach the raw ${device.startsWith('/dev/') ? 'block device' : 'block file'}`);
  checkFsAllowed(fsType, o.allowFs);
  return fsType;
}

/** The root route: vault's own loop device and mount(2). */
async function attachRoot(record: VolumeRecord, sectorSize: number, o: MountUnlockedOptions, undo: UndoStack): Promise<void> {
  const loop = attachLoop(record.blockFile, { readOnly: o.readOnly, directIo: true, sectorSize });
  undo.push(`detach ${loop.device}`, () => detachLoop(loop.device));
  record.loopDevice = loop.device;
  if (o.discards) warnIfNoLoopDiscard(loop.device, o.warn);
  else if (!o.readOnly) refuseDiscardsNow(loop.device, loop.sectorSize);
  checkAborted(o.signal);
  if (o.noFilesystem) return;
  const fsType = allowedFilesystem(loop.device, o);
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
    fsType = allowedFilesystem(record.blockFile, o);
    if (!kernelSupports(fsType)) {
      // udisksd mounts with the kernel's drivers only; FAT and exFAT are often modules not loaded.
      o.warn(`the running kernel has no ${fsType} driver, so udisks cannot mount it: taking the fuse route instead`);
      record.route = 'fuse';
      await mountDriver(record, o, undo);
      return;
    }
  }
  const { loopDelete, loopSetup, mountFs, unmountFs } = await import('./udisks.js'); // the udisks route's alone
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
  const devno = loopDevno(loop.device);
  const entry = readMountInfo().filter((e) => e.devno === devno).at(-1);
  if (!entry) throw new VaultError('mount-failed', `udisks reported ${loop.device} mounted, but it is not in the mount table`);
  record.mountpoint = entry.mountpoint;
  record.mountId = entry.id;
  record.mountDevno = entry.devno;
  record.fsType = fsType;
  if (fsType === 'ext4') keepRootPrivate(record, o);
}

/** The fuse route: the filesystem's user-space driver (fuse2fs…) on the block file. */
async function mountDriver(record: VolumeRecord, o: MountUnlockedOptions, undo: UndoStack): Promise<void> {
  const { fuseDriverNote, fuseUnmount, mountWithDriver, waitReleased } = await import('./fuse-fs.js'); // the fuse route's alone
  const fsType = allowedFilesystem(record.blockFile, o);
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
  const v = envValue('VAULT_FUSE_TRANSPORT');
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'io_uring' || v === 'classic') return v;
  throw new VaultError('usage', `VAULT_FUSE_TRANSPORT is "${v}"`, 'set it to io_uring, classic or auto, or unset it');
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

/**
 * The volume unlocked by a token, or null: ask for the passphrase (never with --token-only). A vault
 * container's TPM2/FIDO2 tokens, or a LUKS2 container's systemd-tpm2/systemd-fido2 tokens.
 */
async function tokenUnlock(format: string, c: ContainerFile, o: MountOptions, headerFile: ContainerFile | undefined): Promise<UnlockedVolume | null> {
  try {
    return await tokenUnlockWith(format, c, o, headerFile);
  } finally {
    o.tokens?.dispose?.();
  }
}

async function tokenUnlockWith(format: string, c: ContainerFile, o: MountOptions, headerFile: ContainerFile | undefined): Promise<UnlockedVolume | null> {
  const t = o.tokens;
  if (!t || t.use === 'never') return null;
  if (format !== 'vault' && format !== 'luks2') {
    if (t.use === 'only') throw new VaultError('usage', `--token-only: ${format} containers have no tokens vault can use`);
    return null;
  }
  const unlocker =
    format === 'luks2'
      ? await (await import('../formats/luks2/tokens.js')).luks2TokenUnlocker(c, { readOnly: o.readOnly, ...(headerFile ? { headerFile } : {}) }, t)
      : (await import('../formats/vault-tokens.js')).vaultTokenUnlocker(c, t);
  if (!unlocker) {
    if (t.use === 'only')
      throw new VaultError('no-keyslot', `${c.path} has no ${format === 'vault' ? 'TPM2 or FIDO2' : 'systemd-tpm2 or systemd-fido2'} token`, format === 'vault' ? 'enrol one with `vault enroll --tpm2` or `--fido2`' : undefined);
    return null;
  }
  const v = await unlocker();
  if (!v && t.use === 'only') throw new VaultError('token-refused', 'no token unlocked the container (--token-only)', 'see the notes above; without --token-only vault asks for the passphrase');
  return v;
}

/**
 * TrueCrypt before 5.0 (LRW/CBC, spec/interop.md §2.9): served read-only unless the user insists
 * (--allow-legacy-write). Both modes are weaker than XTS against someone who sees the container
 * change, as cryptsetup's man page says of them: CBC is malleable and shows where a rewritten
 * sector first changed; LRW has known weaknesses, its tweak key stored next to the data keys.
 * Returns whether the mount must be read-only; warns either way.
 */
function legacyReadOnly(v: UnlockedVolume, o: MountOptions): boolean {
  if (!v.legacy || o.readOnly) return false;
  const weak =
    v.legacy.mode === 'lrw'
      ? 'LRW is unsafe when the volume holds its own tweak key, e.g. in a swap or hibernation file kept on it'
      : 'CBC is malleable (whoever can write the container flips chosen bits of the next block, undetected) and shows where a rewritten sector first changed';
  if (!o.allowLegacyWrite) {
    o.warn(`this TrueCrypt volume (before 5.0) uses the legacy mode ${v.legacy.label}: opened read-only (${weak}); copy its files into a new XTS volume, or add --allow-legacy-write to write it anyway`);
    return true;
  }
  o.warn(`writing a TrueCrypt legacy volume (${v.legacy.label}) as you asked: ${weak}; copy its files into a new XTS volume when you can`);
  return false;
}
