// XTS (IEEE 1619) over whole sectors, in place; one sector = one data unit. XTS-AES-256 unless
// the parameters name another cipher chain (VeraCrypt's ciphers and cascades, cipher-chain.ts).
//
// Sector i of a buffer uses the tweak firstTweak + i * tweakStep, as a 128-bit little-endian
// number. vault's own format counts sectors (step 1); foreign formats count other units: LUKS2
// with 4096-byte sectors counts 512-byte units (step 8), VeraCrypt counts host byte offset / 512.
//
// Runs in the native addon (batched, optionally on the libuv threadpool): the same code as the
// volume server's data path (native/cipher_engine.c; AES, like Serpent, Twofish and Camellia, through libgcrypt's XTS).
import type { KeyHandle, KeyState } from './key-handle.js';
import { keyStateOf } from './key-handle.js';
import { nativeAddon } from './native.js';
import { AES_XTS, type CipherChain, chainKeyBytes, chainSpec, isCipherChain } from './cipher-chain.js';

export interface XtsParams {
  /** Bytes per data unit: a multiple of 16, at least 16 (vault uses 512 and 4096). */
  sectorSize: number;
  /** Tweak of the first sector in the buffer, in [0, 2^64). */
  firstTweak: bigint;
  /** Tweak increment from one sector to the next; default 1n. */
  tweakStep?: bigint;
  /** The cipher chain, in encryption order; default AES alone. The key holds chainKeyBytes(cipher). */
  cipher?: CipherChain;
  /**
   * Instead of `cipher`: a dm-crypt spec the chains do not cover, as the engine names it
   * (native/dm_crypt.h: "aes-cbc-essiv:sha256/256", "aes-xts-plain64/256"; src/formats/luks/dm-cipher.ts).
   * The engine checks the key length against it. Not XTS for CBC specs, despite this module's name.
   */
  engine?: string;
}

const U64_MAX = (1n << 64n) - 1n;
/** libgcrypt (and OpenSSL) refuse XTS data units over 2^20 blocks (IEEE 1619's limit). */
const MAX_SECTOR_SIZE = 16 << 20;

interface Checked {
  sectorSize: number;
  firstTweak: bigint;
  tweakStep: bigint;
  cipher: string;
}

function check(key: KeyHandle, buf: Uint8Array, p: XtsParams): { state: KeyState; args: Checked } {
  const state = keyStateOf(key); // TypeError if not a KeyHandle, Error if disposed
  if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Uint8Array or Buffer');
  if (typeof p !== 'object' || p === null) throw new TypeError('XTS parameters must be an object');
  const cipher = p.cipher ?? AES_XTS;
  if (p.engine !== undefined) {
    if (typeof p.engine !== 'string' || p.cipher !== undefined) throw new TypeError('engine must be a string, and excludes cipher');
  } else {
    if (!isCipherChain(cipher)) throw new TypeError('cipher must list 1 to 3 of aes, serpent, twofish, camellia, kuznyechik');
    const keyLength = chainKeyBytes(cipher);
    if (key.length !== keyLength) throw new RangeError(`XTS with ${chainSpec(cipher)} needs a ${keyLength}-byte key, got ${key.length} bytes`);
  }
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
  return { state, args: { sectorSize, firstTweak, tweakStep, cipher: p.engine ?? chainSpec(cipher) } };
}

function runSync(key: KeyHandle, buf: Uint8Array, p: XtsParams, encrypt: boolean): void {
  const { state, args } = check(key, buf, p);
  nativeAddon().xts(state.key, buf, args.sectorSize, args.firstTweak, args.tweakStep, encrypt, args.cipher);
}

async function runAsync(key: KeyHandle, buf: Uint8Array, p: XtsParams, encrypt: boolean): Promise<void> {
  const { state, args } = check(key, buf, p);
  await nativeAddon().xtsAsync(state.key, buf, args.sectorSize, args.firstTweak, args.tweakStep, encrypt, args.cipher);
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
