/**
 * Issue 18, LUKS ciphers beyond AES-XTS-512: aes-cbc-essiv:sha256 (the LUKS1 default for years),
 * cbc-plain/plain64, XTS with 256-bit keys, serpent-xts-plain64 and twofish-xts-plain64.
 *
 * Three kinds of evidence, none of them vault's own code checking itself:
 *  - the engine (native/dm_crypt.c) against dm-crypt's rules written again in TypeScript over
 *    independent block ciphers (test/support/dm-crypt-reference.ts), and against OpenSSL's XTS;
 *  - containers the real cryptsetup encrypted offline from a known plaintext (it can, in user
 *    space, for AES: CBC and XTS), decrypted by vault; and what vault encrypts, decrypted by cryptsetup;
 *  - Serpent and Twofish, which cryptsetup here cannot run (no AF_ALG), by transcoding a cryptsetup
 *    container: its keyslot area and data re-encrypted with the TypeScript reference ciphers under
 *    the keys cryptsetup itself reports, and the header's cipher names changed; vault must then open it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsDecrypt, xtsEncrypt, type XtsParams } from '../../src/crypto/xts.js';
import { luks1Adapter } from '../../src/formats/luks1/index.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import type { UnlockedVolume } from '../../src/formats/types.js';
import { referenceDmCbc, type RefCipher, type RefIv } from '../support/dm-crypt-reference.js';
import { referenceChainXts } from '../support/chain-xts-reference.js';
import { cryptsetup, expectVaultError, FAST_PBKDF2, keyFile, mutateJson, plaintextImage, readJson, secretOf, unlockFile, withContainer, workDir } from '../support/luks.js';

const MiB = 1024 * 1024;
const KEY = Buffer.from('luks cipher key');
let dir = '';
let key = '';

beforeAll(() => {
  dir = workDir('luks-ciphers');
  key = keyFile(dir, 'key', KEY);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function withKey<T>(bytes: Buffer, fn: (k: KeyHandle) => T): T {
  const k = KeyHandle.fromBytes(Buffer.from(bytes));
  try {
    return fn(k);
  } finally {
    k.dispose();
  }
}

/** How vault's engine runs an unlocked volume's sectors. */
const runOf = (v: UnlockedVolume): Partial<XtsParams> => (v.engine !== undefined ? { engine: v.engine } : { cipher: v.cipher });

/** The volume's data area as vault's engine decrypts it. */
function vaultDecrypt(v: UnlockedVolume, file: string): Buffer {
  const data = Buffer.from(readFileSync(file).subarray(v.dataOffset, v.dataOffset + v.dataSize));
  xtsDecrypt(v.key, data, { sectorSize: v.sectorSize, firstTweak: v.firstTweak, tweakStep: v.tweakStep, ...runOf(v) });
  return data;
}

