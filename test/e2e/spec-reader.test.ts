/**
 * spec/format.md is complete enough to read a container with nothing else (issue 20): an
 * independent reader, test/support/spec-reader/vault_spec_reader.py, written from the spec alone
 * (Python with libcrypto and libargon2 through ctypes), must decrypt, byte for byte, what vault
 * serves as the volume's block device, and the committed fixtures of every released version.
 * Its open questions about the spec are in test/support/spec-reader/QUESTIONS.md.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES, fixturePlaintext } from '../fixtures/make-v1.js';
import { REENCRYPT_FIXTURE } from '../fixtures/make-reencrypt.js';
import { TOKENS_FIXTURE } from '../fixtures/make-tokens.js';
import { FAST_KDF, ROOT, e2eSuite, ok, vault } from './harness.js';

const READER = path.join(ROOT, 'test/support/spec-reader/vault_spec_reader.py');
/** The system's Python (the reader needs its standard library only); a pyenv shim on PATH costs ~1 s a run. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const FIXTURE_DIR = path.join(ROOT, 'test/fixtures/v1');
/** The reader's exit codes (FAILURES in spec_failures.py: spec §7's failure classes). */
const EXIT = { wrongPassphrase: 3, truncated: 10, notContainer: 11, version: 12, feature: 14, tampered: 16, noKeyslot: 17, refused: 18, headersDamaged: 21 };
const PW = 'spec reader test passphrase';
/** A passphrase shaped like a recovery key (§14.2): 64 modhex characters, still a passphrase. */
const MODHEX_PW = 'cbdefghijklnrtuv'.repeat(4);

interface ReaderResult {
  status: number;
  stderr: string;
  output: Buffer;
}

/** Runs the spec reader on `container` with `secret` on stdin; its output file's bytes. */
/** Where the reader's outputs go: never beside the committed fixtures. */
const OUT_DIR = mkdtempSync(path.join(tmpdir(), 'vault-spec-reader-'));
afterAll(() => rmSync(OUT_DIR, { recursive: true, force: true }));

