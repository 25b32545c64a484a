/**
 * The LUKS2 metadata writer (src/formats/luks2/write.ts), with the installed cryptsetup as the
 * oracle: a fixed segment's size rewritten in both copies reads back in vault and cryptsetup
 * (seqid one up, no repair needed), with every other byte of the header as it was and checksums
 * computed here independently; each refusal writes nothing; a write cut after the primary copy, or
 * inside it, opens with the new or the old size in both.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { readLuks2Copies, readLuks2Header } from '../../src/formats/luks2/read.js';
import { prepareSegmentResize, resizableSegment, writeHeaderCopy, writeSegmentSize, type SegmentResize } from '../../src/formats/luks2/write.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { copyOffsets, cryptsetup, expectVaultError, FAST_PBKDF2, keyFile, mutateJson, patch, readJson, secretOf, unlockFile, workDir, type Json } from '../support/luks.js';

const MiB = 1024 * 1024;
const KEY = Buffer.from('write key');
let dir = '';
let key = '';
let base = '';

beforeAll(() => {
  dir = workDir('luks2-write');
  key = keyFile(dir, 'key', KEY);
  base = path.join(dir, 'base.img');
  writeFileSync(base, '');
  truncateSync(base, 4 * MiB);
  // A small keyslots area puts the data at 1 MiB: small files keep the test fast.
  cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--luks2-keyslots-size', '512k', '--key-file', key, base]);
  // A fixed segment of 1 MiB at 1 MiB (the file runs on for 2 MiB more), and a token that has a
  // "size" member of the same value and text outside ASCII: only the segment's size may change.
  mutateJson(base, (j) => {
    j.segments['0'].size = String(MiB);
    j.tokens['0'] = { type: 'x-vault-test', keyslots: [], size: String(MiB), note: 'größe ✓' };
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function copyOfBase(mutate?: (j: Json) => void): string {
  const f = path.join(dir, `case-${n++}.img`);
  copyFileSync(base, f);
  if (mutate) mutateJson(f, mutate);
  return f;
}

function prepare(file: string, size: number, write?: (c: ReturnType<typeof openContainer>, r: SegmentResize) => void): SegmentResize {
  const c = openContainer(file, false);
  try {
    const r = prepareSegmentResize(c, BigInt(size));
    write?.(c, r);
    return r;
  } finally {
    closeContainer(c);
  }
}

const header = (file: string) => {
  const c = openContainer(file, true);
  try {
    return readLuks2Header(c.fd, c.size, c.path);
  } finally {
    closeContainer(c);
  }
};

/** Both copies' raw bytes: binary header and JSON area. */
function rawCopies(file: string): Array<{ bin: Buffer; area: Buffer }> {
  const { hdrSize } = copyOffsets(file);
  const all = readFileSync(file).subarray(0, 2 * hdrSize);
  return [0, hdrSize].map((at) => ({ bin: Buffer.from(all.subarray(at, at + 4096)), area: Buffer.from(all.subarray(at + 4096, at + hdrSize)) }));
}

const areaText = (area: Buffer) => area.subarray(0, area.indexOf(0)).toString('utf8');

