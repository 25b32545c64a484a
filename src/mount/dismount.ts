/**
 * Dismounting, listing and finding mounted volumes, and clearing what crashed mounts left behind.
 *
 * dismount: filesystem → loop device → server (unmounts FUSE, wipes the key) → mount point → record
 * A dismount tolerates pieces already gone (a server killed with -9), so it doubles as the cleanup
 * of dead volumes.
 *
 * Kept apart from mounting (lifecycle.ts) on purpose: nothing here touches keys, formats or
 * crypto, so `vault list` and `vault dismount` load none of those modules and stay fast.
 */
import { existsSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { VaultError, isVaultError } from '../errors.js';
import { BLOCK_FILE_NAME } from '../server/protocol.js';
import { detachLoop, loopDevno, loopInfo, loopsBackedBy } from './loop.js';
import { isMountPoint, readMountInfo, unmountFilesystem, type MountEntry } from './filesystem.js';
import { describeHolders, endProcesses, findHolders, type Holder } from './holders.js';
import {
  describeIoErrors, inScope, ioErrorsOf, mountInProgress, ownerOf, processAlive, removeAbandonedNewDirs, processStartTime, readRecords, records, removeVolumeDir, serverAlive, serverOf, userRecords, volumeDir,
  type Scope, type VolumeRecord,
} from './state.js';
import { run } from './run.js';
import { fuseUnmount, waitReleased } from './fuse-fs.js';
import { loopDelete, unmountFs } from './udisks.js';
import type { UnmountResult } from './filesystem.js';

/**
 * Detaches a volume's loop device. Without `force` a failure is thrown; with it, it is reported:
 * the caller stops the server next, so the key is wiped and the device fails all further I/O (and
 * detaches itself when whoever holds it open closes it). A forced dismount must always get there.
 */
function detachLoopOfVolume(device: string, force: boolean, actions: string[]): void {
  try {
    detachLoop(device);
    actions.push(`detached ${device}`);
  } catch (e) {
    if (!force) throw e;
    actions.push(
      isVaultError(e, 'busy')
        ? `${device} is still open elsewhere; it detaches itself when closed, and can no longer read or write the volume`
        : `could not detach ${device} (${(e as Error).message}); it can no longer read or write the volume`,
    );
  }
}

/** SIGTERM the server (it unmounts FUSE and wipes the key), SIGKILL if it hangs, then clear a stale FUSE mount. */
export async function stopServer(pid: number, startTime: string, fuseDir: string): Promise<'stopped' | 'killed' | 'gone'> {
  let outcome: 'stopped' | 'killed' | 'gone' = 'gone';
  if (processStartTime(pid) === startTime) {
    process.kill(pid, 'SIGTERM');
    outcome = (await waitExit(pid, startTime, 10_000)) ? 'stopped' : 'killed';
    if (outcome === 'killed') {
      process.kill(pid, 'SIGKILL');
      await waitExit(pid, startTime, 5_000);
    }
  }
  if (isMountPoint(fuseDir)) removeFuseMount(fuseDir);
  return outcome;
}

/** Detaches a (dead) server's FUSE mount: umount as root, fusermount3 as its user. */
function removeFuseMount(fuseDir: string): void {
  if (process.geteuid?.() === 0) run('umount', ['-l', fuseDir]);
  else fuseUnmount(fuseDir, true);
}

/** How a volume's filesystem is unmounted on its route: umount2 by root, udisks, or fusermount3. */
function unmounterOf(r: VolumeRecord): (m: MountEntry, lazy: boolean) => UnmountResult {
  if (r.route === 'udisks')
    return (_m, lazy) => {
      try {
        unmountFs(r.udisksObject!, lazy);
        return { ok: true };
      } catch (e) {
        if (!isVaultError(e)) throw e;
        return { ok: false, busy: isVaultError(e, 'busy'), message: e.message };
      }
    };
  if (r.route === 'fuse') return (m, lazy) => fuseUnmount(m.mountpoint, lazy);
  return (m, lazy) => unmountFilesystem(m, { lazy });
}

/** After the filesystem: the loop device (root, udisks), or the fuse driver letting go of the block file. */
async function releaseBlockFile(r: VolumeRecord, force: boolean, actions: string[]): Promise<void> {
  if (r.route === 'udisks' && r.udisksObject) {
    try {
      loopDelete(r.udisksObject);
      actions.push(`deleted ${r.loopDevice}`);
    } catch (e) {
      if (!force || !isVaultError(e)) throw e;
      actions.push(`could not delete ${r.loopDevice} (${e.message}); it can no longer read or write the volume`);
    }
  } else if (r.route === 'fuse') {
    if (r.mountpoint && !(await waitReleased(r.blockFile, 60_000))) actions.push('the filesystem driver still holds the volume after 60 s; stopping the server anyway');
  } else if (r.loopDevice) {
    const info = loopInfo(r.loopDevice);
    if (info && info.backingFile.startsWith(r.fuseDir)) detachLoopOfVolume(r.loopDevice, force, actions);
  }
}

async function waitExit(pid: number, startTime: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (processStartTime(pid) !== startTime) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return processStartTime(pid) !== startTime;
}

export interface DismountReport {
  record: VolumeRecord;
  actions: string[];
}

/**
 * Dismounts one volume. Without force, a busy filesystem is an error naming the processes; with
 * force they are ended (SIGTERM, then SIGKILL) and, if the filesystem still cannot be unmounted,
 * it is detached lazily and the server stopped, so no further I/O can succeed.
 */
export async function dismountVolume(r: VolumeRecord, force: boolean): Promise<DismountReport> {
  if (r.userDir) return dismountUserVolume(r, force);
  const actions: string[] = [];
  const alive = serverAlive(r);
  if (!alive) actions.push(`volume server (pid ${r.serverPid}) had died; cleaning up`);
  const m = volumeMount(r);
  const unmount = unmounterOf(r);
  if (m) {
    // Everything below acts on this mount (by id and device), whatever its path names by now.
    const where = m.mountpoint;
    let res = unmount(m, false);
    if (!res.ok && res.busy) {
      let holders: Holder[] = [];
      try {
        holders = findHolders(m);
      } catch (e) {
        if (!force) throw e;
        actions.push(`could not list the processes using ${where}: ${(e as Error).message}`);
      }
      if (!force)
        throw new VaultError(
          'busy',
          `${where} is busy${holders.length ? `: in use by ${describeHolders(holders)}` : ''}`,
          'close those programs, or use `vault dismount --force` to end them',
        );
      try {
        const ended = await endProcesses(holders);
        for (const h of ended.terminated) actions.push(`ended pid ${h.pid} (${h.command}) with SIGTERM`);
        for (const h of ended.killed) actions.push(`killed pid ${h.pid} (${h.command}) with SIGKILL`);
        for (const h of ended.survived) actions.push(`pid ${h.pid} (${h.command}) outlived SIGKILL (stuck in the kernel)`);
      } catch (e) {
        // Not being able to end them must not keep the key alive: go on to the lazy unmount.
        actions.push(`could not end the processes using ${where}: ${(e as Error).message}`);
      }
      res = unmount(m, false);
    }
    if (!res.ok) {
      if (!force && alive) throw new VaultError('io', `cannot unmount ${where}: ${res.message}`, 'use --force to detach it lazily');
      const lazy = unmount(m, true);
      actions.push(
        lazy.ok
          ? `detached ${where} lazily (${res.message}); the key is wiped below, so no further I/O can succeed`
          : `could not detach ${where} (${lazy.message}); the key is wiped below, so no further I/O can succeed`,
      );
    } else actions.push(`unmounted ${where}`);
  }
  await releaseBlockFile(r, force, actions);
  const how = await stopServer(r.serverPid, r.serverStartTime, r.fuseDir);
  if (how !== 'gone') actions.push(how === 'stopped' ? 'stopped the volume server; key wiped' : 'killed the unresponsive volume server');
  ioErrorsAction(r, actions); // the server's last count is in; the record goes with the directory below
  // A mount point vault made lies in the user's directory under /media/vault, whose parent is
  // root's: its name cannot be redirected, and rmdir neither follows a symlink nor removes content.
  if (r.mountpoint && r.mountpointCreated && existsSync(r.mountpoint) && !isMountPoint(r.mountpoint)) {
    try {
      rmdirSync(r.mountpoint);
    } catch {
      actions.push(`left ${r.mountpoint} in place (not empty)`);
    }
  }
  removeVolumeDir(r.id);
  return { record: r, actions };
}

/**
 * Root dismounting an ordinary user's volume (issue 15). The record is the user's writing, so
 * root acts only on what the kernel confirms belongs to it: a mount of the loop device backed by
 * the user's own block file (udisks), or a FUSE mount of that uid (fuse); a server process of
 * that uid. Root writes nothing in the user's directory: the user's next vault command finds the
 * server gone and removes the record.
 */
async function dismountUserVolume(r: VolumeRecord, force: boolean): Promise<DismountReport> {
  const actions: string[] = [];
  const uid = ownerOf(r);
  const loop = r.loopDevice ? loopInfo(r.loopDevice) : null;
  const ownLoop = loop !== null && loop.backingFile === r.blockFile;
  const m = volumeMount(r);
  const devno = ownLoop ? loopDevno(r.loopDevice!) : null;
  const ours = m && ((devno !== null && m.devno === devno) || (m.fstype.startsWith('fuse') && m.options.includes(`user_id=${uid}`)));
  if (m && ours) {
    let res = unmountFilesystem(m);
    if (!res.ok) {
      if (!force) throw new VaultError(res.busy ? 'busy' : 'io', `cannot unmount ${m.mountpoint}: ${res.message}`, 'use --force to detach it lazily');
      res = unmountFilesystem(m, { lazy: true });
      actions.push(`detached ${m.mountpoint} lazily`);
    } else actions.push(`unmounted ${m.mountpoint}`);
    // The fuse route's driver (fuse2fs) writes its last metadata to the block file after the
    // unmount returned: the server must outlive that, as in the user's own dismount.
    if (!ownLoop && !(await waitReleased(r.blockFile, 60_000))) actions.push('the filesystem driver still holds the volume after 60 s; stopping the server anyway');
  }
  if (ownLoop) detachLoopOfVolume(r.loopDevice!, force, actions);
  if (processUid(r.serverPid) === uid && processStartTime(r.serverPid) === r.serverStartTime) {
    process.kill(r.serverPid, 'SIGTERM'); // it unmounts its FUSE mount and wipes the key
    const gone = await waitExit(r.serverPid, r.serverStartTime, 10_000);
    if (!gone) process.kill(r.serverPid, 'SIGKILL');
    actions.push(gone ? 'stopped the volume server; key wiped' : 'killed the unresponsive volume server');
  }
  ioErrorsAction(r, actions);
  return { record: r, actions };
}

/**
 * The disk's failures while the volume was mounted, told once more at its dismount: the record
 * (io-errors.json) goes with the volume's directory, and a user who never ran `vault list` would
 * otherwise not learn that the last writes may not have reached the disk.
 */
function ioErrorsAction(r: VolumeRecord, actions: string[]): void {
  const errors = describeIoErrors(ioErrorsOf(r));
  if (errors) actions.push(`${errors} while mounted: the disk under the container failed or was full, so writes of that time may be lost (README, "Troubleshooting")`);
}

function processUid(pid: number): number | null {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return null;
  }
}

