/**
 * Starts a volume server (src/server/main.ts) as a detached process and waits until it serves.
 * The key goes through a pipe straight from native memory to native memory; the container's
 * descriptor (with its flock) is inherited. See protocol.ts.
 *
 * Two steps, so that Node's start-up in the server (~100 ms) overlaps the CLI's own work: launch
 * as soon as the container is open (the server hardens itself and waits for its config), or hand
 * its descriptors to the server `vault mount` started before it loaded anything (prelaunch.ts);
 * hand the config and the key over once the volume is unlocked. A launch that is never handed over is
 * abandoned: its pipes close, and the server exits without having seen a key.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { URING_HINT } from '../system/capabilities.js';
import type { KeyHandle } from '../crypto/key-handle.js';
import { makePipe } from '../crypto/process-hardening.js';
import { nativeAddon } from '../crypto/native.js';
import { processStartTime } from '../mount/state.js';
import { SERVER_ENTRY } from '../system/entries.js';
import { configSocketFd, spawnServer, takePrelaunched } from './prelaunch.js';
import { SERVER_FD, type FuseTransport, type ServerConfig, type ServerStatus } from './protocol.js';

const READY_TIMEOUT_MS = 30_000;
/** How long a closed status pipe waits for the server's exit status, to name it in the error. */
const EXIT_WAIT_MS = 1000;

export interface StartedServer {
  pid: number;
  startTime: string;
  blockFile: string;
  transport: FuseTransport;
}

/** A server process that runs and waits for its config and key (launchServer). */
export interface LaunchedServer {
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Write end of the key pipe, -1 once closed. */
  keyFd: number;
  /** Settles with the server's status line, or with why there is none; arms its timeout on demand. */
  readonly status: { promise: Promise<ServerStatus>; arm(): void };
}

/**
 * Launches the server, or hands its descriptors to the one `vault mount` started early
 * (prelaunch.ts). `entry` is the server's script (src/system/entries.ts), except in the tests
 * of a server that dies during its start (test/unit/server-spawn.test.ts).
 */
export function launchServer(volumeId: string, containerFd: number, logFile: string, entry = SERVER_ENTRY): LaunchedServer {
  const logFd = openSync(logFile, 'a', 0o600);
  // The key moves from locked memory to locked memory through a raw pipe.
  const pipe = makePipe();
  let child: ChildProcess;
  try {
    // The config goes through fd 6, not argv (protocol.ts); the id only names the run directory.
    child =
      handToPrelaunched(entry, [logFd, containerFd, pipe[0]]) ??
      spawnServer(entry, ['--volume', volumeId], ['ignore', logFd, logFd, containerFd, pipe[0], 'pipe', 'pipe']);
  } catch (e) {
    closeSync(pipe[1]);
    throw e;
  } finally {
    closeSync(logFd);
    closeSync(pipe[0]);
  }
  return { logFile, child, keyFd: pipe[1], status: watchStatus(child) };
}

/**
 * Sends the log, the container and the key pipe's read end to a server started early, which now
 * holds its own copies of them. null when there is none, or it could not take them (it is then
 * killed, having seen nothing): the caller launches one the usual way.
 */
function handToPrelaunched(entry: string, fds: number[]): ChildProcess | null {
  const child = takePrelaunched(entry);
  if (!child) return null;
  const socket = configSocketFd(child);
  if (socket !== null && nativeAddon().sendFds(socket, fds) === 0) return child;
  child.kill('SIGKILL');
  return null;
}

