/**
 * Issue 6, hostile and bad input: a matrix of cases, each asserting the documented exit code
 * (README "Exit codes"), one error line on stderr naming the problem (plus at most one `hint:`
 * line, nothing else), and the container byte-for-byte unchanged where there is one.
 *
 * The exhaustive per-field header coverage is the fuzzer's (test/unit/header-fuzz.test.ts); this
 * file drives the real binary with a representative set per field. Mount points are always under
 * this run's temp dir, never the shared default /media/vault.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, statSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { HEADER_SIZE, MAGIC, OFF, SLOT_OFF } from '../../src/format/constants.js';
import { fixChecksum } from '../support/headers.js';
import { FAST_KDF, e2eSuite, leftovers, ok, sha256File, vault, type VaultResult } from './harness.js';

const suite = e2eSuite('hostile-input');
const run = suite.run;
const PW = 'hostile input\n';

/**
 * The three assertions of every case. The container's hash is taken before the attempt runs and
 * compared after it (`container` null where there is no container file).
 */
function expectRefused(container: string | null, attempt: () => VaultResult, exit: number, problem: RegExp): void {
  const before = container ? sha256File(container) : '';
  const r = attempt();
  expect(r.status, r.stderr).toBe(exit);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines[0], r.stderr).toMatch(/^vault: (?!warning:)/);
  expect(lines[0]).toMatch(problem);
  // one line naming the problem, and at most a hint
  expect(lines.slice(1).every((l) => l.startsWith('hint: ')), r.stderr).toBe(true);
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
  if (container) expect(sha256File(container), 'the container changed').toBe(before);
  expect(leftovers()).toEqual([]);
}

function snapshot(file: string): { file: string; sha: string } {
  return { file, sha: sha256File(file) };
}

function create(name: string, args: string[], password: string | Buffer = PW): string {
  const file = path.join(suite.dir, name);
  ok(vault(['create', file, ...args, '--password-stdin', ...FAST_KDF], password), `create ${name}`);
  return file;
}

