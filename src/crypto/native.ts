// Loader for vault's N-API addon (native/vault_native.c, built by scripts/build-native.mjs).
//
// The addon is optional: without it vault falls back to node:crypto (slower, and keys live in
// ordinary JS memory). VAULT_REQUIRE_NATIVE=1 turns a missing addon into an error (CI sets it so
// the suite cannot silently pass on the fallback); VAULT_DISABLE_NATIVE=1 pretends it is absent
// (tests use it to exercise the fallback). Both are read once, on first use.
import { addonPath, loadAddon } from './addon-loader.js';

/** Opaque handle to key bytes held in locked native memory (an N-API External). */
export type NativeKey = { readonly __brand: 'vault.NativeKey' };

/** The addon's exports. Errors are Node-style: `code` is 'EPIPE' etc. for system errors. */
export interface NativeAddon {
  /** Copies `bytes` into new locked pages and zeroes `bytes` (also when the key is refused). */
  keyFromBytes(bytes: Uint8Array): NativeKey;
  /** Reads exactly `length` bytes from `fd` (blocking) straight into locked pages. */
  keyFromFd(fd: number, length: number): NativeKey;
  /** Writes the key bytes to `fd` (blocking). */
  keyToFd(key: NativeKey, fd: number): void;
  keyLength(key: NativeKey): number;
  /** Copies the key into `target` (exactly keyLength bytes); the caller must wipe it. */
  keyCopyTo(key: NativeKey, target: Uint8Array): void;
  /** Wipes (OPENSSL_cleanse), munlocks and unmaps; idempotent. Deferred while async jobs run. */
  keyDispose(key: NativeKey): void;
  /** XTS-AES-256 in place, sector i using tweak firstTweak + i * tweakStep. */
  xts(key: NativeKey, buf: Uint8Array, sectorSize: number, firstTweak: bigint, tweakStep: bigint, encrypt: boolean): void;
  /** As xts(), on the libuv threadpool. Do not touch `buf` until the promise settles. */
  xtsAsync(
    key: NativeKey,
    buf: Uint8Array,
    sectorSize: number,
    firstTweak: bigint,
    tweakStep: bigint,
    encrypt: boolean,
  ): Promise<void>;
  /** prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace attach without CAP_SYS_PTRACE. */
  hardenProcess(): void;
  isDumpable(): boolean;
  /** flock(2); returns 0 or an errno (EWOULDBLOCK when non-blocking and held elsewhere). */
  flock(fd: number, exclusive: boolean, nonBlocking: boolean): number;
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  /** socket(domain, type, 0), closed again at once: 0, or the errno (EAFNOSUPPORT: no such family). */
  probeSocket(domain: number, type: number): number;
  /** prctl(PR_SET_IO_FLUSHER, on): 0, or the errno (EPERM without CAP_SYS_RESOURCE). */
  setIoFlusher(on: boolean): number;
  /** umount2(path, flags) (MNT_DETACH 2, UMOUNT_NOFOLLOW 8): 0, or the errno (EBUSY, EINVAL: not a mount). */
  umount2(path: string, flags: number): number;
  /** openat(dirFd, name, flags | O_CLOEXEC, mode): the new fd, or -errno. `name` is one path component. */
  openat(dirFd: number, name: string, flags: number, mode: number): number;
  /** renameat2 within one directory (RENAME_NOREPLACE when noReplace): 0 or an errno. */
  renameat(dirFd: number, from: string, to: string, noReplace: boolean): number;
  /** unlinkat(dirFd, name, 0): 0 or an errno (EISDIR for a directory). */
  unlinkat(dirFd: number, name: string): number;
}

const ADDON_RELATIVE = addonPath('vault_native.node');

let loaded = false;
let addon: NativeAddon | null = null;
let loadError: Error | null = null;

function load(): void {
  loaded = true;
  ({ addon, error: loadError } = loadAddon<NativeAddon>('vault_native.node', ['VAULT_DISABLE_NATIVE']));
}

function missingError(): Error {
  return new Error(
    `vault: the native addon (${ADDON_RELATIVE}) is required but not available: ${loadError?.message ?? 'unknown'}. ` +
      'Build it with `npm run build:native` (needs make and a C compiler).',
    { cause: loadError },
  );
}

/**
 * The addon, or null when it is absent or disabled (VAULT_DISABLE_NATIVE=1).
 * Throws instead of returning null when VAULT_REQUIRE_NATIVE=1.
 */
export function nativeAddon(): NativeAddon | null {
  if (!loaded) load();
  if (addon === null && process.env['VAULT_REQUIRE_NATIVE'] === '1') throw missingError();
  return addon;
}

/** The addon; throws (with the load error as `cause`) when it is not available. */
export function requireNative(): NativeAddon {
  const a = nativeAddon();
  if (a === null) throw missingError();
  return a;
}
