/**
 * How a volume server's process is started, and its early start for `vault mount`.
 *
 * A server is a Node process: ~100 ms pass between its spawn and the moment its main() can take a
 * config, and the CLI itself needs ~100 ms of loading (commander, the mount and format code) before
 * it has the container open. So `vault mount` (src/cli/main.ts) starts the server first thing,
 * before it loads anything else (prelaunchServer), with /dev/null where the log, the container and
 * the key pipe go (fds 1 to 4). Once the CLI has opened and locked the container and made the
 * volume directory, it hands the server those three descriptors over the config socket (fd 6,
 * SCM_RIGHTS; spawn.ts), and the server puts them in their places (main.ts) before it reads its
 * config, as if it had been launched with them. Everything after that is protocol.ts unchanged.
 *
 * A server launched early that is never handed anything (the mount failed first, or the command
 * was a usage error) is killed when the CLI exits; a CLI that dies without its exit handlers leaves
 * it end of file on that socket, on which it exits itself. Either way it never had a container, a
 * log or a key. It holds no reference on the CLI's event loop meanwhile.
 *
 * This module is small on purpose: the CLI imports it before anything else.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { envValue, type EnvName } from '../env.js';
import { SERVER_ENTRY } from '../system/entries.js';
import { toolPath } from '../mount/run.js';
import { AWAIT_FDS_FLAG, SERVER_FD } from './protocol.js';

/** Server tuning for benchmarks, read by tuningFromEnv() in native-frontend.ts; nothing else of
 *  the CLI's environment reaches the server but a user's system bus (systemBusEnv). */
const TUNING_ENV: EnvName[] = ['VAULT_FUSE_THREADS', 'VAULT_FUSE_MAX_REQUEST', 'VAULT_FUSE_DIRECT_IO', 'VAULT_FUSE_BUFFERED_WRITES'];

function tuningEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of TUNING_ENV) {
    const v = envValue(k);
    if (v !== undefined && /^[0-9]{1,9}$/.test(v)) env[k] = v;
  }
  return env;
}

/**
 * An ordinary user's server dismounts its own volume when idle (idle.ts) through that user's route:
 * for udisks, over the system bus the CLI mounted through (DBUS_SYSTEM_BUS_ADDRESS, when set). A
 * root server never talks D-Bus and gets nothing.
 */
function systemBusEnv(): Record<string, string> {
  const address = process.env.DBUS_SYSTEM_BUS_ADDRESS;
  return (process.geteuid?.() ?? 0) !== 0 && address ? { DBUS_SYSTEM_BUS_ADDRESS: address } : {};
}

/** Spawns `node <entry> <args>` as a volume server: detached, in /, with a minimal environment. */
export function spawnServer(entry: string, args: string[], stdio: StdioOptions): ChildProcess {
  return spawn(process.execPath, [entry, ...args], {
    detached: true, // its own session: it outlives the CLI and ignores the terminal's signals
    // Not the CLI's directory: a server whose cwd lay inside another vault volume would keep
    // that volume busy, and a forced dismount of it would end this server.
    cwd: '/',
    stdio,
    env: { PATH: toolPath(), LANG: 'C', ...tuningEnv(), ...systemBusEnv() },
  });
}

interface Early {
  child: ChildProcess;
  entry: string;
}

let early: Early | null = null;

/** Unref'd or ref'd again: a server launched early must not keep a CLI alive that is done. */
function setRef(child: ChildProcess, on: boolean): void {
  for (const fd of [SERVER_FD.status, SERVER_FD.config]) {
    const s = (child.stdio as unknown[])[fd] as { ref?: () => void; unref?: () => void } | null;
    if (on) s?.ref?.();
    else s?.unref?.();
  }
  if (on) child.ref();
  else child.unref();
}

/**
 * Starts a server that waits for its descriptors (AWAIT_FDS_FLAG). Best effort: if the spawn
 * fails, launchServer() later starts one the usual way. `entry` is the server's script
 * (src/system/entries.ts), except in tests.
 */
export function prelaunchServer(entry = SERVER_ENTRY): ChildProcess | null {
  if (early) return early.child;
  let devNull = -1;
  try {
    devNull = openSync('/dev/null', 'r+');
    const child = spawnServer(entry, [AWAIT_FDS_FLAG], ['ignore', devNull, devNull, devNull, devNull, 'pipe', 'pipe']);
    child.on('error', () => undefined); // reported as "no pid" by takePrelaunched
    // A server that dies with the descriptors' byte unread resets the socket (ECONNRESET): what
    // happened is its status's to say (spawn.ts), not an uncaught error of the CLI's.
    ((child.stdio as unknown[])[SERVER_FD.config] as NodeJS.EventEmitter | null)?.on('error', () => undefined);
    setRef(child, false);
    early = { child, entry };
    // Not needed after all (the mount failed before it had a volume, or it was a usage error): it
    // would see end of file and exit by itself, but only once its code has loaded; stop it with us.
    process.once('exit', () => early?.child.kill('SIGKILL'));
    return child;
  } catch {
    early = null;
    return null;
  } finally {
    if (devNull >= 0) closeSync(devNull);
  }
}

/**
 * The server launched early for `entry`, alive and not yet handed out, ref'd again (the caller
 * now waits on it); null if there is none. A dead one is dropped.
 */
export function takePrelaunched(entry: string): ChildProcess | null {
  const e = early;
  if (!e || e.entry !== entry) return null;
  early = null;
  const c = e.child;
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return null;
  setRef(c, true);
  return c;
}

/** The CLI's own end of a server's config socket, as a descriptor (for sendFds), or null. */
export function configSocketFd(child: ChildProcess): number | null {
  const s = (child.stdio as unknown[])[SERVER_FD.config] as { _handle?: { fd?: unknown } } | null;
  const fd = s?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}
