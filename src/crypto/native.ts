// vault's N-API addon (native/vault_native.c and the rest of native/, built by
// scripts/build-native.mjs): key handles in locked memory, batched XTS, a few syscalls. Required:
// a missing addon is an error that says how to build it, never a quiet fallback.
import { loadVaultAddon } from './addon-loader.js';

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
  /** XTS in place over a cipher chain ("aes", "serpent-twofish-aes": encryption order), sector i
   *  using tweak firstTweak + i * tweakStep. */
  xts(key: NativeKey, buf: Uint8Array, sectorSize: number, firstTweak: bigint, tweakStep: bigint, encrypt: boolean, cipher: string): void;
  /** As xts(), on the libuv threadpool. Do not touch `buf` until the promise settles. */
  xtsAsync(
    key: NativeKey,
    buf: Uint8Array,
    sectorSize: number,
    firstTweak: bigint,
    tweakStep: bigint,
    encrypt: boolean,
    cipher: string,
  ): Promise<void>;
  /** libgcrypt's own XTS through an XTS chain ("aes", "serpent-twofish-aes"; no Kuznyechik), one
   *  call per sector, one pass per cipher: the benchmark's reference figure. */
  gcryXtsReference(cipher: string, key: NativeKey, buf: Uint8Array, sectorSize: number, encrypt: boolean): void;
  /** One cipher's block function (ECB) in place under a 32-byte key: for known-answer tests. */
  cipherEcb(cipher: string, key: NativeKey, buf: Uint8Array, encrypt: boolean): void;
  /** out[16·i, 16·i+16) = SHA-256(unit i of buf)[0..16), on the libuv threadpool. Do not touch buf or out until it settles. */
  unitHashesAsync(buf: Uint8Array, unitSize: number, out: Uint8Array): Promise<void>;
  /** out[i] = 1 where unit i of buf is all zero bytes, else 0 (out: one byte per unit); returns how many are. */
  zeroUnits(buf: Uint8Array, unitSize: number, out: Uint8Array): number;
  /**
   * PBKDF2-HMAC on the libuv threadpool (native/kdf.c): fills `out` (1..1024 bytes) from output
   * block `firstBlock` (1-based) on. hash: sha1, sha256, sha512, blake2s256, ripemd160, whirlpool,
   * streebog512. `cancel[0]` turning non-zero stops it (rejects with code ERR_VAULT_CANCELLED, out
   * zeroed). Do not touch the buffers until it settles.
   */
  pbkdf2Async(hash: string, password: Uint8Array, salt: Uint8Array, iterations: number, out: Uint8Array, firstBlock: number, cancel: Uint8Array | null): Promise<void>;
  /** Argon2id (0x13) through libgcrypt on the libuv threadpool, into `out` (4..1024 bytes); cancel as pbkdf2Async's, checked per segment. */
  argon2idAsync(password: Uint8Array, salt: Uint8Array, memoryKiB: number, passes: number, lanes: number, out: Uint8Array, cancel: Uint8Array | null): Promise<void>;
  /**
   * Argon2i or Argon2id (0x13) through Debian's libargon2 with `lanes` threads, on the libuv
   * threadpool, into `out` (4..1024 bytes); secret and associated data null or ≤ 1024 bytes. Its
   * memory (≤ 4 GiB) is on huge pages, locked where RLIMIT_MEMLOCK allows, wiped before it is
   * freed. Rejects with code ERR_VAULT_KDF ("not enough memory" when the blocks cannot be mapped).
   * Not cancellable. Do not touch the buffers until it settles.
   */
  argon2Async(
    variant: 'argon2i' | 'argon2id',
    password: Uint8Array,
    salt: Uint8Array,
    memoryKiB: number,
    passes: number,
    lanes: number,
    out: Uint8Array,
    secret: Uint8Array | null,
    associatedData: Uint8Array | null,
  ): Promise<void>;
  /** prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace attach without CAP_SYS_PTRACE. */
  hardenProcess(): void;
  isDumpable(): boolean;
  /** flock(2); returns 0 or an errno (EWOULDBLOCK when non-blocking and held elsewhere). */
  flock(fd: number, exclusive: boolean, nonBlocking: boolean): number;
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  /** One sendmsg(2) of one byte carrying `fds` (1 to 8, SCM_RIGHTS) on a unix stream socket: 0, or the errno. */
  sendFds(socket: number, fds: number[]): number;
  /**
   * Blocks the JS thread in recvmsg(2) until sendFds's byte arrives with exactly `count`
   * descriptors (close-on-exec); null at end of file. Throws (ERR_VAULT_PROTOCOL) on anything else.
   */
  recvFds(socket: number, count: number): number[] | null;
  /** dup2(2), newfd without close-on-exec: 0, or the errno. */
  dup2(oldFd: number, newFd: number): number;
  /** socket(domain, type, 0), closed again at once: 0, or the errno (EAFNOSUPPORT: no such family). */
  probeSocket(domain: number, type: number): number;
  /** prctl(PR_SET_IO_FLUSHER, on): 0, or the errno (EPERM without CAP_SYS_RESOURCE). */
  setIoFlusher(on: boolean): number;
  /** umount2(path, flags) (MNT_DETACH 2, UMOUNT_NOFOLLOW 8): 0, or the errno (EBUSY, EINVAL: not a mount). */
  umount2(path: string, flags: number): number;
  /** ioctl(fd, BLKDISCARD, [offset, length]) on a block device open for writing: 0, or the errno. */
  blkDiscard(fd: number, offset: number, length: number): number;
  /** LOOP_CONFIGURE of a free loop device (sys_napi.c): its number N (/dev/loopN), or -errno. blockSize 0: the kernel's. */
  loopAttach(fileFd: number, readOnly: boolean, directIo: boolean, blockSize: number): number;
  /**
   * libblkid's `blkid -p` probe of the device or file open on fd (fs_napi.c), for the filesystem
   * types `onlyTypes` (null: every type): [rc, TYPE or null]; rc 0 found, 1 nothing, -2 ambivalent, -1 failed.
   */
  blkidProbe(fd: number, onlyTypes: readonly string[] | null): [number, string | null];
  /**
   * fsopen(type), fsconfig(source, then each param: [name, value], value null for a flag), fsmount
   * with `attrs` (MOUNT_ATTR_*), move_mount onto the directory open on targetFd (fs_napi.c): [0, '']
   * when mounted, else [errno, the filesystem's log messages].
   */
  mountAt(type: string, source: string, params: readonly (readonly [string, string | null])[], attrs: number, targetFd: number): [number, string];
  /** openat(dirFd, name, flags | O_CLOEXEC, mode): the new fd, or -errno. `name` is one path component. */
  openat(dirFd: number, name: string, flags: number, mode: number): number;
  /** renameat2 within one directory (RENAME_NOREPLACE when noReplace): 0 or an errno. */
  renameat(dirFd: number, from: string, to: string, noReplace: boolean): number;
  /** unlinkat(dirFd, name, 0): 0 or an errno (EISDIR for a directory). */
  unlinkat(dirFd: number, name: string): number;
}

