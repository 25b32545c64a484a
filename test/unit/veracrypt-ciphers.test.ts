/**
 * VeraCrypt's algorithms through vault's native XTS engine (native/cipher_engine.c): every single
 * cipher and cascade reproduces VeraCrypt's own start-up self-test (Tests.c
 * TestSectorBufEncryption CRCs, test/vectors/veracrypt-selftest-crc.json), which fixes cipher byte
 * order, cascade order, key layout and the XTS tweaks.
 */
import { describe, expect, it } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHAINS } from '../../src/formats/veracrypt/cipher-chains.js';
import { type CipherChain, chainKeyBytes, veracryptName } from '../../src/crypto/cipher-chain.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsDecrypt, xtsEncrypt } from '../../src/crypto/xts.js';
import { crc32 } from '../../src/formats/veracrypt/crc32.js';

/** The chain's XTS through the native engine, 512-byte data units from `unit`. */
function chainXts(c: CipherChain, key: Buffer, buf: Buffer, unit: bigint, decrypt: boolean): void {
  const k = KeyHandle.fromBytes(Buffer.from(key.subarray(0, chainKeyBytes(c))));
  try {
    // 512-byte data units; a shorter buffer (a header's 448 bytes) is one unit.
    (decrypt ? xtsDecrypt : xtsEncrypt)(k, buf, { sectorSize: Math.min(512, buf.length), firstTweak: unit, cipher: c });
  } finally {
    k.dispose();
  }
}
const byName = (name: string): CipherChain => CHAINS.find((c) => veracryptName(c) === name)!;

interface SelfTest {
  key1: string;
  key2_head: string;
  plaintextCrc: string;
  crc: Record<string, { sectors: string[]; buffer: string }>;
}
const SELF = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../vectors/veracrypt-selftest-crc.json'), 'utf8')) as SelfTest;

function selfTestKey(ciphers: number): Buffer {
  const key2 = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  Buffer.from(SELF.key2_head, 'hex').copy(key2);
  const key1 = Buffer.from(SELF.key1, 'hex');
  return Buffer.concat([key1.subarray(0, 32 * ciphers), key2.subarray(0, 32 * ciphers)]);
}

function selfTestPlaintext(): Buffer {
  return Buffer.from(Array.from({ length: 2048 }, (_, i) => i % 256));
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');

describe('VeraCrypt algorithms (Crypto.c EncryptionAlgorithms)', () => {
  it('lists exactly the algorithms VeraCrypt self-tests, by name', () => {
    expect(CHAINS.map(veracryptName).sort()).toEqual(Object.keys(SELF.crc).sort());
    expect(crc32(selfTestPlaintext()).toString(16)).toBe(SELF.plaintextCrc);
  });

  it.each(CHAINS.map((c) => [veracryptName(c), c] as const))('%s reproduces VeraCrypt\'s self-test CRCs and decrypts back', (name, c) => {
    const key = selfTestKey(c.length);
    expect(key.length).toBe(chainKeyBytes(c));
    const expected = SELF.crc[name]!;
    for (let testCase = 0; testCase < 4; testCase++) {
      const buf = selfTestPlaintext();
      const unit = 0xffffffffffn - BigInt(testCase);
      chainXts(c, key, buf, unit, false);
      expect(hex(crc32(buf)), `sectors case ${testCase}`).toBe(expected.sectors[testCase]);
      chainXts(c, key, buf, unit, true);
      expect(buf.equals(selfTestPlaintext())).toBe(true);
    }
    const buf = selfTestPlaintext();
    chainXts(c, key, buf, 0n, false);
    expect(hex(crc32(buf)), 'buffer').toBe(expected.buffer);
  });

  it('AES through the generic XTS equals OpenSSL aes-256-xts over two data units', () => {
    const aes = byName('AES');
    const key = randomBytes(64);
    const data = randomBytes(1024);
    const mine = Buffer.from(data);
    chainXts(aes, key, mine, 7n, false);
    const iv = (n: number) => { const b = Buffer.alloc(16); b.writeUInt32LE(n); return b; };
    const ref = Buffer.concat([0, 1].map((u) => createCipheriv('aes-256-xts', key, iv(7 + u)).update(data.subarray(512 * u, 512 * (u + 1)))));
    expect(mine.equals(ref)).toBe(true);
  });

  it('a two-cipher cascade takes all primary keys, then all secondary keys (Serpent-AES: AES first)', () => {
    // VeraCrypt's self-test cannot tell this layout from interleaved pairs for two ciphers: its
    // key1[32..63] equals key2[0..31]. The three-cipher CRCs above can; this pins two ciphers too.
    const key = randomBytes(128);
    const data = randomBytes(448);
    const mine = Buffer.from(data);
    chainXts(byName('Serpent-AES'), key, mine, 0n, false);
    const aesKey = Buffer.concat([key.subarray(0, 32), key.subarray(64, 96)]);
    const ref = createCipheriv('aes-256-xts', aesKey, Buffer.alloc(16)).update(data);
    chainXts(byName('Serpent'), Buffer.concat([key.subarray(32, 64), key.subarray(96, 128)]), ref, 0n, false);
    expect(mine.equals(ref)).toBe(true);
  });

  it('refuses short keys and partial blocks', () => {
    const c = byName('Serpent-Twofish-AES');
    const k = KeyHandle.fromBytes(randomBytes(128));
    expect(() => xtsDecrypt(k, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n, cipher: c })).toThrow(RangeError);
    k.dispose();
    expect(() => chainXts(c, randomBytes(192), Buffer.alloc(20), 0n, true)).toThrow(RangeError);
  });
});
