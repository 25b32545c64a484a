/**
 * The VeraCrypt/TrueCrypt volume header: where its copies are, how it is decrypted, and its fields.
 * Pure functions on bytes; the one boundary where the decrypted header becomes typed values.
 *
 * A header is 512 bytes: a 64-byte salt, then 448 bytes encrypted with the header key in XTS mode,
 * data unit 0 (one 448-byte unit). Decrypted layout (offsets in the 512-byte header, big-endian):
 *
 *     0  64  salt (not encrypted)
 *    64   4  magic "VERA" (VeraCrypt) or "TRUE" (TrueCrypt)
 *    68   2  header version (5 today)
 *    70   2  minimum program version needed to open the volume
 *    72   4  CRC-32 of bytes 256..511 (the key area)
 *    76  16  creation and modification times (VeraCrypt writes zeros)
 *    92   8  hidden volume size (non-zero only in a hidden volume's header)
 *   100   8  volume size (bytes of data)
 *   108   8  byte offset of the encrypted area (the data) in the container (0 in header
 *              version 3, TrueCrypt 5.x: the data follows the header at 512)
 *   116   8  size of the encrypted area
 *   124   4  flags: bit 0 system encryption, bit 1 in-place encrypted non-system volume
 *   128   4  sector size (header version ≥ 5; 0 before means 512)
 *
 * Header versions: 3 TrueCrypt 5.x (no backup headers; the hidden volume's header 1536 bytes
 * before the end, its data right before that), 4 TrueCrypt 6.x (field CRC added), 5 TrueCrypt 7
 * and VeraCrypt (sector size). 1 and 2 (TrueCrypt before 5.0) encrypt the header in CBC or LRW
 * mode, which vault does not decrypt.
 *   132 120  reserved (zero)
 *   252   4  CRC-32 of bytes 64..251 (header version ≥ 4)
 *   256 256  master keys: for AES-256-XTS, key 1 at 256..287 and key 2 at 288..319
 *
 * Sources: VeraCrypt Common/Volumes.c (header layout, ReadVolumeHeader), Common/Crypto.h
 * (offsets), cryptsetup lib/tcrypt/tcrypt.h (struct tcrypt_phdr) and tcrypt.c.
 */
import { VaultError } from '../../errors.js';
import { secretCopy } from '../../crypto/wipe.js';
import { AES_XTS, type CipherChain, chainKeyBytes } from '../../crypto/cipher-chain.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { xtsDecrypt } from '../../crypto/xts.js';
import { crc32 } from './crc32.js';

export const HEADER_SIZE = 512;
export const SALT_SIZE = 64;
/** Header positions inside a file-hosted volume (VeraCrypt Common/Volumes.h, cryptsetup tcrypt.h). */
export const HIDDEN_HEADER_OFFSET = 65536;
/** TrueCrypt 5.x (header version 3) kept the hidden volume's header here, from the end. */
export const LEGACY_HIDDEN_FROM_END = 1536;
/** System encryption: the header in the boot track, sector 62 of the drive (cryptsetup TCRYPT_HDR_SYSTEM_OFFSET). */
export const SYSTEM_HEADER_OFFSET = 31744;
/** The backup headers sit in the last 128 KiB: normal at size − 131072, hidden at size − 65536. */
export const BACKUP_NORMAL_FROM_END = 131072;
export const BACKUP_HIDDEN_FROM_END = 65536;
/** Newest header version VeraCrypt writes; a larger one is a format this code does not know. */
export const MAX_HEADER_VERSION = 5;
/**
 * The newest program versions whose format this code implements (BCD, as in the header): a header
 * that requires a later program may use a format change vault does not know, so it is refused.
 * VeraCrypt 1.26 (its Argon2id volumes still require only 1.11) and TrueCrypt 7.1a, the last.
 */
export const MAX_REQUIRED_PROGRAM = { veracrypt: 0x0126, truecrypt: 0x071a } as const;
/** VeraCrypt's data unit: XTS tweaks count 512-byte units from the start of the container. */
export const DATA_UNIT = 512;

