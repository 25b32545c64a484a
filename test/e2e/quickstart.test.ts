/**
 * README's first Quick start command, scripts/demo.sh, as a newcomer runs it: it must reach its
 * end on this machine. (Issue 13 moved default mount points to /media/vault/<user>/, and the demo,
 * which named the old path, broke without any test noticing.)
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, e2eSuite } from './harness.js';
import { localUser } from '../support/unprivileged.js';
import { snapshotSetupFiles } from '../support/setup-files.js';

const suite = e2eSuite('quickstart');

describe.runIf(suite.run)('README Quick start', () => {
  it('scripts/demo.sh creates, mounts, writes, lists, dismounts and reads back, with no standard input', () => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/demo.sh')], { cwd: ROOT, encoding: 'utf8', input: '', timeout: 600_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^hello from inside the encrypted volume$/m); // read back after remounting
    expect(r.stdout).toContain("'hello from inside' does not occur in secret.vol");
    expect(r.stdout.trimEnd().endsWith('== done')).toBe(true);
    // Issue 16: afterwards `vault` is a command, with its man page and bash completion.
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(spawnSync('/usr/local/bin/vault', ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(version);
    expect(existsSync('/usr/local/share/man/man1/vault.1')).toBe(true);
    expect(existsSync('/usr/local/share/bash-completion/completions/vault')).toBe(true);
  });

  it('run through sudo by an ordinary user, demo.sh prepares the machine and shows that user\'s path, without root', () => {
    const user = localUser('vault-demo');
    const restoreSetupFiles = snapshotSetupFiles();
    try {
      const r = spawnSync('bash', [path.join(ROOT, 'scripts/demo.sh')], {
        cwd: ROOT,
        encoding: 'utf8',
        input: '',
        timeout: 600_000,
        env: { ...process.env, SUDO_USER: user.name, SUDO_UID: String(user.uid), SUDO_GID: String(user.gid) },
      });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`every vault command runs as ${user.name}, without root`);
      // No system bus on a bare machine: the fuse route, saying why and what would be faster (a
      // note for people, so on stderr).
      expect(r.stderr).toMatch(/^vault: route: (udisks|fuse)/m);
      expect(r.stdout).toMatch(/^hello from inside the encrypted volume$/m);
      expect(r.stdout.trimEnd().endsWith('== done')).toBe(true);
    } finally {
      spawnSync(process.execPath, [CLI, 'setup-rootless', '--undo', '--user', user.name]);
      spawnSync(process.execPath, [CLI, 'setup-rootless', '--undo']);
      restoreSetupFiles();
    }
  });
});
