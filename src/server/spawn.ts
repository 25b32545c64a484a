/**
 * Starts a volume server (src/server/main.ts) as a detached process and waits until it serves.
 * The key goes through a pipe straight from native memory to native memory; the container's
 * descriptor (with its flock) is inherited. See protocol.ts.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VaultError } from '../errors.js';
import type { KeyHandle } from '../crypto/key-handle.js';
import { makePipe } from '../crypto/process-hardening.js';
import { processStartTime } from '../mount/state.js';
import { toolPath } from '../mount/run.js';
import { SERVER_FD, type FuseTransport, type ServerConfig, type ServerStatus } from './protocol.js';

const SERVER_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;

export interface StartedServer {
  pid: number;
  startTime: string;
  blockFile: string;
  transport: FuseTransport;
}

export async function startServer(config: ServerConfig, containerFd: number, key: KeyHandle, logFile: string): Promise<StartedServer> {
  const logFd = openSync(logFile, 'a', 0o600);
  // The key moves from locked memory to locked memory through a raw pipe.
  const pipe = makePipe();
  let child;
  try {
    // The config goes through fd 6, not argv (protocol.ts); the id only names the run directory.
    child = spawn(process.execPath, [SERVER_MAIN, '--volume', config.volumeId], {
      detached: true, // its own session: it outlives the CLI and ignores the terminal's signals
      // Not the CLI's directory: a server whose cwd lay inside another vault volume would keep
      // that volume busy, and a forced dismount of it would end this server.
      cwd: '/',
      stdio: ['ignore', logFd, logFd, containerFd, pipe[0], 'pipe', 'pipe'],
      env: { PATH: toolPath(), LANG: 'C' },
    });
  } finally {
    closeSync(logFd);
    closeSync(pipe[0]);
  }
  ((child.stdio as unknown[])[SERVER_FD.config] as NodeJS.WritableStream).end(JSON.stringify(config));
  try {
    key.writeToFd(pipe[1]);
  } finally {
    closeSync(pipe[1]);
  }
  const status = await readStatus(child);
  child.unref();
  if (!status.ok) {
    const code = status.code === 'mount-failed' || status.code === 'missing-component' ? status.code : 'internal';
    throw new VaultError(code, status.message, code === 'missing-component' ? 'as root: `vault uring enable`, or VAULT_FUSE_TRANSPORT=auto' : `see ${logFile}`);
  }
  const startTime = processStartTime(status.pid);
  if (!startTime) throw new VaultError('internal', 'the volume server exited right after starting', `see ${logFile}`);
  return { pid: status.pid, startTime, blockFile: status.blockFile, transport: status.transport };
}

function readStatus(child: ReturnType<typeof spawn>): Promise<ServerStatus> {
  const stream = (child.stdio as unknown[])[SERVER_FD.status] as NodeJS.ReadableStream & { destroy(): void };
  return new Promise((resolve) => {
    let text = '';
    let exit = '';
    let done = false;
    const finish = (s: ServerStatus) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.removeAllListeners();
      stream.destroy();
      child.removeAllListeners('exit');
      resolve(s);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ ok: false, code: 'internal', message: 'the volume server did not start in time' });
    }, READY_TIMEOUT_MS);
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
    stream.on('end', () =>
      finish({ ok: false, code: 'internal', message: `the volume server exited during start${exit ? ` (${exit})` : ''}` }),
    );
  });
}
