import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { createKeyslot } from '../../src/crypto/keyslot.js';
import { generateMasterKey } from '../../src/crypto/master-key.js';
import { FORMAT_VERSION, OFF, SLOT_OFF, KEYSLOT_SIZE } from '../../src/format/constants.js';
import { containerFileSize, geometryForSize } from '../../src/format/layout.js';
import { newHeader, readHeaderCopies, unlockContainer, writeHeaderUpdate, writeInitialHeaders } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { VaultError } from '../../src/errors.js';
import { fixChecksum } from '../support/headers.js';

const KDF = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
const pw = (s: string) => buildKdfInput(Buffer.from(s));
let dir: string;
beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'vault-container-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function makeContainer(name: string, passwords: string[] = ['pw0']) {
  const file = path.join(dir, name);
  const mk = generateMasterKey();
  const header = newHeader(geometryForSize(2 << 20, 4096));
  for (const [i, p] of passwords.entries()) header.keyslots[i] = await createKeyslot(pw(p), mk, header.uuid, i, KDF);
  const fd = openSync(file, 'w+');
  writeSync(fd, Buffer.alloc(1), 0, 1, containerFileSize(header) - 1);
  writeInitialHeaders(fd, header, mk);
  closeSync(fd);
  return { file, mk, header };
}

async function unlockError(file: string, password: string): Promise<VaultError> {
  const c = openContainer(file, true);
  try {
    await unlockContainer(c, pw(password));
  } catch (e) {
    return e as VaultError;
  } finally {
    closeContainer(c);
  }
  throw new Error('unlocked unexpectedly');
}

function patch(file: string, offset: number, f: (b: Buffer) => void, checksum = true) {
  const b = readFileSync(file);
  const copy = b.subarray(offset, offset + 4096);
  f(copy);
  if (checksum) fixChecksum(copy);
  writeFileSync(file, b);
}

