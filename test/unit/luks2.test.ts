/**
 * LUKS2 adapter against containers made by the real cryptsetup: offline encryption of a known
 * plaintext (attached and detached headers, 512- and 4096-byte sectors), keyslots of every KDF,
 * priorities, wrong passphrases, and what must be refused before any key derivation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { readLuks2Header } from '../../src/formats/luks2/read.js';
import { keyslotsToTry } from '../../src/formats/luks2/support.js';
import { openFirstKeyslot } from '../../src/formats/luks/try-keyslots.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import type { Luks2InfoJson } from '../../src/formats/info-json.js';
import {
  copyOffsets,
  cryptsetup,
  decryptVolume,
  expectVaultError,
  FAST_PBKDF2,
  fastArgon2,
  fixChecksum,
  keyFile,
  mutateJson,
  patch,
  plaintextImage,
  secretOf,
  unlockFile,
  withContainer,
  workDir,
} from '../support/luks.js';

const MiB = 1024 * 1024;
let dir = '';
let key = ''; // the first keyslot's keyfile: "correct horse" without a newline
const KEY = Buffer.from('correct horse');

beforeAll(() => {
  dir = workDir('luks2');
  key = keyFile(dir, 'key', KEY);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('cryptsetup reencrypt --encrypt of a known plaintext', () => {
  for (const sectorSize of [512, 4096]) {
    it(`attached header, ${sectorSize}-byte sectors: decrypts to exactly the plaintext`, async () => {
      const { file, plain } = plaintextImage(dir, `attached-${sectorSize}.img`, 4 * MiB, 8 * MiB);
      // --reduce-device-size 4M: the header goes in front, the data moves 2 MiB forward, and the
      // first 8 − 4 MiB of the file are the plaintext cryptsetup promises to keep.
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--reduce-device-size', '4M', '--sector-size', String(sectorSize), ...FAST_PBKDF2, '--key-file', key, file]);
      const v = await unlockFile(luks2Adapter, file, secretOf('', [KEY]));
      expect(v.format).toBe('luks2');
      expect(v.sectorSize).toBe(sectorSize);
      expect(v.dataOffset).toBe(2 * MiB);
      expect(v.dataSize).toBe(6 * MiB);
      expect(v.firstTweak).toBe(0n);
      expect(v.tweakStep).toBe(BigInt(sectorSize / 512));
      expect(v.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(v.key.length).toBe(64);
      expect(decryptVolume(v, file).subarray(0, 4 * MiB).equals(plain.subarray(0, 4 * MiB))).toBe(true);
      v.key.dispose();
    });

    it(`detached header, ${sectorSize}-byte sectors: decrypts in place to exactly the plaintext`, async () => {
      const { file, plain } = plaintextImage(dir, `detached-${sectorSize}.img`, 4 * MiB, 4 * MiB);
      const header = path.join(dir, `detached-${sectorSize}.hdr`);
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--header', header, '--sector-size', String(sectorSize), ...FAST_PBKDF2, '--key-file', key, file]);
      const v = await unlockFile(luks2Adapter, file, secretOf('', [KEY]), { header });
      expect(v.dataOffset).toBe(0);
      expect(v.dataSize).toBe(4 * MiB);
      expect(decryptVolume(v, file).equals(plain)).toBe(true);
      v.key.dispose();
      // Without --header the data file is no LUKS container at all.
      await expectVaultError(unlockFile(luks2Adapter, file, secretOf('', [KEY])), 'not-a-container');
      // The header file alone (as the container) has its data at offset 0, inside the header.
      await expectVaultError(unlockFile(luks2Adapter, header, secretOf('', [KEY])), 'unsupported-feature', /--header|detached|header area/);
    });
  }

  it('honours a non-zero iv_tweak and a fixed segment size', async () => {
    const { file, plain } = plaintextImage(dir, 'tweak.img', 4 * MiB, 8 * MiB);
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--reduce-device-size', '4M', ...FAST_PBKDF2, '--key-file', key, file]);
    const before = await unlockFile(luks2Adapter, file, secretOf('', [KEY]));
    const data = decryptVolume(before, file);
    before.key.dispose();
    expect(data.subarray(0, 4 * MiB).equals(plain.subarray(0, 4 * MiB))).toBe(true);
    // Same key and ciphertext, but the header now says the IV starts at 1000 and the segment is 1 MiB:
    // the adapter must hand exactly these to the data path.
    mutateJson(file, (j) => {
      j.segments['0'].iv_tweak = '1000';
      j.segments['0'].size = String(MiB);
    });
    const v = await unlockFile(luks2Adapter, file, secretOf('', [KEY]));
    expect(v.firstTweak).toBe(1000n);
    expect(v.dataSize).toBe(MiB);
    v.key.dispose();
  });
});

describe('keyslots', () => {
  let file = '';
  const keys: Record<string, Buffer> = {};
  const kdfs: Record<string, string[]> = {
    argon2id: fastArgon2('argon2id'),
    argon2i: fastArgon2('argon2i'),
    'pbkdf2-sha256': [...FAST_PBKDF2, '--hash', 'sha256'],
    'pbkdf2-sha512': [...FAST_PBKDF2, '--hash', 'sha512'],
  };

  beforeAll(() => {
    file = path.join(dir, 'slots.img');
    writeFileSync(file, '');
    truncateSync(file, 20 * MiB);
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', key, file]);
    let slot = 1;
    for (const [name, args] of Object.entries(kdfs)) {
      keys[name] = Buffer.from(`${name} passphrase\n`); // a keyfile's trailing newline is part of the key
      cryptsetup(['luksAddKey', ...args, '--key-file', key, '--new-key-slot', String(slot++), file, keyFile(dir, name, keys[name]!)]);
    }
  });

  it('every luksAddKey keyslot (argon2id, argon2i, pbkdf2 sha256/sha512) unlocks to the same volume key', async () => {
    const first = await unlockFile(luks2Adapter, file, secretOf('', [KEY]));
    const volumeKey = first.key.withBytes((k) => Buffer.from(k));
    first.key.dispose();
    const info = withContainer(file, (c) => luks2Adapter.info!(c, { readOnly: true }));
    const slots = (info.json as Luks2InfoJson).keyslots.map((k) => `${k.kdf?.type}${k.kdf && 'hash' in k.kdf ? `-${k.kdf.hash}` : ''}`);
    expect(slots).toEqual(['pbkdf2-sha256', 'argon2id', 'argon2i', 'pbkdf2-sha256', 'pbkdf2-sha512']);
    for (const [name, k] of Object.entries(keys)) {
      const v = await unlockFile(luks2Adapter, file, secretOf('', [k]));
      expect(v.key.withBytes((b) => b.equals(volumeKey)), name).toBe(true);
      v.key.dispose();
    }
  });

  it('a keyfile is used byte for byte: the same text without its newline, typed, is wrong', async () => {
    const typed = keys.argon2id!.subarray(0, -1);
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf(typed)), 'wrong-password');
    // The first key has no newline: typed as a passphrase it unlocks.
    const v = await unlockFile(luks2Adapter, file, secretOf(KEY));
    v.key.dispose();
  });

  it('refuses a wrong passphrase, a passphrase together with a keyfile, and two keyfiles', async () => {
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf('not it')), 'wrong-password', /wrong passphrase/);
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf('x', [KEY])), 'usage');
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf('', [KEY, KEY])), 'usage');
  });

  it('--slot tries only that keyslot', async () => {
    const v = await unlockFile(luks2Adapter, file, secretOf('', [keys.argon2i!]), { slot: 2 });
    v.key.dispose();
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf('', [keys.argon2i!]), { slot: 1 }), 'wrong-password');
    await expectVaultError(unlockFile(luks2Adapter, file, secretOf('', [keys.argon2i!]), { slot: 9 }), 'no-keyslot');
  });

  it('honours priorities: prefer first, ignore never unless named', async () => {
    const copy = path.join(dir, 'prio.img');
    copyFileSync(file, copy);
    cryptsetup(['config', '--priority', 'prefer', '--key-slot', '3', copy]);
    cryptsetup(['config', '--priority', 'ignore', '--key-slot', '1', copy]);
    const order = withContainer(copy, (c) => keyslotsToTry(readLuks2Header(c.fd, c.size, c.path).metadata, undefined, []).map((k) => k.id));
    expect(order).toEqual([3, 0, 2, 4]);
    // An odd priority value is not an error (cryptsetup does not validate it): that slot is just never tried unasked.
    mutateJson(copy, (j) => (j.keyslots['2'].priority = 'high'));
    const order2 = withContainer(copy, (c) => keyslotsToTry(readLuks2Header(c.fd, c.size, c.path).metadata, undefined, []).map((k) => k.id));
    expect(order2).toEqual([3, 0, 4]);
    await expectVaultError(unlockFile(luks2Adapter, copy, secretOf('', [keys.argon2id!])), 'wrong-password');
    const v = await unlockFile(luks2Adapter, copy, secretOf('', [keys.argon2id!]), { slot: 1 });
    v.key.dispose();
    const info = withContainer(copy, (c) => luks2Adapter.info!(c, { readOnly: true }));
    expect(info.fields.find(([k]) => k === 'keyslot 1')?.[1]).toMatch(/priority ignore/);
    expect(info.fields.find(([k]) => k === 'keyslot 3')?.[1]).toMatch(/priority prefer/);
  });

  it('a keyslot that cannot be tried does not stop the others; alone, its reason is the error', async () => {
    const c = openContainer(file, true);
    try {
      const [good] = keyslotsToTry(readLuks2Header(c.fd, c.size, c.path).metadata, 0, []);
      const broken = { ...good!, slot: { ...good!.slot, name: 'keyslot 7', areaOffset: c.size } };
      const { key: k } = await openFirstKeyslot(c.fd, [broken, good!], Buffer.from(KEY));
      k.dispose();
      await expectVaultError(openFirstKeyslot(c.fd, [broken], Buffer.from(KEY)), 'truncated', /keyslot 7/);
      await expectVaultError(openFirstKeyslot(c.fd, [broken, good!], Buffer.from('wrong')), 'truncated', /keyslot 7/);
    } finally {
      closeContainer(c);
    }
  });

  it('info shows keyslots, KDFs, the segment and the UUID without secrets', () => {
    const info = withContainer(file, (c) => luks2Adapter.info!(c, { readOnly: true }));
    expect(info.format).toBe('luks2');
    const text = info.fields.map(([k, v]) => `${k}: ${v}`).join('\n');
    expect(text).toMatch(/segment 0: crypt aes-xts-plain64, sector 4096, offset 16777216, size dynamic/);
    expect(text).toMatch(/keyslot 1: luks2, 512-bit key, priority normal, argon2id, time 4, memory 32 KiB/);
    expect(text).toMatch(/keyslot 4: .*pbkdf2 sha512, 1000 iterations/);
    const dump = cryptsetup(['luksDump', file]);
    expect(info.json.uuid).toBe(/UUID:\s+(\S+)/.exec(dump)?.[1]);
    const salt = withContainer(file, (c) => readLuks2Header(c.fd, c.size, c.path)).metadata.keyslots[0]!.kdf!.salt;
    expect(JSON.stringify(info.json)).not.toContain(salt);
  });
});

describe('refused before any key derivation', () => {
  let base = '';
  beforeAll(() => {
    base = path.join(dir, 'refuse-base.img');
    writeFileSync(base, '');
    truncateSync(base, 20 * MiB);
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', key, base]);
  });

  function variant(name: string, mutate: (j: Record<string, any>) => void): string {
    const f = path.join(dir, `${name}.img`);
    copyFileSync(base, f);
    mutateJson(f, mutate);
    return f;
  }

  const cases: Array<[string, (j: Record<string, any>) => void, string, RegExp]> = [
    ['cipher_null', (j) => (j.segments['0'].encryption = 'cipher_null-ecb'), 'unsupported-feature', /cipher_null/],
    ['cast5', (j) => (j.segments['0'].encryption = 'cast5-xts-plain64'), 'unsupported-feature', /"cast5-xts-plain64" uses the cipher "cast5"/],
    ['aes-cbc-benbi', (j) => (j.segments['0'].encryption = 'aes-cbc-benbi'), 'unsupported-feature', /IV mode "benbi"/],
    ['capi cipher', (j) => (j.segments['0'].encryption = 'capi:xts(aes)-plain64'), 'unsupported-feature', /"capi:xts\(aes\)-plain64" is not supported/],
    ['unknown requirement', (j) => (j.config.requirements = { mandatory: ['frobnicate'] }), 'unsupported-feature', /"frobnicate"/],
    ['online-reencrypt requirement', (j) => (j.config.requirements = { mandatory: ['online-reencrypt-v2'] }), 'unsupported-feature', /reencryption in progress/],
    ['sector size 1024', (j) => (j.segments['0'].sector_size = 1024), 'unsupported-feature', /sector size 1024/],
    ['integrity', (j) => (j.segments['0'].integrity = { type: 'hmac(sha256)', journal_encryption: 'none', journal_integrity: 'none' }), 'unsupported-feature', /integrity/],
    ['argon2 memory 5 GiB', (j) => Object.assign(j.keyslots['0'].kdf = { type: 'argon2id', time: 4, memory: 5 * 1024 * 1024, cpus: 1, salt: j.keyslots['0'].kdf.salt }), 'kdf-bounds', /memory/],
    ['pbkdf2 iterations 2^31', (j) => (j.keyslots['0'].kdf.iterations = 2 ** 31), 'kdf-bounds', /PBKDF2 iterations/],
    ['argon2 time 2^31', (j) => Object.assign(j.keyslots['0'].kdf = { type: 'argon2i', time: 2 ** 31, memory: 1024, cpus: 1, salt: j.keyslots['0'].kdf.salt }), 'kdf-bounds', /time/],
    ['digest iterations 2^40', (j) => (j.digests['0'].iterations = 2 ** 40), 'kdf-bounds', /iterations/],
    ['keyslot kdf unknown', (j) => (j.keyslots['0'].kdf = { type: 'scrypt', salt: j.keyslots['0'].kdf.salt }), 'unsupported-feature', /scrypt/],
    ['area cipher', (j) => (j.keyslots['0'].area.encryption = 'blowfish-xts-plain64'), 'unsupported-feature', /blowfish/],
    ['160-bit key', (j) => (j.keyslots['0'].key_size = 20), 'unsupported-feature', /160-bit key/],
    ['cipher with control characters', (j) => (j.segments['0'].encryption = 'evil\n\u001b[2J'), 'unsupported-feature', /"evil\\n\\u001b\[2J"/],
    ['digest without its value', (j) => delete j.digests['0'].digest, 'invalid-field', /digest 0: missing or bad digest/],
    ['digest type', (j) => (j.digests['0'].type = 'hmac'), 'unsupported-feature', /"hmac"/],
  ];
  for (const [name, mutate, code, message] of cases) {
    it(`${name}: ${code}, fast`, async () => {
      const f = variant(name.replace(/\W+/g, '-'), mutate);
      const t = Date.now();
      await expectVaultError(unlockFile(luks2Adapter, f, secretOf('', [KEY])), code as never, message);
      expect(Date.now() - t).toBeLessThan(2000);
    });
  }

  it('a reencryption in progress (cryptsetup reencrypt --init-only) is refused, never opened', async () => {
    const f = path.join(dir, 'reenc.img');
    copyFileSync(base, f);
    cryptsetup(['reencrypt', '--init-only', '--force-offline-reencrypt', ...FAST_PBKDF2, '--key-file', key, f]);
    await expectVaultError(unlockFile(luks2Adapter, f, secretOf('', [KEY])), 'unsupported-feature', /reencryption/);
    // Even without the requirement flag, more than one segment is refused.
    mutateJson(f, (j) => delete j.config.requirements);
    await expectVaultError(unlockFile(luks2Adapter, f, secretOf('', [KEY])), 'unsupported-feature', /3 segments/);
  });

  it('a segment ending beyond the file is truncated', async () => {
    const f = variant('too-big', (j) => (j.segments['0'].size = String(64 * MiB)));
    await expectVaultError(unlockFile(luks2Adapter, f, secretOf('', [KEY])), 'truncated');
  });

  it('header text with control characters is shown as "?" by info and in the UUID', async () => {
    const f = path.join(dir, 'label.img');
    copyFileSync(base, f);
    const { secondary } = copyOffsets(f);
    for (const at of [0, secondary]) {
      patch(f, at + 24, 'evil\u001b[2J\n\0');
      patch(f, at + 168 + 36, '\u001b');
      fixChecksum(f, at);
    }
    const info = withContainer(f, (c) => luks2Adapter.info!(c, { readOnly: true }));
    expect(info.fields).toContainEqual(['label', 'evil?[2J?']);
    expect(JSON.stringify(info.fields)).not.toMatch(/\\u001b/);
    const v = await unlockFile(luks2Adapter, f, secretOf('', [KEY]));
    expect(v.uuid).toMatch(/\?$/);
    v.key.dispose();
  });

  it('recognises LUKS2 by its magic and version only', () => {
    const first = readFileSync(base).subarray(0, 512);
    expect(luks2Adapter.recognises(first)).toBe(true);
    const v1 = Buffer.from(first);
    v1.writeUInt16BE(1, 6);
    expect(luks2Adapter.recognises(v1)).toBe(false);
    expect(luks2Adapter.recognises(Buffer.alloc(512))).toBe(false);
  });
});