/**
 * The mount that is the volume's filesystem, found by the identity recorded when it was mounted
 * (mount id and device), or null when it is no longer mounted. Records from before mount ids were
 * kept: the mount of the volume's own loop device at the recorded path.
 */
export function volumeMount(r: VolumeRecord): MountEntry | null {
  if (!r.mountpoint) return null;
  const all = readMountInfo();
  if (r.mountId !== undefined) return all.find((e) => e.id === r.mountId && e.devno === r.mountDevno) ?? null;
  return all.filter((e) => e.mountpoint === r.mountpoint && r.loopDevice !== null && e.source === r.loopDevice).at(-1) ?? null;
}

export interface VolumeStatus {
  record: VolumeRecord;
  state: 'mounted' | 'server-died';
}

/**
 * The mounted volumes in `scope` (one user's, or all). Those whose server died are reported and
 * then cleaned up; other users' volumes are neither listed nor touched (issue 13).
 */
export async function listVolumes(
  onCleanup: (r: DismountReport) => void,
  onDebris: (actions: string[]) => void = () => {},
  scope: Scope = 'all',
): Promise<VolumeStatus[]> {
  removeAbandonedNewDirs();
  const out: VolumeStatus[] = [];
  for (const rr of readRecords()) {
    if (!rr.ok) {
      // A directory without a record is a mount in progress, or debris from a CLI killed mid-mount.
      if (!mountInProgress(rr.id)) onDebris(await clearDebris(rr.id));
      continue;
    }
    if (!inScope(rr.record, scope)) continue;
    if (rr.record.transientOwner && !processAlive(rr.record.transientOwner)) {
      // `vault create` was killed while it formatted through this mount: nobody will dismount it.
      try {
        const rep = await dismountVolume(rr.record, true);
        onDebris([`dismounted ${rr.record.container}, left mounted by an interrupted create`, ...rep.actions]);
      } catch (e) {
        if (!isVaultError(e)) throw e;
      }
      continue;
    }
    const alive = serverAlive(rr.record);
    out.push({ record: rr.record, state: alive ? 'mounted' : 'server-died' });
    if (!alive) {
      try {
        onCleanup(await dismountVolume(rr.record, true));
      } catch (e) {
        if (!isVaultError(e)) throw e;
      }
    }
  }
  // Root sees every user's volumes; a dead one is its user's to clear (their next vault command).
  for (const r of userRecords()) if (inScope(r, scope)) out.push({ record: r, state: serverAlive(r) ? 'mounted' : 'server-died' });
  return out;
}

