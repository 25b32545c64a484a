/**
 * Runs system tools (losetup, mount, mkfs.*, blkid) without a shell. Arguments never contain secrets.
 * Failures become VaultErrors that name the tool and carry its first stderr line.
 */
import { spawnSync } from 'node:child_process';
import { VaultError, type ErrorCode } from '../errors.js';

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * PATH for system tools: the caller's, plus the sbin directories, which `su` without `-` and some
 * sudo setups leave out although losetup, mkfs.* and blkid live there.
 */
export function toolPath(): string {
  const parts = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (!parts.includes(d)) parts.push(d);
  return parts.join(':');
}

/** Runs a command; returns its result whatever the exit status. Throws only if it cannot start. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; fd3?: number; env?: Record<string, string> } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    // fd3: a descriptor the tool gets as its fd 3, e.g. a pinned mount point (src/mount/pinned.ts).
    ...(opts.fd3 !== undefined ? { stdio: ['pipe', 'pipe', 'pipe', opts.fd3] } : {}),
    timeout: opts.timeoutMs ?? 120_000,
    env: opts.env ?? { ...process.env, PATH: toolPath(), LC_ALL: 'C' },
  });
  if (r.error) {
    const e = r.error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT')
      throw new VaultError('missing-component', `${cmd} is not installed`, 'run `sudo scripts/setup-system.sh` to install what vault needs');
    throw new VaultError('io', `${cmd} failed to run: ${e.message}`);
  }
  return { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command and throws a VaultError (default code: io) when it exits non-zero. */
export function runOk(cmd: string, args: readonly string[], code: ErrorCode = 'io', opts: { input?: string; timeoutMs?: number } = {}): RunResult {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    const detail = firstLine(r.stderr) || firstLine(r.stdout) || `exit status ${r.status}`;
    throw new VaultError(code, `${cmd} failed: ${detail}`);
  }
  return r;
}

export function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}
