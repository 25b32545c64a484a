/**
 * Small views of the kernel's state that the setups and the leftover check share: the mount table,
 * loop devices (from sysfs, which says what the kernel really did), process status, page cache.
 */
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, runOk } from './proc.js';

/**
 * Writes back dirty pages, then drops clean ones. drop_caches alone drops only clean pages, so
 * without the sync a "cold" read could still be served by data the previous step left dirty.
 */
export async function dropCaches(): Promise<void> {
  await runOk('sync', [], { timeoutMs: 10 * 60_000 });
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

/** syncfs(2) of the filesystem holding `p` (coreutils `sync -f`): the durability point of a phase. */
export async function syncFs(p: string): Promise<void> {
  await runOk('sync', ['-f', p], { timeoutMs: 10 * 60_000 });
}

export interface MountEntry {
  mountpoint: string;
  source: string;
  fstype: string;
}

/** /proc/self/mountinfo, with the octal escapes (\040 for a space) undone. */
export function mountTable(): MountEntry[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    out.push({ mountpoint: unescape(f[4]!), fstype: f[sep + 1]!, source: unescape(f[sep + 2]!) });
  }
  return out;
}

export function isMountPoint(p: string): boolean {
  return mountTable().some((m) => m.mountpoint === p);
}

/** Mounts at or below `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): MountEntry[] {
  return mountTable()
    .filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(dir + '/'))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}

export interface LoopEntry {
  device: string;
  backingFile: string;
  directIo: boolean;
}

export function loopDevices(): LoopEntry[] {
  const out: LoopEntry[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const backing = readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
      const dio = readFileSync(`/sys/block/${n}/loop/dio`, 'utf8').trim() === '1';
      out.push({ device: `/dev/${n}`, backingFile: backing, directIo: dio });
    } catch {
      // not attached
    }
  }
  return out;
}

export function loopDirectIo(device: string): boolean | null {
  return loopDevices().find((l) => l.device === device)?.directIo ?? null;
}

/** O_DIRECT in an open file's flags (/proc/<pid>/fdinfo "flags:", octal), x86-64 and arm64 alike. */
const O_DIRECT_X86 = 0o40000;
const O_DIRECT_ARM = 0o200000;

/**
 * Whether process `pid` has `file` open with O_DIRECT (a volume server's container: it reopens it
 * so when the host filesystem's alignment allows its sectors and data offset). null: no such open
 * file, or the process is gone.
 */
export function openWithDirectIo(pid: number, file: string): boolean | null {
  const flag = process.arch === 'arm64' ? O_DIRECT_ARM : O_DIRECT_X86;
  let seen = false;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== file) continue;
        const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (!m) continue;
        seen = true;
        if (parseInt(m[1]!, 8) & flag) return true;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return null;
  }
  return seen ? false : null;
}

/** A field of /proc/<pid>/status in bytes (VmHWM, VmRSS), or null if the process is gone. */
export function procStatusBytes(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Live processes whose command line contains `needle` (the benchmark's unique work or run dir). */
export function processesMentioning(needle: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmdline.includes(needle) && pidAlive(pid)) out.push({ pid, cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** The filesystem type as statfs(2) sees it: the benchmark refuses tmpfs/ramfs, which have no disk. */
export async function statfsType(p: string): Promise<string> {
  return (await runOk('stat', ['-f', '-c', '%T', p])).stdout.trim();
}

/** findmnt's view of the filesystem holding `p`: device, type, options. */
export async function filesystemOf(p: string): Promise<{ target: string; source: string; fstype: string; options: string } | null> {
  const r = await run('findmnt', ['-J', '-T', p, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS']);
  if (r.code !== 0) return null;
  try {
    const fs = (JSON.parse(r.stdout) as { filesystems: { target: string; source: string; fstype: string; options: string }[] }).filesystems[0];
    return fs ?? null;
  } catch {
    return null;
  }
}

export async function unmount(mp: string, lazy = false): Promise<void> {
  await runOk('umount', lazy ? ['-l', mp] : [mp], { cleanup: true, timeoutMs: 120_000 });
}

export function under(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** fio, gocryptfs and FUSE volume servers that are not ours: someone else is benchmarking too. */
export function otherIoLoad(): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const exe = path.basename(argv[0] ?? '');
      const script = argv.slice(1).find((a) => !a.startsWith('-')) ?? '';
      if (exe === 'fio' || exe === 'gocryptfs' || (exe === 'node' && /server\/main\.js$|serve/.test(script)))
        out.push(`${name} ${argv.join(' ').slice(0, 80)}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