/**
 * Undoes what a CLI killed mid-mount (or mid-create) left behind, in reverse order of mounting: a
 * filesystem mounted from the loop device, the loop device, the FUSE mount (whose disappearance
 * makes the server wipe its key and exit), and the directory. Returns what it did.
 */
export async function clearDebris(id: string): Promise<string[]> {
  const dir = volumeDir(id);
  const fuse = path.join(dir, 'fuse');
  const actions: string[] = [];
  const root = process.geteuid?.() === 0;
  for (const loop of loopsBackedBy(path.join(fuse, BLOCK_FILE_NAME))) {
    if (!root) {
      // Set up by udisksd for this user: only udisks may take it down.
      const object = `/org/freedesktop/UDisks2/block_devices/${path.basename(loop)}`;
      try {
        unmountFs(object, true);
        loopDelete(object);
        actions.push(`deleted ${loop}`);
      } catch (e) {
        if (!isVaultError(e)) throw e;
        actions.push(`could not delete ${loop}: ${e.message}`);
      }
      continue;
    }
    for (const m of readMountInfo().filter((e) => e.source === loop)) {
      unmountFilesystem(m, { lazy: true }); // that mount, not whatever its path names by now
      actions.push(`detached ${m.mountpoint} lazily`);
    }
    detachLoopOfVolume(loop, true, actions);
  }
  const server = serverOf(id);
  if (server) {
    const how = await stopServer(server.pid, server.startTime, fuse);
    if (how !== 'gone') actions.push(how === 'stopped' ? 'stopped the volume server; key wiped' : 'killed the unresponsive volume server');
  } else if (isMountPoint(fuse)) {
    removeFuseMount(fuse);
    actions.push('removed its FUSE mount (the server wipes its key and exits when it is gone)');
  }
  removeVolumeDir(id);
  return [`cleared the remains of an interrupted mount (${dir})`, ...actions];
}

/**
 * Finds the volume a user means: by mount point, container path, loop device or id. Outside
 * `scope` it is refused (exit 8): under sudo, another user's volume is not the caller's to close.
 */
export function findVolume(target: string, scope: Scope = 'all'): VolumeRecord {
  const all = [...records(), ...userRecords()];
  let abs = path.resolve(target);
  try {
    abs = realpathSync(abs);
  } catch {
    // a stale mount point or a removed container may not resolve; match the plain path
  }
  const hit = all.find((r) => r.mountpoint === abs || r.container === abs || r.loopDevice === target || r.id === target || r.blockFile === abs);
  if (!hit) throw new VaultError('not-mounted', `${target} is not a mounted vault volume`, 'see `vault list`');
  if (!inScope(hit, scope)) throw new VaultError('not-owner', `${target} was mounted by another user (uid ${ownerOf(hit)})`, 'only that user, or root without sudo, can dismount it');
  return hit;
}
