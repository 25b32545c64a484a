/**
 * A resize killed between its header writes (spec/format.md §12), then `vault header backup` and
 * `vault header repair` (built CLI; no root). On the conformance vectors of those crash points: the
 * backup is refused, since it could not be restored (§10: one geometry, the file's exact size);
 * the repair rewrites both copies from the copy that opens and does what the resize still owed (a
 * grow's old secondary copy in the data area overwritten with ciphertext of zeros; a shrink's file
 * truncated), the rest of the data unchanged; after it the backup is taken and restores.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { xtsDecrypt } from '../../src/crypto/xts.js';
import { parseHeaderCopy } from '../../src/format/header.js';
import { unlockContainer } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { readAtSync } from '../../src/volume/fd-io.js';
import { VECTOR_PASSPHRASE, vectorCopy } from '../support/vectors.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../dist/src/cli/main.js');
const PASS = `${VECTOR_PASSPHRASE}\n`;

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(tmpdir(), 'vault-finish-resize-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const vector = (name: string, as: string) => vectorCopy(tmp, name, as);

function vault(args: string[], input = PASS) {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Opens with the vectors' passphrase: geometry, warnings and each sector's plaintext (sha256). */
async function open(file: string) {
  const c = openContainer(file, true);
  try {
    const u = await unlockContainer(c, buildKdfInput(Buffer.from(PASS.trim())));
    const { sectorSize, dataOffset, dataSize } = u.header;
    const key = KeyHandle.fromBytes(Buffer.from(u.masterKey));
    u.masterKey.fill(0);
    const sectors: string[] = [];
    try {
      for (let i = 0; i < dataSize / sectorSize; i++) {
        const s = readAtSync(c.fd, sectorSize, dataOffset + i * sectorSize);
        if (!s.every((b) => b === 0)) xtsDecrypt(key, s, { sectorSize, firstTweak: BigInt(i) });
        sectors.push(createHash('sha256').update(s).digest('hex'));
      }
    } finally {
      key.dispose();
    }
    return { dataOffset, dataSize, sectorSize, warnings: u.warnings, sectors };
  } finally {
    closeContainer(c);
  }
}

const ZERO_SECTOR = createHash('sha256').update(Buffer.alloc(4096)).digest('hex');

function isHeaderCopy(file: string, offset: number): boolean {
  try {
    parseHeaderCopy(readFileSync(file).subarray(offset, offset + 4096), 1);
    return true;
  } catch {
    return false;
  }
}

/** Backs up, then restores that backup over the container: both must work. */
function backupRestores(file: string, name: string): void {
  const backup = path.join(tmp, `${name}.backup`);
  const b = vault(['header', 'backup', file, backup], '');
  expect(b.status, b.stderr).toBe(0);
  const r = vault(['header', 'restore', file, backup, '--yes', '--password-stdin']);
  expect(r.status, r.stderr).toBe(0);
}

describe('finishing a resize interrupted between its header writes (spec §12)', () => {
  it('a grow killed after step 3: backup refused; repair overwrites the old secondary in the data area; then the backup restores', async () => {
    const file = vector('ok-grow-interrupted', 'grow');
    const before = await open(file);
    expect(before).toMatchObject({ dataSize: 16384, sectorSize: 4096 });
    expect(before.warnings.join('\n')).toMatch(/primary header is older/);
    const oldSecondary = before.dataOffset + 8192; // the old primary's data_offset + data_size: sector 2
    expect(isHeaderCopy(file, oldSecondary), 'the vector keeps the old secondary copy in sector 2').toBe(true);

    const refused = vault(['header', 'backup', file, path.join(tmp, 'grow-early.backup')], '');
    expect(refused.status).toBe(8);
    expect(refused.stderr).toMatch(/describe different geometries \(primary: 8192 bytes of 4096-byte sectors; secondary: 16384 bytes of 4096-byte sectors: a resize or a re-encryption was interrupted\).*\n.*vault header repair/);

    const r = vault(['header', 'repair', file, '--password-stdin']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`overwrote the old secondary header copy left at offset ${oldSecondary} by an interrupted grow`);
    const after = await open(file);
    expect(after).toMatchObject({ dataSize: 16384, warnings: [] });
    expect(isHeaderCopy(file, oldSecondary)).toBe(false);
    expect(after.sectors[2], 'sector 2 is now ciphertext of zeros').toBe(ZERO_SECTOR);
    for (const i of [0, 1, 3]) expect(after.sectors[i], `sector ${i} unchanged`).toBe(before.sectors[i]);
    backupRestores(file, 'grow');
    expect(await open(file)).toMatchObject({ dataSize: 16384, warnings: [], sectors: after.sectors });
  });

  it('a shrink killed after step 2: backup refused (the file is longer than its headers say); repair truncates it; then the backup restores', async () => {
    const file = vector('ok-shrink-interrupted', 'shrink');
    const before = await open(file);
    expect(before).toMatchObject({ dataSize: 8192, warnings: [] });
    const length = before.dataOffset + 8192 + 4096;
    expect(statSync(file).size).toBeGreaterThan(length);

    const refused = vault(['header', 'backup', file, path.join(tmp, 'shrink-early.backup')], '');
    expect(refused.status).toBe(8);
    expect(refused.stderr).toMatch(new RegExp(`is ${statSync(file).size} bytes, but its headers describe a container of ${length} bytes`));

    const was = statSync(file).size;
    const r = vault(['header', 'repair', file, '--password-stdin']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`truncated the file from ${was} to ${length} bytes, as the interrupted shrink would have`);
    expect(statSync(file).size).toBe(length);
    expect(await open(file)).toMatchObject({ dataSize: 8192, warnings: [], sectors: before.sectors });
    backupRestores(file, 'shrink');
  });

  it('nothing owed, nothing more done: bytes appended to a container are not truncated, and a damaged copy is only rewritten', () => {
    const file = vector('ok-trailing-bytes', 'trailing');
    const size = statSync(file).size;
    const r = vault(['header', 'repair', file, '--password-stdin']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/truncated|overwrote/);
    expect(statSync(file).size).toBe(size);
    const damaged = vector('ok-primary-damaged', 'damaged');
    const d = vault(['header', 'repair', damaged, '--password-stdin']);
    expect(d.stdout).toMatch(/both header copies rewritten from the authenticated copy\n$/);
  });
});
