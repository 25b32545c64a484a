/**
 * The VeraCrypt/TrueCrypt building blocks: CRC-32, PIM formulas, the keyfile pool (checked against
 * a plain re-implementation on zlib's CRC-32), header decryption and every header check, and the
 * format detection that decides when a file is tried as VeraCrypt at all.
 */
import { describe, expect, it } from 'vitest';
import { createCipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32 } from '../../src/formats/veracrypt/crc32.js';
import { argon2Params, kdfCandidates, pbkdf2Iterations } from '../../src/formats/veracrypt/kdf.js';
import { mixKeyfiles } from '../../src/formats/veracrypt/keyfiles.js';
import { decryptHeader, headerMagic, parseHeader } from '../../src/formats/veracrypt/header.js';
import { detectFormat, unlockVolume } from '../../src/formats/index.js';
import { veracryptAdapter } from '../../src/formats/veracrypt/adapter.js';
import { CHAINS, openWithOtherChain } from '../../src/formats/veracrypt/cipher-chains.js';
import { type CipherChain, chainKeyBytes, veracryptName } from '../../src/crypto/cipher-chain.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsEncrypt } from '../../src/crypto/xts.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import type { VaultError } from '../../src/errors.js';
import { requirementsMet } from '../support/requirements.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/veracrypt');
const haveFixtures = requirementsMet('veracrypt unit (the real-header test)', existsSync(FIXTURES) ? [] : [`fixtures at ${FIXTURES}`]);

describe('CRC-32', () => {
  it('matches the standard check value and zlib', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const b = randomBytes(1000);
    expect(crc32(b)).toBe(zlibCrc32(b));
  });
});

describe('PIM formulas (VeraCrypt Pkcs5.c, cryptsetup tcrypt.c)', () => {
  it('PBKDF2: 500000 by default, 15000 + 1000·PIM otherwise', () => {
    expect(pbkdf2Iterations(0)).toBe(500_000);
    expect(pbkdf2Iterations(1)).toBe(16_000);
    expect(pbkdf2Iterations(485)).toBe(500_000);
    expect(pbkdf2Iterations(2147468)).toBeLessThan(2 ** 31);
  });
  it('Argon2id: PIM 0 is PIM 12 (416 MiB, 6 passes); memory grows to PIM 31, passes after', () => {
    expect(argon2Params(0)).toEqual({ memoryKiB: 425984, iterations: 6, parallelism: 1 });
    expect(argon2Params(12)).toEqual(argon2Params(0));
    expect(argon2Params(1)).toEqual({ memoryKiB: 65536, iterations: 3, parallelism: 1 });
    expect(argon2Params(31)).toEqual({ memoryKiB: 1024 * 1024, iterations: 13, parallelism: 1 });
    expect(argon2Params(32)).toEqual({ memoryKiB: 1024 * 1024, iterations: 14, parallelism: 1 });
  });
  it('a PIM rules out TrueCrypt; without one TrueCrypt counts are tried too', () => {
    expect(kdfCandidates({ pim: 7 }).every((k) => k.flavour === 'veracrypt')).toBe(true);
    expect(kdfCandidates({ pim: 7 }).find((k) => k.kind === 'pbkdf2' && k.digest === 'sha512')).toMatchObject({ iterations: 22_000 });
    const tc = kdfCandidates().filter((k) => k.flavour === 'truecrypt');
    expect(tc.map((k) => (k.kind === 'pbkdf2' ? [k.digest, k.iterations] : null))).toEqual([['sha512', 1000], ['ripemd160', 2000], ['whirlpool', 1000], ['sha1', 2000]]);
  });
});

