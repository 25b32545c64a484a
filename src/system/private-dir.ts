/**
 * Directories for vault's own state (volume records, header locks): root's alone. A directory that
 * someone else made or can change is refused, never adopted, because whoever controls it can
 * plant symlinks that root then follows (issue 13: /run/lock/vault).
 */
import { closeSync, fchmodSync, fstatSync, lstatSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { envValue } from '../env.js';
import { VaultError } from '../errors.js';
import { openNoFollowDir } from './fs-at.js';

/**
 * Where vault keeps its state: /run/vault for root; $XDG_RUNTIME_DIR/vault for an ordinary user
 * (issue 15), which logind makes per login (/run/user/<uid>, 0700, gone at logout). VAULT_RUN_DIR
 * overrides both (tests that must not touch real volumes).
 */
export function runDir(): string {
  const override = envValue('VAULT_RUN_DIR');
  if (override) return override;
  if ((process.geteuid?.() ?? 0) === 0) return '/run/vault';
  return path.join(userRuntimeDir(), 'vault');
}

/** $XDG_RUNTIME_DIR, which must be an absolute path to a directory of this user's that no one else can enter. */
export function userRuntimeDir(): string {
  const dir = process.env.XDG_RUNTIME_DIR;
  const hint = 'log in through a session that has one (a desktop, `ssh`, or `machinectl shell`), or set XDG_RUNTIME_DIR to a private directory of yours (mode 0700)';
  if (!dir || !path.isAbsolute(dir)) throw new VaultError('missing-component', 'XDG_RUNTIME_DIR is not set, and vault keeps its state for your volumes there', hint);
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    throw new VaultError('missing-component', `XDG_RUNTIME_DIR (${dir}) does not exist`, hint);
  }
  if (!st.isDirectory() || st.uid !== process.geteuid?.() || (st.mode & 0o077) !== 0)
    throw new VaultError('unsafe', `XDG_RUNTIME_DIR (${dir}) is not a private directory of yours`, hint);
  return dir;
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
