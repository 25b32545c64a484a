/**
 * A container file on disk, open: its descriptor, size and mode. Opening checks what the file is
 * and nothing else, so the mount path can hold the container (and launch its server) before any
 * format or crypto code is loaded; container.ts reads and writes vault headers on top of this.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { HEADER_SIZE } from '../format/constants.js';
import { NO_FOLLOW } from '../system/fs-at.js';

export interface ContainerFile {
  path: string;
  fd: number;
  size: number;
  readOnly: boolean;
  /**
   * vault containers: use this header copy alone (0 primary, 1 secondary), as the user chose with
   * `--header-copy` (spec §6 "Choosing a copy"); unset, both copies are read and must agree.
   */
  headerCopy?: 0 | 1;
}

/**
 * Opens a container for reading (and writing unless readOnly). Refuses things that cannot be
 * containers. `path` is a realpath (resolveContainer), opened once: the command then uses this
 * descriptor for every step, so a path swapped after this open changes nothing.
 */
export function openContainer(path: string, readOnly: boolean): ContainerFile {
  let fd: number;
  try {
    // O_NONBLOCK so that opening a FIFO never hangs; O_NOFOLLOW because the realpath has no symlink
    // left, so one found now was planted after it was resolved; O_NOCTTY for terminal devices.
    fd = openSync(path, (readOnly ? fsc.O_RDONLY : fsc.O_RDWR) | NO_FOLLOW);
  } catch (e) {
    throw openError(path, e as NodeJS.ErrnoException, readOnly);
  }
  try {
    // Any other component swapped between realpath and open shows here: the kernel names the
    // file it actually opened.
    const opened = openedPath(fd);
    if (opened !== null && opened !== path)
      throw new VaultError('unsafe', `${path} changed while vault opened it (it is now ${opened})`, 'make sure no other user can write the directories on its path');
    return containerFromFd(fd, path, readOnly);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The path the kernel gives for an open descriptor, or null when /proc is not mounted (nothing to compare). */
function openedPath(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** A container on a descriptor this process opened (create's own new file): checks its type and size. */
export function containerFromFd(fd: number, path: string, readOnly: boolean): ContainerFile {
  const st = fstatSync(fd);
  if (st.isDirectory()) throw new VaultError('not-a-container', `${path} is a directory, not a container`);
  if (!st.isFile() && !st.isBlockDevice())
    throw new VaultError('not-a-container', `${path} is not a regular file or block device`);
  const size = st.isBlockDevice() ? blockDeviceSize(fd) : st.size;
  if (size < 2 * HEADER_SIZE)
    throw new VaultError('not-a-container', `${path} is too small to be a container (${size} bytes)`);
  return { path, fd, size, readOnly };
}

function blockDeviceSize(fd: number): number {
  // node:fs has no lseek(SEEK_END) and reports size 0 for devices; sysfs knows the size in 512-byte units.
  const rdev = fstatSync(fd).rdev;
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  try {
    return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512;
  } catch {
    throw new VaultError('io', 'cannot determine the size of the block device');
  }
}

function openError(path: string, e: NodeJS.ErrnoException, readOnly: boolean): VaultError {
  switch (e.code) {
    case 'ENOENT':
      return new VaultError('not-a-container', `${path} does not exist`);
    case 'EROFS':
      // Not a permission problem: saying "no permission" would send the user after the file's mode.
      return new VaultError('privilege', `${path} is on a read-only filesystem`, 'use --read-only to open it without writing');
    case 'EACCES':
    case 'EPERM':
      return readOnly
        ? new VaultError('privilege', `no permission to read ${path}`)
        : new VaultError('privilege', `no permission to write ${path}`, 'use --read-only to open it without writing');
    case 'EISDIR':
      return new VaultError('not-a-container', `${path} is a directory, not a container`);
    case 'ELOOP':
      return new VaultError('unsafe', `${path} became a symbolic link while vault opened it`, 'make sure no other user can write the directories on its path');
    default:
      return new VaultError('io', `cannot open ${path}: ${e.message}`);
  }
}

export function closeContainer(c: ContainerFile): void {
  closeSync(c.fd);
}

/** The canonical path of a container named on the command line; a missing one is a clear error. */
export function resolveContainer(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    throw new VaultError('not-a-container', `${p} does not exist`);
  }
}
