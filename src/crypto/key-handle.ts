// KeyHandle: a secret key that JS code passes around without holding its bytes.
//
// With the native addon the bytes live in mmap'ed, mlock'ed, MADV_DONTDUMP pages that are wiped
// with OPENSSL_cleanse on dispose(); JS only holds an opaque reference. Without it (fallback) the
// bytes are in a Buffer of our own (Buffer.alloc, never the shared pool) that dispose() zeroes;
// the V8 heap may still have been swapped or copied by then, which is why the addon is preferred.
import { timingSafeEqual } from 'node:crypto';
import { readSync, writeSync } from 'node:fs';
import type { NativeKey } from './native.js';
import { nativeAddon, requireNative } from './native.js';

/** Largest key a handle holds (the native side enforces the same). */
export const MAX_KEY_LENGTH = 65536;
const XTS_KEY_LENGTH = 64;

/** @internal What a live handle holds; only src/crypto/ modules look inside. */
export type KeyState = { readonly kind: 'native'; readonly key: NativeKey } | { readonly kind: 'js'; readonly bytes: Buffer };

let stateOf: (handle: KeyHandle) => KeyState;

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function checkLength(length: unknown): asserts length is number {
  if (typeof length !== 'number') throw new TypeError(`key length must be a number, got ${typeof length}`);
  if (!Number.isInteger(length) || length < 1 || length > MAX_KEY_LENGTH) {
    throw new RangeError(`key length must be an integer in [1, ${MAX_KEY_LENGTH}], got ${length}`);
  }
}

function checkFd(fd: unknown): asserts fd is number {
  if (typeof fd !== 'number') throw new TypeError(`fd must be a number, got ${typeof fd}`);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new RangeError(`fd must be a non-negative integer, got ${fd}`);
}

/** Same rule as the native side: XTS forbids key1 == key2, so refuse it when the key is created. */
function checkXtsHalves(bytes: Buffer): void {
  if (bytes.length === XTS_KEY_LENGTH && timingSafeEqual(bytes.subarray(0, 32), bytes.subarray(32))) {
    throw codedError('invalid XTS-AES-256 key: its two 32-byte halves are equal', 'ERR_VAULT_XTS_EQUAL_HALVES');
  }
}

function isWouldBlock(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

/** Blocking pause for the fallback's O_NONBLOCK fds (the native side uses poll() instead). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class KeyHandle {
  #state: KeyState | null;
  readonly #length: number;

  static {
    stateOf = (handle) => handle.#live();
  }

  private constructor(state: KeyState, length: number) {
    this.#state = state;
    this.#length = length;
  }

  /**
   * Copies `bytes` into a new handle and zeroes `bytes`: the caller's copy does not outlive the
   * call (it is zeroed even when the key is then refused, e.g. a 64-byte key with equal halves).
   */
  static fromBytes(bytes: Uint8Array): KeyHandle {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('key bytes must be a Uint8Array or Buffer');
    checkLength(bytes.length);
    const native = nativeAddon();
    if (native !== null) return new KeyHandle({ kind: 'native', key: native.keyFromBytes(bytes) }, bytes.length);
    const copy = Buffer.alloc(bytes.length);
    copy.set(bytes);
    bytes.fill(0);
    try {
      checkXtsHalves(copy);
    } catch (err) {
      copy.fill(0);
      throw err;
    }
    return new KeyHandle({ kind: 'js', bytes: copy }, copy.length);
  }

  /**
   * Reads exactly `length` bytes from `fd` (e.g. the read end of a pipe from the parent process),
   * blocking until they have arrived; end of file first is an error. With the addon the bytes go
   * straight into locked memory and never through a JS buffer.
   */
  static readFromFd(fd: number, length: number): KeyHandle {
    checkFd(fd);
    checkLength(length);
    const native = nativeAddon();
    if (native !== null) return new KeyHandle({ kind: 'native', key: native.keyFromFd(fd, length) }, length);
    const bytes = Buffer.alloc(length);
    try {
      let got = 0;
      while (got < length) {
        let n: number;
        try {
          n = readSync(fd, bytes, got, length - got, null);
        } catch (err) {
          if (isWouldBlock(err)) {
            pause(5);
            continue;
          }
          throw err;
        }
        if (n === 0) {
          throw codedError(`reading a key from fd ${fd}: end of file after ${got} of ${length} bytes`, 'ERR_VAULT_KEY_SHORT_READ');
        }
        got += n;
      }
      checkXtsHalves(bytes);
    } catch (err) {
      bytes.fill(0);
      throw err;
    }
    return new KeyHandle({ kind: 'js', bytes }, length);
  }

  /** Writes the key bytes to `fd` (e.g. a pipe to a child process), blocking until all are written. */
  writeToFd(fd: number): void {
    checkFd(fd);
    const state = this.#live();
    if (state.kind === 'native') {
      requireNative().keyToFd(state.key, fd);
      return;
    }
    let done = 0;
    while (done < state.bytes.length) {
      try {
        done += writeSync(fd, state.bytes, done, state.bytes.length - done);
      } catch (err) {
        if (!isWouldBlock(err)) throw err;
        pause(5);
      }
    }
  }

  /**
   * Runs `fn` with a temporary copy of the key for code that has to have it in JS (e.g. as an
   * HMAC key for node:crypto), and zeroes the copy when `fn` returns or throws.
   *
   * Trade-off: for the duration of `fn` the key is in ordinary V8-managed memory (not locked, may
   * be swapped or land in a core dump unless the process is hardened/mlockall'ed), and whatever
   * `fn` hands it to (e.g. createHmac) may keep its own copy that we cannot wipe. Use it only
   * where there is no native path, keep `fn` short, and do not let the buffer escape. `fn` must be
   * synchronous: a returned promise is refused, since the copy would already be zeroed.
   */
  withBytes<T>(fn: (key: Buffer) => T): T {
    const state = this.#live();
    const copy = Buffer.alloc(this.#length);
    try {
      if (state.kind === 'native') requireNative().keyCopyTo(state.key, copy);
      else state.bytes.copy(copy);
      const result = fn(copy);
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new TypeError('KeyHandle.withBytes: fn must be synchronous (the key copy is zeroed when it returns)');
      }
      return result;
    } finally {
      copy.fill(0);
    }
  }

  /** Key length in bytes (still available after dispose). */
  get length(): number {
    return this.#length;
  }

  /** True when the key lives in locked native memory. */
  get isNative(): boolean {
    return this.#state?.kind === 'native';
  }

  get disposed(): boolean {
    return this.#state === null;
  }

  /**
   * Wipes the key (native: OPENSSL_cleanse, munlock, munmap; fallback: zero fill). Idempotent.
   * Any later use of the handle throws. Native async XTS jobs already queued still finish; the
   * wipe then happens when the last of them completes.
   */
  dispose(): void {
    const state = this.#state;
    if (state === null) return;
    this.#state = null;
    if (state.kind === 'native') requireNative().keyDispose(state.key);
    else state.bytes.fill(0);
  }

  #live(): KeyState {
    if (this.#state === null) throw codedError('the key handle has been disposed', 'ERR_VAULT_KEY_DISPOSED');
    return this.#state;
  }
}

/** @internal For src/crypto/ only: the live state of a handle (throws if disposed). */
export function keyStateOf(handle: KeyHandle): KeyState {
  if (!(handle instanceof KeyHandle)) throw new TypeError('key must be a KeyHandle');
  return stateOf(handle);
}
