/**
 * A real unprivileged local user for attack tests (issue 13): created once with useradd, kept for
 * later runs (it owns nothing but its home), and processes run as it through setpriv with a clean
 * environment. Tests that use it reproduce what an ordinary user can do while root runs vault.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, chownSync } from 'node:fs';

export interface LocalUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

const created = new Map<string, LocalUser>();

/** The user NAME (made with a home directory if missing). Needs root. */
export function localUser(name = 'vault-mallory'): LocalUser {
  const known = created.get(name);
  if (known) return known;
  if (spawnSync('id', ['-u', name]).status !== 0) {
    const r = spawnSync('useradd', ['--create-home', '--shell', '/bin/sh', '--user-group', name], { encoding: 'utf8' });
    if (r.status !== 0 && spawnSync('id', ['-u', name]).status !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
  }
  const id = (flag: string) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  const home = spawnSync('sh', ['-c', 'getent passwd "$1" | cut -d: -f6', 'sh', name], { encoding: 'utf8' }).stdout.trim();
  const user = { name, uid: id('-u'), gid: id('-g'), home };
  mkdirSync(home, { recursive: true, mode: 0o700 });
  chownSync(home, user.uid, user.gid);
  created.set(name, user);
  return user;
}

function asUserArgv(user: LocalUser, cmd: string, args: string[]): string[] {
  return ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--reset-env', '--', cmd, ...args];
}

/** Runs CMD as USER and waits for it. */
export function runAs(user: LocalUser, cmd: string, args: string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync('setpriv', asUserArgv(user, cmd, args), { encoding: 'utf8', input, timeout: 120_000, cwd: '/' });
}

/** Starts CMD as USER in the background (a racer); the caller kills it. */
export function spawnAs(user: LocalUser, cmd: string, args: string[]): ChildProcess {
  return spawn('setpriv', asUserArgv(user, cmd, args), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
}