/** The keyfile pool written out plainly from VeraCrypt's KeyFileProcess, on zlib's CRC-32. */
function referencePool(password: Buffer, keyfiles: Buffer[]): Buffer {
  const size = password.length <= 64 ? 64 : 128;
  const pool = new Array<number>(size).fill(0);
  for (const k of keyfiles) {
    let pos = 0;
    let finalised = 0; // zlib continues from a finalised CRC; the raw register is its complement
    for (const byte of k.subarray(0, 1 << 20)) {
      finalised = zlibCrc32(Buffer.from([byte]), finalised);
      const reg = ~finalised >>> 0;
      for (const shift of [24, 16, 8, 0]) pool[pos] = (pool[pos++]! + ((reg >>> shift) & 0xff)) % 256;
      if (pos >= size) pos = 0;
    }
  }
  return Buffer.from(pool.map((p, i) => (p + (password[i] ?? 0)) % 256));
}

describe('keyfile pool', () => {
  it('matches the reference for short and long passwords and several keyfiles', () => {
    const kfs = [randomBytes(100), randomBytes(3), randomBytes(64)];
    for (const pw of [Buffer.alloc(0), Buffer.from('aaaaaaaaaaaa'), randomBytes(64), randomBytes(65), randomBytes(128)]) {
      const mixed = mixKeyfiles(pw, kfs);
      expect(mixed.length).toBe(pw.length <= 64 ? 64 : 128);
      expect(mixed.equals(referencePool(pw, kfs))).toBe(true);
    }
  });
  it('uses only the first 1 MiB of a keyfile; keyfile order does not matter (each starts at pool byte 0)', () => {
    const big = randomBytes((1 << 20) + 4096);
    expect(mixKeyfiles(Buffer.from('x'), [big]).equals(mixKeyfiles(Buffer.from('x'), [big.subarray(0, 1 << 20)]))).toBe(true);
    const a = randomBytes(50);
    const b = randomBytes(70);
    expect(mixKeyfiles(Buffer.from('x'), [a, b]).equals(mixKeyfiles(Buffer.from('x'), [b, a]))).toBe(true);
    expect(mixKeyfiles(Buffer.from('x'), [a, b]).equals(mixKeyfiles(Buffer.from('x'), [a]))).toBe(false);
  });
  it('without keyfiles the password is used as typed; too long or empty keyfiles are refused', () => {
    expect(mixKeyfiles(Buffer.from('abc'), []).toString()).toBe('abc');
    expect(() => mixKeyfiles(randomBytes(129), [])).toThrow(/at most 128 bytes/);
    expect(() => mixKeyfiles(Buffer.from('a'), [Buffer.alloc(0)])).toThrow(/empty/);
  });
  it('an empty keyfile after a good one is refused before any byte is mixed; results own their buffer', () => {
    // The pool used to be filled keyfile by keyfile and left unwiped when a later one was empty.
    expect(() => mixKeyfiles(Buffer.from('a'), [randomBytes(70), Buffer.alloc(0)])).toThrow(/keyfile 2 is empty/);
    for (const out of [mixKeyfiles(Buffer.from('abc'), []), mixKeyfiles(Buffer.from('abc'), [randomBytes(70)])]) {
      expect(out.byteOffset).toBe(0);
      expect(out.buffer.byteLength).toBe(out.length); // not a view into Node's shared pool
    }
  });
});

/** A decrypted header with valid CRCs, for mutation; `edit` runs before the CRCs are computed. */
function syntheticHeader(edit: (p: Buffer) => void = () => {}): Buffer {
  const p = Buffer.alloc(512);
  randomBytes(64).copy(p, 0);
  p.write('VERA', 64, 'latin1');
  p.writeUInt16BE(5, 68);
  p.writeUInt16BE(0x010b, 70);
  p.writeBigUInt64BE(1048576n, 100);
  p.writeBigUInt64BE(131072n, 108);
  p.writeBigUInt64BE(1048576n, 116);
  p.writeUInt32BE(512, 128);
  randomBytes(256).copy(p, 256);
  edit(p);
  p.writeUInt32BE(crc32(p.subarray(256, 512)), 72);
  p.writeUInt32BE(crc32(p.subarray(64, 252)), 252);
  return p;
}

function parseError(p: Buffer, kind: 'normal' | 'hidden' = 'normal'): VaultError {
  try {
    parseHeader(p, kind);
  } catch (e) {
    return e as VaultError;
  }
  throw new Error('parsed');
}

