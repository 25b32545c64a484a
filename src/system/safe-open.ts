/**
 * Opening files a user named on the command line, as root (issue 13): never through a symlink
 * (O_NOFOLLOW), never hanging on a FIFO (O_NONBLOCK), never making a terminal ours (O_NOCTTY),
 * and never creating over anything (O_EXCL). The file's type is checked on the descriptor.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { NO_FOLLOW } from './fs-at.js';

function openFailure(file: string, what: string, verb: string, e: unknown): VaultError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return new VaultError('unsafe', `${what} ${file} is a symbolic link`, 'vault does not follow symbolic links here; name the file itself');
  if (code === 'EEXIST') return new VaultError('exists', `${file} already exists`);
  return new VaultError(verb === 'read' ? 'usage' : 'io', `cannot ${verb} ${what} ${file}: ${code}`);
}

/** Opens an existing regular file read-only; the caller closes the descriptor. */
export function openRegularFile(file: string, what: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | NO_FOLLOW);
  } catch (e) {
    throw openFailure(file, what, 'read', e);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new VaultError('usage', `${what} ${file} is not a regular file`);
  }
  return { fd, size: st.size };
}

/** Reads up to `length` bytes from the start of an open file (fewer if it is shorter). */
export function readHead(fd: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let done = 0;
  while (done < b.length) {
    const n = readSync(fd, b, done, b.length - done, done);
    if (n === 0) break;
    done += n;
  }
  return b.subarray(0, done);
}

/** Creates a new file, mode 0600, for writing; refuses an existing name, even a dangling symlink. */
export function createNewFile(file: string, what: string): number {
  try {
    return openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | NO_FOLLOW, 0o600);
  } catch (e) {
    throw openFailure(file, what, 'create', e);
  }
}
