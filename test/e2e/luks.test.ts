/**
 * Issue 8, LUKS end to end: containers encrypted by the real cryptsetup (offline, in user space, no
 * dm-crypt needed) are mounted by the real vault binary; what vault reads is exactly the plaintext,
 * and what vault writes is exactly what `cryptsetup reencrypt --decrypt` then yields.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { declareIf, e2eSuite, expectClean, forEachTransport, leftovers, ok, sha256File, transportIndependent, vault } from './harness.js';
import { cryptsetup, FAST_PBKDF2, fastArgon2, mutateJson, plaintextImage, readJson } from '../support/luks.js';
import { referenceDmAesXts } from '../support/dm-crypt-reference.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import type { CipherChain } from '../../src/crypto/cipher-chain.js';
import { xtsDecrypt, xtsEncrypt } from '../../src/crypto/xts.js';

const suite = e2eSuite('luks');
const run = suite.run;
const MiB = 1024 * 1024;
const PW = 'luks passphrase'; // the keyslot's key file holds exactly these bytes, no newline

function keyFile(): string {
  const f = path.join(suite.dir, 'key');
  writeFileSync(f, PW);
  return f;
}

function readDevice(dev: string, length: number, offset = 0): Buffer {
  const b = Buffer.alloc(length);
  const fd = openSync(dev, 'r');
  try {
    readSync(fd, b, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return b;
}

function writeDevice(dev: string, data: Buffer, offset: number): void {
  const fd = openSync(dev, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function mountRaw(file: string, extra: string[] = []): string {
  return ok(vault(['mount', file, '--no-filesystem', '--password-stdin', ...extra], `${PW}\n`), `mount ${file}`).stdout.trim();
}

/**
 * cryptsetup 2.6 decrypts offline only with a detached header whose data starts at 0. For an
 * attached header the test carves the data area into its own file and gives cryptsetup a header
 * copy that says "offset 0": the ciphertext and its IVs (counted from the segment start) are the same.
 */
function decryptAttached(file: string, dataOffset: number): Buffer {
  const data = path.join(suite.dir, 'carved.img');
  const header = path.join(suite.dir, 'carved.hdr');
  writeFileSync(data, readFileSync(file).subarray(dataOffset));
  spawnSync('rm', ['-f', header]);
  cryptsetup(['luksHeaderBackup', file, '--header-backup-file', header]);
  mutateJson(header, (j) => (j.segments['0'].offset = '0'));
  cryptsetup(['reencrypt', '--decrypt', '--force-offline-reencrypt', '--header', header, '--key-file', keyFile(), data]);
  return readFileSync(data);
}

/** A 24 MiB file whose first 16 MiB are an ext4 filesystem holding before.bin (300 KiB of random bytes). */
function ext4Image(name: string): { file: string; content: Buffer } {
  const src = path.join(suite.dir, `${name}-tree`);
  mkdirSync(src);
  const content = randomBytes(300 * 1024);
  writeFileSync(path.join(src, 'before.bin'), content);
  const file = path.join(suite.dir, `${name}.img`);
  writeFileSync(file, Buffer.alloc(24 * MiB));
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', src, file, '16M'], { encoding: 'utf8' });
  expect(mk.status, mk.stderr).toBe(0);
  return { file, content };
}

/** Mounts `file`'s ext4, checks before.bin, writes after.bin (returned), dismounts. */
function mountAndAdd(file: string, name: string, content: Buffer): Buffer {
  const mp = path.join(suite.dir, `${name}-mp`);
  mkdirSync(mp);
  ok(vault(['mount', file, mp, '--password-stdin'], `${PW}\n`));
  expect(readFileSync(path.join(mp, 'before.bin')).equals(content)).toBe(true);
  const added = randomBytes(200 * 1024);
  writeFileSync(path.join(mp, 'after.bin'), added);
  ok(vault(['dismount', mp]));
  expectClean();
  return added;
}

/** cryptsetup decrypts the LUKS2 container; its ext4 holds after.bin = `added` and checks clean. */
function expectAddedInImage(file: string, dataOffset: number, name: string, added: Buffer): void {
  const plainImage = path.join(suite.dir, `${name}-plain.img`);
  writeFileSync(plainImage, decryptAttached(file, dataOffset));
  const out = path.join(suite.dir, `${name}-after.out`);
  const dump = spawnSync('debugfs', ['-R', `dump /after.bin ${out}`, plainImage], { encoding: 'utf8' });
  expect(dump.status, dump.stderr).toBe(0);
  expect(readFileSync(out).equals(added)).toBe(true);
  expect(spawnSync('e2fsck', ['-fn', plainImage]).status).toBe(0);
}

