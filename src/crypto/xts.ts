// XTS-AES-256 (IEEE 1619) over whole sectors, in place; one sector = one data unit.
//
// Sector i of a buffer uses the tweak firstTweak + i * tweakStep, as a 128-bit little-endian
// number. vault's own format counts sectors (step 1); foreign formats count other units: LUKS2
// with 4096-byte sectors counts 512-byte units (step 8), VeraCrypt counts host byte offset / 512.
//
// Backends: the native addon (OpenSSL EVP inside node, batched, optionally on the libuv
// threadpool) or, without it, node:crypto's aes-256-xts one sector at a time. Output is
// byte-identical; the fallback is much slower and warns once per process.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { KeyHandle, KeyState } from './key-handle.js';
import { keyStateOf } from './key-handle.js';
import type { NativeAddon } from './native.js';
import { nativeAddon, requireNative } from './native.js';

export interface XtsParams {
  /** Bytes per data unit: a multiple of 16, at least 16 (vault uses 512 and 4096). */
  sectorSize: number;
  /** Tweak of the first sector in the buffer, in [0, 2^64). */
  firstTweak: bigint;
  /** Tweak increment from one sector to the next; default 1n. */
  tweakStep?: bigint;
}

export type XtsBackend = 'native' | 'node-crypto';

const KEY_LENGTH = 64;
const U64_MAX = (1n << 64n) - 1n;
/** OpenSSL refuses XTS data units over 2^20 blocks (IEEE 1619's limit). */
const MAX_SECTOR_SIZE = 16 << 20;
const FALLBACK_WARNING = 'vault: native addon not available, using the slower node:crypto path\n';

let forcedBackend: XtsBackend | null = null;
let warned = false;

interface Checked {
  sectorSize: number;
  firstTweak: bigint;
  tweakStep: bigint;
}

function check(key: KeyHandle, buf: Uint8Array, p: XtsParams): { state: KeyState; args: Checked } {
  const state = keyStateOf(key); // TypeError if not a KeyHandle, Error if disposed
  if (key.length !== KEY_LENGTH) throw new RangeError(`XTS-AES-256 needs a ${KEY_LENGTH}-byte key, got ${key.length} bytes`);
  if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Uint8Array or Buffer');
  if (typeof p !== 'object' || p === null) throw new TypeError('XTS parameters must be an object');
  const { sectorSize, firstTweak } = p;
  const tweakStep = p.tweakStep ?? 1n;
  if (typeof sectorSize !== 'number') throw new TypeError(`sectorSize must be a number, got ${typeof sectorSize}`);
  if (!Number.isInteger(sectorSize) || sectorSize < 16 || sectorSize % 16 !== 0 || sectorSize > MAX_SECTOR_SIZE) {
    throw new RangeError(`sectorSize must be a multiple of 16 in [16, ${MAX_SECTOR_SIZE}], got ${sectorSize}`);
  }
  if (buf.length === 0 || buf.length % sectorSize !== 0) {
    throw new RangeError(`buffer length ${buf.length} is not a positive multiple of sectorSize ${sectorSize}`);
  }
  if (typeof firstTweak !== 'bigint') throw new TypeError(`firstTweak must be a bigint, got ${typeof firstTweak}`);
  if (firstTweak < 0n || firstTweak > U64_MAX) throw new RangeError(`firstTweak must be in [0, 2^64), got ${firstTweak}`);
  if (typeof tweakStep !== 'bigint') throw new TypeError(`tweakStep must be a bigint, got ${typeof tweakStep}`);
  // 0 would give every sector the same tweak, leaking which sectors are equal.
  if (tweakStep < 1n || tweakStep > U64_MAX) throw new RangeError(`tweakStep must be in [1, 2^64), got ${tweakStep}`);
  const lastTweak = firstTweak + BigInt(buf.length / sectorSize - 1) * tweakStep;
  if (lastTweak > U64_MAX) {
    throw new RangeError(`the last sector's tweak (${lastTweak}) exceeds 2^64 - 1 (firstTweak ${firstTweak}, tweakStep ${tweakStep})`);
  }
  return { state, args: { sectorSize, firstTweak, tweakStep } };
}

