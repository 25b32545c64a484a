/**
 * Serialises header changes to one container between vault processes. The container's own flock
 * is held by its volume server while mounted (that is what stops a second mount), and header
 * changes must work on mounted volumes, so they take a lock file of their own, named after the
 * container's device and inode so every path to the same file shares it.
 *
 * The lock files live in <run dir>/locks, root's own 0700 directory (checked, never adopted), and
 * are opened without O_TRUNC and with O_NOFOLLOW: they used to live in /run/lock/vault, which any
 * user could make first and fill with symlinks that root then truncated (issue 13).
 */
import { closeSync, constants as fsc, fstatSync, openSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { flockFd } from '../crypto/process-hardening.js';
import { NO_FOLLOW } from '../system/fs-at.js';
import { ensurePrivateDir, runDir } from '../system/private-dir.js';
import type { ContainerFile } from './container-file.js';

export function lockDir(): string {
  return ensurePrivateDir(path.join(ensurePrivateDir(runDir()), 'locks'));
}

export function lockHeaderUpdates(c: ContainerFile): () => void {
  const st = fstatSync(c.fd);
  const file = path.join(lockDir(), `${st.dev}-${st.ino}.lock`);
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDWR | fsc.O_CREAT | NO_FOLLOW, 0o600);
  } catch (e) {
    throw new VaultError('unsafe', `refusing the lock file ${file}: ${(e as NodeJS.ErrnoException).code}`, 'remove it, then try again');
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new VaultError('unsafe', `refusing the lock file ${file}: not a regular file`, 'remove it, then try again');
  }
  if (flockFd(fd, true, true) !== 0) {
    closeSync(fd);
    throw new VaultError('busy', `another vault command is changing the header of ${c.path}`, 'wait for it to finish, then try again');
  }
  return () => closeSync(fd); // closing the descriptor releases the lock
}
