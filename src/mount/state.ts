/**
 * The registry of mounted volumes: one directory per volume under /run/vault (tmpfs, so it never
 * outlives a reboot), holding state.json, the FUSE mount directory and the server's log.
 *
 *   /run/vault/                 0700
 *   /run/vault/<id>/            0700  the volume's private directory
 *   /run/vault/<id>/state.json  0600  VolumeRecord (no secrets)
 *   /run/vault/<id>/fuse/       0700  the FUSE mount, serving the single block file `volume` (0600)
 *   /run/vault/<id>/server.log  0600  the volume server's log (no secrets)
 *   /run/vault/<id>/server.pid  0600  "<pid> <start time>" of the volume server, written by the
 *                                     server itself first thing, so debris cleanup can stop it
 *   /run/vault/<id>/io-errors.json 0600 IoErrorReport: the container I/O that failed, written by the
 *                                     server when the count changes (`vault list` shows it)
 *   /run/vault/<id>/owner       0600  "<pid> <start time>" of the CLI that is mounting it, so a
 *                                     directory without state.json whose owner died (kill -9
 *                                     mid-mount) is recognised as debris at once
 *
 * VAULT_RUN_DIR overrides /run/vault (used by tests that must not touch real volumes).
 */
import { closeSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { openRegularFile, readHead } from '../system/safe-open.js';
import path from 'node:path';
import type { DismountPolicy } from './policy.js';
import type { FuseTransport } from '../server/protocol.js';
import type { Route } from './route.js';
import { ensurePrivateDir, runDir } from '../system/private-dir.js';
import { envValue } from '../env.js';

export { runDir };

export interface VolumeRecord {
  id: string;
  /** Absolute, symlink-free path of the container. */
  container: string;
  /** `dev:ino` of the container, so the same file reached by another path is recognised. */
  containerId: string;
  /** The volume's UUID where its format has one (vault, LUKS); null for VeraCrypt/TrueCrypt. */
  uuid: string | null;
  /** The container format (src/formats/types.ts FormatName). */
  format: string;
  mountpoint: string | null;
  /** True when vault created the mount point and must remove it on dismount. */
  mountpointCreated: boolean;
  fuseDir: string;
  blockFile: string;
  loopDevice: string | null;
  fsType: string | null;
  readOnly: boolean;
  serverPid: number;
  /** How its server talks to the kernel (absent in records from before the io_uring transport). */
  transport?: FuseTransport;
  /** Start time of the server (/proc/<pid>/stat field 22): guards against a reused pid. */
  serverStartTime: string;
  mountedAt: string;
  /** When the volume closes by itself (absent in records written before policies existed: none). */
  policy?: DismountPolicy;
  /**
   * "<pid> <start time>" of the process that mounted the volume only for a moment (`vault create`
   * formatting through the mount path). If that process dies, nobody else will dismount it.
   */
  transientOwner?: string;
  /**
   * The user the volume was mounted for (SUDO_UID under sudo, else the real uid). Only that user,
   * and plain root, may dismount it (issue 13). Absent in records from before owners: root's.
   */
  ownerUid?: number;
  /**
   * Which mount is the volume's filesystem: its mount id and device ("major:minor") in
   * /proc/self/mountinfo. Dismounting finds the mount by these, never by the path, which whoever
   * owns a directory on it can redirect. Absent in older records and without a filesystem.
   */
  mountId?: number;
  mountDevno?: string;
  /** How the volume reached its user (src/mount/route.ts); absent in older records: root. */
  route?: Route;
  /** Mounted with --allow-discards: trims punch holes in the container (absent in older records: false). */
  allowDiscards?: boolean;
  /** Mounted with --protect-hidden: writes into the hidden volume inside are refused (absent: false). */
  protectHidden?: boolean;
  /** The udisks route's loop device object (/org/freedesktop/UDisks2/block_devices/loopN). */
  udisksObject?: string;
  /**
   * Set when read, never stored: the record lies in an ordinary user's run directory (root's view
   * of everyone's volumes, issue 15). That user wrote it, so root checks every field it acts on.
   */
  userDir?: string;
}

/** Whose volumes a command may act on: one user's (by uid), or everyone's (plain root). */
export type Scope = number | 'all';

export function ownerOf(r: VolumeRecord): number {
  return r.ownerUid ?? 0;
}

export function inScope(r: VolumeRecord, scope: Scope): boolean {
  return scope === 'all' || ownerOf(r) === scope;
}

export function volumeDir(id: string): string {
  return path.join(runDir(), id);
}

/** Web Crypto's generator (a global): node:crypto would be 6 ms of the volume server's start, which imports this module. */
export function newVolumeId(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(4))).toString('hex');
}

/** Creates /run/vault and the volume's private directory, both 0700. */
export function createVolumeDir(id: string): string {
  ensurePrivateDir(runDir()); // refuses a run directory another user made (VAULT_RUN_DIR under /tmp)
  // Built under a temporary name and renamed into place, so a volume directory never exists
  // without its owner file, even when the CLI is killed halfway through making it.
  const dir = volumeDir(id);
  const tmp = path.join(runDir(), `${NEW_DIR_PREFIX}${process.pid}-${id}`);
  mkdirSync(tmp, { mode: 0o700 });
  mkdirSync(path.join(tmp, 'fuse'), { mode: 0o700 });
  writeFileSync(path.join(tmp, 'owner'), `${selfIdentity()}\n`, { mode: 0o600 });
  renameSync(tmp, dir);
  return dir;
}

