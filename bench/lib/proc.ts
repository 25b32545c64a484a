/**
 * Child processes of the benchmark, and what an interrupt does to them.
 *
 * Every child runs in its own process group (`detached: true`). That is deliberate: a Ctrl-C on
 * the terminal then reaches only this process, which forwards SIGINT to the step in progress (fio
 * stops, `vault mount` undoes itself) and afterwards runs the cleanup with children that a second
 * Ctrl-C cannot kill half-way (an interrupted `umount` or `losetup -d` is exactly what would leave
 * something behind). Children are always asynchronous so the signal handler can run while they do.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export class Interrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'Interrupted';
  }
}

export class StepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepError';
  }
}

const live = new Set<ChildProcess>();
let interrupted = false;

/** Marks the run as interrupted and passes `signal` to the process group of every running step. */
export function interrupt(signal: NodeJS.Signals = 'SIGINT'): void {
  interrupted = true;
  for (const c of live) {
    if (c.pid === undefined) continue;
    try {
      process.kill(-c.pid, signal);
    } catch {
      // already gone
    }
  }
}

export function isInterrupted(): boolean {
  return interrupted;
}

export function checkInterrupted(): void {
  if (interrupted) throw new Interrupted();
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL the process group after this long. */
  timeoutMs?: number;
  /** A cleanup step: runs even after an interrupt, and its result is returned rather than thrown. */
  cleanup?: boolean;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** spawn failure (ENOENT) or timeout. */
  error?: string;
}

export function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  if (!o.cleanup) checkInterrupted();
  const command = [cmd, ...args].join(' ');
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(o.env ? { env: o.env } : {}),
        ...(o.cwd ? { cwd: o.cwd } : {}),
      });
    } catch (e) {
      resolve({ command, code: null, signal: null, stdout: '', stderr: '', ms: 0, error: (e as Error).message });
      return;
    }
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let error: string | undefined;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    // EPIPE when a child exits without reading its stdin is not our failure; its exit code tells.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(o.input ?? '');
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            error = `timed out after ${Math.round(o.timeoutMs! / 1000)} s`;
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              // gone
            }
          }, o.timeoutMs);
    child.on('error', (e) => {
      // spawn failed (ENOENT): there will be no 'exit', only 'close'.
      error = e.message;
    });
    let settled = false;
    // The step's duration ends when the process exits, not when its pipes are drained.
    let exitedAt: bigint | null = null;
    const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      live.delete(child);
      if (timer) clearTimeout(timer);
      child.stdout!.destroy();
      child.stderr!.destroy();
      const r: RunResult = {
        command,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Number((exitedAt ?? process.hrtime.bigint()) - t0) / 1e6,
        ...(error !== undefined ? { error } : {}),
      };
      // A step killed by our own interrupt is not a failure of what it measured.
      if (interrupted && !o.cleanup) reject(new Interrupted());
      else resolve(r);
    };
    child.on('close', settle);
    // A daemonising child (gocryptfs) can leave its stdio with the daemon, so 'close' would wait for
    // the unmount. Once the child itself has exited, give its output a moment to drain and go on.
    child.on('exit', (code, signal) => {
      exitedAt = process.hrtime.bigint();
      setTimeout(() => settle(code, signal), 500);
    });
  });
}

export function describeFailure(r: RunResult): string {
  const why = r.error ?? (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-4).join(' | ');
  return `\`${r.command}\` failed (${why})${tail ? `: ${tail}` : ''}`;
}

/**
 * Runs commands as someone else (an ordinary user, through setpriv): the command line that does it,
 * the working directory that user can enter, and the environment it gets (setpriv --reset-env
 * clears the caller's, so the variables travel on the command line through env(1)).
 */
export interface AsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** cmd and args, wrapped: [program, ...arguments] to spawn instead. */
  argv(cmd: string, args: readonly string[], extraEnv?: Readonly<Record<string, string>>): string[];
  readonly cwd: string;
}

/** run(), as `as` when given (the step's command line then shows the wrapper too). */
export function runAs(as: AsUser | undefined, cmd: string, args: readonly string[], o: RunOptions = {}, extraEnv?: Readonly<Record<string, string>>): Promise<RunResult> {
  if (!as) return run(cmd, args, o);
  const [prog, ...rest] = as.argv(cmd, args, extraEnv);
  return run(prog!, rest, { ...o, cwd: o.cwd ?? as.cwd });
}

/** Runs and throws a StepError unless the command exits 0. */
export async function runOk(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, o);
  if (r.code !== 0 || r.error !== undefined) throw new StepError(describeFailure(r));
  return r;
}
