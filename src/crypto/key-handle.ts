// KeyHandle: a secret key that JS code passes around without holding its bytes.
//
// The bytes live in the native addon's mmap'ed, mlock'ed, MADV_DONTDUMP pages, wiped with
// OPENSSL_cleanse on dispose(); JS only holds an opaque reference.
import type { NativeKey } from './native.js';
import { nativeAddon } from './native.js';

/** Largest key a handle holds (the native side enforces the same). */
export const MAX_KEY_LENGTH = 65536;

/** @internal What a live handle holds; only src/crypto/ modules look inside. */
export interface KeyState {
  readonly key: NativeKey;
}

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
    return new KeyHandle({ key: nativeAddon().keyFromBytes(bytes) }, bytes.length);
  }

  /**
   * Reads exactly `length` bytes from `fd` (e.g. the read end of a pipe from the parent process),
   * blocking until they have arrived; end of file first is an error. The bytes go straight into
   * locked memory and never through a JS buffer.
   */
  static readFromFd(fd: number, length: number): KeyHandle {
    checkFd(fd);
    checkLength(length);
    return new KeyHandle({ key: nativeAddon().keyFromFd(fd, length) }, length);
  }

  /** Writes the key bytes to `fd` (e.g. a pipe to a child process), blocking until all are written. */
  writeToFd(fd: number): void {
    checkFd(fd);
    nativeAddon().keyToFd(this.#live().key, fd);
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
      nativeAddon().keyCopyTo(state.key, copy);
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

  get disposed(): boolean {
    return this.#state === null;
  }

  /**
   * Wipes the key (OPENSSL_cleanse, munlock, munmap). Idempotent.
   * Any later use of the handle throws. Native async XTS jobs already queued still finish; the
   * wipe then happens when the last of them completes.
   */
  dispose(): void {
    const state = this.#state;
    if (state === null) return;
    this.#state = null;
    nativeAddon().keyDispose(state.key);
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
