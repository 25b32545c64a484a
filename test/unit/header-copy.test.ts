/**
 * `--header-copy primary|secondary` (spec/format.md §6 "Choosing a copy"): the way out of
 * `copies-disagree` for a user without a header backup. On the conformance vectors whose copies
 * disagree (spec/vectors/), each copy opens alone, with its own geometry, and nothing is written;
 * a chosen copy that is not valid is refused with its own class, never replaced by the other;
 * `vault header repair --header-copy X` (built CLI, no terminal) asks first, and after `--yes` the
 * container opens without a choice, with X's geometry and no warning. Needs `npm run build`; no root.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { isVaultError } from '../../src/errors.js';
import { formatUuid, unlockContainer } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { VECTOR_PASSPHRASE, vectorCopy } from '../support/vectors.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../dist/src/cli/main.js');
const PASS = VECTOR_PASSPHRASE;

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(tmpdir(), 'vault-header-copy-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const vector = (name: string, as = name) => vectorCopy(tmp, name, as);

/** Unlocks `file` (with one copy chosen, or none): geometry, uuid and warnings, or the error's class. */
async function open(file: string, copy?: 0 | 1) {
  const c = openContainer(file, true);
  if (copy !== undefined) c.headerCopy = copy;
  try {
    const u = await unlockContainer(c, buildKdfInput(Buffer.from(PASS)));
    u.masterKey.fill(0);
    return { copy: u.header.copy, sectorSize: u.header.sectorSize, dataSize: u.header.dataSize, uuid: formatUuid(u.header.uuid), warnings: u.warnings };
  } catch (e) {
    if (!isVaultError(e)) throw e;
    return { error: e.code, message: e.message };
  } finally {
    closeContainer(c);
  }
}

function vault(args: string[], input = `${PASS}\n`) {
  const r = spawnSync('setsid', ['--wait', process.execPath, CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('choosing a header copy (spec §6)', () => {
  it('each copy of a disagreeing pair opens alone, with its own geometry and a warning naming the other; nothing is written', async () => {
    const cases: Array<[string, { sectorSize: number; dataSize: number }, { sectorSize: number; dataSize: number }]> = [
      ['copies-disagree-size', { sectorSize: 4096, dataSize: 8192 }, { sectorSize: 4096, dataSize: 16384 }],
      ['copies-disagree-sector-size', { sectorSize: 512, dataSize: 16384 }, { sectorSize: 4096, dataSize: 16384 }],
    ];
    for (const [name, primary, secondary] of cases) {
      const file = vector(name);
      const before = readFileSync(file);
      expect(await open(file), name).toMatchObject({ error: 'copies-disagree' });
      expect(await open(file, 0), name).toMatchObject({ copy: 0, ...primary, warnings: [expect.stringMatching(/^using the primary header copy alone, as asked \(--header-copy primary\); the secondary copy is valid \(sequence \d+\), but neither used nor compared$/)] });
      expect(await open(file, 1), name).toMatchObject({ copy: 1, ...secondary, warnings: [expect.stringMatching(/^using the secondary header copy alone.*the primary copy is valid/)] });
      expect(readFileSync(file).equals(before), `${name} was modified`).toBe(true);
    }
    // Two containers' copies (refused before any derivation without a choice): each is its own uuid.
    const file = vector('copies-disagree-uuid');
    const [p, s] = [await open(file, 0), await open(file, 1)];
    expect(p).toMatchObject({ copy: 0 });
    expect(s).toMatchObject({ copy: 1 });
    expect((p as { uuid: string }).uuid).not.toBe((s as { uuid: string }).uuid);
  });

  it('a chosen copy that is not valid is refused with its own class, never replaced by the other', async () => {
    expect(await open(vector('ok-primary-damaged'), 0)).toMatchObject({ error: 'checksum-mismatch', message: expect.stringMatching(/^the primary header copy of .*, which you chose \(--header-copy primary\), cannot be used: /) });
    expect(await open(vector('ok-primary-damaged'), 1)).toMatchObject({ copy: 1, warnings: [expect.stringMatching(/the primary copy is unusable \(/)] });
    // Valid but not authentic (its MAC fails): tampered, not the older secondary's fallback.
    expect(await open(vector('ok-primary-tampered'), 0)).toMatchObject({ error: 'header-tampered' });
  });

  it('`vault header repair --header-copy` asks first; with --yes both copies become the chosen one, and the container opens without a choice', async () => {
    const file = vector('copies-disagree-size', 'repair-size');
    const before = readFileSync(file);
    const noTerminal = vault(['header', 'repair', file, '--header-copy', 'secondary', '--password-stdin']);
    expect(noTerminal.status, noTerminal.stderr).toBe(2);
    expect(noTerminal.stderr).toMatch(/replacing a header copy needs a confirmation, and there is no terminal to ask on/);
    expect(vault(['header', 'repair', file, '--header-copy', 'middle', '--yes', '--password-stdin']).stderr).toMatch(/--header-copy takes primary or secondary, not "middle"/);
    expect(readFileSync(file).equals(before)).toBe(true);

    const r = vault(['header', 'repair', file, '--header-copy', 'secondary', '--yes', '--password-stdin']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the primary header copy of .* will be replaced by the secondary copy:\n {2}secondary: sequence 1, 4096-byte sectors, data size 16384 bytes/);
    expect(r.stdout).toMatch(/both header copies rewritten from the secondary copy/);
    expect(await open(file)).toMatchObject({ sectorSize: 4096, dataSize: 16384, warnings: [] });

    // The primary's smaller geometry: its secondary goes where it places it, newer than the old one at the end.
    const small = vector('copies-disagree-size', 'repair-size-primary');
    expect(vault(['header', 'repair', small, '--header-copy', 'primary', '--yes', '--password-stdin']).status).toBe(0);
    expect(await open(small)).toMatchObject({ sectorSize: 4096, dataSize: 8192, warnings: [] });
    expect(readFileSync(small).length).toBe(before.length);
  });

  it('`vault info --header-copy` shows the chosen copy; other formats refuse the option', () => {
    const file = vector('copies-disagree-size', 'info-size');
    const info = (copy: string) => JSON.parse(vault(['info', file, '--json', '--header-copy', copy], '').stdout) as { dataSize: number };
    expect([info('primary').dataSize, info('secondary').dataSize]).toEqual([8192, 16384]);
    const luks = path.join(tmp, 'luks.img');
    writeFileSync(luks, Buffer.concat([Buffer.from('LUKS\xba\xbe\x00\x02', 'latin1'), Buffer.alloc(32760)]));
    const r = vault(['info', luks, '--header-copy', 'primary'], '');
    expect(r.stderr).toMatch(/--header-copy applies to vault containers, not to LUKS/);
  });
});