/** The addon; throws an Error saying how to build it when it is missing. */
export function nativeAddon(): NativeAddon {
  return loadVaultAddon() as NativeAddon;
}

/** A TrueCrypt legacy chain as native/tc_legacy.c knows it (ciphers in the order they encrypt). */
export interface NativeTcLegacyChain {
  name: string;
  mode: 'lrw' | 'cbc' | 'cbc-outer';
  ciphers: string[];
  keyBytes: number;
}

/** Opaque native context of one legacy chain's key schedules (an N-API External). */
export type NativeTcLegacyContext = { readonly __brand: 'vault.NativeTcLegacyContext' };

/** TrueCrypt's pre-5.0 LRW and CBC modes (native/tc_legacy_napi.c), part of the same addon. */
export interface NativeTcLegacy {
  tcLegacyChains(): NativeTcLegacyChain[];
  /** Key schedules of `chain` from the key material (header key or the header's 256-byte key area). */
  tcLegacyOpen(chain: string, key: NativeKey): NativeTcLegacyContext;
  /** The 448 encrypted bytes of a header (bytes 64..512), in place. */
  tcLegacyHeader(ctx: NativeTcLegacyContext, buf: Uint8Array, encrypt: boolean): void;
  /** Whole 512-byte sectors in place, the first with IV sector number firstSector. */
  tcLegacySectors(ctx: NativeTcLegacyContext, buf: Uint8Array, firstSector: bigint, encrypt: boolean): void;
  /** Wipes the context; idempotent. */
  tcLegacyClose(ctx: NativeTcLegacyContext): void;
}

/** The addon's TrueCrypt legacy functions. */
export function nativeTcLegacy(): NativeTcLegacy {
  return loadVaultAddon() as NativeTcLegacy;
}

/** What tpm2SealAsync returns: the marshalled TPM2B_PUBLIC and TPM2B_PRIVATE and the object's policy digest. */
export interface NativeTpm2Sealed {
  public: Buffer;
  private: Buffer;
  policyHash: Buffer;
}

/**
 * TPM2 sealing through tpm2-tss (native/tpm2.c, tpm2_napi.c), part of the same addon. tcti: a
 * tpm2-tss TCTI string ("swtpm:host=localhost,port=2321", "device:/dev/tpmrm0"), null for its
 * default search. pcrMask: bit i selects PCR i of the sha256 bank. pin: the PIN's bytes or null.
 * Both copy their arguments at the call. Rejections carry `code` ERR_VAULT_TPM_UNAVAILABLE,
 * ERR_VAULT_TPM_POLICY, ERR_VAULT_TPM_AUTH, ERR_VAULT_TPM_LOCKOUT, ERR_VAULT_TPM_BLOB or
 * ERR_VAULT_TPM, and `tpmRc`.
 */
export interface NativeTpm2 {
  tpm2SealAsync(secret: Uint8Array, tcti: string | null, pcrMask: number, pin: Uint8Array | null): Promise<NativeTpm2Sealed>;
  /** Resolves to the secret in a Buffer the caller wipes. */
  tpm2UnsealAsync(
    pub: Uint8Array,
    priv: Uint8Array,
    pcrMask: number,
    tcti: string | null,
    pin: Uint8Array | null,
  ): Promise<Buffer>;
}

/** The addon's TPM2 functions. */
export function nativeTpm2(): NativeTpm2 {
  return loadVaultAddon() as NativeTpm2;
}