/** `cryptsetup luksDump --debug` of a throwaway copy (a load may repair what it reads). */
function dumpDebug(file: string): string {
  const copy = `${file}.dump`;
  copyFileSync(file, copy);
  try {
    const r = spawnSync('cryptsetup', ['luksDump', '--debug', copy], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  } finally {
    rmSync(copy);
  }
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('LUKS2 metadata writer', () => {
  it('rewrites only the fixed segment size in both copies: seqid one up, checksums right, cryptsetup and vault read it', async () => {
    const f = copyOfBase();
    const before = rawCopies(f);
    const oldSeqid = header(f).bin.seqid;
    const oldJson = readJson(f);
    const r = prepare(f, 2 * MiB, writeSegmentSize);
    expect(r.seqid).toBe(oldSeqid + 1n);

    const after = rawCopies(f);
    const expected = structuredClone(oldJson);
    expected.segments['0'].size = String(2 * MiB);
    for (const [i, copy] of after.entries()) {
      // The text is the old text with that one value replaced (the token's "size" stays), zero-padded.
      expect(areaText(copy.area)).toBe(areaText(before[i]!.area).replace(`"size":"${MiB}","iv_tweak"`, `"size":"${2 * MiB}","iv_tweak"`));
      expect(JSON.parse(areaText(copy.area))).toEqual(expected);
      expect(copy.area.subarray(copy.area.indexOf(0)).every((b) => b === 0)).toBe(true);
      // The binary header: only seqid (16..24) and the checksum (448..512) differ.
      expect(copy.bin.readBigUInt64BE(16)).toBe(oldSeqid + 1n);
      for (const [from, to] of [[0, 16], [24, 448], [512, 4096]] as const) expect(copy.bin.subarray(from, to)).toEqual(before[i]!.bin.subarray(from, to));
      // The checksum, computed here: sha256(binary header with csum zeroed || whole JSON area).
      const zeroed = Buffer.from(copy.bin).fill(0, 448, 512);
      expect(copy.bin.subarray(448, 480)).toEqual(createHash('sha256').update(zeroed).update(copy.area).digest());
      expect(copy.bin.subarray(480, 512).every((b) => b === 0)).toBe(true);
    }

    const h = header(f);
    expect(h.warnings).toEqual([]);
    expect(h.metadata.segments[0]!.size).toBe(BigInt(2 * MiB));
    const c = openContainer(f, true);
    const copies = readLuks2Copies(c.fd);
    closeContainer(c);
    expect(copies.primary.ok && copies.secondary.ok).toBe(true);

    const dump = dumpDebug(f);
    expect(dump).toContain(`length: ${2 * MiB} [bytes]`);
    expect(dump).toMatch(new RegExp(`Epoch:\\s+${oldSeqid + 1n}\\n`));
    expect(dump).not.toMatch(/requires recovery|checksum error/);
    cryptsetup(['open', '--test-passphrase', '--key-file', key, f]);
    const v = await unlockFile(luks2Adapter, f, secretOf('', [KEY]));
    v.key.dispose();
    expect(v.dataSize).toBe(2 * MiB);
  });

  it.each<[string, (j: Json) => void, ErrorCode, RegExp]>([
    ['two data segments', (j) => {
      j.segments['1'] = { ...j.segments['0'], offset: String(2 * MiB), size: 'dynamic' };
      j.digests['0'].segments.push('1');
    }, 'unsupported-feature', /2 segments; vault resizes a container with one data segment only/],
    ['a segment in reencryption', (j) => (j.segments['0'].flags = ['in-reencryption']), 'unsupported-feature', /segment has flags \("in-reencryption"\)/],
    ['an online-reencrypt requirement', (j) => (j.config.requirements = { mandatory: ['online-reencrypt-v2'] }), 'unsupported-feature', /requirements \("online-reencrypt-v2"\)/],
    ['a config flag vault does not know', (j) => (j.config.flags = ['allow-discards', 'frobnicate']), 'unsupported-feature', /config flags vault does not know \("frobnicate"\)/],
    ['a segment that is not "crypt"', (j) => (j.segments['0'].type = 'linear'), 'unsupported-feature', /type "linear"/],
    ['integrity protection', (j) => (j.segments['0'].integrity = { type: 'hmac(sha256)', journal_encryption: 'none', journal_integrity: 'none' }), 'unsupported-feature', /integrity protection/],
    // JSON of 12287 bytes fills the 12288-byte area with its NUL; the new size has one digit more.
    ['JSON that no longer fits its area', (j) => (j.tokens['0'].pad = 'x'.repeat(12287 - Buffer.byteLength(JSON.stringify(j)) - ',"pad":""'.length)), 'unsupported-feature', /takes 12288 bytes, more than its JSON area holds \(12287 and a NUL byte\)/],
  ])('refuses %s, writing nothing', async (_what, mutate, code, message) => {
    const f = copyOfBase(mutate);
    const before = sha(f);
    await expectVaultError(() => prepare(f, 10 * MiB, writeSegmentSize), code, message);
    expect(sha(f)).toBe(before);
  });

  it('refuses a damaged copy (it does not repair) and what the reader refuses; a dynamic segment has no size to write', async () => {
    const f = copyOfBase();
    const { hdrSize } = copyOffsets(f);
    patch(f, hdrSize + 4096 + 10, 'X'); // the secondary's JSON, checksum not fixed
    const before = sha(f);
    await expectVaultError(() => prepare(f, 2 * MiB, writeSegmentSize), 'unsupported-feature', /secondary header: checksum mismatch: vault rewrites LUKS2 metadata only when both copies are valid/);
    patch(f, 4096 + 10, 'X');
    await expectVaultError(() => prepare(f, 2 * MiB, writeSegmentSize), 'headers-damaged');
    expect(sha(f)).not.toBe(before); // (the test's own damage)
    expect(resizableSegment(header(copyOfBase((j) => (j.segments['0'].size = 'dynamic'))).metadata)).toBeNull();
  });

  it('writes both copies from a newer secondary copy, each with its own magic, offset and salt', () => {
    const f = copyOfBase();
    const old = header(f).bin.seqid;
    const salts = rawCopies(f).map((c) => c.bin.subarray(104, 168));
    prepare(f, 3 * MiB, (c, r) => writeHeaderCopy(c, r, 'secondary'));
    expect(header(f).bin.copy).toBe('secondary');
    prepare(f, 2 * MiB, writeSegmentSize);
    const h = header(f);
    expect([h.bin.copy, h.bin.seqid, h.metadata.segments[0]!.size, h.warnings]).toEqual(['primary', old + 2n, BigInt(2 * MiB), []]);
    const [p, s] = rawCopies(f);
    expect([p!.bin.subarray(0, 6).toString('latin1'), s!.bin.subarray(0, 6).toString('latin1')]).toEqual(['LUKS\xba\xbe', 'SKUL\xba\xbe']);
    expect([p!.bin.readBigUInt64BE(256), s!.bin.readBigUInt64BE(256)]).toEqual([0n, BigInt(copyOffsets(f).hdrSize)]);
    expect([p!.bin.subarray(104, 168), s!.bin.subarray(104, 168)]).toEqual(salts);
    expect(dumpDebug(f)).not.toMatch(/requires recovery|checksum error/);
  });

  it('a write cut after the primary copy opens with the new size, one cut inside it with the old (vault and cryptsetup)', () => {
    const f = copyOfBase();
    const old = header(f).bin.seqid;
    prepare(f, 2 * MiB, (c, r) => writeHeaderCopy(c, r, 'primary'));
    const h = header(f);
    expect([h.bin.copy, h.bin.seqid, h.metadata.segments[0]!.size]).toEqual(['primary', old + 1n, BigInt(2 * MiB)]);
    expect(h.warnings).toEqual(['the secondary LUKS2 header is older than the primary']);
    let dump = dumpDebug(f);
    expect(dump).toContain(`length: ${2 * MiB} [bytes]`);
    expect(dump).toContain('Secondary LUKS2 header requires recovery');

    // The primary's JSON area written, its binary header (seqid, checksum) not yet: it fails its
    // checksum, and the secondary, untouched, has the old size.
    const g = copyOfBase();
    prepare(g, 2 * MiB, (_c, r) => patch(g, 4096, r.copies.primary.bytes.subarray(4096)));
    const h2 = header(g);
    expect([h2.bin.copy, h2.bin.seqid, h2.metadata.segments[0]!.size]).toEqual(['secondary', old, BigInt(MiB)]);
    dump = dumpDebug(g);
    expect(dump).toContain(`length: ${MiB} [bytes]`);
    expect(dump).toContain('Primary LUKS2 header requires recovery');
  });
});
