/**
 * Issue 18: the VeraCrypt volumes vault makes. Checked by an independent reader (test/support/
 * vc_reader.py: Python hashlib and `cryptography`, written from VeraCrypt's published format),
 * which is first proven on real VeraCrypt containers (../shared/fixtures/veracrypt), then run on
 * vault's: magic, version, CRCs, sizes, PRF, PIM, keyfiles, both header copies, and the data area
 * decrypted with the master key. vault's own reader must reopen them too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decryptHeader, parseHeader } from '../../src/formats/veracrypt/header.js';
import { encryptHeader, serializeHeader } from '../../src/formats/veracrypt/header-write.js';
import { newVolumeLayout } from '../../src/formats/veracrypt/new-layout.js';
import { creationKdf } from '../../src/formats/veracrypt/create-kdf.js';
import { checkVeraCryptOptions } from '../../src/cli/commands/create-veracrypt.js';
import { mixKeyfiles } from '../../src/formats/veracrypt/keyfiles.js';
import { AES_XTS } from '../../src/crypto/cipher-chain.js';
import { fatSerial, readVeraCryptMany } from '../support/vc-reader.js';
import { makeVeraCrypt, vaultOpens, type MakeOptions } from '../support/veracrypt-new.js';
import { requirementsMet } from '../support/requirements.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/veracrypt');
const haveFixtures = requirementsMet('veracrypt-create unit (reader on real volumes)', existsSync(FIXTURES) ? [] : [`fixtures at ${FIXTURES}`]);
const dir = mkdtempSync(path.join(tmpdir(), 'vault-vc-create-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(haveFixtures)('the independent reader, on volumes VeraCrypt made', () => {
  const fx = (n: string) => path.join(FIXTURES, n);
  it('reads the normal and hidden headers, decrypts both filesystems (DEAD-BABE, CAFE-BABE), mixes keyfiles', () => {
    const [outerDump, hiddenDump] = [path.join(dir, 'fx-outer'), path.join(dir, 'fx-hidden')];
    const hv = fx('vc_1-sha512-xts-aes-hidden');
    const [outer, hidden, keyed] = readVeraCryptMany([
      { file: hv, prf: 'sha512', password: 'aaaaaaaaaaaa', dump: outerDump },
      { file: hv, prf: 'sha512', password: 'bbbbbbbbbbbb', hidden: true, dump: hiddenDump },
      { file: fx('vck_1-sha512-xts-aes'), prf: 'sha512', password: 'aaaaaaaaaaaa', keyfiles: [fx('keyfile1'), fx('keyfile2')] },
    ]);
    expect(outer).toMatchObject({ ok: true, magic: 'VERA', version: 5, requiredProgramVersion: 0x010b, hiddenVolumeSize: 0, encryptedAreaStart: 131072, sectorSize: 512 });
    expect(fatSerial(readFileSync(outerDump))).toBe('DEAD-BABE');
    expect(hidden).toMatchObject({ ok: true, hiddenVolumeSize: 47104, volumeSize: 47104, encryptedAreaStart: 165888 });
    expect(fatSerial(readFileSync(hiddenDump))).toBe('CAFE-BABE');
    expect(keyed!.ok).toBe(true);
    // (That the reader fails a wrong secret is shown on vault's volumes below, where it is cheap.)
  });

  it("vault's hidden-volume layout gives the real hidden volume's geometry", () => {
    // The fixture: a 348160-byte file whose hidden volume was made 51200 bytes (4096 reserved).
    expect(newVolumeLayout(348160, 51200).hidden).toEqual({ hiddenVolumeSize: 47104, volumeSize: 47104, encryptedAreaStart: 165888, encryptedAreaSize: 47104 });
    expect(newVolumeLayout(348160).outer).toMatchObject({ encryptedAreaStart: 131072, volumeSize: 86016 });
  });
});

describe('the header serializer', () => {
  it('round-trips through the header parser, with both CRCs VeraCrypt checks', () => {
    const salt = randomBytes(64);
    const mk = randomBytes(64);
    const key = randomBytes(64);
    const f = { hiddenVolumeSize: 0, volumeSize: 1 << 20, encryptedAreaStart: 131072, encryptedAreaSize: 1 << 20 };
    const raw = encryptHeader(serializeHeader(salt, f, mk), key, AES_XTS);
    expect(raw.subarray(0, 64)).toEqual(salt);
    const h = parseHeader(decryptHeader(raw, key), 'normal');
    expect(h).toMatchObject({ format: 'veracrypt', version: 5, requiredProgramVersion: 0x010b, flags: 0, sectorSize: 512, ...f });
    expect(h.masterKey).toEqual(mk);
  });

  it('refuses sizes that are not whole data units', () => {
    expect(() => serializeHeader(randomBytes(64), { hiddenVolumeSize: 0, volumeSize: 1000, encryptedAreaStart: 131072, encryptedAreaSize: 1000 }, randomBytes(64))).toThrow(/multiples of 512/);
    expect(() => newVolumeLayout(2 << 20, 2 << 20)).toThrow(/no room for the outer volume/);
  });
});

const make = (name: string, o: MakeOptions) => makeVeraCrypt(dir, name, o);

describe('volumes vault makes', () => {
  it('outer with keyfiles and a hidden volume: the reader finds both, both copies, and the outer data decrypts to the zeros vault wrote', async () => {
    const keyfile = randomBytes(300);
    const kfPath = path.join(dir, 'kf');
    writeFileSync(kfPath, keyfile);
    const size = 1024 * 1024;
    const file = await make('kh.vc', {
      size, hash: 'sha512', pim: 1, quick: false,
      password: mixKeyfiles(Buffer.from('outer pw'), [keyfile]),
      hidden: { size: 256 * 1024, password: Buffer.from('hidden pw') },
    });
    const dumps = [path.join(dir, 'kh.outer'), path.join(dir, 'kh.outer-backup')];
    const common = { file, prf: 'sha512', pim: 1 } as const;
    const [outer, outerBackup, hidden, hiddenBackup, noKeyfile] = readVeraCryptMany([
      { ...common, password: 'outer pw', keyfiles: [kfPath], dump: dumps[0]! },
      { ...common, password: 'outer pw', keyfiles: [kfPath], backup: true, dump: dumps[1]! },
      { ...common, password: 'hidden pw', hidden: true },
      { ...common, password: 'hidden pw', hidden: true, backup: true },
      { ...common, password: 'outer pw' },
    ]);
    for (const r of [outer, outerBackup])
      expect(r).toEqual({
        magic: 'VERA', version: 5, requiredProgramVersion: 0x010b, keyAreaCrcOk: true, headerCrcOk: true, reservedTimesZero: true,
        hiddenVolumeSize: 0, volumeSize: size - 262144, encryptedAreaStart: 131072, encryptedAreaSize: size - 262144,
        flags: 0, sectorSize: 512, reservedZero: true, unusedKeyAreaZero: true, fileSize: size, cipher: 'AES', ok: true,
      });
    // Encrypted zeros under the outer key, data unit = byte offset / 512: zeros again here.
    for (const d of dumps) expect(readFileSync(d).equals(Buffer.alloc(size - 262144))).toBe(true);
    for (const r of [hidden, hiddenBackup])
      expect(r).toMatchObject({ ok: true, hiddenVolumeSize: 256 * 1024 - 4096, volumeSize: 256 * 1024 - 4096, encryptedAreaStart: size - 131072 - 256 * 1024 });
    expect(noKeyfile!.ok).toBe(false); // the keyfile counts
    const vOuter = await vaultOpens(file, 'outer pw', { pim: 1, keyfiles: [keyfile] });
    expect(vOuter.info?.json).toMatchObject({ volumeType: 'normal', kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 16000 }, dataOffset: 131072, dataSize: size - 262144 });
    const vHidden = await vaultOpens(file, 'hidden pw', { pim: 1, hidden: true });
    expect(vHidden.info?.json).toMatchObject({ volumeType: 'hidden', dataOffset: size - 131072 - 256 * 1024, dataSize: 256 * 1024 - 4096 });
  }, 60_000);

  it('without a hidden volume the hidden-header areas are random, and SHA-256, BLAKE2s and Argon2id volumes read back', async () => {
    const size = 512 * 1024;
    const hashes = ['sha256', 'blake2s', 'argon2id'] as const;
    const files: string[] = [];
    for (const hash of hashes) files.push(await make(`${hash}.vc`, { size, hash, pim: 1, quick: true, password: Buffer.from(`pw ${hash}`) }));
    const readings = readVeraCryptMany(hashes.map((hash, i) => ({ file: files[i]!, prf: hash, pim: 1, password: `pw ${hash}` })));
    for (const [i, hash] of hashes.entries()) {
      const bytes = readFileSync(files[i]!);
      for (const at of [65536, size - 65536]) expect(bytes.subarray(at, at + 65536).equals(Buffer.alloc(65536))).toBe(false);
      expect(readings[i]).toMatchObject({ ok: true, volumeSize: size - 262144 });
      const v = await vaultOpens(files[i]!, `pw ${hash}`, { pim: 1 });
      expect(v.info?.json).toMatchObject(hash === 'argon2id' ? { kdf: { type: 'argon2id', memoryKiB: 65536, iterations: 3 } } : { kdf: { type: 'pbkdf2', hash: hash === 'blake2s' ? 'blake2s256' : hash, iterations: 16000 } });
    }
  }, 60_000);

  it('refuses, before anything is asked or written: ext4 around a hidden volume, hidden options without one', () => {
    expect(() => checkVeraCryptOptions({ hiddenSize: 1 << 20 }, 'ext4')).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringMatching(/ext4 spreads its metadata/) }));
    expect(() => checkVeraCryptOptions({ hiddenSize: 1 << 20 }, 'vfat')).not.toThrow();
    expect(() => checkVeraCryptOptions({ hiddenFs: 'vfat' }, 'ext4')).toThrow(/only with --hidden-size/);
  });

  it('refuses an unknown --hash by name', () => {
    expect(() => creationKdf('ripemd160', 0)).toThrow(/--hash "ripemd160"/);
    expect(creationKdf(undefined, 0)).toMatchObject({ kind: 'pbkdf2', digest: 'sha512', iterations: 500_000 });
  });
});
