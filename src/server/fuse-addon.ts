// The volume server's part of vault's native addon (native/fuse_*.c): serve / wait / stop / stats.
//
// The server speaks FUSE directly on /dev/fuse from its own threads: JS only starts it, watches it
// and stops it. The key goes from a descriptor straight into the addon's locked memory and never
// passes through JS.
import { loadVaultAddon } from '../crypto/addon-loader.js';

/** Opaque handle to a running (or ended) server session (an N-API External). */
export type FuseSession = { readonly __brand: 'vault.FuseSession' };

export interface FuseServeOptions {
  /** Directory to mount on (mode 0700 parent expected); it then holds the one file `volume`. */
  mountDir: string;
  /** The container, open O_RDWR (O_RDONLY is enough when readOnly). The server uses its own dup:
   *  the caller may close this descriptor once serve() returns. */
  containerFd: number;
  /** Descriptor (a pipe) carrying exactly the XTS key of `cipher` (64 bytes per cipher; each cipher's two keys different);
   *  read blocking, into locked memory. The caller still owns (and closes) the descriptor. */
  keyFd: number;
  dataOffset: number;
  dataSize: number;
  /** Power of two, 512..65536; dataSize must be a multiple of it. */
  sectorSize: number;
  /** Tweak of data sector i is firstTweak + i * tweakStep (vault's format: 0n and 1n). */
  firstTweak: bigint;
  tweakStep: bigint;
  /** The XTS cipher chain, encryption order, e.g. "aes" (the default) or "serpent-twofish-aes"; or a
   *  TrueCrypt legacy chain such as "lrw-aes" (native/tc_legacy.h). */
  cipher?: string;
  readOnly: boolean;
  /** Worker threads, 1..64 (default 8). */
  threads?: number;
  /** Tuning, for benchmarks: negotiate FUSE_ASYNC_DIO (default true). */
  asyncDio?: boolean;
  /** Tuning, for benchmarks: open with FOPEN_PARALLEL_DIRECT_WRITES (default true). */
  parallelDirectWrites?: boolean;
  /** Reopen the container with O_DIRECT when its filesystem's alignment (statx STATX_DIOALIGN)
   *  allows: no second, ciphertext copy of the volume in the host page cache (default true). */
  directIo?: boolean;
  /** With directIo: write through the host page cache (reads stay O_DIRECT); FSYNC still reaches
   *  the disk (default true; native/fuse_io.c vf_open_direct has the measurements). */
  bufferedWrites?: boolean;
  /** FUSE over io_uring ('io_uring': ERR_VAULT_URING_UNAVAILABLE where root has not switched it on
   *  or the kernel does not offer it), read/writev on /dev/fuse ('classic'), or io_uring where it is
   *  switched on and offered and classic otherwise ('auto', the default; stats().transportNote says
   *  which and why). io_uring uses `threads` queue threads spread over the kernel's per-CPU queues. */
  transport?: 'auto' | 'io_uring' | 'classic';
  /** Tuning: largest READ/WRITE the kernel sends (max_read, max_write; power of two,
   *  65536..1048576, default 1048576). */
  maxRequest?: number;
  /** Run by an ordinary user (mounted through fusermount3): let root use the mount too (mounted
   *  allow_other; requests of anyone but the owner and root are refused with EACCES). Needs
   *  user_allow_other in /etc/fuse.conf. Ignored when run by root. Default false. */
  allowRoot?: boolean;
  /** Serve the block file through the kernel's page cache with writeback caching (the fuse route:
   *  a user-space filesystem driver's small requests are gathered and read ahead). Default false. */
  pageCache?: boolean;
  /** Hole punches (FALLOC_FL_PUNCH_HOLE | KEEP_SIZE) on the file punch whole sectors out of the
   *  container, and write encrypted zeros at partial edges and where the host cannot punch; without
   *  it they fail with EOPNOTSUPP. Ignored read-only. Default false. */
  allowDiscards?: boolean;
  /** A stored sector of all-zero bytes reads as a zero plaintext sector, not the XTS decryption of
   *  zeros (spec/format.md §8; the vault format). Default false. */
  zeroSectors?: boolean;
  /** Hidden-volume protection: data-area bytes [protectStart, protectEnd) may not be written; the
   *  first write reaching them fails with EIO and every later write with EROFS. Default: none. */
  protectStart?: number;
  protectEnd?: number;
}

