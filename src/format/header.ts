/**
 * Parse and serialise one 4096-byte header copy (spec/format.md §2, §3, §7). Pure: no I/O, no keys.
 *
 * parseHeaderCopy() is the single boundary where untrusted header bytes become typed values. It
 * checks in the spec's order (cheap fixed fields, then the checksum, then structure) and throws a
 * VaultError with a specific code at the first failure, so any byte string yields either a fully
 * validated Header or a typed error. The MAC (§7 step 7) needs the master key: see crypto/header-mac.
 */
import { createHash } from 'node:crypto';
import { VaultError } from '../errors.js';
import {
  CIPHERS,
  CIPHER_FIELD_SIZE,
  FLAG_REENCRYPT,
  FLAG_TOKENS,
  KNOWN_FLAGS,
  TOKEN_OFF,
  REENC_OFF,
  DATA_ALIGNMENT,
  FORMAT_VERSION,
  HEADER_SIZE,
  KDF_ARGON2ID,
  KDF_BOUNDS,
  KEYSLOT_COUNT,
  KEYSLOT_SIZE,
  MAGIC,
  MAX_CONTAINER_BYTES,
  OFF,
  SECTOR_SIZES,
  SLOT_OFF,
  type CipherName,
  type SectorSize,
} from './constants.js';
import type { ActiveKeyslot, CopyIndex, Header, KdfParams, Keyslot, ReencryptState, StagedWrap } from './types.js';
import { parseTokenArea, serializeTokenArea } from './tokens.js';

const COPY_NAMES = ['primary', 'secondary'] as const;