// The LUKS header and key handling do not depend on the transport: once; the data path both ways
// runs on every transport.
forEachTransport(suite, (t) => {
  const itOnce = declareIf(transportIndependent(t));
  describe.runIf(run)('LUKS containers made by cryptsetup', () => {
    it('attached header, 4096-byte sectors: vault reads the plaintext; what vault writes, cryptsetup decrypts', () => {
      const { file, plain } = plaintextImage(suite.dir, 'attached.img', 4 * MiB, 8 * MiB);
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--reduce-device-size', '4M', '--sector-size', '4096', ...FAST_PBKDF2, '--key-file', keyFile(), file]);
      const dev = mountRaw(file);
      expect(dev).toMatch(/^\/dev\/loop\d+$/);
      const list = JSON.parse(ok(vault(['list', '--json'])).stdout) as Array<{ container: string }>;
      expect(list.map((v) => v.container)).toEqual([file]);
      expect(readDevice(dev, 4 * MiB).equals(plain.subarray(0, 4 * MiB))).toBe(true);
      const written = randomBytes(3 * MiB);
      writeDevice(dev, written, 3 * MiB); // across the old plaintext's end
      ok(vault(['dismount', dev]));
      expectClean();
      const expected = Buffer.concat([plain.subarray(0, 3 * MiB), written]);
      expect(decryptAttached(file, 2 * MiB).equals(expected)).toBe(true);
    });

    itOnce('detached header (--header), 512-byte sectors, argon2id keyslot: both directions byte for byte', () => {
      const { file, plain } = plaintextImage(suite.dir, 'detached.img', 4 * MiB, 4 * MiB);
      const header = path.join(suite.dir, 'detached.hdr');
      spawnSync('rm', ['-f', header]);
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--header', header, '--sector-size', '512', ...fastArgon2('argon2id'), '--key-file', keyFile(), file]);
      // Without its header the data file is random bytes: as LUKS2 it is no container at all.
      expect(vault(['mount', file, '--no-filesystem', '--password-stdin', '--type', 'luks2'], `${PW}\n`).status).toBe(5);
      const dev = mountRaw(file, ['--header', header]);
      expect(readDevice(dev, 4 * MiB).equals(plain)).toBe(true);
      const written = randomBytes(MiB + 512);
      writeDevice(dev, written, 512 * 777);
      ok(vault(['dismount', dev]));
      expectClean();
      cryptsetup(['reencrypt', '--decrypt', '--force-offline-reencrypt', '--header', header, '--key-file', keyFile(), file]);
      const expected = Buffer.from(plain);
      written.copy(expected, 512 * 777);
      expect(readFileSync(file).equals(expected)).toBe(true);
    });

    itOnce('an ext4 filesystem inside LUKS2: files read back; a file vault writes is in the decrypted image', () => {
      const { file, content } = ext4Image('fs');
      cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--reduce-device-size', '8M', ...FAST_PBKDF2, '--key-file', keyFile(), file]);
      const added = mountAndAdd(file, 'fs', content);
      expectAddedInImage(file, 4 * MiB, 'fs', added);
    });

    itOnce('info shows keyslots without a password; --dump-master-key matches cryptsetup; wrong passphrase exits 3', () => {
      const file = path.join(suite.dir, 'info.img');
      writeFileSync(file, Buffer.alloc(20 * MiB));
      cryptsetup(['luksFormat', '--type', 'luks2', '--label', 'vault-e2e', ...FAST_PBKDF2, '--key-file', keyFile(), file]);
      const info = JSON.parse(ok(vault(['info', file, '--json'])).stdout) as { format: string; label: string; keyslots: Array<{ kdf: { type: string } }> };
      expect(info.format).toBe('luks2');
      expect(info.label).toBe('vault-e2e');
      expect(info.keyslots.map((k) => k.kdf.type)).toEqual(['pbkdf2']);
      const dump = cryptsetup(['luksDump', '--dump-volume-key', '--key-file', keyFile(), file]);
      const mk = /MK dump:\s*([0-9a-f\s]+)/.exec(dump)![1]!.replace(/\s+/g, '');
      expect(ok(vault(['info', file, '--dump-master-key', '--password-stdin'], `${PW}\n`)).stdout.trim()).toBe(mk);
      const before = sha256File(file);
      const r = vault(['mount', file, '--password-stdin'], 'not it\n');
      expect(r.status).toBe(3);
      expect(r.stderr).toMatch(/wrong passphrase or keyfile/);
      expect(leftovers()).toEqual([]);
      // Key management is vault's own; a LUKS header is never changed.
      const passwd = vault(['passwd', file, '--password-stdin'], `${PW}\nnew\n`);
      expect(passwd.status).toBe(5);
      expect(passwd.stderr).toMatch(/not a vault container \(it looks like LUKS2\)/);
      expect(sha256File(file)).toBe(before);
    });

    itOnce('a keyfile is the raw LUKS passphrase (its newline included); --slot opens an ignored keyslot', () => {
      const file = path.join(suite.dir, 'kf.img');
      writeFileSync(file, Buffer.alloc(20 * MiB));
      const kf = path.join(suite.dir, 'kf');
      writeFileSync(kf, 'line with newline\n');
      cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', kf, file]);
      const dev = ok(vault(['mount', file, '--no-filesystem', '--password-stdin', '--keyfile', kf], '\n')).stdout.trim();
      ok(vault(['dismount', dev]));
      expect(vault(['mount', file, '--no-filesystem', '--password-stdin'], 'line with newline\n').status).toBe(3);
      expect(leftovers()).toEqual([]);
      // A keyslot of priority "ignore" opens only when --slot names it.
      cryptsetup(['config', '--priority', 'ignore', '--key-slot', '0', file]);
      expect(vault(['mount', file, '--no-filesystem', '--password-stdin', '--keyfile', kf], '\n').status).toBe(3);
      const dev2 = ok(vault(['mount', file, '--no-filesystem', '--password-stdin', '--keyfile', kf, '--slot', '0'], '\n')).stdout.trim();
      ok(vault(['dismount', dev2]));
    });
  });
});