describe('header', () => {
  it('decrypts with XTS data unit 0 and parses the fields', () => {
    const plain = syntheticHeader();
    const key = randomBytes(64);
    const c = createCipheriv('aes-256-xts', key, Buffer.alloc(16));
    const raw = Buffer.concat([plain.subarray(0, 64), c.update(plain.subarray(64)), c.final()]);
    const dec = decryptHeader(raw, key);
    expect(dec.equals(plain)).toBe(true);
    const h = parseHeader(dec, 'normal');
    expect(h).toMatchObject({ format: 'veracrypt', version: 5, volumeSize: 1048576, encryptedAreaStart: 131072, sectorSize: 512 });
    expect(h.masterKey.equals(plain.subarray(256, 320))).toBe(true);
    expect(headerMagic(decryptHeader(raw, randomBytes(64)))).toBe(null);
  });

  it('rejects each damaged or unsupported header with its own error', () => {
    expect(parseError(syntheticHeader((p) => p.write('TRUX', 64))).code).toBe('not-a-container');
    const keyCrc = syntheticHeader();
    keyCrc[300] ^= 1;
    expect(parseError(keyCrc)).toMatchObject({ code: 'checksum-mismatch', message: /key area/ });
    const fieldCrc = syntheticHeader();
    fieldCrc[101] ^= 1;
    expect(parseError(fieldCrc)).toMatchObject({ code: 'checksum-mismatch', message: /its fields/ });
    expect(parseError(syntheticHeader((p) => p.writeUInt16BE(6, 68))).code).toBe('unsupported-version');
    expect(parseError(syntheticHeader((p) => p.writeUInt16BE(2, 68))).code).toBe('unsupported-feature');
    expect(parseError(syntheticHeader((p) => p.writeUInt16BE(0x0127, 70)))).toMatchObject({ code: 'unsupported-version', message: /requires VeraCrypt 1.27/ });
    expect(parseHeader(syntheticHeader((p) => p.writeUInt16BE(0x0126, 70)), 'normal').requiredProgramVersion).toBe(0x0126);
    expect(parseError(syntheticHeader((p) => p.writeUInt32BE(1, 124)))).toMatchObject({ code: 'unsupported-feature', message: /system/, hint: /--system/ });
    expect(parseHeader(syntheticHeader((p) => p.writeUInt32BE(1, 124)), 'normal', true).flags).toBe(1); // read with --system
    // Header version 3 (TrueCrypt 5.x): data offset 0 means right after the header; sector size field ignored.
    const v3 = parseHeader(syntheticHeader((p) => { p.writeUInt16BE(3, 68); p.writeBigUInt64BE(0n, 108); p.writeUInt32BE(768, 128); }), 'normal');
    expect(v3).toMatchObject({ version: 3, encryptedAreaStart: 512, sectorSize: 512 });
    expect(parseError(syntheticHeader((p) => { p.writeUInt32BE(2, 124); p.writeBigUInt64BE(4096n, 116); }))).toMatchObject({ message: /partly encrypted/ });
    expect(parseError(syntheticHeader((p) => p.writeUInt32BE(768, 128))).code).toBe('invalid-field');
    expect(parseError(syntheticHeader((p) => p.writeBigUInt64BE(131073n, 108))).code).toBe('invalid-field');
    expect(parseError(syntheticHeader((p) => p.writeBigUInt64BE(0n, 100))).code).toBe('invalid-field');
    expect(parseError(syntheticHeader((p) => p.writeBigUInt64BE(1n << 60n, 100))).code).toBe('invalid-field');
    expect(parseError(syntheticHeader(), 'hidden').code).toBe('invalid-field'); // hidden header, no hidden size
  });

  it('a header failing a geometry check leaves no copy of its master key; a good one gets a buffer of its own', () => {
    // Buffer.from(<4 KiB) copies land in Node's shared pool, which Buffer.allocUnsafe hands out next:
    // before the fix, the key of a header refused for its geometry stayed there unwiped.
    const pool = () => Buffer.from(Buffer.allocUnsafe(1).buffer);
    const contains = (hay: Buffer, key: Uint8Array) => hay.indexOf(key) >= 0;
    const edits: Array<[string, (p: Buffer) => void, 'normal' | 'hidden']> = [
      ['sector size', (p) => p.writeUInt32BE(768, 128), 'normal'],
      ['data offset', (p) => p.writeBigUInt64BE(131073n, 108), 'normal'],
      ['volume size', (p) => p.writeBigUInt64BE(0n, 100), 'normal'],
      ['hidden size', () => undefined, 'hidden'],
      ['in-place', (p) => { p.writeUInt32BE(2, 124); p.writeBigUInt64BE(4096n, 116); }, 'normal'],
      ['out of range', (p) => p.writeBigUInt64BE(1n << 60n, 92), 'normal'],
    ];
    for (const [what, edit, kind] of edits) {
      const p = syntheticHeader(edit);
      const key = Uint8Array.from(p.subarray(256, 320)); // not a pooled Buffer: that would be a copy itself
      expect(parseError(p, kind).code, what).toMatch(/invalid-field|unsupported-feature/);
      expect(contains(pool(), key), `${what}: key left in the buffer pool`).toBe(false);
      p.fill(0);
    }
    const h = parseHeader(syntheticHeader(), 'normal');
    expect(h.masterKey.buffer.byteLength).toBe(64); // not a view into the shared pool
    h.masterKey.fill(0);
  });

  it.runIf(haveFixtures)('decrypts the real TrueCrypt header (PBKDF2-SHA-512, 1000 iterations)', () => {
    const raw = readFileSync(path.join(FIXTURES, 'tc_5-sha512-xts-aes')).subarray(0, 512);
    const key = pbkdf2Sync('aaaaaaaaaaaa', raw.subarray(0, 64), 1000, 64, 'sha512');
    const h = parseHeader(decryptHeader(raw, key), 'normal');
    expect(h).toMatchObject({ format: 'truecrypt', version: 5, encryptedAreaStart: 131072, volumeSize: 36864, hiddenVolumeSize: 0 });
  });
});