function invalid(copy: CopyIndex, what: string): VaultError {
  return new VaultError('invalid-field', `${COPY_NAMES[copy]} header: ${what}`);
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

export function headerChecksum(copyBytes: Uint8Array): Buffer {
  return createHash('sha256').update(copyBytes.subarray(0, OFF.checksum)).digest();
}

/** Checks KDF parameters against spec §3 bounds. Used for untrusted headers and for user input alike. */
export function checkKdfBounds(kdf: KdfParams): void {
  const b = KDF_BOUNDS;
  const bad = (name: string, v: number, min: number, max: number) =>
    new VaultError(
      'kdf-bounds',
      `KDF ${name} ${v} is outside the allowed range ${min}–${max}`,
      'the header may be damaged or hostile; no key derivation was attempted',
    );
  if (!Number.isInteger(kdf.memoryKiB) || kdf.memoryKiB < b.memoryKiB.min || kdf.memoryKiB > b.memoryKiB.max)
    throw bad('memory (KiB)', kdf.memoryKiB, b.memoryKiB.min, b.memoryKiB.max);
  if (!Number.isInteger(kdf.iterations) || kdf.iterations < b.iterations.min || kdf.iterations > b.iterations.max)
    throw bad('iterations', kdf.iterations, b.iterations.min, b.iterations.max);
  if (!Number.isInteger(kdf.parallelism) || kdf.parallelism < b.parallelism.min || kdf.parallelism > b.parallelism.max)
    throw bad('parallelism', kdf.parallelism, b.parallelism.min, b.parallelism.max);
}

function parseKeyslot(slot: Buffer, index: number, copy: CopyIndex): Keyslot {
  const state = slot[SLOT_OFF.state];
  if (state === 0) return { state: 'empty', filler: Buffer.from(slot.subarray(1)) };
  if (state !== 1) throw invalid(copy, `keyslot ${index} has an unknown state ${state}`);
  const kdfId = slot[SLOT_OFF.kdf];
  if (kdfId !== KDF_ARGON2ID) throw invalid(copy, `keyslot ${index} has an unknown KDF ${kdfId}`);
  if (!isZero(slot.subarray(SLOT_OFF.reserved1, SLOT_OFF.memoryKiB)) || !isZero(slot.subarray(SLOT_OFF.reserved2)))
    throw invalid(copy, `keyslot ${index} has non-zero reserved bytes`);
  const kdf: KdfParams = {
    memoryKiB: slot.readUInt32LE(SLOT_OFF.memoryKiB),
    iterations: slot.readUInt32LE(SLOT_OFF.iterations),
    parallelism: slot.readUInt32LE(SLOT_OFF.parallelism),
  };
  try {
    checkKdfBounds(kdf);
  } catch (e) {
    const err = e as VaultError;
    throw new VaultError('kdf-bounds', `${COPY_NAMES[copy]} header: keyslot ${index}: ${err.message}`, err.hint);
  }
  return {
    state: 'active',
    kdf,
    salt: Buffer.from(slot.subarray(SLOT_OFF.salt, SLOT_OFF.nonce)),
    nonce: Buffer.from(slot.subarray(SLOT_OFF.nonce, SLOT_OFF.wrappedKey)),
    wrappedKey: Buffer.from(slot.subarray(SLOT_OFF.wrappedKey, SLOT_OFF.reserved2)),
  };
}

/**
 * Validates one header copy read from the position of `copy` (0: offset 0, 1: end of file).
 * Throws VaultError: truncated, not-a-container, unsupported-version, checksum-mismatch,
 * unsupported-feature, invalid-field or kdf-bounds.
 */
export function parseHeaderCopy(bytes: Uint8Array, copy: CopyIndex): Header {
  const where = COPY_NAMES[copy];
  // 1. length
  if (bytes.length < HEADER_SIZE)
    throw new VaultError('truncated', `${where} header is truncated (${bytes.length} of ${HEADER_SIZE} bytes)`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  // 2. magic
  if (!b.subarray(OFF.magic, OFF.magic + MAGIC.length).equals(MAGIC))
    throw new VaultError('not-a-container', `${where} header has no vault signature`);
  // 3. version and size
  const version = b.readUInt16LE(OFF.version);
  if (version > FORMAT_VERSION)
    throw new VaultError(
      'unsupported-version',
      `${where} header is format version ${version}; this vault reads version ${FORMAT_VERSION}`,
      'upgrade vault to open this container; it was not modified',
    );
  if (version !== FORMAT_VERSION) throw invalid(copy, `format version ${version} is invalid`);
  const headerSize = b.readUInt16LE(OFF.headerSize);
  if (headerSize !== HEADER_SIZE) throw invalid(copy, `header size ${headerSize} is not ${HEADER_SIZE}`);
  // 4. checksum, before any structure is trusted
  if (!headerChecksum(b).equals(b.subarray(OFF.checksum, OFF.checksum + 32)))
    throw new VaultError('checksum-mismatch', `${where} header is damaged (checksum mismatch)`);
  // 5. feature flags
  const flags = b.readUInt32LE(OFF.flags);
  if ((flags & ~KNOWN_FLAGS) !== 0)
    throw new VaultError('unsupported-feature', `${where} header uses unknown feature flags 0x${flags.toString(16)}`);
  // 6. structure
  const sequence = b.readBigUInt64LE(OFF.sequence);
  if (sequence < 1n) throw invalid(copy, 'sequence number is 0');
  const cipherField = b.subarray(OFF.cipher, OFF.cipher + CIPHER_FIELD_SIZE);
  const nul = cipherField.indexOf(0);
  const cipherName = cipherField.subarray(0, nul < 0 ? CIPHER_FIELD_SIZE : nul).toString('latin1');
  if (nul < 0 || !isZero(cipherField.subarray(nul)) || !(CIPHERS as readonly string[]).includes(cipherName))
    throw invalid(copy, `cipher "${printable(cipherName)}" is not supported (allowed: ${CIPHERS.join(', ')})`);
  const sectorSize = b.readUInt32LE(OFF.sectorSize);
  if (!(SECTOR_SIZES as readonly number[]).includes(sectorSize))
    throw invalid(copy, `sector size ${sectorSize} is not one of ${SECTOR_SIZES.join(', ')}`);
  const keyslotCount = b.readUInt32LE(OFF.keyslotCount);
  if (keyslotCount !== KEYSLOT_COUNT) throw invalid(copy, `keyslot count ${keyslotCount} is not ${KEYSLOT_COUNT}`);
  const dataOffset = b.readBigUInt64LE(OFF.dataOffset);
  const dataSize = b.readBigUInt64LE(OFF.dataSize);
  if (dataOffset < BigInt(DATA_ALIGNMENT) || dataOffset % BigInt(DATA_ALIGNMENT) !== 0n)
    throw invalid(copy, `data offset ${dataOffset} is not a non-zero multiple of 1 MiB`);
  if (dataSize === 0n || dataSize % BigInt(sectorSize) !== 0n)
    throw invalid(copy, `data size ${dataSize} is not a non-zero multiple of the sector size ${sectorSize}`);
  if (dataOffset + dataSize + BigInt(HEADER_SIZE) > BigInt(MAX_CONTAINER_BYTES))
    throw invalid(copy, `data offset ${dataOffset} plus data size ${dataSize} exceeds the largest container`);
  const copyByte = b[OFF.copy];
  if (copyByte !== copy)
    throw invalid(copy, `copy index ${copyByte} does not match its position (expected ${copy})`);
  const flagged = (flags & FLAG_REENCRYPT) !== 0;
  const hasTokens = (flags & FLAG_TOKENS) !== 0;
  if (!isZero(b.subarray(OFF.reserved1, OFF.keyslots)) || !isZero(b.subarray(flagged ? REENC_OFF.end : OFF.reserved2, hasTokens ? TOKEN_OFF.start : OFF.mac)))
    throw invalid(copy, 'reserved bytes are not zero');
  const keyslots: Keyslot[] = [];
  for (let i = 0; i < KEYSLOT_COUNT; i++) {
    const start = OFF.keyslots + i * KEYSLOT_SIZE;
    keyslots.push(parseKeyslot(b.subarray(start, start + KEYSLOT_SIZE), i, copy));
  }
  const reencrypt = flagged ? parseReencryptArea(b, keyslots, Number(dataSize), copy) : undefined;
  const tokens = hasTokens ? parseTokenArea(b.subarray(TOKEN_OFF.start, TOKEN_OFF.end), keyslots, copy) : undefined;
  return {
    ...(reencrypt ? { reencrypt } : {}),
    ...(tokens ? { tokens } : {}),
    version,
    sequence,
    uuid: Buffer.from(b.subarray(OFF.uuid, OFF.uuid + 16)),
    cipher: cipherName as CipherName,
    sectorSize: sectorSize as SectorSize,
    dataOffset: Number(dataOffset),
    dataSize: Number(dataSize),
    copy,
    keyslots,
    mac: Buffer.from(b.subarray(OFF.mac, OFF.mac + 32)),
  };
}

/** The reserved area of a flagged header (spec §13.2, §7 step 6). */
function parseReencryptArea(b: Buffer, keyslots: Keyslot[], dataSize: number, copy: CopyIndex): ReencryptState {
  const newSectorSize = b.readUInt32LE(REENC_OFF.newSectorSize);
  if (!(SECTOR_SIZES as readonly number[]).includes(newSectorSize))
    throw invalid(copy, `re-encryption: new sector size ${newSectorSize} is not one of ${SECTOR_SIZES.join(', ')}`);
  if (dataSize % newSectorSize !== 0) throw invalid(copy, `re-encryption: data size ${dataSize} is not a multiple of the new sector size ${newSectorSize}`);
  if (!isZero(b.subarray(REENC_OFF.reserved, REENC_OFF.staged))) throw invalid(copy, 're-encryption: reserved bytes are not zero');
  const staged = keyslots.map((slot, i): StagedWrap | null => {
    const at = REENC_OFF.staged + i * REENC_OFF.stagedSize;
    const entry = b.subarray(at, at + REENC_OFF.stagedSize);
    if (slot.state === 'empty') {
      if (!isZero(entry)) throw invalid(copy, `re-encryption: the staged key of empty keyslot ${i} is not zero`);
      return null;
    }
    return { nonce: Buffer.from(entry.subarray(0, 24)), wrappedKey: Buffer.from(entry.subarray(24)) };
  });
  if (staged.every((s) => s === null)) throw invalid(copy, 're-encryption: no active keyslot holds the new key');
  return { newSectorSize: newSectorSize as SectorSize, staged };
}

function writeReencryptArea(b: Buffer, h: Header): void {
  const r = h.reencrypt!;
  if (h.dataSize % r.newSectorSize !== 0) throw new VaultError('internal', 'the new sector size does not divide the data size');
  b.writeUInt32LE(r.newSectorSize, REENC_OFF.newSectorSize);
  h.keyslots.forEach((slot, i) => {
    const w = r.staged[i];
    if ((slot.state === 'active') !== !!w) throw new VaultError('internal', `keyslot ${i}: a staged key exactly for each active slot`);
    if (!w) return;
    const at = REENC_OFF.staged + i * REENC_OFF.stagedSize;
    expectLength(w.nonce, 24, 'staged nonce').copy(b, at);
    expectLength(w.wrappedKey, 80, 'staged wrapped key').copy(b, at + 24);
  });
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 32);
}

function writeKeyslot(dst: Buffer, slot: Keyslot): void {
  if (slot.state === 'empty') {
    dst[SLOT_OFF.state] = 0;
    slot.filler.copy(dst, 1);
    return;
  }
  checkKdfBounds(slot.kdf);
  dst[SLOT_OFF.state] = 1;
  dst[SLOT_OFF.kdf] = KDF_ARGON2ID;
  dst.writeUInt32LE(slot.kdf.memoryKiB, SLOT_OFF.memoryKiB);
  dst.writeUInt32LE(slot.kdf.iterations, SLOT_OFF.iterations);
  dst.writeUInt32LE(slot.kdf.parallelism, SLOT_OFF.parallelism);
  expectLength(slot.salt, SLOT_OFF.nonce - SLOT_OFF.salt, 'salt').copy(dst, SLOT_OFF.salt);
  expectLength(slot.nonce, SLOT_OFF.wrappedKey - SLOT_OFF.nonce, 'nonce').copy(dst, SLOT_OFF.nonce);
  expectLength(slot.wrappedKey, SLOT_OFF.reserved2 - SLOT_OFF.wrappedKey, 'wrapped key').copy(dst, SLOT_OFF.wrappedKey);
}

function expectLength(b: Buffer, n: number, what: string): Buffer {
  if (b.length !== n) throw new VaultError('internal', `${what} must be ${n} bytes, got ${b.length}`);
  return b;
}

/** The keyslot's first 48 bytes, as bound into the wrap's AAD (spec §4.4). */
export function keyslotAadBytes(slot: ActiveKeyslot): Buffer {
  const b = Buffer.alloc(KEYSLOT_SIZE);
  writeKeyslot(b, { ...slot, nonce: Buffer.alloc(24), wrappedKey: Buffer.alloc(80) });
  return b.subarray(0, SLOT_OFF.aadEnd);
}

/**
 * Serialises everything the MAC covers (bytes 0–4031). `header.mac` is ignored.
 * Throws on values a reader would reject, so we never write a header we could not read back.
 */
export function serializeHeaderBody(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(b, OFF.magic);
  b.writeUInt16LE(FORMAT_VERSION, OFF.version);
  b.writeUInt16LE(HEADER_SIZE, OFF.headerSize);
  const tokens = h.tokens ?? [];
  b.writeUInt32LE((h.reencrypt ? FLAG_REENCRYPT : 0) | (tokens.length > 0 ? FLAG_TOKENS : 0), OFF.flags);
  b.writeBigUInt64LE(h.sequence, OFF.sequence);
  expectLength(h.uuid, 16, 'uuid').copy(b, OFF.uuid);
  b.write(h.cipher, OFF.cipher, 'latin1');
  b.writeUInt32LE(h.sectorSize, OFF.sectorSize);
  b.writeUInt32LE(KEYSLOT_COUNT, OFF.keyslotCount);
  b.writeBigUInt64LE(BigInt(h.dataOffset), OFF.dataOffset);
  b.writeBigUInt64LE(BigInt(h.dataSize), OFF.dataSize);
  b[OFF.copy] = h.copy;
  if (h.keyslots.length !== KEYSLOT_COUNT) throw new VaultError('internal', `a header has ${KEYSLOT_COUNT} keyslots`);
  h.keyslots.forEach((slot, i) => {
    const start = OFF.keyslots + i * KEYSLOT_SIZE;
    writeKeyslot(b.subarray(start, start + KEYSLOT_SIZE), slot);
  });
  if (h.reencrypt) writeReencryptArea(b, h);
  if (tokens.length > 0) serializeTokenArea(tokens).copy(b, TOKEN_OFF.start);
  return b.subarray(0, OFF.mac);
}

/** Completes a copy: body, the given MAC, then the checksum over both. Validates the result. */
export function serializeHeaderCopy(h: Header, mac: Uint8Array): Buffer {
  const out = Buffer.alloc(HEADER_SIZE);
  serializeHeaderBody(h).copy(out, 0);
  expectLength(Buffer.from(mac), 32, 'mac').copy(out, OFF.mac);
  headerChecksum(out).copy(out, OFF.checksum);
  parseHeaderCopy(out, h.copy); // never emit bytes our own reader would refuse
  return out;
}
