/**
 * Re-encryption's on-disk pieces (spec §13): the flagged header's reserved area, the journal
 * records (every bad record refused, labelled by the check that failed) and the segment transform
 * (decrypts under the new key and sector size to the same plaintext; holes stay holes).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OFF, REENC_OFF } from '../../src/format/constants.js';
import { parseHeaderCopy } from '../../src/format/header.js';
import { VaultError } from '../../src/errors.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { generateMasterKey } from '../../src/crypto/master-key.js';
import { finalHeader, stagedHeader } from '../../src/volume/reencrypt/staged.js';
import { HASH_SIZE, MAX_SEGMENT, RecordError, encodeRecord, journalKey, latestRecord, parseRecord, unitCount, type JournalRecord, type RecordFault } from '../../src/volume/reencrypt/journal.js';
import { reencryptSegment, unitHashes, unitHashesAsync } from '../../src/volume/reencrypt/transform.js';
import { fixChecksum, sampleHeader, sealedCopy } from '../support/headers.js';

const DATA = 64 << 20;

function flaggedBytes(newSectorSize: 512 | 4096 = 512) {
  const { header, mk, kek } = sampleHeader({ activeSlots: [0, 5] });
  const keks = new Map([[0, kek], [5, kek]]);
  const flagged = stagedHeader(header, keks, generateMasterKey(), newSectorSize);
  return { flagged, bytes: sealedCopy(flagged, mk), mk };
}

function expectCode(bytes: Buffer, code: string, message: RegExp) {
  let err: unknown;
  try {
    parseHeaderCopy(bytes, 0);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(VaultError);
  expect((err as VaultError).code).toBe(code);
  expect((err as VaultError).message).toMatch(message);
}

describe('flagged header (spec §13.2)', () => {
  it('round-trips the new sector size and a staged key for each active slot, none for empty ones', () => {
    const { flagged, bytes } = flaggedBytes();
    expect(bytes.readUInt32LE(OFF.flags)).toBe(1);
    const back = parseHeaderCopy(bytes, 0);
    expect(back.reencrypt?.newSectorSize).toBe(512);
    back.reencrypt!.staged.forEach((w, i) => {
      if (i === 0 || i === 5) expect(w!.wrappedKey.equals(flagged.reencrypt!.staged[i]!.wrappedKey)).toBe(true);
      else expect(w).toBeNull();
    });
  });

  it('the final header holds the staged wraps as keyslots, the new sector size and no flag', () => {
    const { flagged } = flaggedBytes();
    const f = finalHeader(flagged);
    expect(f.reencrypt).toBeUndefined();
    expect(f.sectorSize).toBe(512);
    expect((f.keyslots[5] as { nonce: Buffer }).nonce.equals(flagged.reencrypt!.staged[5]!.nonce)).toBe(true);
  });

  const edit = (fn: (b: Buffer) => void) => {
    const b = Buffer.from(flaggedBytes().bytes);
    fn(b);
    return fixChecksum(b);
  };
  it('refuses a bad new sector size', () => expectCode(edit((b) => b.writeUInt32LE(1024, REENC_OFF.newSectorSize)), 'invalid-field', /new sector size/));
  it('refuses non-zero reserved bytes in the area', () => expectCode(edit((b) => (b[REENC_OFF.reserved] = 1)), 'invalid-field', /reserved/));
  it('refuses a staged key in an empty slot', () => expectCode(edit((b) => (b[REENC_OFF.staged + 2 * REENC_OFF.stagedSize] = 1)), 'invalid-field', /empty keyslot 2/));
  it('refuses bytes after the staged keys', () => expectCode(edit((b) => (b[REENC_OFF.end] = 1)), 'invalid-field', /reserved/));
  it('refuses unknown flag bits', () => expectCode(edit((b) => b.writeUInt32LE(5, OFF.flags)), 'unsupported-feature', /flags/));
  it('an unflagged header with bytes in the area is refused', () => expectCode(edit((b) => b.writeUInt32LE(0, OFF.flags)), 'invalid-field', /reserved/));
});

describe('journal records (spec §13.3)', () => {
  const key = journalKey(randomBytes(64), randomBytes(64), randomBytes(16));
  const record = (over: Partial<JournalRecord> = {}): JournalRecord => {
    const length = over.length ?? 3 * 4096 + 512;
    const n = unitCount(length);
    return { sequence: 7n, offset: 4096 * 10, length, newHashes: randomBytes(n * HASH_SIZE), ...over };
  };
  const fault = (block: Buffer, k: Buffer = key): RecordFault => {
    try {
      parseRecord(block, k, DATA);
    } catch (e) {
      if (e instanceof RecordError) return e.fault;
      throw e;
    }
    throw new Error('accepted');
  };

  it('round-trips', () => {
    const r = record();
    const back = parseRecord(Buffer.concat([encodeRecord(r, key), Buffer.alloc(1000)]), key, DATA);
    expect(back).toEqual(r);
  });

  it.each<[string, (b: Buffer) => void, RecordFault]>([
    ['all zero', (b) => b.fill(0), 'empty'],
    ['bad magic', (b) => (b[0] = 0x41), 'bad-magic'],
    ['sequence 0', (b) => b.writeBigUInt64LE(0n, 8), 'bad-field'],
    ['unit size', (b) => b.writeUInt32LE(512, 32), 'bad-field'],
    ['reserved', (b) => (b[40] = 1), 'bad-field'],
    ['length 0', (b) => b.writeUInt32LE(0, 24), 'bad-field'],
    ['length over 16 MiB', (b) => b.writeUInt32LE(MAX_SEGMENT + 4096, 24), 'bad-field'],
    ['length not a multiple of 512', (b) => b.writeUInt32LE(3 * 4096 + 100, 24), 'bad-field'],
    ['unit count', (b) => b.writeUInt32LE(3, 28), 'bad-field'],
    ['offset not a unit', (b) => b.writeBigUInt64LE(4096n * 10n + 512n, 16), 'out-of-range'],
    ['past the data area', (b) => b.writeBigUInt64LE(BigInt(DATA), 16), 'out-of-range'],
    ['a hash changed', (b) => (b[64 + 5] ^= 1), 'bad-mac'],
    ['the MAC changed', (b) => (b[64 + 4 * 16 + 31] ^= 1), 'bad-mac'],
    ['truncated', (b) => b.fill(0, 64 + 4 * 16), 'bad-mac'],
  ])('refuses a record with %s', (_name, mutate, expected) => {
    const b = Buffer.concat([encodeRecord(record(), key), Buffer.alloc(64)]);
    mutate(b);
    expect(fault(b)).toBe(expected);
  });

  it('refuses a record under another key (old‖new master keys of another run)', () => {
    expect(fault(encodeRecord(record(), key), journalKey(randomBytes(64), randomBytes(64), randomBytes(16)))).toBe('bad-mac');
  });

  it('latestRecord takes the valid record with the larger sequence, and falls back when it is damaged', () => {
    const a = Buffer.concat([encodeRecord(record({ sequence: 4n }), key), Buffer.alloc(64)]);
    const b = Buffer.concat([encodeRecord(record({ sequence: 5n }), key), Buffer.alloc(64)]);
    expect(latestRecord([a, b], key, DATA)?.block).toBe(1);
    b[70] ^= 1;
    expect(latestRecord([a, b], key, DATA)?.block).toBe(0);
    a[0] = 0;
    expect(latestRecord([a, b], key, DATA)).toBeNull();
  });
});

describe('segment transform (spec §13.4)', () => {
  it('the native unit hashes are the first 16 bytes of SHA-256 of each unit, the last one short', async () => {
    const buf = randomBytes(5 * 1024 * 1024 + 512);
    expect((await unitHashesAsync(buf)).toString('hex')).toBe(Buffer.concat(unitHashes(buf)).toString('hex'));
  });

  function xts(key: Buffer, data: Buffer, sectorSize: number, first: number, decrypt: boolean): Buffer {
    const out = Buffer.alloc(data.length);
    for (let at = 0; at < data.length; at += sectorSize) {
      const iv = Buffer.alloc(16);
      iv.writeBigUInt64LE(BigInt(first + at / sectorSize));
      const c = (decrypt ? createDecipheriv : createCipheriv)('aes-256-xts', key, iv);
      Buffer.concat([c.update(data.subarray(at, at + sectorSize)), c.final()]).copy(out, at);
    }
    return out;
  }

  it.each([[4096, 4096], [4096, 512], [512, 4096], [512, 512]])('%i → %i bytes: same plaintext under the new key, holes kept', async (oldSs, newSs) => {
    const oldMk = generateMasterKey();
    const newMk = generateMasterKey();
    const offset = 3 * 4096;
    const plain = randomBytes(64 * 1024);
    const stored = xts(oldMk, plain, oldSs, offset / oldSs, false);
    stored.fill(0, 8192, 16384); // two units that were never written
    plain.fill(0, 8192, 16384);
    const sides = { oldKey: KeyHandle.fromBytes(Buffer.from(oldMk)), newKey: KeyHandle.fromBytes(Buffer.from(newMk)), oldSectorSize: oldSs, newSectorSize: newSs };
    try {
      const neu = await reencryptSegment(stored, offset, sides);
      expect(neu.subarray(8192, 16384).equals(Buffer.alloc(8192))).toBe(true);
      const back = xts(newMk, neu, newSs, offset / newSs, true);
      back.fill(0, 8192, 16384); // holes read as zeros (spec §8)
      expect(back.equals(plain)).toBe(true);
      expect(neu.subarray(0, 4096).equals(stored.subarray(0, 4096))).toBe(false);
    } finally {
      sides.oldKey.dispose();
      sides.newKey.dispose();
    }
  });
});