describe('the dm-crypt engine against independent implementations', () => {
  const cbc: Array<[RefCipher, number, RefIv]> = [
    ['aes', 16, 'plain'],
    ['aes', 24, 'plain64'],
    ['aes', 32, 'essiv:sha256'],
    ['camellia', 16, 'essiv:sha256'],
    ['camellia', 32, 'plain'],
    ['serpent', 32, 'essiv:sha256'],
    ['serpent', 32, 'plain64'],
    ['twofish', 32, 'essiv:sha256'],
    ['twofish', 32, 'plain'],
  ];
  for (const [name, bytes, iv] of cbc) {
    it(`${name}-cbc-${iv}, ${bytes * 8}-bit key: byte for byte, 4096-byte sectors across IV sector 2^32, both directions`, () => {
      const k = randomBytes(bytes);
      const plain = randomBytes(3 * 4096);
      const first = (1n << 32n) - 8n; // the second sector's IV is 2^32: "plain" wraps to 0
      const expected = Buffer.from(plain);
      referenceDmCbc(name, iv, k, expected, 4096, first, 8n, false);
      const ours = Buffer.from(plain);
      const p: XtsParams = { sectorSize: 4096, firstTweak: first, tweakStep: 8n, engine: `${name}-cbc-${iv}/${bytes * 8}` };
      withKey(k, (h) => xtsEncrypt(h, ours, p));
      expect(ours.equals(expected)).toBe(true);
      withKey(k, (h) => xtsDecrypt(h, ours, p));
      expect(ours.equals(plain)).toBe(true);
    });
  }

  it('aes-xts with a 256-bit key (AES-128-XTS) matches OpenSSL, plain64 and the wrapping plain IV', () => {
    const k = randomBytes(32);
    const plain = randomBytes(4 * 512);
    for (const [iv, first] of [['plain64', 5n], ['plain', (1n << 32n) - 2n]] as const) {
      const expected = Buffer.alloc(plain.length);
      for (let i = 0; i < 4; i++) {
        const t = Buffer.alloc(16);
        const s = first + BigInt(i);
        t.writeBigUInt64LE(iv === 'plain' ? s & 0xffffffffn : s);
        createCipheriv('aes-128-xts', k, t).update(plain.subarray(512 * i, 512 * (i + 1))).copy(expected, 512 * i);
      }
      const ours = Buffer.from(plain);
      withKey(k, (h) => xtsEncrypt(h, ours, { sectorSize: 512, firstTweak: first, engine: `aes-xts-${iv}/256` }));
      expect(ours.equals(expected)).toBe(true);
    }
  });

  it('serpent-xts-plain64 with a 512-bit key: the dm-crypt path (libgcrypt XTS) equals the chain path and the reference', () => {
    const k = randomBytes(64);
    const plain = randomBytes(8 * 512);
    const viaEngine = Buffer.from(plain);
    const viaChain = Buffer.from(plain);
    const viaRef = Buffer.from(plain);
    withKey(k, (h) => xtsEncrypt(h, viaEngine, { sectorSize: 512, firstTweak: 77n, engine: 'serpent-xts-plain64/512' }));
    withKey(k, (h) => xtsEncrypt(h, viaChain, { sectorSize: 512, firstTweak: 77n, cipher: ['serpent'] }));
    referenceChainXts(['serpent'], k, viaRef, 77n, false);
    expect(viaEngine.equals(viaRef)).toBe(true);
    expect(viaChain.equals(viaRef)).toBe(true);
  });

  it('refuses malformed engine specs and wrong key lengths with a reason', () => {
    const bad: Array<[string, number, RegExp]> = [
      ['aes-cbc-essiv:sha1/256', 32, /unknown dm-crypt spec/],
      ['aes-xts-essiv:sha256/512', 64, /unknown dm-crypt spec/],
      ['twofish-cbc-plain/192', 24, /twofish takes no 192-bit key/],
      ['aes-cbc-plain/256', 16, /needs a 32-byte key/],
    ];
    for (const [spec, bytes, msg] of bad) expect(() => withKey(randomBytes(bytes), (h) => xtsEncrypt(h, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n, engine: spec })), spec).toThrow(msg);
  });
});

describe('containers cryptsetup encrypted (AES in CBC and short-key XTS)', () => {
  const cases: Array<[string, number, 512 | 4096]> = [
    ['aes-cbc-essiv:sha256', 256, 512],
    ['aes-cbc-essiv:sha256', 128, 4096],
    ['aes-cbc-plain64', 256, 512],
    ['aes-xts-plain64', 256, 4096],
  ];
  for (const [spec, bits, sector] of cases) {
    it(`LUKS2 ${spec}, ${bits}-bit key, ${sector}-byte sectors: vault decrypts cryptsetup's ciphertext byte for byte`, async () => {
      const { file, plain } = plaintextImage(dir, `${spec.replace(/:/g, '_')}-${bits}-${sector}.img`, 2 * MiB, 6 * MiB);
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--luks2-metadata-size', '16k', '--reduce-device-size', '4M', '--sector-size', String(sector), '--cipher', spec, '--key-size', String(bits), ...FAST_PBKDF2, '--key-file', key, file]);
      const v = await unlockFile(luks2Adapter, file, secretOf('', [KEY]));
      expect(v.key.length).toBe(bits / 8);
      expect(v.engine).toBe(`${spec}/${bits}`);
      expect(vaultDecrypt(v, file).subarray(0, 2 * MiB).equals(plain.subarray(0, 2 * MiB))).toBe(true);
      v.key.dispose();
      const info = JSON.stringify(withContainer(file, (c) => luks2Adapter.info!(c, { readOnly: true }).json));
      expect(info).toContain(spec);
      if (sector === 512 && spec.includes('essiv')) {
        // LUKS1 (`cryptsetup convert`): the same ciphertext, keyslot material under the same cipher.
        cryptsetup(['convert', '--type', 'luks1', '-q', file]);
        const v1 = await unlockFile(luks1Adapter, file, secretOf('', [KEY]));
        expect(v1.engine).toBe(`${spec}/${bits}`);
        expect(vaultDecrypt(v1, file).subarray(0, 2 * MiB).equals(plain.subarray(0, 2 * MiB))).toBe(true);
        v1.key.dispose();
        await expectVaultError(unlockFile(luks1Adapter, file, secretOf('wrong')), 'wrong-password');
      }
    });
  }

  it('what vault encrypts with aes-cbc-essiv:sha256, cryptsetup decrypts (detached header)', async () => {
    const { file } = plaintextImage(dir, 'essiv-write.img', 2 * MiB, 2 * MiB);
    const header = path.join(dir, 'essiv-write.hdr');
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--header', header, '--sector-size', '512', '--cipher', 'aes-cbc-essiv:sha256', '--key-size', '256', ...FAST_PBKDF2, '--key-file', key, file]);
    const v = await unlockFile(luks2Adapter, file, secretOf('', [KEY]), { header });
    const written = randomBytes(2 * MiB);
    const enc = Buffer.from(written);
    xtsEncrypt(v.key, enc, { sectorSize: 512, firstTweak: v.firstTweak, tweakStep: v.tweakStep, ...runOf(v) });
    v.key.dispose();
    writeFileSync(file, enc);
    cryptsetup(['reencrypt', '--decrypt', '--force-offline-reencrypt', '--header', header, '--key-file', key, file]);
    expect(readFileSync(file).equals(written)).toBe(true);
  });
});