/** In place, whole 512-byte sectors from tweak 0, through vault's engine (test/unit/luks-ciphers.test.ts checks it against references). */
function xtsWith(cipher: CipherChain, key: Buffer, data: Buffer, decrypt: boolean): void {
  const k = KeyHandle.fromBytes(Buffer.from(key));
  try {
    (decrypt ? xtsDecrypt : xtsEncrypt)(k, data, { sectorSize: 512, firstTweak: 0n, cipher });
  } finally {
    k.dispose();
  }
}

describe.runIf(run)('LUKS ciphers beyond AES-XTS-512 through the volume server', () => {
  it('LUKS1 aes-cbc-essiv:sha256 (the old default) with ext4: files read back; what vault writes, cryptsetup decrypts', () => {
    const { file, content } = ext4Image('essiv');
    cryptsetup(['reencrypt', '--encrypt', '--force-offline-reencrypt', '--type', 'luks2', '--luks2-metadata-size', '16k', '--reduce-device-size', '8M', '--sector-size', '512', '--cipher', 'aes-cbc-essiv:sha256', '--key-size', '256', ...FAST_PBKDF2, '--key-file', keyFile(), file]);
    cryptsetup(['convert', '-q', '--type', 'luks1', file]);
    expect(readFileSync(file).readUInt16BE(6)).toBe(1);
    const info = JSON.parse(ok(vault(['info', file, '--json'])).stdout) as { format: string; cipher: string; keyBits: number };
    expect(info).toMatchObject({ format: 'luks1', cipher: 'aes-cbc-essiv:sha256', keyBits: 256 });
    const added = mountAndAdd(file, 'essiv', content);
    // cryptsetup decrypts offline from LUKS2 only: convert back, then decrypt the carved data area.
    cryptsetup(['convert', '-q', '--type', 'luks2', file]);
    expectAddedInImage(file, Number(readJson(file).segments['0'].offset), 'essiv', added);
  });

  it('LUKS1 aes-xts-plain past 2 TiB (a sparse file): opens with the IV warning; sector 2^32+1 is dm-crypt\'s ciphertext and shares sector 1\'s IV; resize does not grow it', () => {
    const file = path.join(suite.dir, 'plain-2t.img');
    writeFileSync(file, Buffer.alloc(4 * MiB));
    cryptsetup(['luksFormat', '-q', '--type', 'luks1', '--cipher', 'aes-xts-plain', '--key-size', '512', '--pbkdf-force-iterations', '1000', '--key-file', keyFile(), file]);
    const dump = cryptsetup(['luksDump', '--dump-volume-key', '--key-file', keyFile(), file]);
    const mk = Buffer.from(/MK dump:\s*([0-9a-f\s]+)/.exec(dump)![1]!.replace(/\s+/g, ''), 'hex');
    const dataOffset = Number(/Payload offset:\s*(\d+)/.exec(dump)![1]) * 512;
    expect(mk.length).toBe(64);
    const wrapAt = 2 ** 32 * 512; // IV sector 2^32: byte 2 TiB of the data area
    truncateSync(file, dataOffset + wrapAt + MiB);
    const r = ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], `${PW}\n`), 'mount past 2 TiB');
    expect(r.stderr).toMatch(/aes-xts-plain, whose 32-bit IV wraps at IV sector 2\^32.*sectors 2 TiB apart share an IV/);
    const dev = r.stdout.trim();
    const sector = randomBytes(512);
    writeDevice(dev, sector, 512); // sector 1
    writeDevice(dev, sector, wrapAt + 512); // sector 2^32 + 1
    expect(readDevice(dev, 512, wrapAt + 512).equals(sector)).toBe(true);
    ok(vault(['dismount', dev]));
    expectClean();
    const low = readDevice(file, 512, dataOffset + 512);
    const high = readDevice(file, 512, dataOffset + wrapAt + 512);
    // dm-crypt's rule, computed apart from vault: IV = LE32(2^32 + 1) = 1, OpenSSL's AES-XTS.
    const expected = Buffer.from(sector);
    referenceDmAesXts('plain', mk, expected, 512, 2n ** 32n + 1n, 1n, false);
    expect(high.equals(expected)).toBe(true);
    expect(low.equals(high)).toBe(true); // the same IV: equal plaintext, equal ciphertext
    const plain64 = Buffer.from(sector);
    referenceDmAesXts('plain64', mk, plain64, 512, 2n ** 32n + 1n, 1n, false);
    expect(high.equals(plain64)).toBe(false);
    // A resize never grows it further into repeated IVs; the container is left as it was.
    const size = statSync(file).size;
    const grow = vault(['resize', file, '--size', '+1M', '--password-stdin'], `${PW}\n`);
    expect(grow.status, grow.stderr).toBe(5);
    expect(grow.stderr).toMatch(/aes-xts-plain, whose 32-bit IV gives distinct IVs to at most 2199023255552 bytes/);
    expect(statSync(file).size).toBe(size);
    expect(readDevice(file, 512, dataOffset + wrapAt + 512).equals(high)).toBe(true);
  });

  it('LUKS2 serpent-xts-plain64 with ext4: vault mounts it read-write; the decrypted image holds the new file and checks clean', () => {
    // cryptsetup cannot run Serpent here (no AF_ALG): its AES container, transcoded (keyslot area
    // and an ext4 image put in under Serpent, the header's names changed), as the unit test does.
    const { file, content } = ext4Image('serpent');
    const plainFs = readFileSync(file).subarray(0, 16 * MiB);
    writeFileSync(file, Buffer.alloc(20 * MiB));
    cryptsetup(['luksFormat', '-q', '--type', 'luks2', '--luks2-metadata-size', '16k', '--luks2-keyslots-size', '1m', '--sector-size', '512', ...FAST_PBKDF2, '--key-file', keyFile(), file]);
    const dump = cryptsetup(['luksDump', '--dump-volume-key', '--key-file', keyFile(), file]);
    const volumeKey = Buffer.from(/MK dump:\s*([0-9a-f\s]+)/.exec(dump)![1]!.replace(/\s+/g, ''), 'hex');
    const j = readJson(file);
    const slot = j.keyslots['0'];
    const areaKey = pbkdf2Sync(PW, Buffer.from(slot.kdf.salt, 'base64'), slot.kdf.iterations, 64, slot.kdf.hash);
    const area = readDevice(file, 500 * 512, Number(slot.area.offset)); // 64 x 4000 AF bytes
    xtsWith(['aes'], areaKey, area, true);
    xtsWith(['serpent'], areaKey, area, false);
    writeDevice(file, area, Number(slot.area.offset));
    const dataOffset = Number(j.segments['0'].offset);
    const data = Buffer.from(plainFs);
    xtsWith(['serpent'], volumeKey, data, false);
    writeDevice(file, data, dataOffset);
    mutateJson(file, (m) => {
      m.segments['0'].encryption = 'serpent-xts-plain64';
      m.keyslots['0'].area.encryption = 'serpent-xts-plain64';
    });
    const added = mountAndAdd(file, 'serpent', content);
    const image = Buffer.from(readDevice(file, 16 * MiB, dataOffset));
    xtsWith(['serpent'], volumeKey, image, true);
    const plainImage = path.join(suite.dir, 'serpent-plain.img');
    writeFileSync(plainImage, image);
    const out = path.join(suite.dir, 'serpent-after.out');
    const dumped = spawnSync('debugfs', ['-R', `dump /after.bin ${out}`, plainImage], { encoding: 'utf8' });
    expect(dumped.status, dumped.stderr).toBe(0);
    expect(readFileSync(out).equals(added)).toBe(true);
    const fsck = spawnSync('e2fsck', ['-fn', plainImage], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout).toBe(0);
  });
});
