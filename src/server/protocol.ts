/**
 * How the CLI starts a volume server and learns that it is ready (see src/server/main.ts).
 *
 * The server is a detached `node <server entry> --volume <id>` process (the entry is
 * dist/bundle/vault-server.cjs when the CLI runs from the bundles, else dist/src/server/main.js:
 * src/system/entries.ts; the id is the random name of its directory under /run/vault, nothing
 * about the container) with:
 *   fd 0      /dev/null
 *   fd 1, 2   the volume's log file (<volume dir>/server.log); never receives secrets
 *   fd 3      the container, opened by the CLI (O_RDWR, or O_RDONLY for read-only) and already
 *             flock()ed LOCK_EX by the CLI: the lock lives in the open file description, so the
 *             server keeps holding it after the CLI exits, and it is released when the server dies
 *   fd 4      read end of a pipe carrying exactly the master key (64 bytes for AES, 64 per cipher of
 *             config.cipher), then EOF.
 *             The key never appears in argv, the environment, a file or a log.
 *   fd 5      write end of the status pipe: the server writes one JSON line (ServerStatus) once the
 *             FUSE mount is serving, or once it failed, then closes it.
 *   fd 6      read end of a pipe carrying the ServerConfig as JSON, then EOF. Not argv: every local
 *             user can read /proc/<pid>/cmdline, and the container path, size and data offset
 *             (which tells a VeraCrypt hidden volume from its outer volume) are nobody else's business.
 * Neither argv nor the environment says anything about the volume.
 *
 * A server started early by `vault mount` (prelaunch.ts, AWAIT_FDS_FLAG) gets fds 1 to 4 later,
 * over fd 6, and then has the same descriptors as above.
 */
import type { CipherName } from '../crypto/cipher-chain.js';

export interface ServerConfig {
  volumeId: string;
  containerPath: string;
  /** Directory (mode 0700) on which the FUSE filesystem is mounted; it serves one file, BLOCK_FILE_NAME. */
  fuseDir: string;
  readOnly: boolean;
  sectorSize: number;
  dataOffset: number;
  dataSize: number;
  /** XTS tweak of data sector i is firstTweak + i * tweakStep (vault format: 0 and 1). */
  firstTweak: string; // decimal, as JSON has no bigint
  tweakStep: string;
  /** The XTS cipher chain in encryption order (e.g. ['serpent', 'twofish', 'aes']); the key pipe
   *  carries chainKeyBytes(cipher) bytes. Absent: AES alone (64 bytes). */
  cipher?: CipherName[];
  /** Instead of `cipher`: another scheme the native engine runs, by its engine name: a TrueCrypt
   *  legacy chain (LRW/CBC, e.g. "lrw-serpent-twofish-aes", native/tc_legacy.h; 512-byte sectors,
   *  read-only) or a LUKS dm-crypt spec (e.g. "aes-cbc-essiv:sha256/256", native/dm_crypt.h). The
   *  key pipe carries its key bytes. */
  engine?: string;
  /** How the server talks to the kernel: FUSE over io_uring, classic /dev/fuse reads, or the best
   *  this kernel offers ('auto'). */
  transport: TransportChoice;
  /** Seconds without a read or write after which the server dismounts its own volume; null: never. */
  idleSeconds: number | null;
  /** A server run by an ordinary user mounts through fusermount3, and its mount is then usable by
   *  that user alone; true lets root use it too (e.g. to attach a loop device). Needs
   *  user_allow_other in /etc/fuse.conf (fusermount3 refuses otherwise). Default false; meaningless
   *  for a server run by root, whose mount is root's alone anyway. */
  allowRoot?: boolean;
  /** The block file through the kernel's page cache (the fuse route's driver reads and writes it in
   *  4 KiB pieces); otherwise FOPEN_DIRECT_IO, as a loop device with direct I/O wants it. */
  pageCache?: boolean;
  /** mount --allow-discards: a hole punch on the block file (a discard through the loop device)
   *  punches a hole in the container; otherwise it is refused with EOPNOTSUPP. Default false. */
  allowDiscards?: boolean;
  /** A stored all-zero sector reads as zeros (spec/format.md §8): the vault format. Default false. */
  zeroSectors?: boolean;
  /** mount --protect-hidden: data-area bytes [start, end) hold a hidden volume; the first write
   *  into them fails and turns the volume read-only (native/fuse_protect.c). */
  protectedRange?: { start: number; end: number };
}

export type TransportChoice = 'auto' | FuseTransport;
export type FuseTransport = 'io_uring' | 'classic';

export const BLOCK_FILE_NAME = 'volume';

export const SERVER_FD = { container: 3, key: 4, status: 5, config: 6 } as const;

/**
 * argv of a server launched before the CLI has its descriptors (prelaunch.ts): fds 1 to 4 are
 * /dev/null until the CLI sends the log, the container and the key pipe, in that order, as one
 * SCM_RIGHTS message of one byte on fd 6; the server puts them at 1 and 2, 3 and 4, then reads its
 * config from fd 6 as any server does. End of file instead: the CLI gave up, and the server exits.
 */
export const AWAIT_FDS_FLAG = '--await-fds';
/** How many descriptors that message carries: log, container, key pipe. */
export const PASSED_FD_COUNT = 3;

/** Bound on the config's JSON: it is a few hundred bytes; more means something else wrote the pipe. */
export const MAX_CONFIG_BYTES = 64 * 1024;

export type ServerStatus =
  | { ok: true; pid: number; blockFile: string; transport: FuseTransport }
  | { ok: false; code: string; message: string };
