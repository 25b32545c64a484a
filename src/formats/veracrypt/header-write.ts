/**
 * Writing a VeraCrypt volume header: the inverse of header.ts (whose comment gives the layout),
 * as VeraCrypt 1.26 writes it (Volume/VolumeHeader.cpp Serialize and EncryptNew): header version 5,
 * required program version 1.11 (0x010b), zero times, both CRCs, the master key at 256, and the
 * 448 bytes after the salt encrypted with AES-256-XTS under the header key, data unit 0.
 */
import { createCipheriv } from 'node:crypto';
import { VaultError } from '../../errors.js';
import { secretBuffer } from '../../crypto/wipe.js';
import { crc32 } from './crc32.js';
import { DATA_UNIT, HEADER_SIZE, SALT_SIZE } from './header.js';

/** What VeraCrypt 1.26 writes (Common/Volumes.h VOLUME_HEADER_VERSION, TC_VOLUME_MIN_REQUIRED_PROGRAM_VERSION). */
export const WRITTEN_HEADER_VERSION = 5;
export const WRITTEN_REQUIRED_PROGRAM = 0x010b;
const MASTER_KEY_BYTES = 64;

export interface NewHeaderFields {
  /** Non-zero only in a hidden volume's header, where it equals volumeSize. */
  hiddenVolumeSize: number;
  volumeSize: number;
  encryptedAreaStart: number;
  encryptedAreaSize: number;
}

/**
 * The decrypted header (512 bytes, in locked memory: it holds the master key; the caller wipes it)
 * with `salt` in its first 64 bytes.
 */
export function serializeHeader(salt: Uint8Array, f: NewHeaderFields, masterKey: Uint8Array): Buffer {
  if (salt.length !== SALT_SIZE) throw new VaultError('internal', `a VeraCrypt salt is ${SALT_SIZE} bytes, not ${salt.length}`);
  if (masterKey.length !== MASTER_KEY_BYTES) throw new VaultError('internal', `an AES-256-XTS master key is ${MASTER_KEY_BYTES} bytes, not ${masterKey.length}`);
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

/** The header as stored: salt in clear, then the 448 bytes encrypted under `headerKey` (64 bytes). */
export function encryptHeader(plain: Buffer, headerKey: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-xts', headerKey.subarray(0, 64), Buffer.alloc(16)); // data unit 0
  const body = c.update(plain.subarray(SALT_SIZE, HEADER_SIZE));
  const tail = c.final();
  const raw = Buffer.alloc(HEADER_SIZE);
  plain.copy(raw, 0, 0, SALT_SIZE);
  body.copy(raw, SALT_SIZE);
  tail.copy(raw, SALT_SIZE + body.length);
  return raw;
}
