/**
 * Which processes keep a mounted filesystem busy, and ending them on request.
 *
 * Matching is by device number, not by path: that also catches files deleted while open, files
 * reached through bind mounts, and processes in other mount namespaces. Processes come and go
 * during a scan, so every /proc read may fail with ENOENT/ESRCH; such processes are skipped.
 */
import { fstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { devnoOf, findMount, parseMountInfo, withVerifiedMount, type MountEntry } from './filesystem.js';

export type HolderReason = 'open file' | 'cwd' | 'root' | 'mapped file';

export interface Holder {
  pid: number;
  /** Short process name (/proc/<pid>/comm). */
  command: string;
  reason: HolderReason;
  /** Start time in clock ticks since boot; lets endProcesses avoid signalling a recycled pid. */
  startTime?: number;
}

/** Most telling reason first: that is the one reported when a process has several. */
const REASON_ORDER: readonly HolderReason[] = ['open file', 'cwd', 'root', 'mapped file'];
const POLL_MS = 25;
const KILL_WAIT_MS = 5000;

/**
 * Processes (other than this one) using a mounted filesystem; one entry per process. A path means
 * the mount there now; a mountinfo entry means exactly that mount: its device number comes from
 * the mount verified by descriptor (withVerifiedMount), never from a stat of a path that may have
 * been redirected to `/`, which would make every process a "holder" for --force to kill.
 */
export function findHolders(target: string | MountEntry): Holder[] {
  // Without this check, a plain directory would match every process using its parent filesystem.
  const entry = typeof target === 'string' ? findMount(path.resolve(target)) : target;
  if (entry === null) throw new VaultError('not-mounted', `${path.resolve(target as string)} is not a mount point`);
  const mp = entry.mountpoint;
  let devno: string | null;
  try {
    devno = withVerifiedMount(entry, (_p, _n, root) => devnoOf(fstatSync(root.fd, { bigint: true }).dev));
  } catch (e) {
    throw new VaultError('io', `cannot stat ${mp}: ${(e as Error).message}`);
  }
  if (devno === null) throw new VaultError('not-mounted', `${mp} is no longer mounted`);

  const mountIds = new MountIdResolver();
  const holders: Holder[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    try {
      const reason = holdReason(pid, devno, mp, mountIds);
      if (reason === null) continue;
      const stat = readProcStat(pid);
      if (stat === null || stat.state === 'Z' || stat.state === 'X') continue;
      holders.push({ pid, command: readComm(pid), reason, startTime: stat.startTime });
    } catch (e) {
      if (isVanished(e)) continue;
      throw new VaultError('io', `cannot inspect process ${pid}: ${(e as Error).message}`, undefined, { cause: e });
    }
  }
  return holders;
}

/**
 * SIGTERM each holder, wait up to graceMs for them to exit, then SIGKILL the rest and wait for them
 * to vanish. `survived` lists processes that outlived SIGKILL (e.g. stuck in uninterruptible I/O).
 */
export async function endProcesses(
  holders: Holder[],
  graceMs = 3000,
): Promise<{ terminated: Holder[]; killed: Holder[]; survived: Holder[] }> {
  const unique = [...new Map(holders.map((h) => [h.pid, h])).values()];
  for (const h of unique) {
    if (!Number.isInteger(h.pid) || h.pid <= 1 || h.pid === process.pid)
      throw new VaultError('usage', `refusing to signal pid ${h.pid}`);
  }

  const pending = unique.filter(isAlive);
  for (const h of pending) {
    signal(h.pid, 'SIGTERM');
    // A stopped process only acts on SIGTERM once continued.
    signal(h.pid, 'SIGCONT');
  }
  await waitGone(pending, graceMs);

  const stubborn = pending.filter(isAlive);
  for (const h of stubborn) signal(h.pid, 'SIGKILL');
  await waitGone(stubborn, KILL_WAIT_MS);

  const survived = stubborn.filter(isAlive);
  return {
    terminated: unique.filter((h) => !stubborn.includes(h)),
    killed: stubborn.filter((h) => !survived.includes(h)),
    survived,
  };
}

/** E.g. "pid 1234 (bash, cwd), pid 99 (less, open file)"; empty string for no holders. */
export function describeHolders(holders: Holder[]): string {
  return holders.map((h) => `pid ${h.pid} (${h.command}, ${h.reason})`).join(', ');
}

function holdReason(pid: number, devno: string, mp: string, mountIds: MountIdResolver): HolderReason | null {
  const found = new Set<HolderReason>();
  if (fdsOnDevice(pid, devno, mountIds)) found.add('open file');
  if (linkOnDevice(`/proc/${pid}/cwd`, devno)) found.add('cwd');
  if (linkOnDevice(`/proc/${pid}/root`, devno)) found.add('root');
  if (found.size === 0 && mapsOnDevice(pid, devno, mp)) found.add('mapped file');
  return REASON_ORDER.find((r) => found.has(r)) ?? null;
}

function fdsOnDevice(pid: number, devno: string, mountIds: MountIdResolver): boolean {
  const dir = `/proc/${pid}/fd`;
  for (const fd of readdirSync(dir)) {
    try {
      // Sockets, pipes and anonymous inodes ("socket:[…]") cannot live on a mounted filesystem.
      if (!readlinkSync(`${dir}/${fd}`).startsWith('/')) continue;
      // fdinfo names the mount without touching the file: stat() would wait on an unresponsive
      // network or FUSE filesystem that some unrelated process has a file open on.
      const viaMount = mountIds.devnoOfFd(pid, fd);
      if (viaMount !== undefined ? viaMount === devno : devnoOf(statSync(`${dir}/${fd}`, { bigint: true }).dev) === devno)
        return true;
    } catch (e) {
      if (!isVanished(e)) throw e; // that descriptor was closed meanwhile
    }
  }
  return false;
}

function linkOnDevice(link: string, devno: string): boolean {
  return devnoOf(statSync(link, { bigint: true }).dev) === devno;
}

function mapsOnDevice(pid: number, devno: string, mp: string): boolean {
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    // address perms offset dev inode [path]
    const m = /^\S+ \S+ \S+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m || m[3] === '0') continue;
    if (`${parseInt(m[1]!, 16)}:${parseInt(m[2]!, 16)}` === devno) return true;
    // Some filesystems report another device in maps than in stat(); the path still tells.
    const file = m[4]!.replace(/ \(deleted\)$/, '');
    if (file === mp || file.startsWith(`${mp}/`)) return true;
  }
  return false;
}

