/**
 * Idle dismount, done by the volume server itself (no watcher needed, as VeraCrypt does on
 * Windows): when no read or write has reached the server for the volume's idle limit, it runs
 * `vault dismount <id> --force` for its own volume.
 *
 * The dismount runs in a separate, detached process, never inside this one: unmounting the
 * filesystem flushes it through the loop device into this very server, so the server must keep
 * answering FUSE requests while the unmount runs, and the dismount finally stops this server with
 * SIGTERM (which wipes the key) and then removes the state record after the server has exited.
 *
 * The dismount runs as the server's own user, so an ordinary user's volume (issue 15) goes down
 * through its route like their own `vault dismount`: udisks Filesystem.Unmount and Loop.Delete,
 * or fusermount3 -u and the fuse driver letting go; VAULT_RUN_DIR points it at their records.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { toolPath } from '../mount/run.js';
import { CLI_ENTRY } from '../system/entries.js';

/** After a failed attempt (e.g. a tool missing), try again this much later rather than spin. */
const RETRY_MS = 30_000;

export interface IdleWatch {
  stop(): void;
}

/**
 * Checks every few seconds (a third of the limit, 1–30 s) whether the volume has been idle for
 * `idleSeconds`, and if so dismounts it. `lastIoMs` returns the time of the last I/O.
 */
export function watchIdle(
  o: { volumeId: string; fuseDir: string; idleSeconds: number; lastIoMs: () => number; log: (m: string) => void },
): IdleWatch {
  const limitMs = o.idleSeconds * 1000;
  const everyMs = Math.min(30_000, Math.max(1000, Math.floor(limitMs / 3)));
  let busyUntil = 0; // while a dismount runs or after one failed
  const timer = setInterval(() => {
    const now = Date.now();
    if (now < busyUntil) return;
    const idleMs = now - o.lastIoMs();
    if (idleMs < limitMs) return;
    busyUntil = Infinity;
    o.log(`idle for ${Math.round(idleMs / 1000)} s (limit ${o.idleSeconds} s): dismounting`);
    dismountSelf(o.volumeId, o.fuseDir, o.log).then((ok) => {
      // On success the dismount has already stopped this server; reaching here means it did not.
      busyUntil = Date.now() + (ok ? 0 : RETRY_MS);
    });
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Runs the CLI's forced dismount of this volume; resolves whether it exited with status 0. */
function dismountSelf(volumeId: string, fuseDir: string, log: (m: string) => void): Promise<boolean> {
  // The server's run directory is where its volume lives: <run dir>/<id>/fuse.
  const runDir = path.dirname(path.dirname(fuseDir));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_ENTRY, 'dismount', volumeId, '--force'], {
      // Detached: it must outlive this server, which it stops before removing the state record.
      detached: true,
      cwd: '/',
      // Its report goes to this server's log (fds 1 and 2).
      stdio: ['ignore', 'inherit', 'inherit'],
      // A user's udisks volume is dismounted over the system bus it was mounted through (spawn.ts
      // passes a user's server DBUS_SYSTEM_BUS_ADDRESS; without it, the standard socket).
      env: {
        PATH: toolPath(),
        LANG: 'C',
        VAULT_RUN_DIR: runDir,
        ...(process.env.DBUS_SYSTEM_BUS_ADDRESS ? { DBUS_SYSTEM_BUS_ADDRESS: process.env.DBUS_SYSTEM_BUS_ADDRESS } : {}),
      },
    });
    child.on('error', (e) => {
      log(`idle dismount could not start: ${e.message}`);
      resolve(false);
    });
    child.on('exit', (code, signal) => {
      if (code !== 0) log(`idle dismount failed (${signal ?? `status ${code}`})`);
      resolve(code === 0);
    });
  });
}
