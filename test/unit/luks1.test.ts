/**
 * LUKS1 adapter against containers made by the real cryptsetup: a LUKS2 offline encryption of a
 * known plaintext converted with `cryptsetup convert --type luks1`, keyslots added with luksAddKey,
 * the header hashes sha1/sha256/sha512, a detached header, and refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { luks1Adapter } from '../../src/formats/luks1/index.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { cryptsetup, decryptVolume, expectVaultError, FAST_PBKDF2, keyFile, patch, plaintextImage, secretOf, unlockFile, withContainer, workDir } from '../support/luks.js';

const MiB = 1024 * 1024;
const KEY = Buffer.from('luks1 key');
let dir = '';
let key = '';

beforeAll(() => {
  dir = workDir('luks1');
  key = keyFile(dir, 'key', KEY);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('LUKS1', () => {
  it('decrypts a cryptsetup-encrypted plaintext (attached header) byte for byte', async () => {
    const { file, plain } = plaintextImage(dir, 'attached.img', 4 * MiB, 8 * MiB);
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--luks2-metadata-size', '16k', '--reduce-device-size', '4M', '--sector-size', '512', ...FAST_PBKDF2, '--hash', 'sha256', '--key-file', key, file]);
    cryptsetup(['convert', '--type', 'luks1', file]);
    expect(luks1Adapter.recognises(readFileSync(file).subarray(0, 512))).toBe(true);
    expect(luks2Adapter.recognises(readFileSync(file).subarray(0, 512))).toBe(false);
    const v = await unlockFile(luks1Adapter, file, secretOf('', [KEY]));
    expect(v).toMatchObject({ format: 'luks1', sectorSize: 512, dataOffset: 2 * MiB, dataSize: 6 * MiB, firstTweak: 0n, tweakStep: 1n });
    expect(v.uuid).toBe(/UUID:\s+(\S+)/.exec(cryptsetup(['luksDump', file]))?.[1]);
    expect(decryptVolume(v, file).subarray(0, 4 * MiB).equals(plain.subarray(0, 4 * MiB))).toBe(true);
    v.key.dispose();
    await expectVaultError(unlockFile(luks1Adapter, file, secretOf('wrong')), 'wrong-password');
  });

  it('aes-xts-plain (the 32-bit IV): LUKS1 and LUKS2 made by cryptsetup decrypt byte for byte on the dm-crypt path; past 2 TiB of IV sectors it opens with a warning', async () => {
    for (const type of ['luks1', 'luks2'] as const) {
      const { file, plain } = plaintextImage(dir, `plain-${type}.img`, 4 * MiB, 8 * MiB);
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--luks2-metadata-size', '16k', '--reduce-device-size', '4M', '--sector-size', '512', '--cipher', 'aes-xts-plain', '--key-size', '512', ...FAST_PBKDF2, '--key-file', key, file]);
      if (type === 'luks1') cryptsetup(['convert', '--type', 'luks1', file]);
      const adapter = type === 'luks1' ? luks1Adapter : luks2Adapter;
      const v = await unlockFile(adapter, file, secretOf('', [KEY]));
      // The chain path's tweaks are 64 bits: "plain" runs on the dm-crypt path, which wraps the IV.
      expect(v.engine).toBe('aes-xts-plain/512');
      expect(v.maxDataSize).toBe(2 ** 32 * 512 - Number(v.firstTweak) * 512);
      expect(v.warnings).toEqual([]);
      expect(decryptVolume(v, file).subarray(0, 4 * MiB).equals(plain.subarray(0, 4 * MiB))).toBe(true);
      v.key.dispose();
      // A sparse file whose data area goes past IV sector 2^32 opens (dm-crypt opens it), with a warning.
      const big = path.join(dir, `plain-${type}-big.img`);
      copyFileSync(file, big);
      truncateSync(big, 2 * 1024 * 1024 * MiB + 4 * MiB);
      const w = await unlockFile(adapter, big, secretOf('', [KEY]));
      expect(w.warnings.join('\n')).toMatch(/aes-xts-plain, whose 32-bit IV wraps at IV sector 2\^32, and its data area goes past it .*sectors 2 TiB apart share an IV/);
      w.key.dispose();
      rmSync(big);
    }
  });

  it('decrypts with a detached header', async () => {
    const { file, plain } = plaintextImage(dir, 'detached.img', 2 * MiB, 2 * MiB);
    const header = path.join(dir, 'detached.hdr');
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--header', header, '--sector-size', '512', ...FAST_PBKDF2, '--key-file', key, file]);
    cryptsetup(['convert', '--type', 'luks1', '--header', header, file]);
    const v = await unlockFile(luks1Adapter, file, secretOf('', [KEY]), { header });
    expect(v.dataOffset).toBe(0);
    expect(decryptVolume(v, file).equals(plain)).toBe(true);
    v.key.dispose();
  });

  for (const hash of ['sha1', 'sha256', 'sha512']) {
    it(`luksFormat --hash ${hash}: every luksAddKey keyslot unlocks to the same key; --slot; info`, async () => {
      const file = path.join(dir, `fmt-${hash}.img`);
      writeFileSync(file, '');
      truncateSync(file, 4 * MiB);
      cryptsetup(['luksFormat', '--type', 'luks1', '--hash', hash, '--pbkdf-force-iterations', '1000', '--key-file', key, file]);
      const second = Buffer.from(`second ${hash}\n`);
      cryptsetup(['luksAddKey', '--pbkdf-force-iterations', '1000', '--key-file', key, '--key-slot', '5', file, keyFile(dir, `k-${hash}`, second)]);
      const a = await unlockFile(luks1Adapter, file, secretOf('', [KEY]));
      const b = await unlockFile(luks1Adapter, file, secretOf('', [second]), { slot: 5 });
      expect(a.key.withBytes((x) => b.key.withBytes((y) => x.equals(y)))).toBe(true);
      a.key.dispose();
      b.key.dispose();
      await expectVaultError(unlockFile(luks1Adapter, file, secretOf('', [second]), { slot: 0 }), 'wrong-password');
      await expectVaultError(unlockFile(luks1Adapter, file, secretOf('', [second]), { slot: 3 }), 'no-keyslot');
      const info = withContainer(file, (c) => luks1Adapter.info!(c, { readOnly: true }));
      expect(info.fields).toContainEqual(['hash', hash]);
      expect(info.fields).toContainEqual(['keyslot 5', `pbkdf2 ${hash}, 1000 iterations`]);
    });
  }

  it('refuses other ciphers, absurd iteration counts and damaged keyslots before deriving', async () => {
    const base = path.join(dir, 'refuse.img');
    writeFileSync(base, '');
    truncateSync(base, 4 * MiB);
    cryptsetup(['luksFormat', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '--key-file', key, base]);
    const variant = (name: string, at: number, bytes: Buffer | string) => {
      const f = path.join(dir, `${name}.img`);
      copyFileSync(base, f);
      patch(f, at, bytes);
      return f;
    };
    const u32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
    const t = Date.now();
    await expectVaultError(unlockFile(luks1Adapter, variant('cast5', 8, 'cast5\0'), secretOf('', [KEY])), 'unsupported-feature', /"cast5-xts-plain64" uses the cipher "cast5"/);
    await expectVaultError(unlockFile(luks1Adapter, variant('benbi', 40, 'cbc-benbi\0'), secretOf('', [KEY])), 'unsupported-feature', /IV mode "benbi"/);
    await expectVaultError(unlockFile(luks1Adapter, variant('ripemd', 72, 'ripemd160\0'), secretOf('', [KEY])), 'unsupported-feature', /ripemd160/);
    await expectVaultError(unlockFile(luks1Adapter, variant('iter', 208 + 4, u32(0xffffffff)), secretOf('', [KEY])), 'kdf-bounds', /keyslot 0/);
    await expectVaultError(unlockFile(luks1Adapter, variant('mkiter', 164, u32(0xffffffff)), secretOf('', [KEY])), 'kdf-bounds', /digest/);
    await expectVaultError(unlockFile(luks1Adapter, variant('state', 208 + 48, u32(0x12345678)), secretOf('', [KEY])), 'headers-damaged', /unknown state/);
    await expectVaultError(unlockFile(luks1Adapter, variant('stripes', 208 + 44, u32(1)), secretOf('', [KEY])), 'headers-damaged', /stripes/);
    await expectVaultError(unlockFile(luks1Adapter, variant('overlap', 208 + 48 + 40, Buffer.from(readFileSync(base).subarray(208 + 40, 208 + 44))), secretOf('', [KEY])), 'headers-damaged', /overlap/);
    await expectVaultError(unlockFile(luks1Adapter, variant('keybytes', 108, u32(20)), secretOf('', [KEY])), 'unsupported-feature', /160-bit key, which aes-xts does not take/);
    expect(Date.now() - t).toBeLessThan(3000);
  });
});
