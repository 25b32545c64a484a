/**
 * Issue 16: `vault completion` scripts, generated from the commander program. Each is parsed by its
 * shell (`bash -n`, `zsh -n`, `fish -n`); the bash one is then run for real (sourced in bash,
 * COMP_WORDS/COMP_CWORD set, the function called, COMPREPLY read back) and the fish one through
 * fish's `complete -C`. dismount's targets come from the real CLI reading a run directory
 * (VAULT_RUN_DIR) that holds one volume record; nothing is mounted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { commandTree } from '../../src/cli/completion/tree.js';
import { bashCompletion } from '../../src/cli/completion/bash.js';
import { zshCompletion } from '../../src/cli/completion/zsh.js';
import { fishCompletion } from '../../src/cli/completion/fish.js';

const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vault-completion-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tree = commandTree(await buildProgram(['node', 'vault']));
const script = path.join(tmp, 'vault.bash');
writeFileSync(script, bashCompletion(tree));

// The command the completion calls back (COMP_WORDS[0]), as an installed `vault` would be.
const vault = path.join(tmp, 'vault');
writeFileSync(vault, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
chmodSync(vault, 0o755);
// One mounted volume, as a record in a private run directory (nothing is mounted).
const runDir = path.join(tmp, 'run');
mkdirSync(path.join(runDir, '0123abcd'), { recursive: true, mode: 0o700 });
writeFileSync(path.join(runDir, '0123abcd', 'state.json'), JSON.stringify({ id: '0123abcd', container: '/srv/secret vol.vol', mountpoint: '/media/vault/root/secret', ownerUid: 0 }));

/** COMPREPLY for a command line whose last word is being completed. */
function complete(...words: string[]): string[] {
  const env: NodeJS.ProcessEnv = { ...process.env, VAULT_RUN_DIR: runDir };
  delete env.SUDO_UID;
  const arr = [vault, ...words].map((w) => `'${w}'`).join(' ');
  const out = execFileSync('bash', ['-c', `source '${script}'; COMP_WORDS=(${arr}); COMP_CWORD=${words.length}; _vault; printf '%s\\n' "\${COMPREPLY[@]}"`], { env, encoding: 'utf8' });
  return out.split('\n').filter((l) => l !== '');
}

/** Runs a shell that scripts/setup-system.sh --test installs; a missing one fails with that hint. */
function shell(name: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, VAULT_RUN_DIR: runDir };
  delete env.SUDO_UID; // the record is root's: under sudo only the invoking user's volumes would show
  const r = spawnSync(name, args, { encoding: 'utf8', env });
  if (r.error) throw new Error(`${name} is not installed: run scripts/setup-system.sh --test (${r.error.message})`);
  return r;
}

describe('completion scripts', () => {
  it('are valid bash, zsh and fish', () => {
    for (const [name, text] of [['bash', bashCompletion(tree)], ['zsh', zshCompletion(tree)], ['fish', fishCompletion(tree)]] as const) {
      const file = path.join(tmp, `vault.${name}`);
      writeFileSync(file, text);
      const r = shell(name, ['-n', file]);
      expect(r.stderr, name).toBe('');
      expect(r.status, name).toBe(0);
    }
  });

  it('complete in fish too: subcommands, options, choices, and dismount targets from vault itself', () => {
    const file = path.join(tmp, 'vault.fish');
    writeFileSync(file, fishCompletion(tree));
    const words = (line: string): string[] =>
      shell('fish', ['-c', `set -x PATH '${tmp}' $PATH; source '${file}'; complete -C '${line}'`]).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]!);
    expect(words('vault keyslot ')).toEqual(['add', 'list', 'remove']);
    expect(words('vault keyslot add --new')).toEqual(['--new-keyfile']);
    expect(words('vault completion ')).toEqual(['bash', 'fish', 'zsh']);
    expect(words('vault unmount ')).toEqual(expect.arrayContaining(['/media/vault/root/secret', '/srv/secret vol.vol']));
  });

  it('complete command names, subcommands, options, option choices and aliases', () => {
    expect(complete('mo')).toEqual(['mount']);
    expect(complete('')).toEqual(expect.arrayContaining(['create', 'dismount', 'keyslot', 'completion']));
    expect(complete('keyslot', '')).toEqual(['list', 'add', 'remove']);
    expect(complete('create', '--kdf-')).toEqual(['--kdf-memory', '--kdf-iterations', '--kdf-parallelism']);
    expect(complete('--debug', 'keyslot', 'add', '--new')).toEqual(['--new-keyfile']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh', 'fish']);
    expect(complete('unmount', '--f')).toEqual(['--force']);
  });

  it('complete files after an option that takes one and for containers, and mounted volumes for dismount', () => {
    writeFileSync(path.join(tmp, 'a.vol'), '');
    expect(complete('mount', '--keyfile', path.join(tmp, 'a.v'))).toEqual([path.join(tmp, 'a.vol')]);
    expect(complete('info', '--json', path.join(tmp, 'a.'))).toEqual([path.join(tmp, 'a.vol')]);
    expect(complete('dismount', '')).toEqual(['/media/vault/root/secret', '/srv/secret vol.vol']);
    expect(complete('unmount', '--force', '/srv/')).toEqual(['/srv/secret vol.vol']);
  });
});