/** XTS-AES-256 of whole 512-byte sectors by OpenSSL (cryptsetup's own aes-xts-plain64), in place. */
function opensslXts(k: Buffer, data: Buffer, first: bigint, decrypt: boolean): void {
  for (let off = 0, s = first; off < data.length; off += 512, s++) {
    const t = Buffer.alloc(16);
    t.writeBigUInt64LE(s);
    const c = (decrypt ? createDecipheriv : createCipheriv)('aes-256-xts', k, t);
    c.update(data.subarray(off, off + 512)).copy(data, off);
  }
}

function rewrite(file: string, offset: number, length: number, fn: (b: Buffer) => void): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    fn(b);
    writeSync(fd, b, 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

describe('Serpent and Twofish (cryptsetup cannot run them here): transcoded cryptsetup containers', () => {
  /**
   * A cryptsetup aes-xts-plain64 container of a known plaintext, with its volume key as cryptsetup
   * reports it: LUKS2, or LUKS2 converted to LUKS1 by `cryptsetup convert` (LUKS1's own layout).
   */
  const made = new Map<'luks1' | 'luks2', { file: string; plain: Buffer; volumeKey: Buffer; dump: string }>();
  /** aesContainer's container of `type`, made once, copied to `name` for each cipher. */
  function aesCopy(name: string, type: 'luks1' | 'luks2'): { file: string; plain: Buffer; volumeKey: Buffer; dump: string } {
    if (!made.has(type)) made.set(type, aesContainer(`aes-${type}.img`, type));
    const m = made.get(type)!;
    const file = path.join(dir, name);
    copyFileSync(m.file, file);
    return { ...m, file };
  }

  function aesContainer(name: string, type: 'luks1' | 'luks2'): { file: string; plain: Buffer; volumeKey: Buffer; dump: string } {
    // LUKS1 wants its own layout's room before the data (convert refuses less): 4 MiB, as test/unit/luks1.test.ts.
    const room = type === 'luks2' ? 2 * MiB : 4 * MiB;
    const { file, plain } = plaintextImage(dir, name, 512 * 1024, room + 512 * 1024);
    const keyslots = type === 'luks2' ? ['--luks2-keyslots-size', '1m'] : [];
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--luks2-metadata-size', '16k', ...keyslots, '--reduce-device-size', `${room / MiB}M`, '--sector-size', '512', ...FAST_PBKDF2, '--hash', 'sha256', '--key-file', key, file]);
    if (type === 'luks1') cryptsetup(['convert', '-q', '--type', 'luks1', file]);
    const dump = cryptsetup(['luksDump', '--dump-volume-key', '--key-file', key, file]);
    const hex = /MK dump:\s*([\s\S]*?)\n\S/.exec(`${dump}\nX`)?.[1]?.replace(/\s+/g, '') ?? '';
    expect(hex).toMatch(/^[0-9a-f]{128}$/);
    return { file, plain, volumeKey: Buffer.from(hex, 'hex'), dump: cryptsetup(['luksDump', file]) };
  }

  /** Where keyslot 0's area and the data lie, and how its area key is derived, from either header. */
  function layout(type: 'luks1' | 'luks2', file: string, dump: string): { area: number; data: number; salt: Buffer; iterations: number; hash: string } {
    if (type === 'luks2') {
      const j = readJson(file);
      const slot = j.keyslots['0'];
      return { area: Number(slot.area.offset), data: Number(j.segments['0'].offset), salt: Buffer.from(slot.kdf.salt, 'base64'), iterations: slot.kdf.iterations, hash: slot.kdf.hash };
    }
    // cryptsetup's LUKS1 dump: "Key Slot 0: ENABLED / Iterations / Salt (hex, two lines) / Key material offset (sectors)".
    const slot = /Key Slot 0: ENABLED\s+Iterations:\s+(\d+)\s+Salt:\s+([0-9a-f \t\n]+?)\s+Key material offset:\s+(\d+)/.exec(dump);
    expect(slot, dump).not.toBeNull();
    return {
      area: Number(slot![3]) * 512,
      data: Number(/Payload offset:\s+(\d+)/.exec(dump)![1]) * 512,
      salt: Buffer.from(slot![2]!.replace(/\s+/g, ''), 'hex'),
      iterations: Number(slot![1]),
      hash: /Hash spec:\s+(\S+)/.exec(dump)![1]!,
    };
  }

  for (const type of ['luks2', 'luks1'] as const)
    for (const cipher of ['serpent', 'twofish'] as const) {
      it(`${type.toUpperCase()} ${cipher}-xts-plain64 (keyslot area and data re-encrypted by the reference cipher): vault decrypts it byte for byte`, async () => {
        const { file, plain, volumeKey, dump } = aesCopy(`${type}-${cipher}.img`, type);
        const l = layout(type, file, dump);
        expect(l.salt.length).toBe(32);
        const areaKey = pbkdf2Sync(KEY, l.salt, l.iterations, 64, l.hash);
        const areaBytes = Math.ceil((64 * 4000) / 512) * 512; // AF material: key size x 4000 stripes
        rewrite(file, l.area, areaBytes, (b) => {
          opensslXts(areaKey, b, 0n, true);
          referenceChainXts([cipher], areaKey, b, 0n, false);
        });
        // The known plaintext's first 64 KiB (128 sectors; the pure-TS Twofish takes ~1 s per 256 KiB here); the rest stays as it was.
        const dataLength = 64 * 1024;
        rewrite(file, l.data, dataLength, (b) => {
          opensslXts(volumeKey, b, 0n, true);
          expect(b.equals(plain.subarray(0, dataLength))).toBe(true);
          referenceChainXts([cipher], volumeKey, b, 0n, false);
        });
        if (type === 'luks2') {
          mutateJson(file, (m) => {
            m.segments['0'].encryption = `${cipher}-xts-plain64`;
            m.keyslots['0'].area.encryption = `${cipher}-xts-plain64`;
          });
        } else {
          // LUKS1 names one cipher for keyslots and data: cipher-name (32 bytes at 8), cipher-mode stays "xts-plain64".
          rewrite(file, 8, 32, (b) => b.fill(0).write(cipher));
          expect(cryptsetup(['luksDump', file])).toMatch(new RegExp(`Cipher name:\\s+${cipher}\\s`));
        }
        const adapter = type === 'luks1' ? luks1Adapter : luks2Adapter;
        const v = await unlockFile(adapter, file, secretOf('', [KEY]));
        expect(v.format).toBe(type);
        expect(v.cipher).toEqual([cipher]);
        expect(v.engine).toBeUndefined(); // a 512-bit XTS-plain64 key runs on the chain path
        v.key.withBytes((k) => expect(k.equals(volumeKey)).toBe(true));
        expect(vaultDecrypt(v, file).subarray(0, dataLength).equals(plain.subarray(0, dataLength))).toBe(true);
        v.key.dispose();
        await expectVaultError(unlockFile(adapter, file, secretOf('wrong')), 'wrong-password');
      });
    }
});
