/**
 * Serialises header changes to one container between vault processes. The container's own flock
 * is held by its volume server while mounted (that is what stops a second mount), and header
 * changes must work on mounted volumes, so they take a lock file of their own, named after the
 * container's device and inode so every path to the same file shares it.
 */
import { closeSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { flockFd } from '../crypto/process-hardening.js';
import type { ContainerFile } from './container.js';

const LOCK_DIR = '/run/lock/vault';

export function lockHeaderUpdates(c: ContainerFile): () => void {
  const st = fstatSync(c.fd);
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const fd = openSync(`${LOCK_DIR}/${st.dev}-${st.ino}.lock`, 'w', 0o600);
  if (flockFd(fd, true, true) !== 0) {
    closeSync(fd);
    throw new VaultError('busy', `another vault command is changing the header of ${c.path}`, 'wait for it to finish, then try again');
  }
  return () => closeSync(fd); // closing the descriptor releases the lock
}
