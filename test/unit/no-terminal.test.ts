/**
 * Without a terminal vault never asks: the create wizard and every confirmation (overwrite, header
 * restore, removing the last-but-one keyslot) fail at once with a usage error naming the option that
 * answers them, before any passphrase is read and without touching anything. --yes (and --force,
 * which includes it) answer the confirmation: the command goes on to the passphrase.
 *
 * The refusals run in-process, through the commander program (buildProgram); standard input is marked
 * "not a terminal" in case the test runner was started from one. That --yes goes on is checked with
 * the built CLI in a session of its own (setsid: no controlling terminal, so the passphrase prompt
 * fails at once instead of waiting). The containers are made by the CLI with keyfiles (no typing,
 * no strength check). Needs `npm run build`; no root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram } from '../../src/cli/program.js';
import { VaultError } from '../../src/errors.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/cli/main.js');
const FAST_KDF = ['--kdf-memory', '1', '--kdf-iterations', '1', '--kdf-parallelism', '1'];
let dir: string;
let wasTTY: boolean | undefined;

/** Runs `vault ARGS` in this process; the error it ends with (null when it succeeds). */
async function inProcess(args: string[]): Promise<VaultError | null> {
  const argv = ['node', 'vault', ...args];
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return null;
  } catch (e) {
    if (e instanceof VaultError) return e;
    throw e;
  }
}

function cli(args: string[], input: string): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
}

/** Runs the CLI without a controlling terminal; its stderr, which should say the passphrase prompt found none. */
function goesOnToPassphrase(args: string[]): string {
  const r = spawnSync('setsid', ['--wait', process.execPath, CLI, ...args], { input: '', encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(2);
  return r.stderr;
}
const passphrasePrompt = 'vault: no terminal to ask on\nhint: pass it on standard input with --password-stdin (or use a keyfile)\n';
const activeSlots = (file: string) =>
  (JSON.parse(spawnSync(process.execPath, [CLI, 'keyslot', 'list', file, '--json'], { encoding: 'utf8' }).stdout) as { state: string }[]).filter((s) => s.state === 'active').length;

let file: string;
let backup: string;
beforeAll(() => {
  wasTTY = process.stdin.isTTY;
  Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
  dir = mkdtempSync(path.join(tmpdir(), 'vault-noterm-'));
  const [k1, k2] = [path.join(dir, 'k1'), path.join(dir, 'k2')];
  writeFileSync(k1, 'first keyfile');
  writeFileSync(k2, 'second keyfile');
  file = path.join(dir, 'c.vol');
  backup = path.join(dir, 'c.hdr');
  cli(['create', file, '--size', '2M', '--fs', 'none', '--quick', '--password-stdin', '--keyfile', k1, ...FAST_KDF], '');
  cli(['keyslot', 'add', file, '--password-stdin', '--keyfile', k1, '--new-keyfile', k2, ...FAST_KDF], '\n\n');
  cli(['header', 'backup', file, backup], '');
});
afterAll(() => {
  Object.defineProperty(process.stdin, 'isTTY', { value: wasTTY, configurable: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('without a terminal', () => {
  it('create without --size: the usage error of old, at once', async () => {
    const e = await inProcess(['create', path.join(dir, 'new.vol')]);
    expect(e?.code).toBe('usage');
    expect(e?.message).toBe("required option '--size <size>' not specified");
    expect(e?.hint).toMatch(/--size 512M/);
  });

  it('create over an existing file: refused, naming --yes; the file is untouched; --yes goes on to the passphrase', async () => {
    const before = readFileSync(file);
    const e = await inProcess(['create', file, '--size', '2M', '--fs', 'none']);
    expect(e?.code).toBe('usage');
    expect(e?.message).toBe(`${file} already exists; overwriting it needs a confirmation, and there is no terminal to ask on`);
    expect(e?.hint).toBe('add --yes to confirm it in a script');
    expect(readFileSync(file).equals(before)).toBe(true);
    for (const answer of ['--yes', '--force']) expect(goesOnToPassphrase(['create', file, '--size', '2M', '--fs', 'none', answer]), answer).toBe(passphrasePrompt);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('header restore: refused before the passphrase, naming --yes; --yes and --force go on to the passphrase', async () => {
    const e = await inProcess(['header', 'restore', file, backup]);
    expect(e?.message).toBe('restoring the headers needs a confirmation, and there is no terminal to ask on');
    expect(e?.hint).toMatch(/--yes/);
    for (const answer of ['--yes', '--force']) expect(goesOnToPassphrase(['header', 'restore', file, backup, answer]), answer).toBe(passphrasePrompt);
  });

  it('keyslot remove leaving one slot: refused before the passphrase, naming --yes; nothing removed; --yes goes on', async () => {
    const e = await inProcess(['keyslot', 'remove', file, '--slot', '1']);
    expect(e?.message).toBe('removing keyslot 1 needs a confirmation, and there is no terminal to ask on');
    expect(e?.hint).toBe('add --yes to confirm it in a script');
    expect(activeSlots(file)).toBe(2);
    expect(goesOnToPassphrase(['keyslot', 'remove', file, '--slot', '1', '--yes'])).toBe(passphrasePrompt);
    expect(activeSlots(file)).toBe(2);
  });
});
