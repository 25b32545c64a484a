// TrueCrypt's pre-5.0 encryption modes (LRW of TrueCrypt 4.1-4.3, CBC with whitening of 1.0-4.0)
// over the native addon (native/tc_legacy.c, libgcrypt's block ciphers). The key material stays in
// its KeyHandle's locked pages; the context holds libgcrypt's key schedules and the IV/tweak
// seeds (locked, wiped on dispose). Rules: spec/interop.md, "TrueCrypt legacy modes".
import type { KeyHandle } from './key-handle.js';
import { keyStateOf } from './key-handle.js';
import type { NativeTcLegacyChain, NativeTcLegacyContext } from './native.js';
import { nativeTcLegacy } from './native.js';

/** A legacy chain: `mode` 'cbc' is plain CBC for one cipher, inner CBC (one pass per cipher) for a cascade. */
export type LegacyChain = Readonly<NativeTcLegacyChain>;

export const LEGACY_SECTOR_SIZE = 512;
/** The encrypted part of a TrueCrypt header: bytes 64..512 (after the salt). */
export const LEGACY_HEADER_ENCRYPTED_LENGTH = 448;

let chains: readonly LegacyChain[] | undefined;

/** Every legacy chain, in the order TrueCrypt volumes are tried: LRW ones, then CBC ones. */
export function legacyChains(): readonly LegacyChain[] {
  chains ??= Object.freeze(nativeTcLegacy().tcLegacyChains().map((c) => Object.freeze({ ...c, ciphers: Object.freeze([...c.ciphers]) as string[] })));
  return chains;
}

export class LegacyCipher {
  #ctx: NativeTcLegacyContext | null;
  readonly chain: LegacyChain;

  private constructor(chain: LegacyChain, ctx: NativeTcLegacyContext) {
    this.chain = chain;
    this.#ctx = ctx;
  }

  /**
   * Key schedules for `chainName` from `key`: a header key (PBKDF2 output) or the 256-byte master
   * key area of a decrypted header; both have the same layout (seeds in [0, 32), cipher keys after).
   */
  static open(chainName: string, key: KeyHandle): LegacyCipher {
    const chain = legacyChains().find((c) => c.name === chainName);
    if (chain === undefined) throw new RangeError(`unknown TrueCrypt legacy chain '${chainName}'`);
    return new LegacyCipher(chain, nativeTcLegacy().tcLegacyOpen(chain.name, keyStateOf(key).key));
  }

  /** Decrypts the 448 encrypted bytes of a header in place (header IV/whitening rules, LRW index 1). */
  decryptHeader(buf: Uint8Array): void {
    nativeTcLegacy().tcLegacyHeader(this.#live(), buf, false);
  }

  encryptHeader(buf: Uint8Array): void {
    nativeTcLegacy().tcLegacyHeader(this.#live(), buf, true);
  }

  /** Decrypts whole 512-byte sectors in place; the first has IV sector number `ivSector`. */
  decryptSectors(buf: Uint8Array, ivSector: bigint): void {
    nativeTcLegacy().tcLegacySectors(this.#live(), buf, ivSector, false);
  }

  encryptSectors(buf: Uint8Array, ivSector: bigint): void {
    nativeTcLegacy().tcLegacySectors(this.#live(), buf, ivSector, true);
  }

  /** Wipes the key schedules and seeds; idempotent. */
  dispose(): void {
    if (this.#ctx !== null) nativeTcLegacy().tcLegacyClose(this.#ctx);
    this.#ctx = null;
  }

  #live(): NativeTcLegacyContext {
    if (this.#ctx === null) throw Object.assign(new Error('the TrueCrypt legacy cipher has been disposed'), { code: 'ERR_VAULT_KEY_DISPOSED' });
    return this.#ctx;
  }
}
