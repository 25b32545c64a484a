/**
 * Serves an EncryptedBlockFile as the single file `volume` through FUSE, with fuse-native over
 * Debian's libfuse2. The FUSE mount is private to root: no allow_other, the root directory is 0700
 * and the file 0600, so other users cannot reach the plaintext even by path.
 */
import Fuse from 'fuse-native';
import { BLOCK_FILE_NAME } from './protocol.js';
import type { EncryptedBlockFile } from '../volume/block-file.js';

/**
 * fuse-native has no names for big_writes/max_write, and it builds its option list in
 * _fuseOptions(). Extending that one method is the narrowest way in: every other option still
 * goes through fuse-native's own code.
 */
class LargeWriteFuse extends Fuse {
  _fuseOptions(): string {
    // big_writes lets the kernel send up to max_write bytes per write instead of 4 KiB.
    return `${super._fuseOptions()},big_writes,max_write=131072,max_read=131072`;
  }
}

const FILE = `/${BLOCK_FILE_NAME}`;

export interface FuseNativeServer {
  fuse: Fuse;
  /** Wall-clock time (ms since the epoch) of the last read or write; the start time before any.
   *  The same measure as the native server's stats().lastIoMs, for idle detection. */
  lastIoMs(): number;
}

export function serveBlockFile(mountDir: string, file: EncryptedBlockFile, onError: (e: unknown) => void): Promise<FuseNativeServer> {
  const now = new Date();
  let lastIo = Date.now();
  const fileStat = () => ({
    mode: 0o100000 | (file.readOnly ? 0o400 : 0o600),
    uid: 0,
    gid: 0,
    size: file.size,
    blksize: 4096,
    blocks: Math.ceil(file.size / 512),
    nlink: 1,
    mtime: now,
    atime: now,
    ctime: now,
  });
  const rootStat = { mode: 0o040700, uid: 0, gid: 0, size: 4096, nlink: 2, mtime: now, atime: now, ctime: now };

  const ops = {
    getattr(path: string, cb: (err: number, stat?: object) => void) {
      if (path === '/') return cb(0, rootStat);
      if (path === FILE) return cb(0, fileStat());
      cb(Fuse.ENOENT);
    },
    readdir(path: string, cb: (err: number, names?: string[]) => void) {
      if (path !== '/') return cb(Fuse.ENOTDIR);
      cb(0, [BLOCK_FILE_NAME]);
    },
    open(path: string, flags: number, cb: (err: number, fd?: number) => void) {
      if (path !== FILE) return cb(Fuse.ENOENT);
      const accmode = flags & 3;
      if (file.readOnly && accmode !== 0) return cb(Fuse.EROFS);
      cb(0, 1);
    },
    release(_path: string, _fd: number, cb: (err: number) => void) {
      cb(0);
    },
    read(_path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) {
      lastIo = Date.now();
      file.read(pos, len).then(
        (data) => {
          data.copy(buf, 0);
          cb(data.length);
        },
        (e) => {
          onError(e);
          cb(Fuse.EIO);
        },
      );
    },
    write(_path: string, _fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) {
      lastIo = Date.now();
      if (file.readOnly) return cb(Fuse.EROFS);
      if (pos + len > file.size) return cb(pos >= file.size ? Fuse.ENOSPC : Fuse.EFBIG);
      file.write(pos, buf.subarray(0, len)).then(cb, (e) => {
        onError(e);
        cb(Fuse.EIO);
      });
    },
    flush(_path: string, _fd: number, cb: (err: number) => void) {
      file.sync().then(() => cb(0), (e) => (onError(e), cb(Fuse.EIO)));
    },
    fsync(_path: string, _fd: number, _datasync: boolean, cb: (err: number) => void) {
      file.sync().then(() => cb(0), (e) => (onError(e), cb(Fuse.EIO)));
    },
    truncate(_path: string, size: number, cb: (err: number) => void) {
      // The size is fixed by the container; accept only the no-op truncate some tools issue.
      cb(size === file.size ? 0 : Fuse.EPERM);
    },
    ftruncate(_path: string, _fd: number, size: number, cb: (err: number) => void) {
      cb(size === file.size ? 0 : Fuse.EPERM);
    },
    statfs(_path: string, cb: (err: number, st?: object) => void) {
      cb(0, { bsize: 4096, frsize: 4096, blocks: Math.ceil(file.size / 4096), bfree: 0, bavail: 0, files: 1, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255 });
    },
  };

  const fuse = new LargeWriteFuse(mountDir, ops, {
    // fuse-native turns any operation slower than 15 s into an error by default; slow disks are not errors.
    timeout: false,
    fsname: 'vault',
    subtype: 'vault',
  });
  return new Promise((resolve, reject) =>
    fuse.mount((err: Error | null) => (err ? reject(err) : resolve({ fuse, lastIoMs: () => lastIo }))),
  );
}

export function unmountFuse(fuse: Fuse): Promise<void> {
  return new Promise((resolve) => fuse.unmount(() => resolve()));
}
