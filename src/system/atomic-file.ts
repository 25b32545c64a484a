/**
 * Files root writes for the machine's setup (vault setup-rootless): read if present, replaced
 * atomically so that daemons watching them (polkitd, udevd) see the old file or the new one.
 */
import { closeSync, constants as fsc, fchmodSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export interface Ownership {
  mode: number;
  uid: number;
  gid: number;
}

/** A file's mode and owner, or root's and `mode` when it does not exist yet. */
export function modeOf(file: string, mode: number): Ownership {
  const st = statSync(file, { throwIfNoEntry: false });
  return st ? { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } : { mode, uid: 0, gid: 0 };
}

/**
 * Replaces `file` with `text` so that readers (polkitd watches its rules directory) see the old
 * file or the new one, never half: a new file beside it, written, synced, then renamed over it.
 */
export function writeFileAtomic(file: string, text: string, own: Ownership): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.vault-${process.pid}`);
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    const data = Buffer.from(text);
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off);
    fchownSync(fd, own.uid, own.gid);
    fchmodSync(fd, own.mode);
    fsyncSync(fd);
    renameSync(tmp, file);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  } finally {
    closeSync(fd);
  }
  const dir = openSync(path.dirname(file), fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