/** How a session ended: unmounted from outside (e.g. `umount -l`), stop(), or a fatal error. */
export interface FuseEnd {
  reason: 'unmounted' | 'stopped' | 'error';
  message?: string;
}

export interface ContainerErrorCounts {
  eio: number;
  enospc: number;
  erofs: number;
  other: number;
}

export interface ContainerError {
  op: 'read' | 'write' | 'sync' | 'punch';
  /** The host's errno name, e.g. 'ENOSPC'. */
  errno: string;
  /** Byte offset in the container file where it failed; null for a sync. */
  offset: number | null;
  /** Wall clock, ms since the epoch. */
  atMs: number;
}

export interface FuseStats {
  /** Wall-clock time (ms since the epoch) of the last READ/WRITE/FALLOCATE; the start time before any. */
  lastIoMs: number;
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  /** I/O failures (container read/write/fdatasync, crypto, undeliverable replies). */
  errors: number;
  /** The latest of those failures, without secrets. */
  lastError?: string;
  /** Failed reads, writes, syncs and hole punches of the container, by the host's errno (EDQUOT
   *  counts as enospc). A failed write answers ENOSPC for enospc, EIO for every other kind. */
  containerErrors: ContainerErrorCounts;
  /** The latest of those; absent before the first. */
  lastContainerError?: ContainerError;
  /** Whether the container is accessed with O_DIRECT (see FuseServeOptions.directIo). */
  directIo: boolean;
  /** Whether writes go through the host page cache while reads are O_DIRECT (bufferedWrites). */
  bufferedWrites: boolean;
  /** Bytes the container is read and written in: the sector size, or the host's O_DIRECT
   *  alignment where that is larger (then a write of part of a unit is read-modify-written). */
  ioUnit: number;
  /** Whether the I/O buffers (plaintext) are locked in memory like the key. Always as root; run by
   *  an ordinary user, only where RLIMIT_MEMLOCK has room for them (the key and its schedules are
   *  locked whatever the limit, or serve() fails with ERR_VAULT_MEMLOCK). */
  ioBuffersLocked: boolean;
  /** The transport in use. */
  transport: 'io_uring' | 'classic';
  /** Why that one, e.g. 'io_uring: enable_uring is Y (2 queues, 8 threads)' or 'classic: FUSE over
   *  io_uring is switched off (… enable_uring is N)'. */
  transportNote: string;
  /** A write reached the protected range (protectStart/protectEnd): the volume is read-only since. */
  protectionTripped: boolean;
}

/** The addon's exports. Errors are Node-style: `code` is 'EPERM', 'ENOENT' etc. for system errors,
 *  'ERR_VAULT_KEY_SHORT_READ' / 'ERR_VAULT_XTS_EQUAL_HALVES' for a bad key. */
export interface NativeFuseAddon {
  /** Reads the key, opens /dev/fuse and mounts (as an ordinary user: fusermount3 does both, and
   *  its failure is an ERR_VAULT_FUSERMOUNT error quoting its message, e.g. "fusermount3: not found"
   *  or "... only allowed if 'user_allow_other' is set in /etc/fuse.conf"), starts the workers and
   *  returns once the kernel's INIT is answered. Blocks the calling thread for that long (milliseconds). On failure throws and
   *  leaves nothing mounted. The session keeps the event loop alive until it ends. */
  serve(options: FuseServeOptions): FuseSession;
  /** Settles when every worker has exited (and the session is torn down: key wiped, unmounted). */
  wait(session: FuseSession): Promise<FuseEnd>;
  /** Unmounts (MNT_DETACH; `fusermount3 -u -z` as a user), aborts the connection if something still holds the file open after a
   *  1 s grace, joins the workers, syncs and wipes. Idempotent; also run when the session is
   *  garbage-collected. Blocks the calling thread until done. */
  stop(session: FuseSession): void;
  stats(session: FuseSession): FuseStats;
  /** Grows the served file to `dataSize` bytes (vault resize online; never shrinks): checks it
   *  against the container file's size and the tweak range, then invalidates the file's attributes
   *  in the kernel (FUSE_NOTIFY_INVAL_INODE) so that the next stat() sees the new size. */
  grow(session: FuseSession, dataSize: number): void;
}


/** The volume server's functions of the addon; throws (saying how to build it) when it is missing. */
export function fuseAddon(): NativeFuseAddon {
  return loadVaultAddon() as NativeFuseAddon;
}