const NEW_DIR_PREFIX = '.new-';

/** Removes half-made volume directories (see createVolumeDir) of CLIs that no longer run. Nothing is mounted in them. */
export function removeAbandonedNewDirs(): void {
  let names: string[];
  try {
    names = readdirSync(runDir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.new-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (m && processStartTime(Number(m[1])) === null) rmSync(path.join(runDir(), name), { recursive: true, force: true });
  }
}

/**
 * Whether the CLI that created a record-less volume directory is still at work on it. A directory
 * from before owner files existed, or whose owner file is unreadable, counts as in progress until
 * it is two minutes old.
 */
export function mountInProgress(id: string): boolean {
  try {
    return processAlive(readFileSync(path.join(volumeDir(id), 'owner'), 'utf8'));
  } catch {
    return volumeDirAgeMs(id) <= 120_000;
  }
}

/** Written by the volume server as it starts; `fuseDir` is <volume dir>/fuse. Throws if the directory is gone. */
export function writeServerPid(fuseDir: string): void {
  writeFileSync(path.join(path.dirname(fuseDir), 'server.pid'), `${selfIdentity()}\n`, { mode: 0o600, flag: 'wx' });
}

const PROTECTION_TRIPPED = 'protection-tripped';

/** Written by the volume server when hidden-volume protection refused a write (src/server/protection-watch.ts). */
export function markProtectionTripped(fuseDir: string): void {
  writeFileSync(path.join(path.dirname(fuseDir), PROTECTION_TRIPPED), `${new Date().toISOString()}\n`, { mode: 0o600 });
}

/** Whether a mounted volume's hidden-volume protection refused a write (it is read-only since). */
export function protectionTripped(r: Pick<VolumeRecord, 'fuseDir'>): boolean {
  return existsSync(path.join(path.dirname(r.fuseDir), PROTECTION_TRIPPED));
}

const IO_ERRORS = 'io-errors.json';

/** Failed container I/O of a mounted volume, by the host's errno (src/server/io-error-watch.ts). */
export interface IoErrorReport {
  count: number;
  eio: number;
  enospc: number;
  erofs: number;
  other: number;
  /** The latest: what failed (read, write, sync, punch), the host's errno name, the container
   *  offset (null for a sync), and when (ISO 8601, UTC). */
  last: { op: string; errno: string; offset: number | null; at: string } | null;
}

export const NO_IO_ERRORS: IoErrorReport = { count: 0, eio: 0, enospc: 0, erofs: 0, other: 0, last: null };

/** Written by the volume server whenever its count of failed container I/O changes; replaced whole. */
export function writeIoErrors(fuseDir: string, report: IoErrorReport): void {
  const file = path.join(path.dirname(fuseDir), IO_ERRORS);
  writeFileSync(`${file}.tmp`, JSON.stringify(report) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** A mounted volume's failed container I/O (none when its server never wrote any, or its record is
 *  unreadable or malformed). The file is written by the volume's server, which for a volume of the
 *  udisks or fuse route runs as its user: every field is checked before root's `vault list` prints it. */
export function ioErrorsOf(r: Pick<VolumeRecord, 'fuseDir'>): IoErrorReport {
  try {
    return parseIoErrors(JSON.parse(readUserFile(path.join(path.dirname(r.fuseDir), IO_ERRORS))));
  } catch {
    return NO_IO_ERRORS;
  }
}

/** "I/O errors: 3 (last: ENOSPC writing the container at offset 1234, at <time>)", or '' when none. */
export function describeIoErrors(e: IoErrorReport): string {
  if (e.count === 0) return '';
  const verb = { read: 'reading', write: 'writing', sync: 'syncing', punch: 'punching a hole in' } as Record<string, string>;
  const l = e.last;
  const last = l ? ` (last: ${l.errno} ${verb[l.op] ?? l.op} the container${l.offset === null ? '' : ` at offset ${l.offset}`}, at ${l.at})` : '';
  return `I/O errors: ${e.count}${last}`;
}

const OPS = new Set(['read', 'write', 'sync', 'punch']);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** An IoErrorReport from parsed JSON, or NO_IO_ERRORS when any field is not what the server writes. */
export function parseIoErrors(v: unknown): IoErrorReport {
  if (typeof v !== 'object' || v === null) return NO_IO_ERRORS;
  const o = v as Record<string, unknown>;
  const counts = [o.count, o.eio, o.enospc, o.erofs, o.other];
  if (!counts.every(isCount)) return NO_IO_ERRORS;
  let last: IoErrorReport['last'] = null;
  if (o.last !== null) {
    const l = o.last as Record<string, unknown> | undefined;
    if (typeof l !== 'object' || l === null) return NO_IO_ERRORS;
    const okLast =
      typeof l.op === 'string' && OPS.has(l.op) &&
      typeof l.errno === 'string' && /^E[A-Z0-9]{1,15}$|^errno \d{1,4}$/.test(l.errno) &&
      (l.offset === null || isCount(l.offset)) &&
      typeof l.at === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(l.at);
    if (!okLast) return NO_IO_ERRORS;
    last = { op: l.op as string, errno: l.errno as string, offset: l.offset as number | null, at: l.at as string };
  }
  const [count, eio, enospc, erofs, other] = counts as number[];
  return { count: count!, eio: eio!, enospc: enospc!, erofs: erofs!, other: other!, last };
}

/** The server a volume directory names in server.pid, or null. */
export function serverOf(id: string): { pid: number; startTime: string } | null {
  try {
    const [pid, startTime] = readFileSync(path.join(volumeDir(id), 'server.pid'), 'utf8').trim().split(' ');
    return pid && startTime ? { pid: Number(pid), startTime } : null;
  } catch {
    return null;
  }
}

/** This process, as "<pid> <start time>": an identity that a reused pid does not match. */
export function selfIdentity(): string {
  return `${process.pid} ${processStartTime(process.pid)}`;
}

/** Whether the process named by selfIdentity() still runs. */
export function processAlive(identity: string): boolean {
  const [pid, start] = identity.trim().split(' ');
  return processStartTime(Number(pid)) === start;
}

export function saveRecord(r: VolumeRecord): void {
  const file = path.join(volumeDir(r.id), 'state.json');
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file); // atomic: readers see the old or the new record, never half of one
}

export function removeVolumeDir(id: string): void {
  rmSync(volumeDir(id), { recursive: true, force: true });
}

export type RecordRead = { ok: true; record: VolumeRecord } | { ok: false; id: string; error: string };

/** Every volume directory, with its record or the reason it has none (a mount in progress, or debris). */
export function readRecords(): RecordRead[] {
  let ids: string[];
  try {
    ids = readdirSync(runDir());
  } catch {
    return [];
  }
  const out: RecordRead[] = [];
  for (const id of ids.sort()) {
    if (!/^[0-9a-f]{8}$/.test(id)) continue;
    try {
      const record = JSON.parse(readFileSync(path.join(volumeDir(id), 'state.json'), 'utf8')) as VolumeRecord;
      out.push({ ok: true, record });
    } catch (e) {
      out.push({ ok: false, id, error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Root's view of ordinary users' volumes: the records under /run/user/<uid>/vault (their
 * $XDG_RUNTIME_DIR), each in a directory that uid owns. Only with the default run directory: a
 * test's VAULT_RUN_DIR sees its own volumes only.
 */
export function userRecords(): VolumeRecord[] {
  if ((process.geteuid?.() ?? 0) !== 0 || envValue('VAULT_RUN_DIR')) return [];
  const out: VolumeRecord[] = [];
  let uids: string[];
  try {
    uids = readdirSync('/run/user');
  } catch {
    return [];
  }
  for (const u of uids) {
    if (!/^\d+$/.test(u) || u === '0') continue;
    const base = path.join('/run/user', u, 'vault');
    let ids: string[];
    try {
      const st = lstatSync(base);
      if (!st.isDirectory() || st.uid !== Number(u)) continue;
      ids = readdirSync(base);
    } catch {
      continue;
    }
    for (const id of ids) {
      if (!/^[0-9a-f]{8}$/.test(id)) continue;
      try {
        const r = JSON.parse(readUserFile(path.join(base, id, 'state.json'))) as VolumeRecord;
        const dir = path.join(base, id);
        // The owner is the directory's, whatever the record says; the paths must be its own.
        out.push({ ...r, id, ownerUid: Number(u), userDir: dir, fuseDir: path.join(dir, 'fuse'), blockFile: path.join(dir, 'fuse', 'volume') });
      } catch {
        // unreadable or half-written: the user's own vault clears it
      }
    }
  }
  return out;
}

/** A user's file, read by root: never through a symlink, never hanging on a FIFO, bounded. */
function readUserFile(file: string): string {
  const { fd, size } = openRegularFile(file, 'volume record');
  try {
    if (size > MAX_RECORD_BYTES) throw new Error(`${file} is too large`);
    return readHead(fd, MAX_RECORD_BYTES).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** A record is about a kilobyte. */
const MAX_RECORD_BYTES = 64 * 1024;

export function records(): VolumeRecord[] {
  return readRecords().flatMap((r) => (r.ok ? [r.record] : []));
}

/**
 * The start time of a live process, or null when it does not exist or has exited (a zombie waiting
 * to be reaped by its new parent counts as exited: it serves nothing and holds no key).
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces and parentheses) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function serverAlive(r: VolumeRecord): boolean {
  return processStartTime(r.serverPid) === r.serverStartTime;
}

/** Age of a volume directory, to tell a mount in progress from debris of a crashed one. */
export function volumeDirAgeMs(id: string): number {
  try {
    return Date.now() - statSync(volumeDir(id)).mtimeMs;
  } catch {
    return Infinity;
  }
}