/** The addon when this call should use it, else null (fallback). */
function pickNative(state: KeyState): NativeAddon | null {
  if (forcedBackend === 'node-crypto') return null;
  if (forcedBackend === 'native') {
    const native = requireNative();
    if (state.kind !== 'native') throw new Error('the native XTS backend needs a native key handle');
    return native;
  }
  return state.kind === 'native' ? nativeAddon() : null;
}

function nodeCryptoXts(state: KeyState, buf: Uint8Array, a: Checked, encrypt: boolean): void {
  // Warn only when the fallback is a fact of this machine, not a path chosen on purpose to measure it.
  if (!warned && forcedBackend === null) {
    warned = true;
    process.stderr.write(FALLBACK_WARNING);
  }
  const run = (key: Buffer): void => {
    const iv = Buffer.alloc(16); // bytes 8..15 stay zero: tweaks are < 2^64
    let tweak = a.firstTweak;
    for (let off = 0; off < buf.length; off += a.sectorSize, tweak += a.tweakStep) {
      iv.writeBigUInt64LE(tweak, 0);
      const cipher = encrypt ? createCipheriv('aes-256-xts', key, iv) : createDecipheriv('aes-256-xts', key, iv);
      const sector = buf.subarray(off, off + a.sectorSize);
      const out = cipher.update(sector);
      cipher.final(); // XTS has no padding or buffered state: nothing comes out here
      sector.set(out);
      out.fill(0); // may be plaintext
    }
  };
  if (state.kind === 'js') run(state.bytes);
  else withNativeKeyBytes(state, run); // only when a test forces the fallback with a native key
}

function withNativeKeyBytes(state: KeyState & { kind: 'native' }, fn: (key: Buffer) => void): void {
  const copy = Buffer.alloc(KEY_LENGTH);
  try {
    requireNative().keyCopyTo(state.key, copy);
    fn(copy);
  } finally {
    copy.fill(0);
  }
}

function runSync(key: KeyHandle, buf: Uint8Array, p: XtsParams, encrypt: boolean): void {
  const { state, args } = check(key, buf, p);
  const native = pickNative(state);
  if (native !== null && state.kind === 'native') {
    native.xts(state.key, buf, args.sectorSize, args.firstTweak, args.tweakStep, encrypt);
  } else {
    nodeCryptoXts(state, buf, args, encrypt);
  }
}

async function runAsync(key: KeyHandle, buf: Uint8Array, p: XtsParams, encrypt: boolean): Promise<void> {
  const { state, args } = check(key, buf, p);
  const native = pickNative(state);
  if (native !== null && state.kind === 'native') {
    await native.xtsAsync(state.key, buf, args.sectorSize, args.firstTweak, args.tweakStep, encrypt);
  } else {
    // The fallback has no threadpool variant: it runs here, on the calling thread.
    nodeCryptoXts(state, buf, args, encrypt);
  }
}

/** Encrypts `buf` in place. Throws TypeError/RangeError on bad arguments. */
export function xtsEncrypt(key: KeyHandle, buf: Uint8Array, p: XtsParams): void {
  runSync(key, buf, p, true);
}

/** Decrypts `buf` in place. */
export function xtsDecrypt(key: KeyHandle, buf: Uint8Array, p: XtsParams): void {
  runSync(key, buf, p, false);
}

/**
 * Encrypts `buf` in place on the libuv threadpool (native backend), keeping the main thread free.
 * Do not read or modify `buf` until the promise settles. Argument errors reject.
 */
export function xtsEncryptAsync(key: KeyHandle, buf: Uint8Array, p: XtsParams): Promise<void> {
  return runAsync(key, buf, p, true);
}

/** Decrypts `buf` in place on the libuv threadpool; see xtsEncryptAsync. */
export function xtsDecryptAsync(key: KeyHandle, buf: Uint8Array, p: XtsParams): Promise<void> {
  return runAsync(key, buf, p, false);
}

/** The backend xtsEncrypt & co. use for native key handles in this process. */
export function xtsBackend(): XtsBackend {
  if (forcedBackend !== null) return forcedBackend;
  return nativeAddon() !== null ? 'native' : 'node-crypto';
}

/**
 * TEST/BENCH ONLY: force a backend for this process (null restores automatic selection), so the
 * fallback can be compared with the native path in one process. 'native' makes calls throw when
 * the addon is absent instead of falling back.
 */
export function __forceBackendForTests(backend: XtsBackend | null): void {
  forcedBackend = backend;
}
