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

/** Where root finds system tools: the directories only root can write (sudo's secure_path). */
export const TRUSTED_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * PATH for system tools. As root only TRUSTED_PATH: a caller's PATH may name a directory another
 * user writes (`su` without `-` keeps the user's environment), and root would run that user's
 * `losetup` or `mount`. Otherwise the caller's, plus the sbin directories, which some setups leave
 * out although losetup, mkfs.* and blkid live there.
 */
export function toolPath(euid: number = process.geteuid?.() ?? 0): string {
  if (euid === 0) return TRUSTED_PATH;
  const parts = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const d of TRUSTED_PATH.split(':')) if (!parts.includes(d)) parts.push(d);
  return parts.join(':');
}

/**
 * The environment of a system tool: PATH and the C locale, nothing else of the caller's. LD_PRELOAD,
 * LD_LIBRARY_PATH, BLKID_CONF, LIBMOUNT_* and the like would otherwise steer what root runs.
 */
export function toolEnv(): Record<string, string> {
  return { PATH: toolPath(), LC_ALL: 'C' };
}

/** Runs a command; returns its result whatever the exit status. Throws only if it cannot start. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; fd3?: number; env?: Record<string, string> } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    // fd3: a descriptor the tool gets as its fd 3, e.g. a pinned mount point (src/mount/pinned.ts).
    ...(opts.fd3 !== undefined ? { stdio: ['pipe', 'pipe', 'pipe', opts.fd3] } : {}),
    timeout: opts.timeoutMs ?? 120_000,
    env: opts.env ?? toolEnv(),
  });
  if (r.error) {
    const e = r.error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT')
      throw new VaultError('missing-component', `${cmd} is not installed`, '`vault doctor` says what is missing and how to install it (`sudo scripts/setup-system.sh` installs everything)');
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
