/**
 * One line of `vault doctor`: what it checks, what it found, and the fix for a miss. Packages are
 * named as scripts/setup-system.sh and `vault setup-rootless` install them; doctor itself never
 * installs anything, it says what to run.
 */
import { MKFS } from '../mount/filesystem.js';
import { fuseDriver } from '../mount/fuse-fs.js';
import type { DoctorFacts, Status } from './doctor.js';

export type GroupId = 'core' | 'root' | 'rootless' | 'udisks' | 'fuse' | 'filesystems' | 'watch' | 'speed' | 'tests';

export interface Check {
  /** Stable, for scripts (`--json`). */
  id: string;
  label: string;
  status: Status;
  /** Its group's job cannot be done without it (optional extras: false). */
  required: boolean;
  /** What was found. */
  detail: string;
  /** For a miss: the command that fixes it (as root where it needs root), or what to do; else null. */
  fix: string | null;
}

export interface CheckGroup {
  id: GroupId;
  title: string;
  items: Check[];
}

/** Every tool a check names, with the Debian package that ships it. */
export const TOOL_PACKAGES: Record<string, string> = {
  ...Object.fromEntries(Object.values(MKFS).map((m) => [m.tool, m.pkg])),
  ...Object.fromEntries(['ext4', 'vfat'].map((t) => fuseDriver(t)!).map((d) => [d.tool, d.pkg])),
  debugfs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  blkid: 'util-linux',
  wipefs: 'util-linux',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  'mount.exfat-fuse': 'exfat-fuse',
  gdbus: 'libglib2.0-bin',
  'systemd-inhibit': 'systemd',
  pkcheck: 'polkitd',
  'dbus-daemon': 'dbus-daemon',
};

/** A command as this user must type it: root runs it as it is, anyone else through sudo. */
export function asRoot(f: DoctorFacts, cmd: string): string {
  return f.euid === 0 ? cmd : `sudo ${cmd}`;
}

export function install(f: DoctorFacts, pkg: string): string {
  return asRoot(f, `apt-get install ${pkg}`);
}

export function check(id: string, label: string, good: boolean | null, detail: string, fix: string | null, required = true): Check {
  const status: Status = good === null ? 'unknown' : good ? 'ok' : 'missing';
  return { id, label, status, required, detail, fix: status === 'ok' ? null : fix };
}

/** A tool on PATH (root's trusted PATH as root), for `why`. */
export function toolCheck(f: DoctorFacts, tool: string, why: string, required = true): Check {
  const pkg = TOOL_PACKAGES[tool]!;
  const where = f.tools[tool] ?? null;
  return check(`tool:${tool}`, tool, where !== null, where !== null ? `${where}: ${why}` : `not installed (Debian package ${pkg}): ${why}`, install(f, pkg), required);
}

/** A limit in KiB or MiB, for people. */
export function bytes(n: number): string {
  return n >= 1 << 20 ? `${n / (1 << 20)} MiB` : `${n / 1024} KiB`;
}

