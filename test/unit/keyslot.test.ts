import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { createKeyslot, keyslotAad, openKeyslot, sealKeyslot, tryKeyslot } from '../../src/crypto/keyslot.js';
import { generateMasterKey, halvesDiffer } from '../../src/crypto/master-key.js';
import type { ActiveKeyslot } from '../../src/format/types.js';

const v = JSON.parse(readFileSync(new URL('../vectors/xchacha20poly1305-draft-irtf-cfrg-xchacha-03.json', import.meta.url), 'utf8'));
const hex = (s: string) => Buffer.from(s, 'hex');
const KDF = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 §A.3.1)', () => {
  it('matches the draft vector both ways', () => {
    const sealed = xchacha20poly1305(hex(v.key), hex(v.nonce), hex(v.aad)).encrypt(hex(v.plaintext));
    expect(Buffer.from(sealed).toString('hex')).toBe(v.ciphertext + v.tag);
    const opened = xchacha20poly1305(hex(v.key), hex(v.nonce), hex(v.aad)).decrypt(sealed);
    expect(Buffer.from(opened).toString('hex')).toBe(v.plaintext);
  });
});

describe('master key', () => {
  it('is 64 random bytes with distinct halves', () => {
    const a = generateMasterKey();
    expect(a.length).toBe(64);
    expect(halvesDiffer(a)).toBe(true);
    expect(generateMasterKey().equals(a)).toBe(false);
    expect(halvesDiffer(Buffer.concat([a.subarray(0, 32), a.subarray(0, 32)]))).toBe(false);
  });
});

describe('keyslot wrap', () => {
  const uuid = randomBytes(16);
  const mk = generateMasterKey();

  it('round-trips with the right passphrase and fails with a wrong one', async () => {
    const slot = await createKeyslot(Buffer.from('correct horse'), mk, uuid, 3, KDF);
    expect(slot.salt.length).toBe(32);
    expect(slot.nonce.length).toBe(24);
    expect(slot.wrappedKey.length).toBe(80);
    expect(Buffer.from((await tryKeyslot(Buffer.from('correct horse'), uuid, 3, slot))!).equals(mk)).toBe(true);
    expect(await tryKeyslot(Buffer.from('correct horsf'), uuid, 3, slot)).toBeNull();
  });

  it('binds the wrap to the slot index, the UUID and every KDF parameter (no swap, no downgrade)', async () => {
    const kek = randomBytes(32);
    const slot = sealKeyslot(kek, mk, uuid, 2, { memoryKiB: 65536, iterations: 3, parallelism: 4 }, randomBytes(32));
    expect(openKeyslot(kek, uuid, 2, slot)).not.toBeNull();
    expect(openKeyslot(kek, uuid, 1, slot)).toBeNull(); // moved to another slot
    expect(openKeyslot(kek, randomBytes(16), 2, slot)).toBeNull(); // moved to another container
    const downgrades: ActiveKeyslot[] = [
      { ...slot, kdf: { ...slot.kdf, memoryKiB: 1024 } },
      { ...slot, kdf: { ...slot.kdf, iterations: 1 } },
      { ...slot, kdf: { ...slot.kdf, parallelism: 1 } },
      { ...slot, salt: randomBytes(32) },
      { ...slot, nonce: randomBytes(24) },
    ];
    for (const d of downgrades) expect(openKeyslot(kek, uuid, 2, d)).toBeNull();
    const tampered = Buffer.from(slot.wrappedKey);
    tampered[5]! ^= 1;
    expect(openKeyslot(kek, uuid, 2, { ...slot, wrappedKey: tampered })).toBeNull();
  });

  it('builds the AAD exactly as spec §4.4 says', () => {
    const slot = sealKeyslot(randomBytes(32), mk, uuid, 7, KDF, Buffer.alloc(32, 0xab));
    const aad = keyslotAad(uuid, 7, slot);
    expect(aad.length).toBe(16 + 2 + 16 + 1 + 48);
    expect(aad.subarray(0, 16).toString()).toBe('vault-keyslot-v1');
    expect(aad.readUInt16LE(16)).toBe(1);
    expect(aad.subarray(18, 34).equals(uuid)).toBe(true);
    expect(aad[34]).toBe(7);
    expect(aad.subarray(35, 39).equals(Buffer.from([1, 1, 0, 0]))).toBe(true);
    expect(aad.readUInt32LE(39)).toBe(1024);
    expect(aad.readUInt32LE(43)).toBe(1);
    expect(aad.readUInt32LE(47)).toBe(1);
    expect(aad.subarray(51).equals(Buffer.alloc(32, 0xab))).toBe(true);
  });
});
