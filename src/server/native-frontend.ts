/**
 * Serves a container's decrypted data area as the single file `volume` through the native volume
 * server (native/fuse_*.c): FUSE spoken directly on /dev/fuse by native threads, so no request
 * crosses into the JS thread.
 *
 * Private to whoever runs the server: root (mount(2)), or an ordinary user (fusermount3, which mounts
 * with user_id=<uid>: nobody else, not even root, gets in, unless config.allowRoot). No allow_other
 * for anyone else; root directory 0700, file 0600 (0400 read-only). The key is read by the addon
 * from `keyFd` straight into locked memory; it never enters JS.
 */
import { envValue, type EnvName } from '../env.js';
import { VaultError } from '../errors.js';
import { URING_HINT } from '../system/capabilities.js';
import { fuseAddon, type FuseEnd, type FuseStats } from './fuse-addon.js';
import { BLOCK_FILE_NAME, type ServerConfig } from './protocol.js';
import { AES_XTS, chainSpec } from '../crypto/cipher-chain.js';

export type { FuseEnd, FuseStats } from './fuse-addon.js';

export interface NativeTuning {
  /** Worker threads (1..64). Default: the addon's, 8 (the server asks for 16; tuningFromEnv). */
  threads?: number;
  /** Negotiate FUSE_ASYNC_DIO (default true). */
  asyncDio?: boolean;
  /** Open `volume` with FOPEN_PARALLEL_DIRECT_WRITES (default true). */
  parallelDirectWrites?: boolean;
  /** Access the container with O_DIRECT where its filesystem allows (default true). */
  directIo?: boolean;
  /** With directIo: writes through the host page cache, reads O_DIRECT (default true). */
  bufferedWrites?: boolean;
  /** Largest READ/WRITE request (default 1 MiB). */
  maxRequest?: number;
}

export interface NativeServer {
  /** `<fuseDir>/volume`. */
  readonly blockFile: string;
  /** Settles when the server has ended (stop(), `umount` from outside, or a fatal error); by then
   *  the FUSE mount is gone (or detached), the container synced and the key wiped. Never rejects. */
  readonly done: Promise<FuseEnd>;
  /** Unmounts, aborts the connection if something still holds `volume` open after 1 s, joins the
   *  workers, syncs and wipes the key. Idempotent. */
  stop(): Promise<void>;
  /** Counters since the start, and the time of the last I/O (for idle detection). */
  stats(): FuseStats;
  /** The container grew (vault resize online): serve `dataSize` bytes from now on. */
  grow(dataSize: number): void;
}

function envInt(name: EnvName, min: number, max: number): number | undefined {
  const v = envValue(name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

function envBool(name: EnvName): boolean | undefined {
  const v = envValue(name);
  return v === '0' ? false : v === '1' ? true : undefined;
}

/** The tuning set by $VAULT_FUSE_THREADS, $VAULT_FUSE_MAX_REQUEST (bytes), $VAULT_FUSE_DIRECT_IO
 *  (0/1: O_DIRECT on the container) and $VAULT_FUSE_BUFFERED_WRITES (0/1), for benchmarks (bench/RESULTS.md); launchServer() passes
 *  these through to the server (TUNING_ENV in spawn.ts). Unset or invalid values are left out. */
export function tuningFromEnv(): NativeTuning {
  const threads = envInt('VAULT_FUSE_THREADS', 1, 64);
  const maxRequest = envInt('VAULT_FUSE_MAX_REQUEST', 65536, 64 << 20);
  const directIo = envBool('VAULT_FUSE_DIRECT_IO');
  const bufferedWrites = envBool('VAULT_FUSE_BUFFERED_WRITES');
  return {
    ...(bufferedWrites !== undefined ? { bufferedWrites } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(maxRequest !== undefined ? { maxRequest } : {}),
    ...(directIo !== undefined ? { directIo } : {}),
  };
}

/**
 * Mounts config.fuseDir and serves the volume until stop() or an outside unmount. `containerFd` is
 * the container (the server keeps its own duplicate of it; the caller may close this one after the
 * promise resolves), `keyFd` carries exactly 64 key bytes then EOF (the caller closes it).
 * Throws a VaultError ('missing-component' without the addon, 'mount-failed' otherwise, the
 * addon's Error with its errno `code` as cause); nothing is left mounted then.
 */
export async function serveNative(
  config: ServerConfig,
  containerFd: number,
  keyFd: number,
  tuning: NativeTuning = {},
): Promise<NativeServer> {
  let addon;
  try {
    addon = fuseAddon();
  } catch (e) {
    throw new VaultError('missing-component', (e as Error).message, 'run `npm run build:native`', { cause: e });
  }
  let session;
  try {
    session = addon.serve({
      mountDir: config.fuseDir,
      containerFd,
      keyFd,
      dataOffset: config.dataOffset,
      dataSize: config.dataSize,
      sectorSize: config.sectorSize,
      firstTweak: BigInt(config.firstTweak),
      tweakStep: BigInt(config.tweakStep),
      cipher: config.engine ?? chainSpec(config.cipher ?? AES_XTS),
      readOnly: config.readOnly,
      transport: config.transport,
      ...(config.allowRoot ? { allowRoot: true } : {}),
      ...(config.pageCache ? { pageCache: true } : {}),
      ...(config.allowDiscards ? { allowDiscards: true } : {}),
      ...(config.zeroSectors ? { zeroSectors: true } : {}),
      ...(config.protectedRange ? { protectStart: config.protectedRange.start, protectEnd: config.protectedRange.end } : {}),
      ...(tuning.threads !== undefined ? { threads: tuning.threads } : {}),
      ...(tuning.asyncDio !== undefined ? { asyncDio: tuning.asyncDio } : {}),
      ...(tuning.parallelDirectWrites !== undefined ? { parallelDirectWrites: tuning.parallelDirectWrites } : {}),
      ...(tuning.directIo !== undefined ? { directIo: tuning.directIo } : {}),
      ...(tuning.bufferedWrites !== undefined ? { bufferedWrites: tuning.bufferedWrites } : {}),
      ...(tuning.maxRequest !== undefined ? { maxRequest: tuning.maxRequest } : {}),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_VAULT_URING_UNAVAILABLE')
      throw new VaultError('missing-component', (e as Error).message, URING_HINT, { cause: e });
    throw new VaultError('mount-failed', `FUSE mount failed: ${(e as Error).message}`, undefined, { cause: e });
  }
  // The closures below hold `session`: while this object is reachable the server cannot be
  // garbage-collected (which would stop it).
  const done = addon.wait(session).catch(
    (e: unknown): FuseEnd => ({ reason: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
  return {
    blockFile: `${config.fuseDir}/${BLOCK_FILE_NAME}`,
    done,
    async stop() {
      addon.stop(session);
      await done;
    },
    stats: () => addon.stats(session),
    grow: (dataSize) => addon.grow(session, dataSize),
  };
}
