/**
 * A 128-bit block cipher keyed once: encrypt and decrypt one 16-byte block in place. TEST-ONLY
 * reference implementations, written in TypeScript from the ciphers' specifications, independent
 * of the native engine (native/cipher_engine.c: libgcrypt, kuznyechik.c) that they cross-check;
 * they favour clarity over speed.
 */
export interface BlockCipher {
  encrypt(block: Uint8Array): void;
  decrypt(block: Uint8Array): void;
  /** Overwrites the key schedule; the cipher must not be used afterwards. */
  wipe(): void;
}

export const BLOCK_BYTES = 16;

/** Rotations on 32-bit words (results as unsigned numbers). */
export const rotl = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
export const rotr = (x: number, n: number): number => ((x >>> n) | (x << (32 - n))) >>> 0;

export function checkKey(key: Uint8Array, name: string): void {
  if (key.length !== 32) throw new RangeError(`${name} takes a 32-byte key, got ${key.length}`);
}

export function checkBlock(block: Uint8Array): void {
  if (block.length !== BLOCK_BYTES) throw new RangeError(`a block is 16 bytes, got ${block.length}`);
}

/**
 * Zeroed arrays over their own ArrayBuffer, whose bytes live outside V8's heap. V8 keeps typed
 * arrays of up to 64 bytes made with `new Uint8Array(n)` on its heap, where a garbage collection
 * may move them and leave unwiped copies of key material behind; these never move.
 */
export const offHeapBytes = (n: number): Uint8Array => new Uint8Array(new ArrayBuffer(n));
export const offHeapWords = (n: number): Uint32Array => new Uint32Array(new ArrayBuffer(4 * n));
