/**
 * The block ciphers vault uses only to name a VeraCrypt volume's cipher: official known-answer
 * vectors (test/vectors/blockciphers-256.json, sources there), decryption of each, and round trips
 * on random keys and blocks.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { serpent } from '../../src/crypto/blockciphers/serpent.js';
import { twofish } from '../../src/crypto/blockciphers/twofish.js';
import { kuznyechik } from '../../src/crypto/blockciphers/kuznyechik.js';
import type { BlockCipher } from '../../src/crypto/blockciphers/types.js';

interface Vector { source: string; key: string; plaintext: string; ciphertext: string }
const VECTORS = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../vectors/blockciphers-256.json'), 'utf8')) as Record<string, Vector[]>;
const CIPHERS: Record<string, (key: Uint8Array) => BlockCipher> = { serpent, twofish, kuznyechik };
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

describe.each(Object.keys(CIPHERS))('%s', (name) => {
  const make = CIPHERS[name]!;
  const vectors = VECTORS[name]!;

  it('has vectors', () => expect(vectors.length).toBeGreaterThan(0));

  it.each(vectors.map((v) => [v.source, v] as const))('encrypts and decrypts the known answer: %s', (_src, v) => {
    const c = make(hex(v.key));
    const block = hex(v.plaintext);
    c.encrypt(block);
    expect(block.toString('hex')).toBe(v.ciphertext);
    c.decrypt(block);
    expect(block.toString('hex')).toBe(v.plaintext);
  });

  it('round-trips random blocks under random keys, and a changed key gives another ciphertext', () => {
    for (let i = 0; i < 20; i++) {
      const key = randomBytes(32);
      const plain = randomBytes(16);
      const block = Buffer.from(plain);
      make(key).encrypt(block);
      expect(block.equals(plain)).toBe(false);
      const other = Buffer.from(plain);
      key[i % 32]! ^= 1;
      make(key).encrypt(other);
      expect(other.equals(block)).toBe(false);
      key[i % 32]! ^= 1;
      make(key).decrypt(block);
      expect(block.equals(plain)).toBe(true);
    }
  });

  it('refuses keys and blocks of the wrong size, and wipe clears the schedule', () => {
    expect(() => make(randomBytes(16))).toThrow(RangeError);
    const c = make(randomBytes(32));
    expect(() => c.encrypt(new Uint8Array(15))).toThrow(RangeError);
    const before = Buffer.alloc(16, 7);
    c.encrypt(before);
    c.wipe();
    const after = Buffer.alloc(16, 7);
    c.encrypt(after); // an all-zero schedule: a different permutation
    expect(after.equals(before)).toBe(false);
  });
});
