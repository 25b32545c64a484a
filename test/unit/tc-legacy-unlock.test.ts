/**
 * TrueCrypt 1.x-4.x volumes (LRW and CBC, spec/interop.md §2.9) open through the TrueCrypt adapter:
 * cryptsetup's real images (test/fixtures/tcrypt, made by the real TrueCrypt) unlock with
 * `--type truecrypt`, `vault info` names the chain and mode, and the first data sector, decrypted
 * with the unlocked key and IV numbering through the legacy cipher, is the FAT boot sector
 * cryptsetup's test expects (DEAD-BABE; hidden volumes CAFE-BABE). The CBC cascade images have
 * their data area zeroed in the archive (the kernel cannot map them), so there the header is the
 * real-image check. Mount serves them read-only (test/e2e/veracrypt.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { adapterByName, unlockVolume } from '../../src/formats/index.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { readAtSync } from '../../src/volume/fd-io.js';
import { LegacyCipher } from '../../src/crypto/tc-legacy.js';
import type { UnlockedVolume, UnlockOptions } from '../../src/formats/types.js';
import type { VeraCryptInfoJson } from '../../src/formats/info-json.js';
import { kdfCandidates } from '../../src/formats/veracrypt/kdf.js';
import { TC_FS_UUID, TC_HIDDEN_PASSWORD, TC_PASSWORD, tcryptImage } from '../support/tcrypt-images.js';

function fatSerial(boot: Uint8Array): string {
  const b = Buffer.from(boot);
  expect(b.toString('latin1', 54, 57)).toBe('FAT');
  const h = b.readUInt32LE(39).toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

async function withVolume<T>(name: string, password: string, options: Partial<UnlockOptions>, f: (v: UnlockedVolume, first: Uint8Array) => T): Promise<T> {
  const c = openContainer(tcryptImage(name), true);
  try {
    const v = await unlockVolume(await adapterByName('truecrypt'), c, { passphrase: Buffer.from(password), keyfiles: [] }, { readOnly: true, ...options });
    try {
      const first = new Uint8Array(readAtSync(c.fd, 512, v.dataOffset));
      const cipher = LegacyCipher.open(v.legacy!.chain, v.key);
      try {
        cipher.decryptSectors(first, v.legacy!.firstIvSector);
      } finally {
        cipher.dispose();
      }
      return f(v, first);
    } finally {
      v.key.dispose();
    }
  } finally {
    closeContainer(c);
  }
}

describe('TrueCrypt 1.x-4.x images through the adapter', () => {
  it.each([
    // [image, password, chain, mode, TrueCrypt's name, volume type, FS serial or null (data zeroed in the archive)]
    ['tc_1-sha1-cbc-aes', TC_PASSWORD, 'cbc-aes', 'cbc', 'AES (CBC)', 'normal', TC_FS_UUID],
    ['tc_2-ripemd160-cbc-serpent-twofish-aes', TC_PASSWORD, 'cbc-aes-twofish-serpent', 'outer-cbc', 'Serpent-Twofish-AES (outer CBC)', 'normal', null],
    ['tc_2-ripemd160-lrw-serpent-twofish-aes', TC_PASSWORD, 'lrw-aes-twofish-serpent', 'lrw', 'Serpent-Twofish-AES (LRW)', 'normal', TC_FS_UUID],
    ['tc_2-ripemd160-lrw-aes-hidden', TC_HIDDEN_PASSWORD, 'lrw-aes', 'lrw', 'AES (LRW)', 'hidden', 'CAFE-BABE'],
  ] as const)('%s', async (name, password, chain, mode, label, volumeType, serial) => {
    // The known PRF (--hash) keeps the test cheap; detection over every KDF is tested below once.
    const hash = name.split('-')[1] as UnlockOptions['hash'];
    await withVolume(name, password, { hash }, (v, first) => {
      expect(v.format).toBe('truecrypt');
      expect(v.legacy).toMatchObject({ chain, label });
      const json = v.info!.json as VeraCryptInfoJson;
      expect(json).toMatchObject({ format: 'truecrypt', volumeType, cipher: chain, mode, pim: 0 });
      expect(v.info!.fields.find(([k]) => k === 'cipher')![1]).toContain(label);
      expect(v.warnings.join(' ')).toMatch(mode === 'lrw' ? /LRW is unsafe/ : /CBC is malleable/);
      if (serial) expect(fatSerial(first)).toBe(serial);
    });
  });

  it('finds the legacy chain without --hash (every TrueCrypt derivation; SHA-1 is TrueCrypt-only)', async () => {
    await withVolume('tc_1-sha1-cbc-aes', TC_PASSWORD, {}, (v, first) => {
      expect((v.info!.json as VeraCryptInfoJson).kdf).toEqual({ type: 'pbkdf2', hash: 'sha1', iterations: 2000 });
      expect(fatSerial(first)).toBe(TC_FS_UUID);
    });
    expect(kdfCandidates({ flavour: 'veracrypt' }).some((k) => k.prf === 'sha1')).toBe(false);
    expect(kdfCandidates({ pim: 5 }).some((k) => k.flavour === 'truecrypt')).toBe(false);
  });
});
