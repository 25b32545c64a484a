/**
 * Directories held by descriptor, so that what vault checked is what it mounts on or unmounts
 * (issue 13). A path is only a name: whoever owns a directory on it can rename entries between a
 * check and a use (renameat2 RENAME_EXCHANGE makes the swap atomic), and mount(8) or umount(8)
 * given the same string would then act on another directory, /etc/sudoers.d or another user's
 * mount. An O_PATH descriptor names one directory for good; the kernel resolves /proc/self/fd/N
 * to exactly that directory, whatever its name is by then.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { VaultError } from '../errors.js';
import { O_PATH, viaProc } from '../system/fs-at.js';


/** The descriptor number a pinned directory gets in the tool vault runs on it (see stdioFor). */
export const CHILD_FD = 3;
/** The pinned directory as the tool sees it. */
export const CHILD_FD_PATH = `/proc/self/fd/${CHILD_FD}`;

export interface PinnedDir {
  fd: number;
  /** Where the kernel says the directory is now (readlink of /proc/self/fd/N). */
  readonly where: string;
  stat(): Stats;
  /** Idempotent. */
  close(): void;
}

/**
 * Opens directory `p` by descriptor. The last component must not be a symlink (ELOOP); the
 * components before it are followed, so callers compare `where` with the path they checked.
 */
export function pinDir(p: string): PinnedDir {
  let fd: number;
  try {
    fd = openSync(p, O_PATH | fsc.O_NOFOLLOW | fsc.O_DIRECTORY); // node adds O_CLOEXEC itself
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR')
      throw new VaultError('unsafe', `${p} is not a directory (it was replaced, or is a symlink)`, 'use a directory that only you and root can change');
    if (code === 'ENOENT') throw new VaultError('usage', `${p} does not exist`);
    throw new VaultError('io', `cannot open ${p}: ${(e as Error).message}`);
  }
  let open = true;
  return {
    fd,
    get where() {
      return readlinkSync(`/proc/self/fd/${fd}`);
    },
    stat: () => fstatSync(fd),
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Runs `body` with `p` pinned, and closes it whatever happens. */
export function withPinned<T>(p: string, body: (d: PinnedDir) => T): T {
  const d = pinDir(p);
  try {
    return body(d);
  } finally {
    d.close();
  }
}

/** The mount a descriptor lies on (mnt_id in /proc/self/fdinfo, the same numbers as mountinfo). */
export function mountIdOf(fd: number): number {
  const m = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (!m) throw new VaultError('io', 'this kernel does not report mount ids in /proc/self/fdinfo');
  return Number(m[1]);
}

/** Entries of the pinned directory, read through the descriptor, not its name. */
export function entriesOf(d: PinnedDir): string[] {
  return readdirSync(`/proc/self/fd/${d.fd}`);
}

/** stdio for a tool that gets the pinned directory as CHILD_FD (child_process dup2s it, without O_CLOEXEC). */
export function stdioFor(d: PinnedDir): ['ignore', 'pipe', 'pipe', number] {
  return ['ignore', 'pipe', 'pipe', d.fd];
}

/** `dir/name` with `dir` pinned: the path a tool or syscall uses for `name` inside exactly that directory. */
export function pinnedChild(parent: PinnedDir, name: string): string {
  return viaProc(parent.fd, name);
}
