/**
 * Issue 7, idle dismount: the volume server itself dismounts a volume that saw no read or write
 * for its --idle limit (no watcher running). On both transports.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FAST_KDF, RUN_DIR, e2eSuite, forEachTransport, ok, transportIndependent, vault } from './harness.js';
import { waitFor } from './dbus.js';

const suite = e2eSuite('idle');
const run = suite.run;
const PW = 'idle hands\n';

function serverAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function mountWithIdle(name: string): { id: string; serverPid: number; mountpoint: string; mountedAt: number } {
  const file = path.join(suite.dir, `${name}.vol`);
  ok(vault(['create', file, '--size', '32M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW), `create ${name}`);
  const mp = path.join(suite.dir, `mp-${name}`);
  mkdirSync(mp);
  ok(vault(['mount', file, mp, '--password-stdin', '--idle', '3s'], PW), `mount ${name}`);
  const mountedAt = Date.now();
  const v = JSON.parse(ok(vault(['list', '--json'])).stdout).find((r: { mountpoint: string }) => r.mountpoint === mp);
  expect(v.policy).toEqual({ dismountOn: [], idleSeconds: 3 });
  return { id: v.id, serverPid: v.serverPid, mountpoint: mp, mountedAt };
}

// The idle timer lives in the server, whatever its transport: on the first transport (every one in
// test:long).
forEachTransport(suite, () => {
  describe.runIf(run)('idle dismount', () => {
    it('--idle 3s: a volume without I/O is dismounted by its server; one under steady I/O is not, until the I/O stops', async () => {
      const quiet = mountWithIdle('quiet');
      const busy = mountWithIdle('busy');
      // Steady I/O from another process (a holder would be ended by a forced dismount): append
      // and fsync every 300 ms, which reaches the volume server as writes.
      const writer = spawn('sh', ['-c', 'while :; do echo tick >> "$1/ticks"; sync "$1/ticks"; sleep 0.3; done', 'sh', busy.mountpoint], {
        stdio: 'ignore',
      });
      const gone = (v: { id: string; serverPid: number }) => !existsSync(path.join(RUN_DIR, v.id)) && !serverAlive(v.serverPid);
      try {
        await waitFor('the idle volume to be dismounted', () => gone(quiet), 30_000, 100);
        const after = Date.now() - quiet.mountedAt;
        console.log(`idle volume dismounted ${after} ms after mount returned`);
        expect(after).toBeGreaterThanOrEqual(2000);
        // Keep the busy volume busy well past three idle limits: it must stay.
        await new Promise((r) => setTimeout(r, Math.max(0, busy.mountedAt + 10_000 - Date.now())));
        expect(gone(busy)).toBe(false);
        expect(serverAlive(busy.serverPid)).toBe(true);
      } finally {
        writer.kill('SIGKILL');
        await new Promise((r) => writer.once('exit', r));
      }
      // Once its I/O stops, the busy volume goes idle too.
      await waitFor('the formerly busy volume to be dismounted', () => gone(busy), 30_000, 100);
      expect(existsSync(path.join(busy.mountpoint, 'ticks'))).toBe(false); // unmounted: the file is inside
    });
  });
}, transportIndependent);
