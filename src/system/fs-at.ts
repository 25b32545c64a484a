/**
 * File operations relative to an open directory (openat, renameat2, unlinkat), for paths in
 * directories another user may write (issue 13). The directory is opened once; every later step
 * names one component inside that descriptor, so swapping a path component between two steps
 * (for a symlink to /etc or /dev) changes nothing. Through the native addon (viaProc names an entry
 * for tools that take a path: /proc/self/fd/<dirFd>/<name>, resolved from the same descriptor).
 */
import { closeSync, constants as fsc, fstatSync, lstatSync, openSync, realpathSync, type Stats } from 'node:fs';
import { constants as osc } from 'node:os';
import path from 'node:path';
import { nativeAddon } from '../crypto/native.js';

/** O_PATH (Linux asm-generic 010000000; node:fs does not export it): a handle for fstat only, never opens the file itself. */
export const O_PATH = 0o10000000;

/** Flags for opening a file another user may have planted: no symlink, no controlling tty, no FIFO hang. */
export const NO_FOLLOW = fsc.O_NOFOLLOW | fsc.O_NOCTTY | fsc.O_NONBLOCK;

/** An Error as node:fs throws them (code 'ELOOP', errno), so callers keep one way to read failures. */
function errnoError(errno: number, syscall: string, name: string): NodeJS.ErrnoException {
  const code = Object.entries(osc.errno).find(([, n]) => n === errno)?.[0] ?? `E${errno}`;
  return Object.assign(new Error(`${code}: ${syscall} ${name}`), { code, errno: -errno, syscall });
}

/** `name` inside the directory open as `dirFd`, as a path the kernel resolves from that descriptor. */
export function viaProc(dirFd: number, name: string): string {
  if (!name || name.includes('/') || name === '.' || name === '..') throw new Error(`not one path component: ${JSON.stringify(name)}`);
  return `/proc/self/fd/${dirFd}/${name}`;
}

/** A directory, its realpath opened once with O_DIRECTORY|O_NOFOLLOW. The caller closes `fd`. */
export interface DirHandle {
  path: string;
  fd: number;
}

export function openDir(dir: string): DirHandle {
  const real = realpathSync(dir);
  return { path: real, fd: openNoFollowDir(real) };
}

/**
 * open(O_DIRECTORY|O_NOFOLLOW). A symlink there fails with ENOTDIR (not ELOOP, because of
 * O_DIRECTORY); it is reported as ELOOP so callers tell "swapped for a symlink" from "not a directory".
 */
export function openNoFollowDir(dir: string): number {
  try {
    return openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' && lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink())
      throw Object.assign(e as NodeJS.ErrnoException, { code: 'ELOOP' });
    throw e;
  }
}

export function openAt(dirFd: number, name: string, flags: number, mode = 0o600): number {
  const fd = nativeAddon().openat(dirFd, name, flags, mode);
  if (fd < 0) throw errnoError(-fd, 'openat', name);
  return fd;
}

/** lstat of one entry (a symlink is reported as one), or null when there is none. */
export function statAt(dirFd: number, name: string): Stats | null {
  let fd: number;
  try {
    fd = openAt(dirFd, name, O_PATH | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Renames within the directory; with `noReplace`, fails with EEXIST instead of replacing an entry. */
export function renameAt(dirFd: number, from: string, to: string, noReplace: boolean): void {
  const err = nativeAddon().renameat(dirFd, from, to, noReplace);
  if (err !== 0) throw errnoError(err, 'renameat2', to);
}

/** Removes one entry; never a directory (EISDIR), never what a symlink points to. */
export function unlinkAt(dirFd: number, name: string): void {
  const err = nativeAddon().unlinkat(dirFd, name);
  if (err !== 0) throw errnoError(err, 'unlinkat', name);
}

/** Whether two stats name the same inode. */
export function sameFile(a: Pick<Stats, 'dev' | 'ino'>, b: Pick<Stats, 'dev' | 'ino'>): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export function joinDir(dir: DirHandle, name: string): string {
  return path.join(dir.path, name);
}
