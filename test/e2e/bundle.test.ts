/**
 * The installed `vault` runs the bundles (package.json "bin" → dist/bundle/vault.cjs, made by
 * scripts/bundle.mjs): the CLI and the volume server each from one CommonJS file.
 * Everything else of the suite runs dist/src's modules; this file runs a volume's whole life
 * through the bundles: create (whose mkfs goes through a brief server), mount, the server's own
 * idle dismount (which runs the bundled CLI), a second mount, and a dismount.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUNDLED_CLI, FAST_KDF, ROOT, RUN_DIR, e2eSuite, forEachTransport, ok, transportIndependent, vault } from './harness.js';
import { waitFor } from './dbus.js';

const suite = e2eSuite('bundle');
const PW = 'bundled all the way\n';
const BUNDLED_SERVER = path.join(ROOT, 'dist/bundle/vault-server.cjs');

const bundled = (args: string[], input = '') => vault(args, input, {}, BUNDLED_CLI);

interface Listed {
  id: string;
  mountpoint: string;
  serverPid: number;
}

function listed(mp: string): Listed {
  const all = JSON.parse(ok(bundled(['list', '--json'])).stdout) as Listed[];
  const v = all.find((r) => r.mountpoint === mp);
  if (!v) throw new Error(`${mp} is not in vault list`);
  return v;
}

function argvOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

forEachTransport(
  suite,
  () => {
    describe.runIf(suite.run)('the bundled CLI and server (what `npm install -g` runs)', () => {
      it('create, mount, idle dismount by the bundled server, remount and dismount: all through dist/bundle', async () => {
        // Built by `npm run build` (npm test runs it): missing bundles are a failure, not a skip.
        for (const f of [BUNDLED_CLI, BUNDLED_SERVER]) expect(existsSync(f), f).toBe(true);
        const container = path.join(suite.dir, 'b.vol');
        const mp = path.join(suite.dir, 'mp');
        mkdirSync(mp);
        ok(bundled(['create', container, '--size', '32M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW), 'create');

        ok(bundled(['mount', container, mp, '--password-stdin', '--idle', '3s'], PW), 'mount');
        const first = listed(mp);
        // The bundled CLI launched the bundled server (src/system/entries.ts), not dist/src's.
        expect(argvOf(first.serverPid).slice(1)).toEqual([BUNDLED_SERVER, '--await-fds']);
        const data = `written through the bundles ${Date.now()}\n`.repeat(1000);
        writeFileSync(path.join(mp, 'f.txt'), data);
        // No I/O from here: the server dismounts its volume itself, with the bundled CLI.
        await waitFor('the idle volume to be dismounted by its bundled server', () => !existsSync(path.join(RUN_DIR, first.id)), 30_000, 100);
        expect(bundled(['list', '--json']).stdout).not.toContain(mp);

        ok(bundled(['mount', container, mp, '--password-stdin'], PW), 'mount again');
        const second = listed(mp);
        expect(argvOf(second.serverPid)[1]).toBe(BUNDLED_SERVER);
        expect(readFileSync(path.join(mp, 'f.txt'), 'utf8')).toBe(data);
        ok(bundled(['dismount', mp]), 'dismount');
        expect(existsSync(path.join(RUN_DIR, second.id))).toBe(false);
      }, 120_000);

      it('reports errors and exit codes as the module build does', () => {
        const missing = path.join(suite.dir, 'no-such.vol');
        const viaBundle = bundled(['info', missing]);
        const viaModules = vault(['info', missing]);
        expect(viaBundle.status).not.toBe(0);
        expect(viaBundle.status).toBe(viaModules.status);
        expect(viaBundle.stderr).toBe(viaModules.stderr);
        const usage = bundled(['no-such-command']);
        expect(usage.status).toBe(vault(['no-such-command']).status);
      });
    });
  },
  transportIndependent,
);
