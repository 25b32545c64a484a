// TrueCrypt volumes of versions before 5.0 (header format versions 1 and 2): which legacy chain
// (LRW or CBC, cipher or cascade) a header key opens, the decrypted header's fields, and where the
// data area lies and how its sectors are numbered. The crypto is src/crypto/tc-legacy.ts; the
// rules are in spec/interop.md, "TrueCrypt legacy modes".
import { KeyHandle } from '../../crypto/key-handle.js';
import type { LegacyChain } from '../../crypto/tc-legacy.js';
import { LEGACY_HEADER_ENCRYPTED_LENGTH, LEGACY_SECTOR_SIZE, LegacyCipher, legacyChains } from '../../crypto/tc-legacy.js';
import { crc32 } from './crc32.js';

/** Offsets in the decrypted 448 bytes (header bytes 64..512). */
const KEYS_OFFSET = 192; // header byte 256
const KEYS_LENGTH = 256;
const HEADER_CRC_OFFSET = 188; // header byte 252, checked only for header versions > 3
/** TrueCrypt before 5.0 kept a hidden volume's header 1536 bytes before the end of the container. */
export const LEGACY_HIDDEN_HEADER_FROM_END = 1536;

export interface LegacyHeader {
  chain: LegacyChain;
  /** Header format version (1: TrueCrypt 1.0-3.x, 2: TrueCrypt 4.x). */
  version: number;
  /** Lowest program version that can open it, e.g. 0x0410 (TrueCrypt 4.1: LRW). */
  requiredProgramVersion: number;
  hiddenVolumeSize: bigint;
  volumeSize: bigint;
  /** The 256-byte master key area (a view into `decrypted`): seeds in [0, 32), the ciphers' keys from 32. */
  keys: Uint8Array;
  /** The whole decrypted 448 bytes, keys included: wipe it (`decrypted.fill(0)`) once the cipher is open. */
  decrypted: Uint8Array;
}

/**
 * Tries every legacy chain on a header (512 bytes, salt first, or just the 448 encrypted bytes)
 * with the derived header key. Returns the chain under which the magic is "TRUE" and the key
 * area's CRC-32 (and, for header versions > 3, the header CRC-32) match; null when none does.
 * `headerKey` must hold at least 152 bytes (PBKDF2 output as TrueCrypt derives it: 192).
 */
export function tryLegacyHeader(header: Uint8Array, headerKey: KeyHandle): LegacyHeader | null {
  const encrypted = header.length === 512 ? header.subarray(64) : header;
  if (encrypted.length !== LEGACY_HEADER_ENCRYPTED_LENGTH) throw new RangeError('a TrueCrypt header is 512 bytes (or its 448 encrypted ones)');
  const buf = new Uint8Array(LEGACY_HEADER_ENCRYPTED_LENGTH);
  for (const chain of legacyChains()) {
    buf.set(encrypted);
    const cipher = LegacyCipher.open(chain.name, headerKey);
    try {
      cipher.decryptHeader(buf);
    } finally {
      cipher.dispose();
    }
    const parsed = parseDecrypted(chain, buf);
    if (parsed !== null) return parsed;
  }
  buf.fill(0);
  return null;
}

function parseDecrypted(chain: LegacyChain, d: Uint8Array): LegacyHeader | null {
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  if (d[0] !== 0x54 || d[1] !== 0x52 || d[2] !== 0x55 || d[3] !== 0x45) return null; // "TRUE"
  const keys = d.subarray(KEYS_OFFSET, KEYS_OFFSET + KEYS_LENGTH);
  if (crc32(keys) !== view.getUint32(8)) return null;
  const version = view.getUint16(4);
  if (version > 3 && crc32(d.subarray(0, HEADER_CRC_OFFSET)) !== view.getUint32(HEADER_CRC_OFFSET)) return null;
  return {
    chain,
    version,
    requiredProgramVersion: view.getUint16(6),
    hiddenVolumeSize: view.getBigUint64(28),
    volumeSize: view.getBigUint64(36),
    keys,
    decrypted: d,
  };
}

export interface LegacyDataArea {
  /** Byte offset of the data area in the container. */
  offset: bigint;
  length: bigint;
  /** IV sector number of the data area's first sector; sector i of the area has firstIvSector + i. */
  firstIvSector: bigint;
}

/**
 * Where a legacy volume's data lie (cryptsetup's TCRYPT_get_data_offset / get_iv_offset):
 *  - normal volume: from byte 512 to the end of the container (the header's size fields are 0);
 *  - hidden volume (header 1536 bytes before the end): hiddenVolumeSize bytes ending 1536 bytes
 *    before the end of the container;
 *  - IV sector numbers: LRW counts from 0 at the data area's first sector; CBC from 1 (the
 *    sector after the header, for hidden volumes too).
 */
export function legacyDataArea(containerSize: bigint, header: LegacyHeader, hidden: boolean): LegacyDataArea {
  const firstIvSector = header.chain.mode === 'lrw' ? 0n : 1n;
  if (hidden) {
    const offset = containerSize - header.hiddenVolumeSize - BigInt(LEGACY_HIDDEN_HEADER_FROM_END);
    if (header.hiddenVolumeSize === 0n || offset < BigInt(LEGACY_SECTOR_SIZE)) throw new RangeError('the hidden volume size in the header does not fit the container');
    return { offset, length: header.hiddenVolumeSize, firstIvSector };
  }
  const length = header.volumeSize > 0n ? header.volumeSize : containerSize - BigInt(LEGACY_SECTOR_SIZE);
  return { offset: BigInt(LEGACY_SECTOR_SIZE), length, firstIvSector };
}

const CIPHER_NAMES: Readonly<Record<string, string>> = {
  aes: 'AES',
  serpent: 'Serpent',
  twofish: 'Twofish',
  blowfish: 'Blowfish',
  cast5: 'CAST5',
  des3_ede: 'Triple DES',
};

/**
 * The chain as TrueCrypt named it, with the mode: its menu lists a cascade's ciphers in reverse
 * order of encryption, e.g. chain 'cbc-twofish-aes' is "AES-Twofish (outer CBC)".
 */
export function legacyChainLabel(chain: LegacyChain): string {
  const name = [...chain.ciphers].reverse().map((c) => CIPHER_NAMES[c] ?? c).join('-');
  const mode = chain.mode === 'lrw' ? 'LRW' : chain.mode === 'cbc-outer' ? 'outer CBC' : chain.ciphers.length > 1 ? 'inner CBC' : 'CBC';
  return `${name} (${mode})`;
}

/** Opens the data-area cipher of a decrypted legacy header (copies its key area into locked memory). */
export function legacyDataCipher(header: LegacyHeader): LegacyCipher {
  const key = KeyHandle.fromBytes(header.keys.slice());
  try {
    return LegacyCipher.open(header.chain.name, key);
  } finally {
    key.dispose();
  }
}