/** Maps an fd's mnt_id (from /proc/<pid>/fdinfo) to the mounted device, per mount namespace. */
class MountIdResolver {
  private readonly byNamespace = new Map<string, Map<number, string>>();

  devnoOfFd(pid: number, fd: string): string | undefined {
    const m = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    if (!m) return undefined;
    return this.table(pid).get(Number(m[1]));
  }

  private table(pid: number): Map<number, string> {
    const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
    let t = this.byNamespace.get(ns);
    if (t === undefined) {
      // Mount ids are only meaningful within the namespace whose table we read.
      t = new Map(parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).map((e) => [e.id, e.devno]));
      this.byNamespace.set(ns, t);
    }
    return t;
  }
}

function listPids(): number[] {
  try {
    return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
  } catch (e) {
    throw new VaultError('io', `cannot list /proc: ${(e as Error).message}`);
  }
}

function readProcStat(pid: number): { state: string; startTime: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    if (isVanished(e)) return null;
    throw new VaultError('io', `cannot read /proc/${pid}/stat: ${(e as Error).message}`);
  }
  // The command name in parentheses may itself contain spaces and ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '', startTime: Number(rest[19]) };
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch (e) {
    if (isVanished(e)) return '?';
    throw e;
  }
}

/** Alive, not a zombie (which holds nothing any more), and not a new process that reused the pid. */
function isAlive(h: Holder): boolean {
  const s = readProcStat(h.pid);
  if (s === null || s.state === 'Z' || s.state === 'X') return false;
  return h.startTime === undefined || s.startTime === h.startTime;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw new VaultError('privilege', `cannot send ${sig} to pid ${pid}: ${(e as Error).message}`);
  }
}

async function waitGone(holders: Holder[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (holders.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
}

function isVanished(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR' || code === 'EINVAL';
}
