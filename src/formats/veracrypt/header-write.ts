/**
 * Writing a VeraCrypt volume header: the inverse of header.ts (whose comment gives the layout),
 * as VeraCrypt 1.26 writes it (Volume/VolumeHeader.cpp Serialize and EncryptNew): header version 5,
 * required program version 1.11 (0x010b), zero times, both CRCs, the master key at 256 (64 bytes
 * per cipher of the algorithm, the rest of the key area zeros), and the 448 bytes after the salt
 * encrypted with the volume's algorithm under the header key, as one XTS data unit numbered 0
 * (cipher-chains.ts gives the order of a cascade and the layout of its keys).
 */
import { VaultError } from '../../errors.js';
import { type CipherChain, chainKeyBytes, veracryptName } from '../../crypto/cipher-chain.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { secretBuffer, secretCopy } from '../../crypto/wipe.js';
import { xtsEncrypt } from '../../crypto/xts.js';
import { crc32 } from './crc32.js';
import { DATA_UNIT, HEADER_SIZE, SALT_SIZE } from './header.js';

/** What VeraCrypt 1.26 writes (Common/Volumes.h VOLUME_HEADER_VERSION, TC_VOLUME_MIN_REQUIRED_PROGRAM_VERSION). */
export const WRITTEN_HEADER_VERSION = 5;
export const WRITTEN_REQUIRED_PROGRAM = 0x010b;
/** Master key bytes of one, two and three ciphers (the key area is 256 bytes). */
const MASTER_KEY_LENGTHS = [64, 128, 192];

export interface NewHeaderFields {
  /** Non-zero only in a hidden volume's header, where it equals volumeSize. */
  hiddenVolumeSize: number;
  volumeSize: number;
  encryptedAreaStart: number;
  encryptedAreaSize: number;
}

/**
 * The decrypted header (512 bytes, in locked memory: it holds the master key; the caller wipes it)
 * with `salt` in its first 64 bytes. `masterKey` is 64, 128 or 192 bytes (one to three ciphers).
 */
export function serializeHeader(salt: Uint8Array, f: NewHeaderFields, masterKey: Uint8Array): Buffer {
  if (salt.length !== SALT_SIZE) throw new VaultError('internal', `a VeraCrypt salt is ${SALT_SIZE} bytes, not ${salt.length}`);
  if (!MASTER_KEY_LENGTHS.includes(masterKey.length))
    throw new VaultError('internal', `a VeraCrypt master key is 64 bytes per cipher (64, 128 or 192), not ${masterKey.length}`);
  for (const v of [f.volumeSize, f.encryptedAreaStart, f.encryptedAreaSize])
    if (!Number.isSafeInteger(v) || v <= 0 || v % DATA_UNIT !== 0) throw new VaultError('internal', `VeraCrypt header sizes are positive multiples of ${DATA_UNIT}, not ${v}`);
  const h = secretBuffer(HEADER_SIZE);
  h.set(salt, 0);
  h.write('VERA', 64, 'latin1');
  h.writeUInt16BE(WRITTEN_HEADER_VERSION, 68);
  h.writeUInt16BE(WRITTEN_REQUIRED_PROGRAM, 70);
  // 76..91: volume and header creation times, which VeraCrypt writes as zeros.
  h.writeBigUInt64BE(BigInt(f.hiddenVolumeSize), 92);
  h.writeBigUInt64BE(BigInt(f.volumeSize), 100);
  h.writeBigUInt64BE(BigInt(f.encryptedAreaStart), 108);
  h.writeBigUInt64BE(BigInt(f.encryptedAreaSize), 116);
  h.writeUInt32BE(0, 124); // flags: not system encryption, not in-place
  h.writeUInt32BE(DATA_UNIT, 128); // sector size of a file-hosted volume
  h.set(masterKey, 256);
  h.writeUInt32BE(crc32(h.subarray(256, 512)), 72);
  h.writeUInt32BE(crc32(h.subarray(64, 252)), 252);
  return h;
}

/**
 * The header as stored: salt in clear, then the 448 bytes encrypted with `chain` under the first
 * chainKeyBytes(chain) bytes of `headerKey` (64 for one cipher; a cascade needs 128 or 192).
 */
export function encryptHeader(plain: Buffer, headerKey: Uint8Array, chain: CipherChain): Buffer {
  const need = chainKeyBytes(chain);
  if (headerKey.length < need) throw new VaultError('internal', `${veracryptName(chain)} needs ${need} bytes of header key, not ${headerKey.length}`);
  const key = KeyHandle.fromBytes(secretCopy(headerKey.subarray(0, need))); // wipes the copy
  const work = secretCopy(plain.subarray(0, HEADER_SIZE)); // encrypted in place, then wiped
  try {
    xtsEncrypt(key, work.subarray(SALT_SIZE), { sectorSize: HEADER_SIZE - SALT_SIZE, firstTweak: 0n, cipher: chain });
    return Buffer.from(work);
  } finally {
    work.fill(0);
    key.dispose();
  }
}