const FLAG_SYSTEM = 1;
const FLAG_IN_PLACE = 2;
const SECTOR_SIZES = [512, 1024, 2048, 4096];

export type HeaderKind = 'normal' | 'hidden';

export interface VcHeader {
  format: 'veracrypt' | 'truecrypt';
  version: number;
  requiredProgramVersion: number;
  hiddenVolumeSize: number;
  volumeSize: number;
  encryptedAreaStart: number;
  encryptedAreaSize: number;
  flags: number;
  sectorSize: number;
  /** XTS key 1 ‖ key 2 (64 bytes): the caller moves it into a KeyHandle, which wipes it. */
  masterKey: Buffer;
}

/** Decrypts the 448 encrypted bytes of `raw` (512 bytes) with a 64-byte AES-256-XTS header key. */
export function decryptHeader(raw: Buffer, headerKey: Buffer): Buffer {
  return decryptHeaderWith(AES_XTS, raw, headerKey);
}

/**
 * The 512-byte header `raw` with its 448 encrypted bytes (XTS data unit 0) decrypted under `chain`
 * with the first chainKeyBytes(chain) bytes of the header key `key`. Throws when the key is refused
 * (a cipher's two keys equal). The caller wipes the result.
 *
 * In place, in a buffer of ours, through the native engine: node:crypto's Decipher would leave
 * copies of the plaintext (the master key) in memory it frees unwiped (its update() writes into a
 * block-longer buffer, then copies the output out of it).
 */
export function decryptHeaderWith(chain: CipherChain, raw: Buffer, key: Buffer): Buffer {
  const handle = KeyHandle.fromBytes(secretCopy(key.subarray(0, chainKeyBytes(chain)))); // wipes the copy
  const plain = Buffer.alloc(HEADER_SIZE);
  try {
    raw.copy(plain, 0, 0, HEADER_SIZE);
    xtsDecrypt(handle, plain.subarray(SALT_SIZE), { sectorSize: HEADER_SIZE - SALT_SIZE, firstTweak: 0n, cipher: chain });
    return plain;
  } catch (e) {
    plain.fill(0);
    throw e;
  } finally {
    handle.dispose();
  }
}

/** The magic of a decrypted header, or null: a wrong key gives random bytes here. */
export function headerMagic(plain: Buffer): 'veracrypt' | 'truecrypt' | null {
  const m = plain.toString('latin1', 64, 68);
  return m === 'VERA' ? 'veracrypt' : m === 'TRUE' ? 'truecrypt' : null;
}

/**
 * Would VeraCrypt accept this decrypted header as decrypted correctly? Its magic and its CRCs
 * (key area, and the fields from header version 4), as ReadVolumeHeader checks before anything
 * else. A wrong key passes with probability about 2^-96.
 */
export function headerChecksPass(plain: Buffer): boolean {
  if (!headerMagic(plain)) return false;
  if (crc32(plain.subarray(256, 512)) !== plain.readUInt32BE(72)) return false;
  return plain.readUInt16BE(68) < 4 || crc32(plain.subarray(64, 252)) === plain.readUInt32BE(252);
}

function u64(b: Buffer, off: number, what: string): number {
  const v = b.readBigUInt64BE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new VaultError('invalid-field', `the VeraCrypt header's ${what} is out of range`);
  return Number(v);
}

/**
 * Checks and reads a decrypted header whose magic matched (headerMagic). `kind` is where it was
 * read from. Throws a VaultError for a damaged or unsupported header; checks in cheap-first order:
 * key-area CRC, version, header CRC, flags, geometry. `system`: read from the boot track
 * (`--system`), where a system-encryption header belongs.
 */
