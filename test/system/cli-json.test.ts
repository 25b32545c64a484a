/**
 * The CLI's JSON output against its contract (CLI_ABI.md, spec/*.schema.json): the real CLI's
 * `info --json` on containers of every format (vault made by `vault create`, LUKS1 and LUKS2 made by
 * cryptsetup, real VeraCrypt volumes from ../shared/fixtures), `list --json` with nothing mounted,
 * and `benchmark --json`, each validated by ajv. `list --json` of a mounted volume is checked in
 * test/e2e/mount.test.ts, which has one mounted already. Needs no root; LUKS needs cryptsetup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, expectValid } from '../support/schemas.js';
import { commandExists } from '../support/requirements.js';
import { FAST_PBKDF2, cryptsetup, fastArgon2, keyFile } from '../support/luks.js';
import { TC_PASSWORD, tcryptImage } from '../support/tcrypt-images.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const FIXTURES = path.resolve(ROOT, '../shared/fixtures/veracrypt');
const FAST_KDF = ['--kdf-memory', '8', '--kdf-iterations', '1', '--kdf-parallelism', '1'];

let dir: string;

function vault(args: string[], input = '', env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  expect(r.status, `vault ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  dir = mkdtempSync(path.join(tmpdir(), 'vault-cli-json-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('info --json matches spec/info.schema.json', () => {
  it('a vault container with two keyslots', () => {
    const file = path.join(dir, 'c.vc');
    vault(['create', file, '--size', '16M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], 'pw');
    vault(['keyslot', 'add', file, '--password-stdin', ...FAST_KDF], 'pw\nother\n');
    const info = expectValid('info', vault(['info', file, '--json'])) as { format: string; keyslots: unknown[] };
    expect(info.format).toBe('vault');
    expect(info.keyslots).toEqual([
      { slot: 0, kdf: { type: 'argon2id', memoryKiB: 8192, iterations: 1, parallelism: 1 } },
      { slot: 1, kdf: { type: 'argon2id', memoryKiB: 8192, iterations: 1, parallelism: 1 } },
    ]);
  });

  it.runIf(commandExists('cryptsetup'))('LUKS2 with a PBKDF2 and an Argon2id keyslot, and LUKS1, made by cryptsetup', () => {
    const key = keyFile(dir, 'luks.key', 'luks key');
    const l2 = path.join(dir, 'l2.img');
    spawnSync('truncate', ['-s', '32M', l2]);
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', key, l2]);
    cryptsetup(['luksAddKey', ...fastArgon2('argon2id'), '--key-file', key, '--new-keyfile', key, l2]);
    const i2 = expectValid('info', vault(['info', l2, '--json'])) as { format: string; keyslots: Array<{ slot: number; kdf: { type: string } }> };
    expect(i2.format).toBe('luks2');
    expect(i2.keyslots.map((k) => [k.slot, k.kdf.type])).toEqual([[0, 'pbkdf2'], [1, 'argon2id']]);

    const l1 = path.join(dir, 'l1.img');
    spawnSync('truncate', ['-s', '8M', l1]);
    cryptsetup(['luksFormat', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '--key-file', key, l1]);
    const i1 = expectValid('info', vault(['info', l1, '--json'])) as { format: string; keyslots: Array<{ slot: number; kdf: { type: string } }> };
    expect(i1).toMatchObject({ format: 'luks1', keyslots: [{ slot: 0, kdf: { type: 'pbkdf2', iterations: 1000 } }] });
  });

  it.runIf(existsSync(FIXTURES))('real VeraCrypt volumes: normal and hidden (the password opens the metadata)', () => {
    const normal = expectValid('info', vault(['info', path.join(FIXTURES, 'vc_1-sha512-xts-aes'), '--json', '--password-stdin'], 'aaaaaaaaaaaa'));
    expect(normal).toMatchObject({ format: 'veracrypt', uuid: null, volumeType: 'normal', header: { copy: 'primary' }, kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 500000 } });
    const hidden = expectValid('info', vault(['info', path.join(FIXTURES, 'vc_1-sha512-xts-aes-hidden'), '--json', '--hidden', '--password-stdin'], 'bbbbbbbbbbbb'));
    expect(hidden).toMatchObject({ format: 'veracrypt', volumeType: 'hidden' });
  });

  it('VeraCrypt system encryption (--system, cryptsetup\'s image) and TrueCrypt 5.x Whirlpool', () => {
    const sys = expectValid('info', vault(['info', tcryptImage('sys_vc_1_mbr_part-sha256-xts-aes'), '--json', '--system', '--hash', 'sha256', '--password-stdin'], TC_PASSWORD));
    expect(sys).toMatchObject({ format: 'veracrypt', volumeType: 'system', kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 200000 } });
    const tc = expectValid('info', vault(['info', tcryptImage('tc_5-whirlpool-xts-aes'), '--json', '--type', 'truecrypt', '--password-stdin'], TC_PASSWORD));
    expect(tc).toMatchObject({ format: 'truecrypt', kdf: { type: 'pbkdf2', hash: 'whirlpool', iterations: 1000 } });
    const bad = spawnSync(process.execPath, [CLI, 'info', tcryptImage('tc_5-whirlpool-xts-aes'), '--json', '--hash', 'md5', '--password-stdin'], { input: TC_PASSWORD, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown VeraCrypt\/TrueCrypt header hash "md5"/);
  });

  it('TrueCrypt 4.x LRW (cryptsetup\'s image): info names the legacy chain and mode (mounting it: test/e2e/veracrypt.test.ts)', () => {
    const image = tcryptImage('tc_2-ripemd160-lrw-serpent-twofish-aes');
    const args = ['--type', 'truecrypt', '--hash', 'ripemd160', '--password-stdin'];
    const tc = expectValid('info', vault(['info', image, '--json', ...args], TC_PASSWORD));
    expect(tc).toMatchObject({ format: 'truecrypt', volumeType: 'normal', cipher: 'lrw-aes-twofish-serpent', algorithm: 'Serpent-Twofish-AES', mode: 'lrw', header: { version: 2, requiredProgramVersion: '4.10' } });
  });
});

describe('list --json and benchmark --json', () => {
  it('list --json with nothing mounted is an empty array', () => {
    const runDir = mkdtempSync(path.join(dir, 'run-'));
    expect(expectValid('list', vault(['list', '--json'], '', { VAULT_RUN_DIR: runDir }))).toEqual([]);
  });

  it('benchmark --json (one Argon2id row with --kdf-memory)', () => {
    const b = expectValid('benchmark', vault(['benchmark', '--json', '--kdf-memory', '8'])) as {
      argon2: Array<{ memoryMiB: number }>;
      veracrypt: Array<{ algorithm: string; libgcryptBytesPerSecond: number | null; libgcryptDecryptBytesPerSecond: number | null }>;
    };
    expect(b.argon2.map((a) => a.memoryMiB)).toEqual([8]);
    // libgcrypt's reference for every row but those with Kuznyechik (libgcrypt has none), each direction.
    for (const v of b.veracrypt) {
      const ref = !v.algorithm.includes('Kuznyechik');
      expect([v.algorithm, v.libgcryptBytesPerSecond === null, v.libgcryptDecryptBytesPerSecond === null]).toEqual([v.algorithm, !ref, !ref]);
    }
  });
});

describe('the schemas are strict', () => {
  const record = {
    id: '0123abcd', container: '/srv/c.vc', format: 'vault', uuid: null, mountpoint: '/mnt/c', fsType: 'ext4', loopDevice: '/dev/loop3',
    blockFile: '/run/vault/0123abcd/fuse/volume', fuseDir: '/run/vault/0123abcd/fuse', readOnly: false, allowDiscards: false, hiddenProtection: 'off', route: 'root', transport: 'classic',
    ownerUid: 0, serverPid: 42, mountedAt: '2026-01-02T03:04:05.678Z', policy: { dismountOn: ['lock'], idleSeconds: null }, state: 'mounted',
    ioErrors: { count: 2, eio: 0, enospc: 2, erofs: 0, other: 0, last: { op: 'write', errno: 'ENOSPC', offset: 1048576, at: '2026-01-02T03:04:06.000Z' } },
  };

  it('a well-formed record passes; an unknown field, a missing one, a wrong type or an unknown value fails', () => {
    expect(check('list', [record]).valid).toBe(true);
    expect(check('list', [{ ...record, serverStartTime: '123' }]).valid).toBe(false);
    const { state: _, ...stateless } = record;
    expect(check('list', [stateless]).valid).toBe(false);
    expect(check('list', [{ ...record, readOnly: 'no' }]).valid).toBe(false);
    expect(check('list', [{ ...record, allowDiscards: 'yes' }]).valid).toBe(false);
    expect(check('list', [{ ...record, hiddenProtection: true }]).valid).toBe(false);
    expect(check('list', [{ ...record, route: 'teleport' }]).valid).toBe(false);
    expect(check('list', [{ ...record, policy: { dismountOn: ['lunch'], idleSeconds: null } }]).valid).toBe(false);
    expect(check('list', [{ ...record, ioErrors: { ...record.ioErrors, last: null, count: 0, enospc: 0 } }]).valid).toBe(true);
    expect(check('list', [{ ...record, ioErrors: { ...record.ioErrors, last: { ...record.ioErrors.last, op: 'scribble' } } }]).valid).toBe(false);
  });

  it('info: a keyslot named "id" instead of "slot", or a KDF as a bare string, fails', () => {
    const info = {
      format: 'luks1', uuid: 'x', cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha256', dataOffset: 4096,
      keyslots: [{ slot: 0, kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 } }],
    };
    expect(check('info', info).valid).toBe(true);
    expect(check('info', { ...info, keyslots: [{ id: 0, kdf: { type: 'pbkdf2', hash: 'sha256', iterations: 1000 } }] }).valid).toBe(false);
    expect(check('info', { ...info, keyslots: [{ slot: 0, kdf: 'pbkdf2' }] }).valid).toBe(false);
  });
});