describe('container unlock', () => {
  it('opens every committed fixture of every format version (spec §11: old versions keep opening)', async () => {
    const PASSPHRASES: Record<string, string> = {
      'v1/v1-4096.vol': 'vault fixture v1',
      'v1/v1-512.vol': 'vault fixture v1 (512)',
      'v1/v1-reencrypt.vol': 'vault fixture v1 reencrypt',
      'v1/v1-tokens.vol': 'vault fixture v1 tokens',
    };
    const root = new URL('../fixtures/', import.meta.url).pathname;
    const versions = readdirSync(root).filter((d) => /^v\d+$/.test(d));
    for (let v = 1; v <= FORMAT_VERSION; v++) expect(versions, `no fixture of format version ${v}`).toContain(`v${v}`);
    const files = versions.flatMap((d) => readdirSync(path.join(root, d)).filter((f) => f.endsWith('.vol')).map((f) => `${d}/${f}`));
    expect(files.sort()).toEqual(Object.keys(PASSPHRASES).sort()); // a new fixture needs its passphrase here
    for (const f of files) {
      const c = openContainer(path.join(root, f), true);
      try {
        // allowReencrypt: the re-encryption fixture is flagged; unlocking it reads and writes nothing
        const r = await unlockContainer(c, pw(PASSPHRASES[f]!), undefined, true);
        expect(`v${r.header.version}`, f).toBe(f.split('/')[0]);
        expect(r.warnings, f).toEqual([]);
        expect(r.slot, f).toBe(0);
        r.masterKey.fill(0);
      } finally {
        closeContainer(c);
      }
    }
  });

  it('unlocks with each slot, reports wrong passwords, and picks the slot that matched', async () => {
    const { file, mk } = await makeContainer('slots.vol', ['alpha', 'beta']);
    const c = openContainer(file, true);
    const r = await unlockContainer(c, pw('beta'));
    expect(r.slot).toBe(1);
    expect(Buffer.from(r.masterKey).equals(mk)).toBe(true);
    closeContainer(c);
    expect((await unlockError(file, 'gamma')).code).toBe('wrong-password');
  });

  it('falls back to the secondary copy when the primary is damaged, with a warning', async () => {
    const { file } = await makeContainer('damaged.vol');
    patch(file, 0, (b) => (b[OFF.sectorSize] ^= 1), false);
    const c = openContainer(file, true);
    const r = await unlockContainer(c, pw('pw0'));
    expect(r.header.copy).toBe(1);
    expect(r.warnings.join()).toMatch(/primary header is damaged/);
    closeContainer(c);
  });

  it('refuses a primary tampered with (checksum recomputed) and uses the authentic secondary', async () => {
    const { file } = await makeContainer('tampered.vol');
    patch(file, 0, (b) => b.writeBigUInt64LE(99n, OFF.sequence)); // newer sequence: tried first
    const c = openContainer(file, true);
    const r = await unlockContainer(c, pw('pw0'));
    expect(r.header.copy).toBe(1);
    expect(r.warnings.join()).toMatch(/primary header failed authentication/);
    closeContainer(c);
  });

  it('a forged primary describing a larger container does not lock out the authentic secondary (fuzzer find)', async () => {
    // Found by test/fuzz: the geometry of the newest copy was trusted for the "truncated" check
    // before its MAC could be checked, so a checksum-fixed primary with a larger data size made an
    // intact container unopenable with the right passphrase.
    const { file } = await makeContainer('forged-size.vol');
    patch(file, 0, (b) => b.writeBigUInt64LE(b.readBigUInt64LE(OFF.dataSize) * 4n, OFF.dataSize));
    const c = openContainer(file, true);
    const r = await unlockContainer(c, pw('pw0'));
    expect(r.header.copy).toBe(1);
    expect(r.warnings.join()).toMatch(/primary header describes \d+ bytes, more than the file's/);
    closeContainer(c);
    // a file really cut short (no copy fits) is still reported as truncated
    const t = await makeContainer('cut.vol');
    const whole = readFileSync(t.file);
    writeFileSync(t.file, whole.subarray(0, whole.length - 8192));
    expect((await unlockError(t.file, 'pw0')).code).toBe('truncated');
  });

  it('says so when both copies are damaged, and points to header restore', async () => {
    const { file, header } = await makeContainer('both.vol');
    patch(file, 0, (b) => (b[100] ^= 1), false);
    patch(file, header.dataOffset + header.dataSize, (b) => (b[100] ^= 1), false);
    const e = await unlockError(file, 'pw0');
    expect(e.code).toBe('headers-damaged');
    expect(e.hint).toMatch(/header restore/);
  });

  it('never unlocks a slot moved to another index, or with its KDF parameters changed', async () => {
    const { file } = await makeContainer('swap.vol');
    const b = readFileSync(file);
    const sec = b.length - 4096;
    for (const off of [0, sec]) {
      const h = b.subarray(off, off + 4096);
      h.copy(h, OFF.keyslots + KEYSLOT_SIZE, OFF.keyslots, OFF.keyslots + KEYSLOT_SIZE); // slot 0 → slot 1
      h[OFF.keyslots] = 0; // and slot 0 emptied
      fixChecksum(h);
    }
    writeFileSync(file, b);
    expect((await unlockError(file, 'pw0')).code).toBe('wrong-password');

    const d = await makeContainer('downgrade.vol');
    for (const off of [0, readFileSync(d.file).length - 4096])
      patch(d.file, off, (h) => h.writeUInt32LE(2048, OFF.keyslots + SLOT_OFF.memoryKiB)); // 1024 → 2048 KiB
    expect((await unlockError(d.file, 'pw0')).code).toBe('wrong-password');
  });

  it('refuses files that are not containers with a clear error', async () => {
    const cases: [string, () => string, string][] = [
      ['missing', () => path.join(dir, 'nope.vol'), 'not-a-container'],
      ['directory', () => dir, 'not-a-container'],
      ['empty', () => { const f = path.join(dir, 'empty'); writeFileSync(f, ''); return f; }, 'not-a-container'],
      ['random', () => { const f = path.join(dir, 'rand'); writeFileSync(f, Buffer.alloc(3 << 20, 7)); return f; }, 'not-a-container'],
      ['/dev/zero', () => '/dev/zero', 'not-a-container'],
    ];
    for (const [name, mk, code] of cases) {
      let err: unknown;
      try {
        const c = openContainer(mk(), true);
        try { await unlockContainer(c, pw('x')); } finally { closeContainer(c); }
      } catch (e) { err = e; }
      expect((err as VaultError).code, name).toBe(code);
    }
  });
});

describe('header update (spec §6)', () => {
  it('writes sequence + 1 to both copies, stale copy first, and the new password works', async () => {
    const { file } = await makeContainer('update.vol', ['old']);
    const c = openContainer(file, false);
    const r = await unlockContainer(c, pw('old'));
    const next = { ...r.header, keyslots: [...r.header.keyslots] };
    next.keyslots[0] = await createKeyslot(pw('new'), r.masterKey, next.uuid, 0, KDF);
    writeHeaderUpdate(c, next, r.masterKey, r.header.copy);
    fsyncSync(c.fd);
    const copies = readHeaderCopies(c);
    expect(copies.primary.ok && copies.primary.header.sequence).toBe(2n);
    expect(copies.secondary.ok && copies.secondary.header.sequence).toBe(2n);
    closeContainer(c);
    expect((await unlockError(file, 'old')).code).toBe('wrong-password');
    const c2 = openContainer(file, true);
    expect((await unlockContainer(c2, pw('new'))).slot).toBe(0);
    closeContainer(c2);
  });
});