export function parseHeader(plain: Buffer, kind: HeaderKind, system = false): VcHeader {
  const format = headerMagic(plain);
  if (!format) throw new VaultError('not-a-container', 'no VeraCrypt/TrueCrypt signature in the decrypted header');
  if (crc32(plain.subarray(256, 512)) !== plain.readUInt32BE(72))
    throw new VaultError('checksum-mismatch', 'the VeraCrypt header decrypts, but the CRC of its key area does not match: the header is damaged');
  const version = plain.readUInt16BE(68);
  if (version > MAX_HEADER_VERSION)
    throw new VaultError('unsupported-version', `${label(format)} header version ${version} is newer than vault knows (up to ${MAX_HEADER_VERSION})`);
  if (version < 3)
    throw new VaultError('unsupported-feature', `${label(format)} header version ${version} (TrueCrypt before 5.0, LRW/CBC modes) is not supported`);
  if (version >= 4 && crc32(plain.subarray(64, 252)) !== plain.readUInt32BE(252))
    throw new VaultError('checksum-mismatch', 'the VeraCrypt header decrypts, but the CRC of its fields does not match: the header is damaged');
  const required = plain.readUInt16BE(70);
  if (required > MAX_REQUIRED_PROGRAM[format])
    throw new VaultError('unsupported-version', `the volume requires ${label(format)} ${bcd(required)} or later; vault implements the format up to ${label(format)} ${bcd(MAX_REQUIRED_PROGRAM[format])}`);
  const flags = plain.readUInt32BE(124);
  if (flags & FLAG_SYSTEM && !system)
    throw new VaultError('unsupported-feature', 'this is a VeraCrypt/TrueCrypt system-encryption header', 'open the whole drive (or its image) with --system');
  const geometry = {
    hiddenVolumeSize: u64(plain, 92, 'hidden volume size'),
    volumeSize: u64(plain, 100, 'volume size'),
    // Header version 3 writes 0: its data starts right after the header (cryptsetup TCRYPT_hdr_from_disk).
    encryptedAreaStart: u64(plain, 108, 'data offset') || DATA_UNIT,
    encryptedAreaSize: u64(plain, 116, 'encrypted area size'),
    sectorSize: version >= 5 ? plain.readUInt32BE(128) || DATA_UNIT : DATA_UNIT,
  };
  checkGeometry(geometry, kind, flags);
  // The key is copied last, once nothing can throw any more, into a buffer of its own (see
  // secretCopy): a copy made before a failing check would stay in memory unwiped.
  return { format, version, requiredProgramVersion: required, flags, ...geometry, masterKey: secretCopy(plain.subarray(256, 320)) };
}

type Geometry = Pick<VcHeader, 'hiddenVolumeSize' | 'volumeSize' | 'encryptedAreaStart' | 'encryptedAreaSize' | 'sectorSize'>;

function checkGeometry(h: Geometry, kind: HeaderKind, flags: number): void {
  if (!SECTOR_SIZES.includes(h.sectorSize)) throw invalid(`sector size ${h.sectorSize}`);
  if (h.encryptedAreaStart % DATA_UNIT !== 0 || h.encryptedAreaStart < DATA_UNIT) throw invalid(`data offset ${h.encryptedAreaStart}`);
  if (h.volumeSize === 0 || h.volumeSize % DATA_UNIT !== 0) throw invalid(`volume size ${h.volumeSize}`);
  if (kind === 'hidden' && h.hiddenVolumeSize === 0) throw invalid('a hidden-volume header without a hidden volume size');
  // An in-place encryption that was never finished leaves part of the volume in plaintext.
  if (flags & FLAG_IN_PLACE && h.encryptedAreaSize !== h.volumeSize)
    throw new VaultError('unsupported-feature', 'the volume is only partly encrypted (in-place encryption not finished); finish it in VeraCrypt first');
}

function invalid(what: string): VaultError {
  return new VaultError('invalid-field', `the VeraCrypt header is invalid: ${what}`);
}

/** A BCD program version as people write it: 0x010b → 1.0b (VeraCrypt 1.11), 0x071a → 7.1a. */
export function bcd(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString(16).padStart(2, '0')}`;
}

export function label(f: 'veracrypt' | 'truecrypt'): string {
  return f === 'veracrypt' ? 'VeraCrypt' : 'TrueCrypt';
}
