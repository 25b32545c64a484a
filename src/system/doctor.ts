/**
 * `vault doctor`'s verdict: from what was found on this machine (DoctorFacts, gathered by
 * doctor-facts.ts) to a report of checks grouped by what they serve, each ok, missing or unknown,
 * with the command that fixes a miss, and the exit code. Pure: no probe runs here, so every branch
 * is tested with made-up facts.
 *
 * A miss fails the run (EXIT.privilege) only when this user's main job needs it: creating and
 * mounting a volume by the route vault would take for them (src/mount/route.ts). Everything else
 * (auto-dismount, other filesystems, io_uring, the other routes) is reported, with its fix, as
 * optional.
 */
import type { FsType } from '../mount/filesystem.js';
import { udisksUnavailable, type Route, type UdisksProbes } from '../mount/route.js';
import { udisksReachable } from '../mount/udisks.js';
import type { Capability, QueueLimits } from './capabilities.js';
import type { NameOnBus } from './bus-names.js';
import { checkGroups } from './doctor-checks.js';
import type { Check, GroupId } from './doctor-item.js';

export type { Check, GroupId };
export type Status = 'ok' | 'missing' | 'unknown';

/** What the probes found. Paths are null when a tool is not installed. */
export interface DoctorFacts {
  euid: number;
  user: string;
  addon: { ok: true } | { ok: false; why: string };
  /** Whether this process can still dump core after vault's hardening (null: the addon did not load). */
  dumpable: boolean | null;
  devFuse: 'usable' | 'no-access' | 'missing';
  fusermount3: { path: string; setuid: boolean } | null;
  /** Tool name → its path, for every tool a check names. */
  tools: Record<string, string | null>;
  loopControl: boolean;
  /** A loop device not in use, if one exists now (the kernel makes more through /dev/loop-control). */
  freeLoop: string | null;
  loopLimits: QueueLimits | null;
  kernelFs: Record<FsType, boolean>;
  /** machineCapabilities(): the probes capabilities.ts makes. */
  capabilities: Capability[];
  fuseUring: 'on' | 'off' | 'absent';
  udisks: NameOnBus;
  logind: NameOnBus;
  /** null: this process has no session bus address. */
  sessionBus: NameOnBus | null;
  allowOther: boolean;
  group: { gid: number; members: string[] } | null;
  /** This process's supplementary and primary groups. */
  groups: number[];
  /** null: could not be read (rules.d is root's and polkitd's only). */
  polkitRule: boolean | null;
  loopDioRule: boolean | null;
  /** Ordinary users only (null as root): pkcheck's answer for udisks2's loop-setup. */
  polkit: { allowed: boolean; detail: string } | null;
  /** Ordinary users only (null as root). */
  runtimeDir: { ok: true; dir: string } | { ok: false; why: string; fix: string } | null;
  /** RLIMIT_MEMLOCK's soft limit in bytes (null: unlimited). */
  memlock: number | null;
}

export interface ReportItem extends Check {
  /** Counted against the exit code: this user's main job needs it. */
  needed: boolean;
}

export interface ReportGroup {
  id: GroupId;
  title: string;
  items: ReportItem[];
}

export interface DoctorReport {
  user: { name: string; uid: number; root: boolean };
  /** The route `vault mount` would take for this user, and why an earlier one was passed over. */
  route: { name: Route; note: string | null };
  groups: ReportGroup[];
  /** Ids of the needed checks that failed. */
  missing: string[];
  /** Nothing this user's main job needs is missing (the CLI exits 0, else EXIT.privilege). */
  ok: boolean;
}

/** The route vault would choose for this user, as chooseRoute does, from the facts. */
export function routeFor(f: DoctorFacts): { name: Route; note: string | null } {
  if (f.euid === 0) return { name: 'root', note: null };
  const no = udisksUnavailable(udisksProbes(f));
  return no === null ? { name: 'udisks', note: null } : { name: 'fuse', note: `not udisks: ${no.why}` };
}

/** What route.ts decides the udisks route on, as the facts have it (pkcheck's refusal of loop-setup). */
function udisksProbes(f: DoctorFacts): UdisksProbes {
  return {
    bus: udisksReachable(f.udisks),
    allowOther: f.allowOther,
    refused: f.polkit === null || f.polkit.allowed ? null : 'org.freedesktop.udisks2.loop-setup',
  };
}

/** The groups this user's main job (create + mount) needs, on its route. */
function neededGroups(route: Route): Set<GroupId> {
  if (route === 'root') return new Set(['core', 'root']);
  return new Set(['core', 'rootless', route]);
}

export function evaluate(f: DoctorFacts): DoctorReport {
  const route = routeFor(f);
  const needed = neededGroups(route.name);
  const groups = checkGroups(f).map((g) => ({
    id: g.id,
    title: g.title,
    items: g.items.map((c) => ({ ...c, needed: c.required && needed.has(g.id) })),
  }));
  const missing = groups.flatMap((g) => g.items.filter((i) => i.needed && i.status === 'missing').map((i) => i.id));
  return {
    user: { name: f.user, uid: f.euid, root: f.euid === 0 },
    route,
    groups,
    missing,
    ok: missing.length === 0,
  };
}
