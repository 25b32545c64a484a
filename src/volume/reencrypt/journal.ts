/**
 * The re-encryption journal (spec/format.md §13.3): two record blocks, A and B, in the zero padding
 * between the primary header and the data area. A record names the segment being rewritten and,
 * for each 4096-byte unit in it, a hash of its new ciphertext, so that after a crash each unit can
 * be told new (its hash) or old (its re-encryption has that hash) or neither. Records are MAC'd with a key derived from
 * both master keys. Pure: no I/O.
 */
import { createHmac, hash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { HEADER_SIZE } from '../../format/constants.js';
import { wipe } from '../../crypto/wipe.js';

export const JOURNAL_MAGIC = Buffer.from('VAULTRJ1', 'ascii');
/** Each record block's size and file offset: A at 4096, B right after it; both inside the first MiB. */
export const RECORD_SIZE = 512 * 1024 - HEADER_SIZE / 2; // 522240: 2 blocks end at 1048576
export const RECORD_OFFSETS = [HEADER_SIZE, HEADER_SIZE + RECORD_SIZE] as const;
export const UNIT_SIZE = 4096;
export const MAX_SEGMENT = 16 * 1024 * 1024;
export const HASH_SIZE = 16;
const FIXED = 64;
const MAC_SIZE = 32;
const INFO = Buffer.from('vault-reencrypt-journal-v1', 'ascii');

export interface JournalRecord {
  sequence: bigint;
  /** Data-area byte offset and length of the segment in progress. */
  offset: number;
  length: number;
  /** One HASH_SIZE-byte hash per 4096-byte unit of the new ciphertext, back to back. */
  newHashes: Buffer;
}

/** Why a record was refused; the reader falls back to the other block. */
export type RecordFault = 'empty' | 'bad-magic' | 'bad-field' | 'out-of-range' | 'bad-mac';

export class RecordError extends Error {
  constructor(readonly fault: RecordFault, message: string) {
    super(message);
  }
}

/** K_journal = HKDF-SHA-256(MK_old || MK_new, salt = uuid, info = "vault-reencrypt-journal-v1"). */
export function journalKey(oldKey: Uint8Array, newKey: Uint8Array, uuid: Uint8Array): Buffer {
  const ikm = Buffer.concat([oldKey, newKey]);
  try {
    return Buffer.from(hkdfSync('sha256', ikm, uuid, INFO, 32));
  } finally {
    wipe(ikm);
  }
}

/** The hash of unit `i` in a record's newHashes. */
export function hashAt(hashes: Buffer, i: number): Buffer {
  return hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
}

/** SHA-256 of one unit's stored bytes, first 16 bytes. */
export function unitHash(unit: Uint8Array): Buffer {
  return hash('sha256', unit, 'buffer').subarray(0, HASH_SIZE); // one-shot: a 16 MiB segment has 4096 units
}

export function unitCount(length: number): number {
  return Math.ceil(length / UNIT_SIZE);
}

export function encodeRecord(r: JournalRecord, key: Uint8Array): Buffer {
  const n = unitCount(r.length);
  if (r.newHashes.length !== n * HASH_SIZE) throw new Error('a record has one hash per unit');
  const body = Buffer.alloc(FIXED + n * HASH_SIZE);
  JOURNAL_MAGIC.copy(body, 0);
  body.writeBigUInt64LE(r.sequence, 8);
  body.writeBigUInt64LE(BigInt(r.offset), 16);
  body.writeUInt32LE(r.length, 24);
  body.writeUInt32LE(n, 28);
  body.writeUInt32LE(UNIT_SIZE, 32);
  r.newHashes.copy(body, FIXED);
  return Buffer.concat([body, createHmac('sha256', key).update(body).digest()]);
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/**
 * Parses one record block (untrusted bytes) of a data area `dataSize` bytes long; throws
 * RecordError naming the first check that failed: magic, fields, range, then the MAC.
 */
export function parseRecord(block: Buffer, key: Uint8Array, dataSize: number): JournalRecord {
  if (block.length < FIXED + MAC_SIZE) throw new RecordError('bad-field', 'record block is truncated');
  if (isZero(block.subarray(0, FIXED))) throw new RecordError('empty', 'record block is empty');
  if (!block.subarray(0, 8).equals(JOURNAL_MAGIC)) throw new RecordError('bad-magic', 'record block has no journal signature');
  const sequence = block.readBigUInt64LE(8);
  const offset = block.readBigUInt64LE(16);
  const length = block.readUInt32LE(24);
  const n = block.readUInt32LE(28);
  if (sequence < 1n || block.readUInt32LE(32) !== UNIT_SIZE || !isZero(block.subarray(36, FIXED)))
    throw new RecordError('bad-field', 'record has a bad sequence, unit size or reserved bytes');
  if (length === 0 || length > MAX_SEGMENT || length % 512 !== 0 || n !== unitCount(length))
    throw new RecordError('bad-field', `record has a bad segment length ${length} or unit count ${n}`);
  if (offset % BigInt(UNIT_SIZE) !== 0n || offset + BigInt(length) > BigInt(dataSize))
    throw new RecordError('out-of-range', `record segment ${offset}+${length} is outside the data area`);
  const end = FIXED + n * HASH_SIZE;
  if (block.length < end + MAC_SIZE) throw new RecordError('bad-field', 'record block is truncated');
  const mac = createHmac('sha256', key).update(block.subarray(0, end)).digest();
  if (!timingSafeEqual(mac, block.subarray(end, end + MAC_SIZE))) throw new RecordError('bad-mac', 'record fails its MAC');
  const newHashes = Buffer.from(block.subarray(FIXED, end));
  return { sequence, offset: Number(offset), length, newHashes };
}

/** The newest valid record of the two blocks, and which block it is in; null when neither is valid. */
export function latestRecord(blocks: [Buffer, Buffer], key: Uint8Array, dataSize: number): { record: JournalRecord; block: 0 | 1 } | null {
  let best: { record: JournalRecord; block: 0 | 1 } | null = null;
  for (const i of [0, 1] as const) {
    try {
      const record = parseRecord(blocks[i], key, dataSize);
      if (!best || record.sequence > best.record.sequence) best = { record, block: i };
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
    }
  }
  return best;
}