/** Sends the config and the key to a launched server and waits until it serves. */
export async function handOver(s: LaunchedServer, config: ServerConfig, key: KeyHandle): Promise<StartedServer> {
  s.status.arm();
  const configPipe = configStream(s);
  // A server that died before reading its pipes makes these writes fail (EPIPE, ECONNRESET). Its
  // status then says what happened; the failed writes themselves say nothing more.
  configPipe.on('error', () => undefined);
  configPipe.end(JSON.stringify(config));
  let keySent = true;
  try {
    key.writeToFd(s.keyFd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
    keySent = false;
  } finally {
    closeKeyPipe(s);
  }
  let status = await s.status.promise;
  if (status.ok && !keySent) {
    // Not our server's behaviour (it reads the key before it serves): stop it, never use it.
    s.child.kill('SIGKILL');
    status = { ok: false, code: 'internal', message: 'the volume server reported ready without taking the key' };
  }
  s.child.unref();
  if (!status.ok) {
    const code = status.code === 'mount-failed' || status.code === 'missing-component' ? status.code : 'internal';
    throw new VaultError(code, code === 'internal' ? withLogCause(status.message, s.logFile) : status.message, code === 'missing-component' ? URING_HINT : START_FAILED_HINT);
  }
  const startTime = processStartTime(status.pid);
  if (!startTime) throw new VaultError('internal', withLogCause('the volume server exited right after starting', s.logFile), START_FAILED_HINT);
  return { pid: status.pid, startTime, blockFile: status.blockFile, transport: status.transport };
}

/**
 * Gives up on a launched server before handing anything over, and waits until it is gone, so that
 * a failed mount leaves no process behind. It never saw a key: its pipes close and it is killed.
 */
export async function abandonServer(s: LaunchedServer): Promise<void> {
  configStream(s).end();
  closeKeyPipe(s);
  ((s.child.stdio as unknown[])[SERVER_FD.status] as { destroy(): void }).destroy();
  if (s.child.exitCode === null && s.child.signalCode === null) {
    const gone = new Promise<void>((resolve) => s.child.once('exit', () => resolve()));
    s.child.kill('SIGKILL');
    await gone;
  }
}

export async function startServer(config: ServerConfig, containerFd: number, key: KeyHandle, logFile: string): Promise<StartedServer> {
  return handOver(launchServer(config.volumeId, containerFd, logFile), config, key);
}

const START_FAILED_HINT = 'run `vault doctor` to check the installation (`npm run build` rebuilds it); report it if it persists';

/** Node's line for an uncaught error: `Error [ERR_MODULE_NOT_FOUND]: …`, `SyntaxError: …`. */
const NODE_ERROR_LINE = /^[A-Za-z]*Error\b/;

/** How many bytes of the end of a server's log serverLogCause reads. */
const LOG_TAIL_BYTES = 16 * 1024;

/**
 * The line of a server's log that says why it stopped: Node's error line for a server that died
 * before its own code ran (a module missing, a broken build), else the last line the server
 * wrote. Null when the log is empty or unreadable.
 */
export function serverLogCause(logFile: string): string | null {
  let text: string;
  try {
    const fd = openSync(logFile, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, LOG_TAIL_BYTES));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      text = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^Node\.js v/.test(l) && !l.startsWith('at ') && l !== '^');
  const line = [...lines].reverse().find((l) => NODE_ERROR_LINE.test(l)) ?? lines.at(-1);
  return line === undefined ? null : line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * The log goes with the volume directory when the failed mount is undone: what it says is quoted
 * in the error, where the user sees it.
 */
function withLogCause(message: string, logFile: string): string {
  const why = serverLogCause(logFile);
  if (why === null) return message;
  return NODE_ERROR_LINE.test(why) ? `${message}: ${why}` : `${message}; its log ends with: ${why}`;
}

function configStream(s: LaunchedServer): NodeJS.WritableStream {
  return (s.child.stdio as unknown[])[SERVER_FD.config] as NodeJS.WritableStream;
}

function closeKeyPipe(s: LaunchedServer): void {
  if (s.keyFd < 0) return;
  closeSync(s.keyFd);
  s.keyFd = -1;
}

/** Collects the status line from the moment of launch; the timeout counts from arm() (the handover). */
function watchStatus(child: ChildProcess): LaunchedServer['status'] {
  const stream = (child.stdio as unknown[])[SERVER_FD.status] as NodeJS.ReadableStream & { destroy(): void };
  let timer: NodeJS.Timeout | undefined;
  let finish: (s: ServerStatus) => void = () => undefined;
  const promise = new Promise<ServerStatus>((resolve) => {
    let text = '';
    let exit = '';
    let done = false;
    finish = (s: ServerStatus) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.removeAllListeners();
      stream.destroy();
      child.removeAllListeners('exit');
      resolve(s);
    };
    stream.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        finish(JSON.parse(text.slice(0, nl)) as ServerStatus);
      } catch {
        finish({ ok: false, code: 'internal', message: 'the volume server sent a malformed status' });
      }
    });
    // The status pipe closes when the server reported or died; decide there, not on 'exit',
    // because 'exit' can arrive before the last status bytes are read.
    child.on('exit', (code, signal) => (exit = signal ?? `status ${code}`));
    // The pipe can close a moment before the exit is seen: wait for it (briefly) to say how it ended.
    stream.on('end', () => {
      const died = () => finish({ ok: false, code: 'internal', message: `the volume server exited during start${exit ? ` (${exit})` : ''}` });
      if (exit || child.exitCode !== null || child.signalCode !== null) return died();
      const wait = setTimeout(died, EXIT_WAIT_MS);
      child.once('exit', () => {
        clearTimeout(wait);
        died();
      });
    });
  });
  const arm = () => {
    timer ??= setTimeout(() => {
      child.kill('SIGKILL');
      finish({ ok: false, code: 'internal', message: 'the volume server did not start in time' });
    }, READY_TIMEOUT_MS);
  };
  return { promise, arm };
}