function specRead(container: string, secret: string, args: string[] = []): ReaderResult {
  const out = path.join(OUT_DIR, `${path.basename(container)}.plain`);
  writeFileSync(out, '');
  const r = spawnSync(PYTHON, [READER, container, out, ...args], { input: secret, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stderr: r.stderr, output: readFileSync(out) };
}

function expectRead(r: ReaderResult, want: Buffer): void {
  expect(r.status, r.stderr).toBe(0);
  expect(r.output.length).toBe(want.length);
  const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  expect(hash(r.output), 'the spec reader decrypts what vault serves').toBe(hash(want));
}

function fixtureData(dataSize: number, sectorSize: number): Buffer {
  return Buffer.concat(Array.from({ length: dataSize / sectorSize }, (_, i) => fixturePlaintext(i, sectorSize)));
}

/** Flips one byte of the copy at `offset` (keyslot 7's area: checksum fails, nothing else moves). */
function damage(file: string, offset: number): void {
  const b = readFileSync(file);
  b[offset + 128 + 160 * 7 + 100] ^= 0xff;
  writeFileSync(file, b);
}

/** Changes the copy at `offset` and recomputes its checksum, as anyone without the key can (§5). */
function reseal(file: string, offset: number, change: (copy: Buffer) => void): void {
  const b = readFileSync(file);
  const copy = b.subarray(offset, offset + 4096);
  change(copy);
  createHash('sha256').update(copy.subarray(0, 4064)).digest().copy(copy, 4064);
  writeFileSync(file, b);
}
const newerSequence = (copy: Buffer) => copy.writeBigUInt64LE(7n, 16);

const suite = e2eSuite('spec-reader');

describe('spec reader on the committed fixtures', () => {
  it.runIf(suite.run)('decrypts every fixture of format version 1, with every kind of secret', () => {
    for (const f of FIXTURES) expectRead(specRead(path.join(FIXTURE_DIR, f.file), f.password), fixtureData(f.dataSize, f.sectorSize));
    const t = path.join(FIXTURE_DIR, TOKENS_FIXTURE.file);
    const want = fixtureData(TOKENS_FIXTURE.dataSize, 4096);
    expectRead(specRead(t, TOKENS_FIXTURE.password), want);
    expectRead(specRead(t, `${TOKENS_FIXTURE.recoveryKey}\n`), want);
    expectRead(specRead(t, TOKENS_FIXTURE.tpm2Secret, ['--raw-secret']), want);
    expectRead(specRead(t, TOKENS_FIXTURE.fido2Secret, ['--raw-secret']), want);
    // §14.5: a passphrase is never tried on a TPM2 or FIDO2 slot (their secrets are not typed), so
    // limited to one, it has no slot to be tried on (§7 `no-keyslot`).
    expect(specRead(t, TOKENS_FIXTURE.tpm2Secret, ['--slot', '2']).status).toBe(EXIT.noKeyslot);
    // A re-encryption stopped half-way is refused (§13.2), and read as it will be once finished (§13.5).
    const r = path.join(FIXTURE_DIR, REENCRYPT_FIXTURE.file);
    expect(specRead(r, REENCRYPT_FIXTURE.password).status).toBe(EXIT.feature);
    expectRead(specRead(r, REENCRYPT_FIXTURE.password, ['--reencrypt-view']), fixtureData(REENCRYPT_FIXTURE.dataSize, 4096));
  });

  it.runIf(suite.run)('tells the failure classes apart and falls back to the other copy', () => {
    const f = FIXTURES[0]!;
    const want = fixtureData(f.dataSize, f.sectorSize);
    const file = path.join(suite.dir, 'fixture.vol');
    const fresh = () => copyFileSync(path.join(FIXTURE_DIR, f.file), file);
    const secondary = (1 << 20) + f.dataSize;
    fresh();
    expect(specRead(file, 'not the passphrase').status).toBe(EXIT.wrongPassphrase);
    expect(specRead(file, '\n').status).toBe(EXIT.refused); // §4.2: an empty passphrase is refused
    damage(file, 0);
    const r = specRead(file, f.password);
    expectRead(r, want);
    expect(r.stderr).toMatch(/checksum-mismatch: primary copy: SHA-256 checksum mismatch/);
    damage(file, secondary);
    expect(specRead(file, f.password).status).toBe(EXIT.headersDamaged); // §6 "Reading": neither copy valid
    // A newer primary whose checksum was recomputed but whose MAC fails is tampered: not used.
    fresh();
    reseal(file, 0, newerSequence);
    const t = specRead(file, f.password);
    expectRead(t, want);
    expect(t.stderr).toMatch(/header-tampered: primary copy: header MAC mismatch/);
    reseal(file, secondary, newerSequence);
    expect(specRead(file, f.password).status).toBe(EXIT.tampered);
    // §6: bytes appended to the file: the secondary is also looked for where the primary puts it.
    fresh();
    appendFileSync(file, Buffer.alloc(4096, 0x5a));
    const a = specRead(file, f.password);
    expectRead(a, want);
    expect(a.stderr, 'the appended bytes are not a copy: the secondary is the one at X').not.toMatch(/warning/);
    // §3: a header without an active keyslot is reported as such, whatever the secret.
    fresh();
    for (const at of [0, secondary]) reseal(file, at, (copy) => (copy[128] = 0));
    expect(specRead(file, f.password).status).toBe(EXIT.noKeyslot);
    fresh();
    const b = readFileSync(file);
    b.writeUInt16LE(2, 8);
    b.writeUInt16LE(2, secondary + 8);
    writeFileSync(file, b);
    expect(specRead(file, f.password).status).toBe(EXIT.version);
    writeFileSync(file, Buffer.alloc(3 << 20, 7));
    expect(specRead(file, f.password).status).toBe(EXIT.notContainer);
    fresh();
    truncateSync(file, (1 << 20) + 4096); // the primary no longer fits the file
    expect(specRead(file, f.password).status).toBe(EXIT.truncated);
    truncateSync(file, 8191); // §6: too small to hold two copies
    expect(specRead(file, f.password).status).toBe(EXIT.notContainer);
  });
});

describe('spec reader on containers the CLI made', () => {
  /** Mounts `container` without a filesystem, writes a pattern, returns the whole block device. */
  function servedBytes(container: string, secret: string, extra: string[] = []): Buffer {
    const dev = ok(vault(['mount', container, '--no-filesystem', '--password-stdin', ...extra], secret)).stdout.trim();
    try {
      const pattern = path.join(suite.dir, 'pattern');
      writeFileSync(pattern, Buffer.concat(Array.from({ length: 64 }, (_, i) => createHash('sha512').update(`${container} ${i}`).digest())));
      for (const seek of ['0', '100', '517']) {
        const dd = spawnSync('dd', [`if=${pattern}`, `of=${dev}`, 'bs=4096', `seek=${seek}`, 'conv=notrunc,fsync', 'status=none']);
        expect(dd.status, dd.stderr.toString()).toBe(0);
      }
      return readFileSync(dev);
    } finally {
      ok(vault(['dismount', dev]));
    }
  }

  it.runIf(suite.run)('reads a quick (sparse) ext4 container and a full one with keyfiles and 512-byte sectors', () => {
    const quick = path.join(suite.dir, 'quick.vol');
    ok(vault(['create', quick, '--size', '8M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], MODHEX_PW));
    const servedQuick = servedBytes(quick, MODHEX_PW);
    const stored = readFileSync(quick).subarray(1 << 20, (1 << 20) + servedQuick.length);
    const holes = Array.from({ length: stored.length / 4096 }, (_, i) => stored.subarray(i * 4096, (i + 1) * 4096).every((x) => x === 0)).filter(Boolean).length;
    expect(holes, 'a quick container keeps unwritten sectors as holes (§8)').toBeGreaterThan(0);
    expectRead(specRead(quick, MODHEX_PW), servedQuick);
    // A token area the CLI wrote (§14): the recovery key it prints opens the recovery slot, and the
    // recovery-key-shaped passphrase still opens its own slot.
    const recoveryKey = ok(vault(['enroll', quick, '--recovery-key', '--password-stdin'], MODHEX_PW)).stdout.trim();
    const viaRecovery = specRead(quick, recoveryKey);
    expectRead(viaRecovery, servedQuick);
    expect(viaRecovery.stderr).toMatch(/sequence 2\), keyslot 1,/);
    const viaPassphrase = specRead(quick, MODHEX_PW);
    expectRead(viaPassphrase, servedQuick);
    expect(viaPassphrase.stderr).toMatch(/sequence 2\), keyslot 0,/);

    const full = path.join(suite.dir, 'full.vol');
    const k1 = path.join(suite.dir, 'k1');
    const k2 = path.join(suite.dir, 'k2');
    writeFileSync(k1, 'first keyfile');
    writeFileSync(k2, Buffer.alloc(1 << 20, 1));
    const keys = ['--keyfile', k1, '--keyfile', k2];
    ok(vault(['create', full, '--size', '4M', '--fs', 'none', '--no-quick', '--sector-size', '512', '--password-stdin', ...keys, ...FAST_KDF], PW));
    const servedFull = servedBytes(full, PW, keys);
    // §4.2: keyfiles in any order, and none missing.
    expectRead(specRead(full, PW, ['--keyfile', k2, '--keyfile', k1]), servedFull);
    expect(specRead(full, PW, ['--keyfile', k1]).status).toBe(EXIT.wrongPassphrase);
    // A header update (a new passphrase, sequence 2 in both copies) reads the same data.
    ok(vault(['passwd', full, '--password-stdin', ...keys, ...FAST_KDF], `${PW}\nnew ${PW}\n`));
    expectRead(specRead(full, `new ${PW}`), servedFull);
    expect(specRead(full, PW, keys).status).toBe(EXIT.wrongPassphrase);
  });
});
