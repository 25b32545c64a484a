/**
 * What an ordinary user's vault volumes can leave behind (issue 15), for the rootless e2e suites
 * to check after every test: mounts under the user's run dir, /media/<user> or ~/Vaults, loop
 * devices backed by a block file in /run/user/<uid>/vault, volume servers whose log lies there,
 * and state directories. userProcesses() lists every process still running as the user, for tests
 * that start long-running helpers of theirs (`vault watch` and its gdbus and systemd-inhibit).
 */
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { LocalUser } from './unprivileged.js';

/** Whether a /proc/<pid>/cmdline is a vault volume server's: dist/src's module or the bundle
 *  (src/system/entries.ts). Its argv names only its volume id; callers tell whose it is by its log. */
export function isServerCmdline(cmdline: string): boolean {
  return cmdline.includes('dist/src/server/main.js') || cmdline.includes('dist/bundle/vault-server.cjs');
}

/** The user's XDG_RUNTIME_DIR, as logind would make it. */
export function runtimeDir(u: LocalUser): string {
  return `/run/user/${u.uid}`;
}

/** What a user's volumes can leave behind: mounts, loop devices on their block files, servers, state. */
export function userLeftovers(u: LocalUser): string[] {
  const found: string[] = [];
  const run = path.join(runtimeDir(u), 'vault');
  const ours = (p: string) => p.startsWith(run + '/') || p.startsWith(`/media/${u.name}/`) || p.startsWith(path.join(u.home, 'Vaults') + '/');
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = (line.split(' ')[4] ?? '').replace(/\\040/g, ' ');
    if (ours(mp)) found.push(`mount ${mp}`);
  }
  for (const l of readdirSync('/sys/block').filter((d) => d.startsWith('loop'))) {
    try {
      const backing = readFileSync(`/sys/block/${l}/loop/backing_file`, 'utf8').trim();
      // "/volume": a vault block file whose FUSE mount is gone (detached), the loop device left over.
      if (backing.startsWith(run + '/') || backing === '/volume') found.push(`loop ${l} → ${backing}`);
    } catch {
      // not bound
    }
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!isServerCmdline(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) continue;
      if (readlinkSync(`/proc/${pid}/fd/1`).startsWith(run + '/')) found.push(`server ${pid}`);
    } catch {
      // exited meanwhile
    }
  }
  if (existsSync(run)) for (const d of readdirSync(run)) if (d !== 'locks') found.push(`state ${run}/${d}`);
  return found;
}

/** Every live process whose real uid is the user's, but those in `except`: "pid (command line)". */
export function userProcesses(u: LocalUser, except: readonly number[] = []): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (except.includes(Number(pid))) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== u.uid || /^State:\s+Z/m.test(status)) continue;
      found.push(`process ${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()})`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}
