// The native cipher engine's two side doors: one cipher's block function (known-answer tests) and
// libgcrypt's own XTS (the reference figure of `vault benchmark`). Neither is on any data path.
import type { CipherName } from './cipher-chain.js';
import { type KeyHandle, keyStateOf } from './key-handle.js';
import { nativeAddon } from './native.js';

/** `buf` (whole 16-byte blocks) through `cipher`'s block function in place, under a 32-byte key. */
export function cipherBlocks(cipher: CipherName, key: KeyHandle, buf: Uint8Array, encrypt: boolean): void {
  nativeAddon().cipherEcb(cipher, keyStateOf(key).key, buf, encrypt);
}

/** libgcrypt's own XTS encryption (serpent, twofish, camellia) of `buf` under a 64-byte key, sector i tweak i. */
export function libgcryptXts(cipher: Exclude<CipherName, 'aes' | 'kuznyechik'>, key: KeyHandle, buf: Uint8Array, sectorSize: number): void {
  nativeAddon().gcryXtsReference(cipher, keyStateOf(key).key, buf, sectorSize);
}