describe('format detection', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-unit-formats-'));
  const detect = async (bytes: Buffer) => {
    const f = path.join(dir, 'f');
    writeFileSync(f, bytes);
    const c = openContainer(f, true);
    try {
      return (await detectFormat(c)).name;
    } finally {
      closeContainer(c);
    }
  };
  it('magic first, the secondary vault copy next, VeraCrypt for random-looking files, else vault', async () => {
    const vault = Buffer.alloc(2 << 20);
    vault.write('VAULTVOL', 0);
    expect(await detect(vault)).toBe('vault');
    const noPrimary = Buffer.alloc(2 << 20);
    noPrimary.write('VAULTVOL', noPrimary.length - 4096);
    expect(await detect(noPrimary)).toBe('vault');
    expect(await detect(randomBytes(1 << 20))).toBe('veracrypt');
    // vault's zero padding where VeraCrypt always has random bytes (the hidden-header area)
    const wiped = Buffer.alloc(2 << 20);
    randomBytes(4096).copy(wiped, 0);
    expect(await detect(wiped)).toBe('vault');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('headers of the other algorithms (native engine)', () => {
  /** A valid header encrypted under `key` with a VeraCrypt algorithm, as VeraCrypt writes it. */
  function encryptedHeader(chain: CipherChain, key: Buffer, magic = 'VERA', edit: (p: Buffer) => void = () => {}): Buffer {
    const raw = syntheticHeader((p) => {
      p.write(magic, 64, 'latin1');
      edit(p);
    });
    const handle = KeyHandle.fromBytes(Buffer.from(key.subarray(0, chainKeyBytes(chain))));
    xtsEncrypt(handle, raw.subarray(64), { sectorSize: 448, firstTweak: 0n, cipher: chain });
    handle.dispose();
    return raw;
  }

  it.each(CHAINS.filter((c) => c.length > 1 || c[0] !== 'aes').map((c) => [veracryptName(c), c] as const))('opens a %s header with its key, and nothing else', (_n, c) => {
    const key = randomBytes(192);
    const raw = encryptedHeader(c, key);
    const opened = openWithOtherChain(raw, key);
    expect(opened?.chain).toEqual(c);
    expect(headerMagic(opened!.plain)).toBe('veracrypt');
    // With only the 64 bytes a PBKDF2 first pass derives, only single ciphers can open.
    expect(openWithOtherChain(raw, key.subarray(0, 64))?.chain ?? null).toEqual(c.length === 1 ? c : null);
    expect(openWithOtherChain(raw, randomBytes(192))).toBe(null);
    const otherKey = Buffer.from(key);
    otherKey[191]! ^= 1; // the last secondary key byte: used only by three-cipher cascades
    expect(openWithOtherChain(raw, otherKey)?.chain ?? null).toEqual(c.length === 3 ? null : c);
  });

  it('needs the CRCs as well as the magic, and leaves AES to the AES path', () => {
    const key = randomBytes(192);
    const damaged = encryptedHeader(['serpent'], key);
    damaged[300]! ^= 1; // a ciphertext bit of the key area: its plaintext no longer matches its CRC
    expect(openWithOtherChain(damaged, key)).toBe(null);
    expect(openWithOtherChain(encryptedHeader(['aes'], key), key)).toBe(null);
    expect(openWithOtherChain(encryptedHeader(['twofish'], key, 'TRUE'), key)?.chain).toEqual(['twofish']);
  });

  async function unlockHidden(raw: Buffer, password: string, pim?: number): Promise<unknown> {
    const dir = mkdtempSync(path.join(tmpdir(), 'vault-unit-cipher-'));
    const file = path.join(dir, 'c.vc');
    const body = randomBytes(5 * 65536);
    raw.copy(body, 65536); // the hidden-volume header position, so only that header is tried
    writeFileSync(file, body);
    const c = openContainer(file, true);
    try {
      const secret = { passphrase: Buffer.from(password), keyfiles: [] };
      return await unlockVolume(veracryptAdapter, c, secret, { readOnly: true, hidden: true, ...(pim ? { pim } : {}) }).then(
        (v) => {
          const r = { cipher: v.cipher, keyLength: v.key.length, info: v.info?.json };
          v.key.dispose();
          return r;
        },
        (e: unknown) => e,
      );
    } finally {
      closeContainer(c);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  // A hidden volume's header whose geometry fits the 5 x 64 KiB file.
  const small = (p: Buffer) => {
    p.writeBigUInt64BE(65536n, 92);
    p.writeBigUInt64BE(65536n, 100);
    p.writeBigUInt64BE(131072n, 108);
    p.writeBigUInt64BE(65536n, 116);
  };

  it('a Camellia-encrypted TrueCrypt header opens with the right password, with a 64-byte Camellia key', async () => {
    const password = 'camellia pw';
    const salt = randomBytes(64);
    const key = pbkdf2Sync(password, salt, 1000, 64, 'sha512'); // TrueCrypt's count: cheap
    const raw = encryptedHeader(['camellia'], key, 'TRUE', small);
    salt.copy(raw);
    expect(await unlockHidden(raw, password)).toMatchObject({ cipher: ['camellia'], keyLength: 64, info: { cipher: 'camellia-xts', algorithm: 'Camellia' } });
  }, 120_000);

  it("a Serpent-Twofish-AES header (PBKDF2-SHA-512, PIM 1) opens through the adapter's 192-byte pass", async () => {
    const password = 'cascade pw';
    const salt = randomBytes(64);
    const key = pbkdf2Sync(password, salt, pbkdf2Iterations(1), 192, 'sha512');
    const raw = encryptedHeader(['aes', 'twofish', 'serpent'], key, 'VERA', small);
    salt.copy(raw);
    expect(await unlockHidden(raw, password, 1)).toMatchObject({
      cipher: ['aes', 'twofish', 'serpent'],
      keyLength: 192,
      info: { cipher: 'aes-twofish-serpent-xts', algorithm: 'Serpent-Twofish-AES' },
    });
    expect(await unlockHidden(raw, 'wrong pw', 1)).toMatchObject({ code: 'wrong-password' });
  }, 120_000);
});

