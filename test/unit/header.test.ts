import { describe, expect, it } from 'vitest';
import { randomBytes, randomInt } from 'node:crypto';
import { OFF, SLOT_OFF, KEYSLOT_SIZE, HEADER_SIZE } from '../../src/format/constants.js';
import { parseHeaderCopy, serializeHeaderCopy } from '../../src/format/header.js';
import { computeHeaderMac, verifyHeaderMac } from '../../src/crypto/master-key.js';
import { VaultError, isVaultError, type ErrorCode } from '../../src/errors.js';
import type { ActiveKeyslot, Header } from '../../src/format/types.js';
import { fixChecksum, sampleHeader, sealedCopy } from '../support/headers.js';

function expectReject(bytes: Buffer, code: ErrorCode, message?: RegExp, copy: 0 | 1 = 0) {
  let err: unknown;
  try {
    parseHeaderCopy(bytes, copy);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(VaultError);
  expect((err as VaultError).code).toBe(code);
  if (message) expect((err as VaultError).message).toMatch(message);
}

describe('header round trip', () => {
  it('round-trips every field of both copies', () => {
    for (const sectorSize of [512, 4096] as const) {
      const { header, mk } = sampleHeader({ sectorSize, dataSize: 3 * 4096 * 1000, activeSlots: [0, 3, 7] });
      header.sequence = 0x1234_5678_9abc_def0n;
      for (const copy of [0, 1] as const) {
        const bytes = sealedCopy(header, mk, copy);
        expect(bytes.length).toBe(HEADER_SIZE);
        const back = parseHeaderCopy(bytes, copy);
        expect(back.version).toBe(1);
        expect(back.sequence).toBe(header.sequence);
        expect(back.uuid.equals(header.uuid)).toBe(true);
        expect(back.cipher).toBe('aes-256-xts');
        expect(back.sectorSize).toBe(sectorSize);
        expect(back.dataOffset).toBe(1 << 20);
        expect(back.dataSize).toBe(3 * 4096 * 1000);
        expect(back.copy).toBe(copy);
        back.keyslots.forEach((s, i) => {
          const orig = header.keyslots[i]!;
          expect(s.state).toBe(orig.state);
          if (s.state === 'active' && orig.state === 'active') {
            expect(s.kdf).toEqual(orig.kdf);
            expect(s.salt.equals(orig.salt)).toBe(true);
            expect(s.nonce.equals(orig.nonce)).toBe(true);
            expect(s.wrappedKey.equals(orig.wrappedKey)).toBe(true);
          } else if (s.state === 'empty' && orig.state === 'empty') {
            expect(s.filler.equals(orig.filler)).toBe(true);
          }
        });
        verifyHeaderMac(mk, back);
        // Serialising what we parsed reproduces the bytes exactly.
        expect(serializeHeaderCopy(back, back.mac).equals(bytes)).toBe(true);
      }
    }
  });

  it('round-trips the largest geometry and the boundary KDF parameters', () => {
    const { header, mk, kek } = sampleHeader();
    header.dataOffset = 1 << 20;
    header.dataSize = Math.floor((Number.MAX_SAFE_INTEGER - (1 << 20) - 4096) / 4096) * 4096;
    header.keyslots[1] = { ...(header.keyslots[0] as ActiveKeyslot), kdf: { memoryKiB: 4 * 1024 * 1024, iterations: 64, parallelism: 16 } };
    header.keyslots[2] = { ...(header.keyslots[0] as ActiveKeyslot), kdf: { memoryKiB: 1024, iterations: 1, parallelism: 1 } };
    void kek;
    const back = parseHeaderCopy(sealedCopy(header, mk), 0);
    expect(back.dataSize).toBe(header.dataSize);
    expect((back.keyslots[1] as ActiveKeyslot).kdf).toEqual({ memoryKiB: 4194304, iterations: 64, parallelism: 16 });
  });
});

describe('header validation: one rejection per rule (spec §7)', () => {
  const { header, mk } = sampleHeader();
  const good = () => sealedCopy(header, mk);
  const edit = (f: (b: Buffer) => void) => {
    const b = good();
    f(b);
    return fixChecksum(b);
  };
  const slot0 = OFF.keyslots; // slot 0 is active
  const slot1 = OFF.keyslots + KEYSLOT_SIZE; // slot 1 is empty

  it('1. truncated', () => {
    expectReject(good().subarray(0, 4095), 'truncated', /truncated/);
    expectReject(Buffer.alloc(0), 'truncated');
  });
  it('2. magic', () => expectReject(edit((b) => (b[0] = 0x57)), 'not-a-container', /signature/));
  it('3. version newer, version zero, header size', () => {
    expectReject(edit((b) => b.writeUInt16LE(2, OFF.version)), 'unsupported-version', /version 2/);
    expectReject(edit((b) => b.writeUInt16LE(0xffff, OFF.version)), 'unsupported-version');
    expectReject(edit((b) => b.writeUInt16LE(0, OFF.version)), 'invalid-field', /version 0/);
    expectReject(edit((b) => b.writeUInt16LE(4095, OFF.headerSize)), 'invalid-field', /header size/);
  });
  it('4. checksum', () => {
    const b = good();
    b[OFF.sectorSize] ^= 1;
    expectReject(b, 'checksum-mismatch', /damaged/);
    const c = good();
    c[OFF.checksum + 31] ^= 0x80;
    expectReject(c, 'checksum-mismatch');
  });
  it('5. feature flags (unknown bits)', () => expectReject(edit((b) => b.writeUInt32LE(4, OFF.flags)), 'unsupported-feature', /flags/));
  it('6a. sequence 0', () => expectReject(edit((b) => b.writeBigUInt64LE(0n, OFF.sequence)), 'invalid-field', /sequence/));
  it('6b. cipher allowlist, NUL padding', () => {
    expectReject(edit((b) => b.write('cipher_null\0', OFF.cipher, 'latin1')), 'invalid-field', /cipher "cipher_null"/);
    expectReject(edit((b) => b.write('aes-128-xts', OFF.cipher, 'latin1')), 'invalid-field', /not supported/);
    expectReject(edit((b) => b.fill(0x41, OFF.cipher, OFF.cipher + 32)), 'invalid-field', /cipher/);
    expectReject(edit((b) => (b[OFF.cipher + 20] = 1)), 'invalid-field', /cipher/);
    expectReject(edit((b) => b.fill(0, OFF.cipher, OFF.cipher + 32)), 'invalid-field', /cipher/);
  });
  it('6c. sector size', () => {
    for (const s of [0, 511, 1024, 2048, 4097, 8192, 0xffffffff])
      expectReject(edit((b) => b.writeUInt32LE(s, OFF.sectorSize)), 'invalid-field', /sector size/);
  });
  it('6d. keyslot count', () => {
    for (const n of [0, 7, 9, 32]) expectReject(edit((b) => b.writeUInt32LE(n, OFF.keyslotCount)), 'invalid-field', /keyslot count/);
  });
  it('6e. data offset alignment', () => {
    for (const o of [0n, 4096n, (1n << 20n) - 1n, (1n << 20n) + 1n, (1n << 20n) + 512n])
      expectReject(edit((b) => b.writeBigUInt64LE(o, OFF.dataOffset)), 'invalid-field', /data offset/);
  });
  it('6f. data size', () => {
    for (const s of [0n, 512n, 4095n, 4097n])
      expectReject(edit((b) => b.writeBigUInt64LE(s, OFF.dataSize)), 'invalid-field', /data size/);
  });
  it('6g. geometry overflow', () => {
    expectReject(edit((b) => b.writeBigUInt64LE(0xffff_ffff_fff0_0000n, OFF.dataOffset)), 'invalid-field', /exceeds/);
    expectReject(edit((b) => b.writeBigUInt64LE(0xffff_ffff_ffff_f000n, OFF.dataSize)), 'invalid-field', /exceeds/);
    expectReject(edit((b) => b.writeBigUInt64LE(1n << 53n, OFF.dataSize)), 'invalid-field', /exceeds/);
  });
  it('6h. copy index must match its position', () => {
    expectReject(good(), 'invalid-field', /copy index 0/, 1);
    expectReject(edit((b) => (b[OFF.copy] = 2)), 'invalid-field', /copy index/);
  });
  it('6i. reserved bytes', () => {
    expectReject(edit((b) => (b[OFF.reserved1] = 1)), 'invalid-field', /reserved/);
    expectReject(edit((b) => (b[127] = 1)), 'invalid-field', /reserved/);
    expectReject(edit((b) => (b[OFF.reserved2] = 1)), 'invalid-field', /reserved/);
    expectReject(edit((b) => (b[OFF.mac - 1] = 1)), 'invalid-field', /reserved/);
  });
  it('6j. keyslot state and KDF id', () => {
    expectReject(edit((b) => (b[slot1 + SLOT_OFF.state] = 2)), 'invalid-field', /keyslot 1 has an unknown state/);
    expectReject(edit((b) => (b[slot0 + SLOT_OFF.kdf] = 2)), 'invalid-field', /unknown KDF/);
    expectReject(edit((b) => (b[slot0 + SLOT_OFF.kdf] = 0)), 'invalid-field', /unknown KDF/);
  });
  it('6k. keyslot reserved bytes', () => {
    expectReject(edit((b) => (b[slot0 + SLOT_OFF.reserved1 + 1] = 1)), 'invalid-field', /reserved/);
    expectReject(edit((b) => (b[slot0 + SLOT_OFF.reserved2 + 7] = 1)), 'invalid-field', /reserved/);
  });
  it('6l. KDF bounds, off by one on each side', () => {
    const at = (field: number, v: number) => edit((b) => b.writeUInt32LE(v, slot0 + field));
    expectReject(at(SLOT_OFF.memoryKiB, 1023), 'kdf-bounds', /memory/);
    expectReject(at(SLOT_OFF.memoryKiB, 4 * 1024 * 1024 + 1), 'kdf-bounds', /memory/);
    expectReject(at(SLOT_OFF.memoryKiB, 0xffffffff), 'kdf-bounds', /memory/);
    expectReject(at(SLOT_OFF.iterations, 0), 'kdf-bounds', /iterations/);
    expectReject(at(SLOT_OFF.iterations, 65), 'kdf-bounds', /iterations/);
    expectReject(at(SLOT_OFF.parallelism, 0), 'kdf-bounds', /parallelism/);
    expectReject(at(SLOT_OFF.parallelism, 17), 'kdf-bounds', /parallelism/);
  });
  it('ignores the filler of empty slots, which the checksum and MAC still cover', () => {
    const b = edit((x) => x.fill(0xee, slot1 + 1, slot1 + KEYSLOT_SIZE));
    const h = parseHeaderCopy(b, 0);
    expect(h.keyslots[1]!.state).toBe('empty');
    expect(() => verifyHeaderMac(mk, h)).toThrow(/authentication/);
  });
});

describe('header MAC (spec §5)', () => {
  it('detects a change of any field once the checksum is recomputed', () => {
    const { header, mk } = sampleHeader();
    const fields: [string, (b: Buffer) => void][] = [
      ['sequence', (b) => b.writeBigUInt64LE(99n, OFF.sequence)],
      ['uuid', (b) => (b[OFF.uuid] ^= 1)],
      ['sector size', (b) => b.writeUInt32LE(512, OFF.sectorSize)],
      ['data offset', (b) => b.writeBigUInt64LE(2n << 20n, OFF.dataOffset)],
      ['data size', (b) => b.writeBigUInt64LE(BigInt(header.dataSize - 4096), OFF.dataSize)],
      ['keyslot params', (b) => b.writeUInt32LE(2048, OFF.keyslots + SLOT_OFF.memoryKiB)],
      ['keyslot wrapped key', (b) => (b[OFF.keyslots + SLOT_OFF.wrappedKey] ^= 1)],
      ['empty keyslot filler', (b) => (b[OFF.keyslots + KEYSLOT_SIZE + 9] ^= 1)],
      ['slot removed', (b) => (b[OFF.keyslots + 5 * KEYSLOT_SIZE] = 0)],
      ['mac itself', (b) => (b[OFF.mac] ^= 1)],
    ];
    for (const [name, f] of fields) {
      const b = sealedCopy(header, mk);
      f(b);
      fixChecksum(b);
      const parsed = parseHeaderCopy(b, 0);
      expect(() => verifyHeaderMac(mk, parsed), name).toThrow(/authentication/);
    }
    // and a MAC under another master key fails too
    const other = sampleHeader();
    expect(() => verifyHeaderMac(other.mk, parseHeaderCopy(sealedCopy(header, mk), 0))).toThrow();
    expect(computeHeaderMac(mk, header).equals(computeHeaderMac(other.mk, header))).toBe(false);
  });
});

describe('header mutation fuzzing', () => {
  const { header, mk } = sampleHeader({ activeSlots: [0, 1, 6] });
  const good = sealedCopy(header, mk);

  function outcome(bytes: Buffer): Header | VaultError {
    try {
      return parseHeaderCopy(bytes, 0);
    } catch (e) {
      if (e instanceof VaultError) return e;
      throw e; // anything else is a bug: the test fails here
    }
  }

  it('rejects every single-bit flip anywhere in the copy', () => {
    for (let bit = 0; bit < HEADER_SIZE * 8; bit++) {
      const b = Buffer.from(good);
      b[bit >> 3]! ^= 1 << (bit & 7);
      expect(outcome(b)).toBeInstanceOf(VaultError);
    }
  });

  it('random flips, byte sets, truncations and extensions yield a header or a typed error, never a crash', () => {
    for (let i = 0; i < 3000; i++) {
      let b = Buffer.from(good);
      const kind = i % 4;
      if (kind === 0) for (let k = randomInt(1, 16); k > 0; k--) b[randomInt(HEADER_SIZE)]! ^= 1 << randomInt(8);
      if (kind === 1) for (let k = randomInt(1, 8); k > 0; k--) b[randomInt(HEADER_SIZE)] = [0, 0xff, 1, 0x80][randomInt(4)]!;
      if (kind === 2) b = b.subarray(0, randomInt(HEADER_SIZE));
      if (kind === 3) b = Buffer.concat([b, randomBytes(randomInt(1, 64))]);
      // with checksum recomputed half the time, so structural checks are reached too
      if (b.length >= HEADER_SIZE && i % 2 === 0) fixChecksum(b);
      const r = outcome(b);
      if (!(r instanceof VaultError)) {
        // Accepted only if the MAC still authenticates it, i.e. nothing the MAC covers changed.
        let macOk = true;
        try {
          verifyHeaderMac(mk, r);
        } catch (e) {
          macOk = false;
          expect(isVaultError(e, 'header-tampered')).toBe(true);
        }
        if (macOk) expect(b.subarray(0, OFF.mac).equals(good.subarray(0, OFF.mac))).toBe(true);
      }
    }
  });
});
