/**
 * Directories for vault's own state (volume records, header locks): root's alone. A directory that
 * someone else made or can change is refused, never adopted, because whoever controls it can
 * plant symlinks that root then follows (issue 13: /run/lock/vault).
 */
import { closeSync, fchmodSync, fstatSync, mkdirSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { openNoFollowDir } from './fs-at.js';

/** Where vault keeps its state; VAULT_RUN_DIR overrides /run/vault (tests that must not touch real volumes). */
export function runDir(): string {
  return process.env.VAULT_RUN_DIR ?? '/run/vault';
}

/**
 * Makes `dir` (mode 0700) if missing and checks it through a descriptor opened with O_NOFOLLOW: a
 * real directory owned by this process's effective uid. Group or other bits are removed (an old
 * vault made /run/vault 0755); another owner or a symlink is refused with 'unsafe' (exit 8).
 */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openNoFollowDir(dir);
  } catch (e) {
    throw unsafeDir(dir, (e as NodeJS.ErrnoException).code === 'ELOOP' ? 'is a symbolic link' : `cannot be opened (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    const st = fstatSync(fd);
    const uid = process.geteuid?.() ?? 0;
    if (st.uid !== uid) throw unsafeDir(dir, `belongs to uid ${st.uid}, not ${uid}`);
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
  return dir;
}

function unsafeDir(dir: string, why: string): VaultError {
  return new VaultError('unsafe', `refusing to use ${dir}: it ${why}`, 'another user may have made it; remove it, then try again');
}
