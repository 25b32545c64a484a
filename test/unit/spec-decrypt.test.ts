/**
 * spec/format.md is complete: this file unlocks a container and decrypts its sectors using only the
 * spec's rules, node:crypto and the argon2 package (Argon2id is not in node:crypto on Node 20).
 * It imports NO project module: every offset and rule below is transcribed from the spec, and the
 * XChaCha20 layer (HChaCha20) is written here from draft-irtf-cfrg-xchacha-03 §2.2.
 */
import { describe, expect, it } from 'vitest';
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import argon2 from 'argon2';

const FIXTURES = [
  { file: 'v1-4096.vol', password: 'vault fixture v1', sectorSize: 4096, sectors: 16 },
  { file: 'v1-512.vol', password: 'vault fixture v1 (512)', sectorSize: 512, sectors: 64 },
];

function rotl(x: number, n: number) {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

/** HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): ChaCha20 rounds without the final addition. */
function hchacha20(key: Buffer, nonce16: Buffer): Buffer {
  const s = new Uint32Array(16);
  s.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) s[4 + i] = key.readUInt32LE(4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = nonce16.readUInt32LE(4 * i);
  const qr = (a: number, b: number, c: number, d: number) => {
    s[a] = (s[a]! + s[b]!) >>> 0; s[d] = rotl(s[d]! ^ s[a]!, 16);
    s[c] = (s[c]! + s[d]!) >>> 0; s[b] = rotl(s[b]! ^ s[c]!, 12);
    s[a] = (s[a]! + s[b]!) >>> 0; s[d] = rotl(s[d]! ^ s[a]!, 8);
    s[c] = (s[c]! + s[d]!) >>> 0; s[b] = rotl(s[b]! ^ s[c]!, 7);
  };
  for (let r = 0; r < 10; r++) {
    qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
    qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
  }
  const out = Buffer.alloc(32);
  [0, 1, 2, 3, 12, 13, 14, 15].forEach((w, i) => out.writeUInt32LE(s[w]!, 4 * i));
  return out;
}

/** XChaCha20-Poly1305 decryption (spec §4.4) with node:crypto's RFC 8439 ChaCha20-Poly1305. */
function xchachaOpen(key: Buffer, nonce24: Buffer, aad: Buffer, sealed: Buffer): Buffer | null {
  const subkey = hchacha20(key, nonce24.subarray(0, 16));
  const nonce12 = Buffer.concat([Buffer.alloc(4), nonce24.subarray(16, 24)]);
  const d = createDecipheriv('chacha20-poly1305', subkey, nonce12, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: sealed.length - 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

async function unlockBySpec(file: Buffer, password: string) {
  const h = file.subarray(0, 4096); // §6: primary copy at offset 0
  expect(h.subarray(0, 8).toString('latin1')).toBe('VAULTVOL'); // §2 magic
  expect(h.readUInt16LE(8)).toBe(1); // version
  expect(createHash('sha256').update(h.subarray(0, 4064)).digest().equals(h.subarray(4064))).toBe(true); // checksum
  const uuid = h.subarray(24, 40);
  expect(h.subarray(40, 72).toString('latin1').replace(/\0+$/, '')).toBe('aes-256-xts');
  const sectorSize = h.readUInt32LE(72);
  const dataOffset = Number(h.readBigUInt64LE(80));
  const dataSize = Number(h.readBigUInt64LE(88));
  for (let i = 0; i < 8; i++) {
    const slot = h.subarray(128 + 160 * i, 128 + 160 * (i + 1)); // §3
    if (slot[0] !== 1) continue;
    const kek = await argon2.hash(Buffer.from(password, 'utf8'), {
      raw: true, type: argon2.argon2id, version: 0x13, hashLength: 32,
      memoryCost: slot.readUInt32LE(4), timeCost: slot.readUInt32LE(8), parallelism: slot.readUInt32LE(12),
      salt: Buffer.from(slot.subarray(16, 48)),
    });
    const version = Buffer.alloc(2);
    version.writeUInt16LE(1);
    const aad = Buffer.concat([Buffer.from('vault-keyslot-v1'), version, uuid, Buffer.from([i]), slot.subarray(0, 48)]); // §4.4
    const mk = xchachaOpen(kek, slot.subarray(48, 72), aad, slot.subarray(72, 152));
    if (!mk) continue;
    // §4.5 and §5: verify the MAC before trusting any field.
    const macKey = Buffer.from(hkdfSync('sha256', mk, uuid, Buffer.from('vault-header-mac-v1'), 32));
    const mac = createHmac('sha256', macKey).update(h.subarray(0, 4032)).digest();
    expect(timingSafeEqual(mac, h.subarray(4032, 4064))).toBe(true);
    expect(mk.subarray(0, 32).equals(mk.subarray(32))).toBe(false); // §4.1
    return { mk, sectorSize, dataOffset, dataSize };
  }
  return null;
}

/** §8: sector i is one XTS data unit with tweak = i as a 128-bit little-endian number; an all-zero stored sector is a zero sector. */
function decryptSectorBySpec(file: Buffer, v: { mk: Buffer; sectorSize: number; dataOffset: number }, i: number): Buffer {
  const tweak = Buffer.alloc(16);
  tweak.writeBigUInt64LE(BigInt(i));
  const start = v.dataOffset + i * v.sectorSize;
  if (file.subarray(start, start + v.sectorSize).every((b) => b === 0)) return Buffer.alloc(v.sectorSize);
  const d = createDecipheriv('aes-256-xts', v.mk, tweak);
  return Buffer.concat([d.update(file.subarray(start, start + v.sectorSize)), d.final()]);
}

describe('spec/format.md alone decrypts a container', () => {
  for (const f of FIXTURES) {
    it(`unlocks ${f.file} and decrypts every sector with only the spec's rules`, async () => {
      const file = readFileSync(new URL(`../fixtures/v1/${f.file}`, import.meta.url));
      const v = await unlockBySpec(file, f.password);
      expect(v).not.toBeNull();
      expect(v!.sectorSize).toBe(f.sectorSize);
      expect(v!.dataSize).toBe(f.sectors * f.sectorSize);
      expect(file.length).toBe(v!.dataOffset + v!.dataSize + 4096); // §1: secondary copy at the end
      expect(file.subarray(v!.dataOffset + v!.dataSize, v!.dataOffset + v!.dataSize + 8).toString()).toBe('VAULTVOL');
      for (let i = 0; i < f.sectors; i++) {
        const line = `vault fixture v1 sector ${i}\n`;
        const plain = decryptSectorBySpec(file, v!, i);
        expect(plain.subarray(0, line.length).toString()).toBe(line);
        expect(plain.toString().split(line).join('')).toBe(line.slice(0, f.sectorSize % line.length));
      }
      expect(await unlockBySpec(file, f.password + 'x')).toBeNull();
    });
  }

  it('reproduces the worked example of spec §8 (sector 5, 4096-byte sectors)', () => {
    const mk = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const tweak = Buffer.from('05000000000000000000000000000000', 'hex');
    const e = createCipheriv('aes-256-xts', mk, tweak);
    const out = Buffer.concat([e.update(Buffer.alloc(4096)), e.final()]);
    expect(out.subarray(0, 32).toString('hex')).toBe('41047df5c636cd4fcb4cae528f91daa1d6c25ebf4219446489e8fcd7c9271e97');
    expect(out.subarray(4064).toString('hex')).toBe('f650b784b850cc909ba93fc87ff815c8623f8bbc7821a63f9843285f9698ffdf');
    expect(1048576 + 5 * 4096).toBe(1069056);
  });
});