function emptyDir(name: string): string {
  const d = path.join(suite.dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A mount attempt on a mount point of our own (never the default /media/vault). */
function mount(file: string, extra: string[] = [], input: string | Buffer = PW): VaultResult {
  return vault(['mount', file, emptyDir(`mp-${randomBytes(3).toString('hex')}`), '--password-stdin', ...extra], input);
}

/** Edits both header copies in place (checksums recomputed unless `keepChecksum`). */
function patchBoth(file: string, edit: (b: Buffer, copy: 0 | 1) => void, keepChecksum = false): void {
  const all = readFileSync(file);
  for (const [copy, at] of [[0, 0], [1, all.length - HEADER_SIZE]] as const) {
    const b = all.subarray(at, at + HEADER_SIZE);
    edit(b, copy);
    if (!keepChecksum) fixChecksum(b);
  }
  writeFileSync(file, all);
}

describe.runIf(run)('hostile input: things that are not containers', () => {
  it('a missing file', () => {
    expectRefused(null, () => mount(path.join(suite.dir, 'missing.vol')), 5, /missing\.vol does not exist$/);
  });

  it('an empty file', () => {
    const f = path.join(suite.dir, 'empty.vol');
    writeFileSync(f, '');
    expectRefused(f, () => mount(f), 5, /too small to be a container \(0 bytes\)/);
  });

  it('a directory', () => {
    expectRefused(null, () => mount(emptyDir('a-dir')), 5, /a-dir is a directory, not a container/);
  });

  it('a FIFO: refused at once, never waiting for a writer', () => {
    const f = path.join(suite.dir, 'fifo.vol');
    expect(spawnSync('mkfifo', [f]).status).toBe(0);
    expectRefused(null, () => mount(f), 5, /fifo\.vol is not a regular file or block device/);
    expect(statSync(f).isFIFO()).toBe(true);
  });

  it('/dev/zero', () => {
    expectRefused(null, () => mount('/dev/zero'), 5, /\/dev\/zero is not a regular file or block device/);
  });

  it('random bytes', () => {
    const f = path.join(suite.dir, 'random.vol');
    writeFileSync(f, randomBytes(3 << 20));
    // Random bytes are what a VeraCrypt volume looks like (its headers carry no signature), so like
    // VeraCrypt itself vault can only say "wrong password, or not a volume it supports": exit 3,
    // after trying every derivation with every algorithm. At PIM 1 (16000 iterations, Argon2id
    // 64 MiB), not the default counts: those would cost about a minute of CPU (every PRF's
    // cascade blocks included), and the path is the same.
    expectRefused(f, () => mount(f, ['--pim', '1']), 3, /random\.vol opened with the password, PIM 1: a wrong password, PIM or keyfile, or it is not a VeraCrypt\/TrueCrypt volume/);
  });

  it('a file of the right size holding only the magic', () => {
    const real = create('sized.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    const f = path.join(suite.dir, 'magic-only.vol');
    const b = Buffer.alloc(statSync(real).size);
    MAGIC.copy(b, 0);
    MAGIC.copy(b, b.length - HEADER_SIZE);
    writeFileSync(f, b);
    expectRefused(f, () => mount(f), 5, /both headers of .*magic-only\.vol are damaged \(primary: primary header: format version 0 is invalid; secondary: secondary header: format version 0 is invalid\)/);
  });
});

describe.runIf(run)('hostile input: cut short', () => {
  it('a truncated header', () => {
    const f = create('cut-header.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    truncateSync(f, 4000);
    expectRefused(f, () => mount(f), 5, /too small to be a container \(4000 bytes\)/);
  });

  it('a truncated data area', () => {
    const f = create('cut-data.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    const size = statSync(f).size;
    truncateSync(f, size - 256 * 1024);
    expectRefused(f, () => mount(f), 5, new RegExp(`cut-data\\.vol is truncated: the header describes ${size} bytes, the file has ${size - 256 * 1024}`));
  });
});

/** Representative values per header field (spec §2, §3, §7): 0, maximum, off by one around each bound. */
const u16 = (o: number, v: number) => (b: Buffer) => b.writeUInt16LE(v, o);
const u32 = (o: number, v: number) => (b: Buffer) => b.writeUInt32LE(v, o);
const u64 = (o: number, v: bigint) => (b: Buffer) => b.writeBigUInt64LE(v, o);
const slot0 = (field: number) => OFF.keyslots + field;
const U64_MAX = (1n << 64n) - 1n;
const MIB = 1n << 20n;
const damaged = (what: string) => new RegExp(`both headers of .* are damaged \\(primary: primary header: ${what}; secondary: secondary header: ${what}\\)`);

const FIELD_CASES: [string, (b: Buffer) => void, number, RegExp][] = [
  ['magic 0', (b) => b.fill(0, OFF.magic, OFF.magic + 8), 5, /is not a container vault recognises: no vault, LUKS2 or LUKS1 signature/],
  ['version 0', u16(OFF.version, 0), 5, damaged('format version 0 is invalid')],
  ['version 2 (supported + 1)', u16(OFF.version, 2), 5, /primary header is format version 2; this vault reads version 1/],
  ['version 65535 (max)', u16(OFF.version, 0xffff), 5, /format version 65535; this vault reads version 1/],
  ['header_size 0', u16(OFF.headerSize, 0), 5, damaged('header size 0 is not 4096')],
  ['header_size 4095', u16(OFF.headerSize, 4095), 5, damaged('header size 4095 is not 4096')],
  ['header_size 4097', u16(OFF.headerSize, 4097), 5, damaged('header size 4097 is not 4096')],
  ['flags 4 (the first unknown bit)', u32(OFF.flags, 4), 5, /\(primary: primary header uses unknown feature flags 0x4; secondary: secondary header uses unknown feature flags 0x4\)/],
  ['flags 2 (tokens, §14) with an empty token area', u32(OFF.flags, 2), 5, damaged('the TOKENS flag is set but the token area is empty')],
  ['flags 1 (re-encryption, §13) with no re-encryption area', u32(OFF.flags, 1), 5, damaged('re-encryption: new sector size 0 is not one of 512, 4096')],
  ['flags 0xffffffff (max)', u32(OFF.flags, 0xffffffff), 5, /primary header uses unknown feature flags 0xffffffff/],
  ['sequence 0', u64(OFF.sequence, 0n), 5, damaged('sequence number is 0')],
  ['sequence 2^64-1 (max, well formed but not authentic)', u64(OFF.sequence, U64_MAX), 5, /header failed authentication: it was modified after it was written/],
  ['cipher 0', (b) => b.fill(0, OFF.cipher, OFF.cipher + 32), 5, damaged('cipher "" is not supported \\(allowed: aes-256-xts\\)')],
  ['cipher aes-128-xts', (b) => b.write('aes-128', OFF.cipher, 'latin1'), 5, damaged('cipher "aes-128-xts" is not supported \\(allowed: aes-256-xts\\)')],
  ['sector_size 0', u32(OFF.sectorSize, 0), 5, damaged('sector size 0 is not one of 512, 4096')],
  ['sector_size 511', u32(OFF.sectorSize, 511), 5, damaged('sector size 511 is not one of 512, 4096')],
  ['sector_size 4097', u32(OFF.sectorSize, 4097), 5, damaged('sector size 4097 is not one of 512, 4096')],
  ['sector_size 0xffffffff (max)', u32(OFF.sectorSize, 0xffffffff), 5, damaged('sector size 4294967295 is not one of 512, 4096')],
  ['sector_size 512 (valid, not authentic)', u32(OFF.sectorSize, 512), 5, /header failed authentication/],
  ['keyslot_count 0', u32(OFF.keyslotCount, 0), 5, damaged('keyslot count 0 is not 8')],
  ['keyslot_count 9', u32(OFF.keyslotCount, 9), 5, damaged('keyslot count 9 is not 8')],
  ['data_offset 0', u64(OFF.dataOffset, 0n), 5, damaged('data offset 0 is not a non-zero multiple of 1 MiB')],
  ['data_offset 1 MiB - 1', u64(OFF.dataOffset, MIB - 1n), 5, damaged('data offset 1048575 is not a non-zero multiple of 1 MiB')],
  ['data_offset 1 MiB + 1', u64(OFF.dataOffset, MIB + 1n), 5, damaged('data offset 1048577 is not a non-zero multiple of 1 MiB')],
  ['data_offset max', u64(OFF.dataOffset, U64_MAX), 5, damaged(`data offset ${U64_MAX} is not a non-zero multiple of 1 MiB`)],
  ['data_size 0', u64(OFF.dataSize, 0n), 5, damaged('data size 0 is not a non-zero multiple of the sector size 4096')],
  ['data_size sector + 1', u64(OFF.dataSize, 4097n), 5, damaged('data size 4097 is not a non-zero multiple of the sector size 4096')],
  ['data_size 2^53 (beyond the largest container)', u64(OFF.dataSize, 1n << 53n), 5, /exceeds the largest container/],
  ['data_size doubled (well formed, larger than the file)', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(OFF.dataSize) * 2n, OFF.dataSize), 5, /is truncated: the header describes \d+ bytes, the file has \d+/],
  ['copy 2', (b) => (b[OFF.copy] = 2), 5, /primary header: copy index 2 does not match its position \(expected 0\)/],
  ['reserved byte set', (b) => (b[OFF.reserved1 + 3] = 1), 5, damaged('reserved bytes are not zero')],
  ['keyslot state 2', (b) => (b[slot0(SLOT_OFF.state)] = 2), 5, damaged('keyslot 0 has an unknown state 2')],
  ['keyslot state 255 (max)', (b) => (b[slot0(SLOT_OFF.state)] = 255), 5, damaged('keyslot 0 has an unknown state 255')],
  ['keyslot kdf 0', (b) => (b[slot0(SLOT_OFF.kdf)] = 0), 5, damaged('keyslot 0 has an unknown KDF 0')],
  ['keyslot kdf 2', (b) => (b[slot0(SLOT_OFF.kdf)] = 2), 5, damaged('keyslot 0 has an unknown KDF 2')],
  ['keyslot reserved bytes', (b) => (b[slot0(SLOT_OFF.reserved2)] = 1), 5, damaged('keyslot 0 has non-zero reserved bytes')],
  ['KDF memory 0', u32(slot0(SLOT_OFF.memoryKiB), 0), 5, /keyslot 0: KDF memory \(KiB\) 0 is outside the allowed range 1024–4194304/],
  ['KDF memory 1023 (min - 1)', u32(slot0(SLOT_OFF.memoryKiB), 1023), 5, /KDF memory \(KiB\) 1023 is outside the allowed range/],
  ['KDF iterations 0', u32(slot0(SLOT_OFF.iterations), 0), 5, /KDF iterations 0 is outside the allowed range 1–64/],
  ['KDF parallelism 0', u32(slot0(SLOT_OFF.parallelism), 0), 5, /KDF parallelism 0 is outside the allowed range 1–16/],
  ['KDF memory 9216 KiB (in bounds, not what was sealed: the AAD fails)', u32(slot0(SLOT_OFF.memoryKiB), 9216), 3, /^vault: wrong passphrase or keyfile$/],
  ['the only active keyslot emptied', (b) => (b[slot0(SLOT_OFF.state)] = 0), 3, /the container has no active keyslot/],
  ['mac flipped', (b) => (b[OFF.mac + 5]! ^= 0x40), 5, /header failed authentication/],
];

/** Above the bounds: a derivation would take seconds (or fail), so a refusal this fast did not derive. */
const KDF_ABOVE: [string, (b: Buffer) => void, RegExp][] = [
  ['KDF memory 4194305 KiB (max + 1)', u32(slot0(SLOT_OFF.memoryKiB), 4194305), /KDF memory \(KiB\) 4194305 is outside the allowed range 1024–4194304/],
  ['KDF memory 0xffffffff KiB', u32(slot0(SLOT_OFF.memoryKiB), 0xffffffff), /KDF memory \(KiB\) 4294967295 is outside/],
  ['KDF iterations 65 (max + 1)', u32(slot0(SLOT_OFF.iterations), 65), /KDF iterations 65 is outside the allowed range 1–64/],
  ['KDF iterations 0xffffffff', u32(slot0(SLOT_OFF.iterations), 0xffffffff), /KDF iterations 4294967295 is outside/],
  ['KDF parallelism 17 (max + 1)', u32(slot0(SLOT_OFF.parallelism), 17), /KDF parallelism 17 is outside the allowed range 1–16/],
];

describe.runIf(run)('hostile input: header fields (both copies, checksums recomputed)', () => {
  let template = '';
  const fresh = (name: string) => {
    if (!template) template = create('template.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    const f = path.join(suite.dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.vol`);
    copyFileSync(template, f);
    return f;
  };

  for (const [name, edit, exit, problem] of FIELD_CASES) {
    it(name, () => {
      const f = fresh(name);
      patchBoth(f, edit);
      expectRefused(f, () => mount(f), exit, problem);
    });
  }

  it('a checksum that does not match (damage, not tampering)', () => {
    const f = fresh('checksum');
    patchBoth(f, (b) => (b[OFF.dataSize]! ^= 1), true);
    expectRefused(f, () => mount(f), 5, /\(primary: primary header is damaged \(checksum mismatch\); secondary: secondary header is damaged \(checksum mismatch\)\)/);
  });

  for (const [name, edit, problem] of KDF_ABOVE) {
    it(`${name}: refused before any derivation, fast`, () => {
      // The baseline: the same command refused for a cheap reason (node start-up, no derivation).
      const base = fresh(`${name}-baseline`);
      patchBoth(base, u32(OFF.flags, 2));
      const t0 = performance.now();
      expect(mount(base).status).toBe(5);
      const baselineMs = performance.now() - t0;
      const f = fresh(name);
      patchBoth(f, edit);
      let ms = 0;
      expectRefused(f, () => {
        const t1 = performance.now();
        const r = mount(f);
        ms = performance.now() - t1;
        return r;
      }, 5, problem);
      // A 4 GiB Argon2id pass alone takes several seconds here; allow scheduling noise only.
      expect(ms, `refusal took ${ms.toFixed(0)} ms (baseline ${baselineMs.toFixed(0)} ms)`).toBeLessThan(baselineMs + 1500);
    });
  }
});

/** Passphrases are bytes (spec §4.2): no normalisation, no C-string cut at NUL, no UTF-8 decoding. */
describe.runIf(run)('hostile input: passphrases', () => {
  const withNewline = (pw: Buffer) => Buffer.concat([pw, Buffer.from('\n')]);
  const unlock = (file: string, pw: Buffer) => vault(['info', file, '--dump-master-key', '--password-stdin'], withNewline(pw));

  const tenKiB = Buffer.from(Array.from({ length: 10 * 1024 }, (_, i) => 0x21 + (i * 7919) % 94));
  const ROUND_TRIPS: [string, Buffer, [string, Buffer][]][] = [
    ['a 10 KiB passphrase', tenKiB, [['its last byte changed', Buffer.concat([tenKiB.subarray(0, -1), Buffer.from('#')])], ['its first 10239 bytes', tenKiB.subarray(0, -1)]]],
    ['a passphrase with NUL bytes', Buffer.from('nul\0inside\0'), [['cut at the first NUL, as a C string would be', Buffer.from('nul')], ['a different byte after the NUL', Buffer.from('nul\0insidf\0')]]],
    ['a passphrase of non-UTF-8 bytes', Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0x41, 0xed, 0xa0, 0x80]), [['decoded and re-encoded as UTF-8 (lossy)', Buffer.from(Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0x41, 0xed, 0xa0, 0x80]).toString('utf8'))]]],
    ['an emoji passphrase', Buffer.from('🔐 clé 鍵 🗝️'), [['the same text in Unicode NFD', Buffer.from('🔐 clé 鍵 🗝️'.normalize('NFD'))], ['the key emoji without its variation selector', Buffer.from('🔐 clé 鍵 🗝')]]],
  ];

  for (const [name, pw, misses] of ROUND_TRIPS) {
    it(`${name} round-trips exactly, and near misses fail`, () => {
      const f = create(`pw-${name.replace(/[^a-z0-9]+/gi, '_')}.vol`, ['--size', '2M', '--fs', 'none', '--quick'], withNewline(pw));
      const before = snapshot(f);
      const good = ok(unlock(f, pw), `unlock with ${name}`);
      expect(good.stdout.trim()).toMatch(/^[0-9a-f]{128}$/);
      for (const [miss, bytes] of misses) {
        expect(bytes.equals(pw), miss).toBe(false);
        expectRefused(f, () => unlock(f, bytes), 3, /^vault: wrong passphrase or keyfile$/);
      }
      // and the volume itself opens with it: the real mount path, raw device only
      const m = ok(vault(['mount', f, '--no-filesystem', '--password-stdin'], withNewline(pw)));
      expect(m.stdout.trim()).toMatch(/^\/dev\/loop\d+$/);
      ok(vault(['dismount', f]));
      expect(sha256File(f)).toBe(before.sha);
    });
  }

  it('a wrong passphrase', () => {
    const f = create('pw-wrong.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    expectRefused(f, () => mount(f, [], 'not it\n'), 3, /^vault: wrong passphrase or keyfile$/);
  });

  it('exactly one trailing newline is stripped: a second one is part of the passphrase', () => {
    const f = create('pw-newline.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    expectRefused(f, () => mount(f, [], `${PW}\n`), 3, /^vault: wrong passphrase or keyfile$/);
  });

  it('an empty passphrase: refused by mount and by create', () => {
    const f = create('pw-empty.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    expectRefused(f, () => mount(f, [], '\n'), 2, /^vault: the passphrase is empty$/);
    const target = path.join(suite.dir, 'never-made.vol');
    expectRefused(null, () => vault(['create', target, '--size', '2M', '--fs', 'none', '--password-stdin', ...FAST_KDF], '\n'), 2, /^vault: the passphrase is empty$/);
    expect(existsSync(target)).toBe(false);
  });

  it('a passphrase longer than 64 KiB', () => {
    const f = create('pw-long.vol', ['--size', '2M', '--fs', 'none', '--quick']);
    expectRefused(f, () => mount(f, [], Buffer.alloc(70 * 1024, 0x61)), 2, /passphrase on standard input is longer than 65536 bytes/);
  });
});

describe.runIf(run)('hostile input: mount points, mounted containers, read-only containers', () => {
  let a = '';
  const volume = () => (a ||= create('mp-a.vol', ['--size', '32M', '--fs', 'ext4', '--quick']));

  it('a mount point that does not exist', () => {
    const f = volume();
    expectRefused(f, () => vault(['mount', f, path.join(suite.dir, 'no-such-dir'), '--password-stdin'], PW), 2, /mount point .*no-such-dir does not exist/);
  });

  it('a mount point that is not empty', () => {
    const f = volume();
    const d = emptyDir('not-empty');
    writeFileSync(path.join(d, 'x'), 'x');
    expectRefused(f, () => vault(['mount', f, d, '--password-stdin'], PW), 2, /mount point .*not-empty is not empty/);
  });

  it('a mount point that is a file', () => {
    const f = volume();
    const file = path.join(suite.dir, 'a-file');
    writeFileSync(file, 'x');
    expectRefused(f, () => vault(['mount', f, file, '--password-stdin'], PW), 2, /mount point .*a-file is not a directory/);
  });

  it('inside another vault volume; the container already mounted; a container that is a symlink into its own mount', () => {
    const f = volume();
    const b = create('mp-b.vol', ['--size', '32M', '--fs', 'ext4', '--quick']);
    const mpB = emptyDir('mp-b');
    // prepare B's contents: a directory to mount on, and a link back to B's own container
    ok(vault(['mount', b, mpB, '--password-stdin'], PW));
    mkdirSync(path.join(mpB, 'inner'));
    symlinkSync(b, path.join(mpB, 'self.vol'));
    ok(vault(['dismount', mpB]));
    // read-only from here on, so B's bytes cannot change while it is mounted
    ok(vault(['mount', b, mpB, '--read-only', '--password-stdin'], PW));
    try {
      const beforeA = snapshot(f);
      const beforeB = snapshot(b);
      const inside = vault(['mount', f, path.join(mpB, 'inner'), '--password-stdin'], PW);
      expect(inside.status, inside.stderr).toBe(2);
      expect(inside.stderr).toMatch(/^vault: mount point .*inner is inside the mounted vault volume .*mp-b\.vol$/m);
      expect(inside.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
      expect(sha256File(f)).toBe(beforeA.sha);
      for (const [what, target] of [['already mounted', b], ['symlink inside its own mount', path.join(mpB, 'self.vol')]] as const) {
        const again = vault(['mount', target, emptyDir(`again-${what.length}`), '--password-stdin'], PW);
        expect(again.status, `${what}: ${again.stderr}`).toBe(4);
        expect(again.stderr.trim().split('\n')[0]).toMatch(/^vault: .* is already mounted or in use by another vault process$/);
        expect(again.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
        expect(sha256File(b), what).toBe(beforeB.sha);
      }
    } finally {
      ok(vault(['dismount', mpB]));
    }
    expect(leftovers()).toEqual([]);
  });

  it('an immutable container (chattr +i; root ignores mode bits) without --read-only, then with it', () => {
    const f = volume();
    const before = snapshot(f);
    expect(spawnSync('chattr', ['+i', f]).status).toBe(0);
    try {
      expectRefused(f, () => mount(f), 6, /^vault: no permission to write .*mp-a\.vol$/);
      const mp = emptyDir('ro-ok');
      ok(vault(['mount', f, mp, '--read-only', '--password-stdin'], PW));
      ok(vault(['dismount', mp]));
    } finally {
      spawnSync('chattr', ['-i', f]);
    }
    expect(sha256File(f)).toBe(before.sha);
  });

  it('a container on a read-only bind mount without --read-only', () => {
    const f = volume();
    // Outside this suite's temp dir, so the bind mount itself is not taken for a leftover volume.
    const ro = mkdtempSync('/tmp/vault-w6f-ro-bind-');
    expect(spawnSync('mount', ['--bind', suite.dir, ro]).status).toBe(0);
    try {
      expect(spawnSync('mount', ['-o', 'remount,bind,ro', ro]).status).toBe(0);
      const viaRo = path.join(ro, path.basename(f));
      expectRefused(f, () => mount(viaRo), 6, /^vault: .*mp-a\.vol is on a read-only filesystem$/);
    } finally {
      spawnSync('umount', [ro]);
      rmdirSync(ro);
    }
  });
});

describe.runIf(run)('hostile input: a container on a full filesystem', () => {
  it('writes inside the volume fail with ENOSPC (the host is full); data written before and both headers survive', () => {
    const host = emptyDir('small-fs');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48M,mode=0700', 'tmpfs', host]).status).toBe(0);
    const mp = emptyDir('full-mp');
    try {
      // a sparse 128 MiB container on 48 MiB of space
      const f = path.join(host, 'full.vol');
      ok(vault(['create', f, '--size', '128M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], PW));
      ok(vault(['mount', f, mp, '--password-stdin'], PW));
      const early = randomBytes(4 << 20);
      writeFileSync(path.join(mp, 'early.bin'), early);
      expect(spawnSync('sync', ['-f', path.join(mp, 'early.bin')]).status).toBe(0);
      // direct I/O, so the failure reaches this writer rather than a later writeback
      const dd = spawnSync('dd', ['if=/dev/urandom', `of=${path.join(mp, 'big.bin')}`, 'bs=1M', 'count=100', 'oflag=direct'], { encoding: 'utf8' });
      expect(dd.status, dd.stderr).not.toBe(0);
      // The server answers a full host with ENOSPC, which the loop device passes on (native/fuse_io.c).
      expect(dd.stderr).toMatch(/No space left on device/);
      ok(vault(['dismount', mp, '--force']));
      // give the host filesystem room again, then check what was there before
      expect(spawnSync('mount', ['-o', 'remount,size=256M', host]).status).toBe(0);
      const info = JSON.parse(ok(vault(['info', f, '--json'])).stdout);
      expect(info.headers.primary).toMatch(/^valid, sequence 1$/);
      expect(info.headers.secondary).toMatch(/^valid, sequence 1$/);
      // read-write: the journal of a filesystem that saw write errors may need replaying
      ok(vault(['mount', f, mp, '--password-stdin'], PW));
      try {
        expect(readFileSync(path.join(mp, 'early.bin')).equals(early)).toBe(true);
      } finally {
        ok(vault(['dismount', mp]));
      }
    } finally {
      // a failed assertion above may leave the volume mounted on the tmpfs: dismount it first
      if (leftovers().length) vault(['dismount', mp, '--force']);
      spawnSync('umount', [host]);
    }
  });
});
