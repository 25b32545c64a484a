/**
 * Issue 18: VeraCrypt volumes vault makes with every one of VeraCrypt's encryption algorithms and
 * header PRFs. The independent reader (test/support/vc_reader.py: hashlib, `cryptography`,
 * libgcrypt through ctypes, a Kuznyechik from RFC 7801; no vault code) checks its own Kuznyechik
 * against RFC 7801 and its XTS against OpenSSL, is then proven on real VeraCrypt and TrueCrypt
 * volumes that use these ciphers (cryptsetup's images, test/fixtures/tcrypt), and then reads
 * vault's volumes: the algorithm it finds, the header, and the data area decrypted to the zeros
 * vault encrypted. vault's own reader reopens them too. (Through the CLI, with filesystems, mounts
 * and a hidden volume: test/e2e/veracrypt-create.test.ts.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ALGORITHM_NAMES, parseAlgorithm } from '../../src/formats/veracrypt/cipher-chains.js';
import { creationKdf } from '../../src/formats/veracrypt/create-kdf.js';
import { veraCryptChoice } from '../../src/cli/commands/create-veracrypt-options.js';
import type { Prf } from '../../src/formats/veracrypt/prf.js';
import { fatSerial, readerSelfTest, readVeraCryptMany, type ReadOptions } from '../support/vc-reader.js';
import { TC_HIDDEN_PASSWORD, TC_PASSWORD, tcryptImage } from '../support/tcrypt-images.js';
import { makeVeraCrypt, vaultOpens } from '../support/veracrypt-new.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vault-vc-ciphers-'));
const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const cli = (args: string[], input: string) => spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the independent reader', () => {
  it('passes its own checks: Kuznyechik as RFC 7801 section 5 gives it (S, R, L, key schedule, block), its XTS as OpenSSL computes it', () => {
    expect(readerSelfTest()).toEqual({ ok: true, failed: [] });
  });

  it('names the algorithm and decrypts the filesystem (DEAD-BABE, hidden CAFE-BABE) of real volumes with each cipher, cascades and Whirlpool/Streebog', () => {
    // [image, what the reader is told, the algorithm VeraCrypt would name, the FAT serial inside].
    // TrueCrypt 7 images (TrueCrypt's cheap counts) cover Serpent, Twofish and the older cascades;
    // VeraCrypt's cover Camellia, Kuznyechik and the PRFs hashlib lacks (Python's PBKDF2 at
    // VeraCrypt's 500000 iterations: 1 to 3 s each).
    const tc = { truecrypt: true, prf: 'sha512', password: TC_PASSWORD } as const;
    const vc = { prf: 'sha512', password: TC_PASSWORD } as const;
    const cases: Array<[string, Omit<ReadOptions, 'dump'>, string, string]> = [
      ['tc_5-sha512-xts-serpent', tc, 'Serpent', 'DEAD-BABE'],
      ['tc_5-sha512-xts-twofish', tc, 'Twofish', 'DEAD-BABE'],
      ['tc_5-sha512-xts-twofish-serpent', tc, 'Twofish-Serpent', 'DEAD-BABE'],
      ['tc_5-sha512-xts-serpent-aes', tc, 'Serpent-AES', 'DEAD-BABE'],
      ['tc_5-sha512-xts-aes-twofish', tc, 'AES-Twofish', 'DEAD-BABE'],
      ['tc_5-sha512-xts-aes-twofish-serpent', tc, 'AES-Twofish-Serpent', 'DEAD-BABE'],
      ['tc_5-sha512-xts-serpent-twofish-aes-hidden', { ...tc, password: TC_HIDDEN_PASSWORD, hidden: true }, 'Serpent-Twofish-AES', 'CAFE-BABE'],
      // cryptsetup names the Kuznyechik images in encryption order (test/fixtures/tcrypt/README.md).
      ['vc_1-sha512-xts-camellia-serpent-kuznyechik', vc, 'Kuznyechik-Serpent-Camellia', 'DEAD-BABE'],
      ['vc_1-sha512-xts-kuznyechik', vc, 'Kuznyechik', 'DEAD-BABE'],
      ['vc_1-stribog512-xts-camellia', { ...vc, prf: 'streebog' }, 'Camellia', 'DEAD-BABE'],
      ['vc_1-whirlpool-xts-aes', { ...vc, prf: 'whirlpool' }, 'AES', 'DEAD-BABE'],
    ];
    const dump = (i: number) => path.join(dir, `fx-${i}`);
    const readings = readVeraCryptMany([
      ...cases.map(([image, o], i) => ({ file: tcryptImage(image), ...o, dump: dump(i), dumpLength: 512 })),
      { file: tcryptImage('tc_5-sha512-xts-serpent-twofish-aes-hidden'), ...tc, password: 'not it' },
    ]);
    for (const [i, [image, , algorithm, serial]] of cases.entries()) {
      expect(readings[i], image).toMatchObject({ ok: true, cipher: algorithm, version: 5, unusedKeyAreaZero: true, reservedZero: true });
      expect(fatSerial(readFileSync(dump(i))), image).toBe(serial);
    }
    expect(readings.at(-1)).toMatchObject({ ok: false, cipher: null }); // every algorithm tried, none checks
  }, 120_000);
});

describe('volumes vault makes with every VeraCrypt algorithm', () => {
  it('the reader finds each algorithm by trying them all, the header is as VeraCrypt writes it, the data area decrypts to zeros; vault reopens each', async () => {
    // The PRFs in turn, so that each is written under single ciphers and cascades (PIM 1: 16000
    // iterations, Argon2id 64 MiB).
    const prfs: Prf[] = ['sha512', 'whirlpool', 'sha256', 'blake2s', 'streebog', 'argon2id'];
    const size = 256 * 1024 + 32 * 1024; // the smallest: 32 KiB of data
    const made: Array<{ name: string; prf: Prf; file: string }> = [];
    for (const [i, name] of ALGORITHM_NAMES.entries()) {
      const prf = prfs[i % prfs.length]!;
      const file = await makeVeraCrypt(dir, `${name}.vc`, { size, hash: prf, pim: 1, quick: false, password: Buffer.from(`pw ${name}`), chain: parseAlgorithm(name) });
      made.push({ name, prf, file });
    }
    const readings = readVeraCryptMany(made.map((m) => ({ file: m.file, prf: m.prf as ReadOptions['prf'], pim: 1, password: `pw ${m.name}`, dump: `${m.file}.dec` })));
    for (const [i, m] of made.entries()) {
      expect(readings[i], m.name).toMatchObject({
        ok: true, cipher: m.name, magic: 'VERA', version: 5, requiredProgramVersion: 0x010b, reservedTimesZero: true, reservedZero: true,
        unusedKeyAreaZero: true, hiddenVolumeSize: 0, volumeSize: 32 * 1024, encryptedAreaStart: 131072, flags: 0, sectorSize: 512,
      });
      expect(readFileSync(`${m.file}.dec`).equals(Buffer.alloc(32 * 1024)), m.name).toBe(true);
      const v = await vaultOpens(m.file, `pw ${m.name}`, { pim: 1, hash: m.prf });
      expect(v.info?.json, m.name).toMatchObject({ algorithm: m.name, dataOffset: 131072, dataSize: 32 * 1024 });
    }
  }, 120_000);
});

describe('--cipher and --hash', () => {
  it('through the CLI, each in a fresh process: a Whirlpool Twofish-Serpent volume is made and reopened; an unknown name is exit 2 with the list', () => {
    // A fresh process derives the Whirlpool key (libgcrypt) before it keys Twofish (libgcrypt):
    // the order that once left Twofish without secure memory (native/cipher_engine.c gcry_init).
    const file = path.join(dir, 'cli.vc');
    const made = cli(['create', '--type', 'veracrypt', file, '--size', '288K', '--fs', 'none', '--quick', '--cipher', 'twofish-SERPENT', '--hash', 'whirlpool', '--pim', '1', '--password-stdin'], 'cli pw\n');
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/\(VeraCrypt, Twofish-Serpent \(XTS\), PBKDF2-HMAC-Whirlpool, PIM 1, no filesystem\)/);
    const info = cli(['info', file, '--pim', '1', '--hash', 'whirlpool', '--json', '--password-stdin'], 'cli pw\n');
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ algorithm: 'Twofish-Serpent', cipher: 'serpent-twofish-xts', kdf: { hash: 'whirlpool', iterations: 16000 } });
    expect(readVeraCryptMany([{ file, prf: 'whirlpool', pim: 1, password: 'cli pw' }])[0]).toMatchObject({ ok: true, cipher: 'Twofish-Serpent' });
    const bad = cli(['create', '--type', 'veracrypt', path.join(dir, 'bad.vc'), '--size', '288K', '--fs', 'none', '--cipher', 'blowfish', '--password-stdin'], 'cli pw\n');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`unknown VeraCrypt encryption algorithm "blowfish"\nhint: use one of ${ALGORITHM_NAMES.join(', ')}`);
  }, 60_000);

  it("take VeraCrypt's names in any case; the issue's serpent-twofish-aes encrypts with AES first", () => {
    for (const name of ALGORITHM_NAMES) {
      expect(parseAlgorithm(name.toLowerCase())).toEqual(parseAlgorithm(name.toUpperCase()));
    }
    expect(ALGORITHM_NAMES).toHaveLength(15);
    expect(parseAlgorithm('serpent-twofish-aes')).toEqual(['aes', 'twofish', 'serpent']);
    expect(parseAlgorithm('Kuznyechik-Serpent-Camellia')).toEqual(['camellia', 'serpent', 'kuznyechik']);
    expect(parseAlgorithm('aes')).toEqual(['aes']);
    for (const hash of ['sha512', 'whirlpool', 'sha256', 'blake2s', 'streebog', 'argon2id']) expect(() => creationKdf(hash, 0)).not.toThrow();
  });

  it('refuse an unknown algorithm (exit 2), listing the valid names, vault\'s own encryption-order spelling included', () => {
    const cli = (cipher: string) => veraCryptChoice({ type: 'veracrypt', cipher, sectorSize: '4096' }, ['ext4', 'vfat']);
    for (const bad of ['twofish-aes', 'aes-twofish-serpent-xts', 'gost89', 'blowfish'])
      expect(() => cli(bad)).toThrow(expect.objectContaining({ code: 'usage', message: `unknown VeraCrypt encryption algorithm "${bad}"`, hint: expect.stringContaining(ALGORITHM_NAMES.join(', ')) }));
    expect(cli('Camellia-Kuznyechik')).toMatchObject({ cipher: ['kuznyechik', 'camellia'] });
  });

  it('a Serpent-Twofish-AES volume under Whirlpool opens without --hash: its cascade blocks are derived after the first pass, for every PRF', () => {
    // PIM 1 (16000 iterations) keeps it cheap; the second pass is the same at any count
    // (derivationPlan, test/unit/veracrypt-kdf.test.ts). Through the CLI, as a user would.
    const file = path.join(dir, 'sta-whirlpool.vc');
    const made = cli(['create', '--type', 'veracrypt', file, '--size', '288K', '--fs', 'none', '--quick', '--cipher', 'serpent-twofish-aes', '--hash', 'whirlpool', '--pim', '1', '--password-stdin'], 'sta pw\n');
    expect(made.status, made.stderr).toBe(0);
    expect(made.stderr).not.toMatch(/--hash/); // no advice to name the PRF any more
    const info = cli(['info', file, '--pim', '1', '--json', '--password-stdin'], 'sta pw\n');
    expect(info.status, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ algorithm: 'Serpent-Twofish-AES', cipher: 'aes-twofish-serpent-xts', kdf: { hash: 'whirlpool', iterations: 16000 } });
  }, 60_000);
});
