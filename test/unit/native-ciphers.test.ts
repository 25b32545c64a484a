/**
 * The native cipher engine (native/cipher_engine.c, kuznyechik.c) on its own: each cipher's block
 * function against the standards' known answers (test/vectors/blockciphers-256.json: Serpent
 * NESSIE/submission, Twofish paper appendix A, RFC 3713 Camellia, RFC 7801 Kuznyechik), and XTS
 * over single ciphers and cascades against an independent TypeScript re-implementation
 * (test/support/chain-xts-reference.ts: TS Serpent/Twofish/Kuznyechik, OpenSSL's Camellia and AES via
 * node:crypto, the XTS arithmetic in TS).
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type CipherChain, type CipherName, chainKeyBytes } from '../../src/crypto/cipher-chain.js';
import { cipherBlocks, libgcryptXts } from '../../src/crypto/cipher-probes.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsDecrypt, xtsDecryptAsync, xtsEncrypt, xtsEncryptAsync } from '../../src/crypto/xts.js';
import { referenceChainXts } from '../support/chain-xts-reference.js';

interface Vector { source: string; key: string; plaintext: string; ciphertext: string }
const VECTORS = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../vectors/blockciphers-256.json'), 'utf8')) as Record<string, Vector[]>;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const handle = (key: Uint8Array): KeyHandle => KeyHandle.fromBytes(Buffer.from(key));

describe.each(['serpent', 'twofish', 'camellia', 'kuznyechik'] as const)('%s block function (native)', (name) => {
  const vectors = VECTORS[name]!;
  it('has vectors', () => expect(vectors.length).toBeGreaterThan(0));
  it.each(vectors.map((v) => [v.source, v] as const))('encrypts and decrypts the known answer: %s', (_src, v) => {
    const k = handle(hex(v.key));
    const block = hex(v.plaintext);
    cipherBlocks(name, k, block, true);
    expect(block.toString('hex')).toBe(v.ciphertext);
    cipherBlocks(name, k, block, false);
    expect(block.toString('hex')).toBe(v.plaintext);
    k.dispose();
  });
});

const CHAINS: CipherChain[] = [['serpent'], ['twofish'], ['camellia'], ['kuznyechik'], ['aes'], ['serpent', 'twofish', 'aes'], ['kuznyechik', 'camellia']];

describe('XTS over cipher chains (native) against the TypeScript reference', () => {
  // Data unit sizes around the engine's 4 KiB decryption chunk (native/cipher_engine.c
  // gcry_decrypt_bulk): one block, 512, exactly one chunk, two chunks per unit; 12 KiB of data.
  it.each(CHAINS.map((c) => [c.join('-'), c] as const))('%s: random data, 16- to 6144-byte data units, both directions', async (_n, chain) => {
    for (const sectorSize of [16, 512, 4096, 6144]) {
      const key = randomBytes(chainKeyBytes(chain));
      const data = randomBytes(12288);
      const first = 0xfffffff0n + BigInt(sectorSize);
      const k = handle(key);
      const mine = Buffer.from(data);
      xtsEncrypt(k, mine, { sectorSize, firstTweak: first, cipher: chain });
      const ref = Buffer.from(data);
      referenceChainXts(chain, key, ref, first, false, sectorSize);
      expect(mine.equals(ref)).toBe(true);
      await xtsDecryptAsync(k, mine, { sectorSize, firstTweak: first, cipher: chain });
      expect(mine.equals(data)).toBe(true);
      await xtsEncryptAsync(k, mine, { sectorSize, firstTweak: first, cipher: chain });
      expect(mine.equals(ref)).toBe(true);
      xtsDecrypt(k, mine, { sectorSize, firstTweak: first, cipher: chain });
      expect(mine.equals(data)).toBe(true);
      // Decryption of data that was never encrypted, against the reference directly.
      const refDec = Buffer.from(data);
      referenceChainXts(chain, key, refDec, first, true, sectorSize);
      xtsDecrypt(k, mine, { sectorSize, firstTweak: first, cipher: chain });
      expect(mine.equals(refDec)).toBe(true);
      k.dispose();
    }
  });

  // The benchmark's reference (libgcrypt's own XTS through the same chain, AES included) computes
  // what the engine computes, each direction: one pass per cipher in the chain's order.
  const REFERENCED: CipherChain[] = [['aes'], ['serpent'], ['twofish'], ['camellia'], ['twofish', 'aes'], ['aes', 'serpent'], ['serpent', 'twofish', 'aes']];
  it.each(REFERENCED.map((c) => [c.join('-'), c] as const))(
    "%s: the engine's XTS equals libgcrypt's own (the benchmark's reference), both directions",
    (_name, chain) => {
      const k = handle(randomBytes(chainKeyBytes(chain)));
      const a = randomBytes(4096);
      const b = Buffer.from(a);
      xtsEncrypt(k, a, { sectorSize: 512, firstTweak: 0n, cipher: chain });
      libgcryptXts(chain, k, b, 512);
      expect(a.equals(b)).toBe(true);
      xtsDecrypt(k, a, { sectorSize: 512, firstTweak: 0n, cipher: chain });
      libgcryptXts(chain, k, b, 512, 'decrypt');
      expect(a.equals(b)).toBe(true);
      k.dispose();
    },
  );

  it('the libgcrypt reference refuses Kuznyechik (libgcrypt has none)', () => {
    const k = handle(randomBytes(128));
    expect(() => libgcryptXts(['kuznyechik', 'aes'], k, Buffer.alloc(512), 512)).toThrow(/kuznyechik has no libgcrypt XTS/);
    k.dispose();
  });

  it('refuses a key of the wrong length for the chain, unknown ciphers, and a cipher whose two keys are equal', () => {
    const k = handle(randomBytes(128));
    expect(() => xtsEncrypt(k, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n, cipher: ['serpent'] })).toThrow(/needs a 64-byte key/);
    expect(() => xtsEncrypt(k, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n, cipher: ['des' as CipherName] })).toThrow(TypeError);
    k.dispose();
    const half = randomBytes(32);
    const equal = handle(Buffer.concat([randomBytes(32), half, randomBytes(32), half])); // twofish's two keys equal
    expect(() => xtsEncrypt(equal, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n, cipher: ['serpent', 'twofish'] })).toThrow(/two 32-byte twofish keys are equal/);
    equal.dispose();
  });
});
