/**
 * Issue 20: every conformance vector of spec/vectors/ through vault's own reader. Container vectors
 * are opened as vault opens a container (readHeaderCopies, unlockContainer: spec §6–§7) and their
 * data area read through vault's XTS with the all-zero rule of §8; header-copy vectors through the
 * parser (§7 steps 1–6). The committed files must be exactly what the generator writes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsDecrypt } from '../../src/crypto/xts.js';
import { isVaultError } from '../../src/errors.js';
import { parseHeaderCopy } from '../../src/format/header.js';
import { unlockContainer, type UnlockResult } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { readAtSync } from '../../src/volume/fd-io.js';
import { vectorFiles } from '../fixtures/make-vectors.js';
import { VECTOR_PASSPHRASE, vectorCopy } from '../support/vectors.js';

const DIR = new URL('../../spec/vectors/', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Manifest;

interface Case { passphrase: string; keyfiles_hex?: string[]; expect: string; opened?: string; warns?: boolean; sector_size?: number; data_size?: number; plaintext_sha256?: string }
interface Manifest {
  containers: Array<{ name: string; file: string; cases: Case[] }>;
  header_copies: Array<{ name: string; file: string; position: 'primary' | 'secondary'; expect: string }>;
}

/** vault's error codes are the spec's failure classes, but for the name of a wrong passphrase. */
const classOf = (code: string) => (code === 'wrong-password' ? 'wrong-passphrase' : code);

/** The data area as vault serves it: XTS per sector, except all-zero stored sectors (spec §8). */
function readPlaintext(fd: number, u: UnlockResult): Buffer {
  const { sectorSize, dataOffset, dataSize } = u.header;
  const data = readAtSync(fd, dataSize, dataOffset);
  const key = KeyHandle.fromBytes(Buffer.from(u.masterKey));
  try {
    for (let i = 0; i < dataSize / sectorSize; i++) {
      const sector = data.subarray(i * sectorSize, (i + 1) * sectorSize);
      if (!sector.every((b) => b === 0)) xtsDecrypt(key, sector, { sectorSize, firstTweak: BigInt(i) });
    }
  } finally {
    key.dispose();
  }
  return data;
}

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(tmpdir(), 'vault-vectors-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('spec/vectors', () => {
  it('are exactly what test/fixtures/make-vectors.ts writes', async () => {
    const files = await vectorFiles();
    expect([...files.keys()].sort()).toEqual(['manifest.json', ...manifest.containers.map((c) => c.file), ...manifest.header_copies.map((c) => c.file)].sort());
    const onDisk = ['containers', 'copies'].flatMap((d) => readdirSync(path.join(DIR, d)).map((f) => `${d}/${f}`));
    expect(onDisk.sort()).toEqual([...files.keys()].filter((f) => f !== 'manifest.json').sort());
    for (const [name, bytes] of files) expect(readFileSync(path.join(DIR, name)).equals(bytes), `${name} differs from the generator's output`).toBe(true);
  });

  it('cover one vector per failure class of spec §7 and every "ok" path', () => {
    const classes = new Set([...manifest.containers.flatMap((c) => c.cases.map((x) => x.expect)), ...manifest.header_copies.map((c) => c.expect)]);
    for (const c of ['ok', 'truncated', 'not-a-container', 'unsupported-version', 'checksum-mismatch', 'unsupported-feature', 'invalid-field', 'kdf-bounds', 'headers-damaged', 'copies-disagree', 'no-keyslot', 'wrong-passphrase', 'header-tampered'])
      expect(classes, c).toContain(c);
    const readme = readFileSync(path.join(DIR, 'README.md'), 'utf8');
    for (const v of [...manifest.containers, ...manifest.header_copies]) expect(readme, `README.md does not list ${v.name}`).toContain(`| \`${v.name}\` |`);
  });

  it('say what happened: the fallback warnings and the copies-disagree error of spec §6', async () => {
    const open = async (name: string, pass = VECTOR_PASSPHRASE) => {
      const file = vectorCopy(tmp, name, `say-${name}`);
      const c = openContainer(file, true);
      try {
        const u = await unlockContainer(c, buildKdfInput(Buffer.from(pass)));
        u.masterKey.fill(0);
        return u.warnings.join('\n');
      } catch (e) {
        if (!isVaultError(e)) throw e;
        return `${e.code}: ${e.message} (${e.hint})`;
      } finally {
        closeContainer(c);
      }
    };
    expect(await open('ok-interrupted-passwd')).toMatch(/opened with the older secondary header \(sequence 1\): the newer primary header \(sequence 2\) does not accept this secret.*vault header repair/);
    expect(await open('ok-interrupted-passwd', 'the new passphrase')).toMatch(/^secondary header is older than the other copy \(sequence 1 < 2\)$/);
    expect(await open('ok-primary-tampered')).toMatch(/primary header failed authentication/);
    expect(await open('copies-disagree-uuid')).toMatch(/^copies-disagree: the two header copies of .* disagree: they name two containers .*vault header restore/);
    expect(await open('copies-disagree-size')).toMatch(/authentic with sequence 1 but differ \(data size 8192 \/ 16384\)/);
    expect(await open('copies-disagree-sector-size')).toMatch(/both are authentic but differ in sector size 512 \/ 4096/);
  });

  it.each(manifest.header_copies.map((v) => [v.name, v] as const))('header copy %s', (_name, v) => {
    const bytes = readFileSync(path.join(DIR, v.file));
    let got = 'ok';
    try {
      parseHeaderCopy(bytes, v.position === 'primary' ? 0 : 1);
    } catch (e) {
      if (!isVaultError(e)) throw e;
      got = classOf(e.code);
    }
    expect(got).toBe(v.expect);
  });

  it.each(manifest.containers.map((v) => [v.name, v] as const))('container %s', async (name, v) => {
    const file = path.join(tmp, `${name}.vol`);
    const bytes = gunzipSync(readFileSync(path.join(DIR, v.file)));
    writeFileSync(file, bytes);
    for (const x of v.cases) {
      const what = `${name} with ${JSON.stringify(x.passphrase)}`;
      const c = openContainer(file, true);
      try {
        const input = buildKdfInput(Buffer.from(x.passphrase), (x.keyfiles_hex ?? []).map((h) => Buffer.from(h, 'hex')));
        let u: UnlockResult;
        try {
          u = await unlockContainer(c, input);
        } catch (e) {
          if (!isVaultError(e)) throw e;
          expect(classOf(e.code), `${what}: ${e.message}`).toBe(x.expect);
          continue;
        }
        try {
          expect('ok', what).toBe(x.expect);
          expect(u.header.copy === 0 ? 'primary' : 'secondary', what).toBe(x.opened);
          expect(u.warnings.length > 0, `${what}: warnings ${JSON.stringify(u.warnings)}`).toBe(x.warns);
          expect([u.header.sectorSize, u.header.dataSize], what).toEqual([x.sector_size, x.data_size]);
          expect(createHash('sha256').update(readPlaintext(c.fd, u)).digest('hex'), what).toBe(x.plaintext_sha256);
        } finally {
          u.masterKey.fill(0);
        }
      } finally {
        closeContainer(c);
      }
      expect(readFileSync(file).equals(bytes), `${what}: the reader modified the file`).toBe(true);
    }
  });
});
