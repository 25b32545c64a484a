/**
 * Mount points (issue 13, issue 15): a given one checked through the descriptor that is then
 * mounted on, or a default one made in a directory of the user's: /media/vault/<user>/<name> as
 * root, ~/Vaults/<name> for an ordinary user's fuse route (udisks picks its own).
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, realpathSync, rmdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { VaultError, isVaultError } from '../errors.js';
import { readMountInfo } from './filesystem.js';
import { entriesOf, mountIdOf, pinDir, type PinnedDir } from './pinned.js';
import { run } from './run.js';
import { records } from './state.js';

export const DEFAULT_MOUNT_BASE = '/media/vault';

/** The user vault acts for: the one who ran sudo, else whoever runs vault. */
export function actingUid(owner: { uid: number } | undefined): number {
  return owner?.uid ?? process.getuid?.() ?? 0;
}

/** The checked mount point, held by descriptor (pinned.ts) until it is mounted on. */
export interface PreparedMountpoint {
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
export function prepareMountpoint(given: string | undefined, containerPath: string, owner: { uid: number; gid: number } | undefined): PreparedMountpoint {
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
