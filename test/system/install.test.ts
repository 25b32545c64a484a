/**
 * Issue 16: the packed package installs like a real tool. `npm pack` (which runs prepare: the build,
 * the addon, the man page), then `npm install -g --prefix <empty dir>` of the tarball, exactly as a
 * user would; then the installed `vault` reports package.json's version, its man page renders with
 * man(1), its bash completion parses, and a real command loads the native addon and Argon2id from
 * the installed copy (create a small container without a filesystem, then unlock it with info).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = mkdtempSync(path.join(ROOT, '.install-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const prefix = path.join(tmp, 'prefix');
const vault = path.join(prefix, 'bin', 'vault');
const run = (cmd: string, args: string[], input?: string, cwd = tmp): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', input, env: { ...process.env, MANWIDTH: '80' }, stdio: ['pipe', 'pipe', 'pipe'] });

describe('npm pack, then npm install -g of the tarball into an empty prefix', () => {
  it('installs vault on PATH with its man page, completion and native addon', () => {
    run('npm', ['pack', '--silent', '--pack-destination', tmp], undefined, ROOT);
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
    expect(tarball).toBe(`vault-${version}.tgz`);
    run('npm', ['install', '-g', '--prefix', prefix, '--no-fund', '--no-audit', '--prefer-offline', path.join(tmp, tarball)]);

    // The bundled CLI (scripts/bundle.mjs), not dist/src's modules.
    expect(realpathSync(vault)).toMatch(/\/dist\/bundle\/vault\.cjs$/);
    expect(run(vault, ['--version']).trim()).toBe(version);
    const page = run('man', ['-l', path.join(prefix, 'share', 'man', 'man1', 'vault.1')]);
    for (const s of ['NAME', 'SYNOPSIS', 'vault dismount', 'EXIT STATUS', 'ENVIRONMENT', 'FILES']) expect(page).toContain(s);
    const bash = run(vault, ['completion', 'bash']);
    expect(bash).toContain('complete -F _vault vault');
    run('bash', ['-n'], bash);

    const container = path.join(tmp, 'c.vol');
    const pass = 'install test passphrase\n';
    run(vault, ['create', container, '--size', '4M', '--fs', 'none', '--quick', '--password-stdin', '--kdf-memory', '8', '--kdf-iterations', '1', '--kdf-parallelism', '1'], pass);
    const info = JSON.parse(run(vault, ['info', container, '--json'])) as { format?: string };
    expect(JSON.stringify(info)).toContain('vault');
    expect(run(vault, ['info', container, '--dump-master-key', '--password-stdin'], pass)).toMatch(/^[0-9a-f]{128}$/m);
  });
});
