// The native cipher engine's two side doors: one cipher's block function (known-answer tests) and
// libgcrypt's own XTS (the reference figure of `vault benchmark`). Neither is on any data path.
import { type CipherChain, type CipherName, chainSpec } from './cipher-chain.js';
import { type KeyHandle, keyStateOf } from './key-handle.js';
import { nativeAddon } from './native.js';

/** `buf` (whole 16-byte blocks) through `cipher`'s block function in place, under a 32-byte key. */
export function cipherBlocks(cipher: CipherName, key: KeyHandle, buf: Uint8Array, encrypt: boolean): void {
  nativeAddon().cipherEcb(cipher, keyStateOf(key).key, buf, encrypt);
}

/** Whether libgcrypt (1.10) has every cipher of `chain`: it has no Kuznyechik. */
export function libgcryptHas(chain: CipherChain): boolean {
  return !chain.includes('kuznyechik');
}

/**
 * libgcrypt's own XTS through `chain` (in place, under the chain's key: 64 bytes per cipher), one
 * libgcrypt call per `sectorSize` data unit (unit i's tweak i), one full pass per cipher in the
 * chain's encryption order (decryption in reverse), as vault's engine runs it. No Kuznyechik.
 */
export function libgcryptXts(chain: CipherChain, key: KeyHandle, buf: Uint8Array, sectorSize: number, direction: 'encrypt' | 'decrypt' = 'encrypt'): void {
  nativeAddon().gcryXtsReference(chainSpec(chain), keyStateOf(key).key, buf, sectorSize, direction === 'encrypt');
}
