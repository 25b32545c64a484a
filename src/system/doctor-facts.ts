/**
 * What `vault doctor` looks at on this machine, gathered once: each fact from the probe vault
 * itself uses (capabilities.ts, route.ts, udisks.ts, rootless-setup.ts, filesystem.ts), so that
 * doctor and the commands never disagree. Nothing here changes the machine: files and sysfs are
 * read, the D-Bus daemon and polkit are asked, tools are looked up on PATH, never run.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { userInfo } from 'node:os';
import { isVaultError } from '../errors.js';
import { FS_TYPES, kernelSupports } from '../mount/filesystem.js';
import { userAllowOther } from '../mount/route.js';
import { toolPath } from '../mount/run.js';
import { refusedAction, UDISKS_NAME } from '../mount/udisks.js';
import { nativeAddon } from '../crypto/native.js';
import { isDumpable } from '../crypto/process-hardening.js';
import { LOGIND_NAME } from '../watch/events.js';
import { sessionBus, systemBus, type BusTarget } from './bus-address.js';
import { nameOnBus, type NameOnBus } from './bus-names.js';
import { fuseOverIoUring, machineCapabilities, queueLimits } from './capabilities.js';
import { userRuntimeDir } from './private-dir.js';
import { rootlessSteps, vaultGroup } from './rootless-setup.js';
import type { DoctorFacts } from './doctor.js';
import { TOOL_PACKAGES } from './doctor-item.js';

/** Where fusermount3 must be: the native addon runs it from these paths only (native/fuse_user.c). */
const FUSERMOUNT_PATHS = ['/usr/bin/fusermount3', '/bin/fusermount3'];

export function gatherFacts(): DoctorFacts {
  const euid = process.geteuid?.() ?? 0;
  const addon = attempt(() => void nativeAddon());
  const udisks = askBus(systemBus(), UDISKS_NAME);
  const user = euid === 0 ? null : { runtimeDir: runtimeDir(), polkit: polkitAnswer() };
  return {
    euid,
    user: loginName(euid),
    addon,
    dumpable: addon.ok ? isDumpable() : null,
    devFuse: devFuse(),
    fusermount3: fusermount3(),
    tools: Object.fromEntries(Object.keys(TOOL_PACKAGES).map((t) => [t, which(t)])),
    loopControl: existsSync('/dev/loop-control'),
    ...loops(),
    kernelFs: Object.fromEntries(FS_TYPES.map((t) => [t, kernelSupports(t)])) as DoctorFacts['kernelFs'],
    capabilities: addon.ok ? machineCapabilities() : [],
    fuseUring: fuseOverIoUring(),
    udisks,
    // Without a system bus, one refusal says it for logind too.
    logind: udisks.ok || udisks.busReachable ? askBus(systemBus(), LOGIND_NAME) : udisks,
    sessionBus: askSessionBus(),
    allowOther: userAllowOther(),
    group: orNull(vaultGroup),
    groups: [...new Set([process.getegid?.() ?? 0, ...(process.getgroups?.() ?? [])])],
    polkitRule: setupDone('polkit rule'),
    loopDioRule: setupDone('udev rule'),
    polkit: user?.polkit ?? null,
    runtimeDir: user?.runtimeDir ?? null,
    memlock: memlockLimit(readFileSync('/proc/self/limits', 'utf8')),
  };
}

function attempt(f: () => void): { ok: true } | { ok: false; why: string } {
  try {
    f();
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

function orNull<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}

function loginName(euid: number): string {
  return orNull(() => userInfo().username) ?? `uid ${euid}`;
}

/** An executable file named `tool` on the PATH vault runs tools with, or null. */
export function which(tool: string): string | null {
  for (const dir of toolPath().split(':')) {
    const p = path.join(dir, tool);
    try {
      if (statSync(p).isFile()) {
        accessSync(p, constants.X_OK);
        return p;
      }
    } catch {
      // not here
    }
  }
  return null;
}

function devFuse(): DoctorFacts['devFuse'] {
  const st = orNull(() => statSync('/dev/fuse'));
  if (!st?.isCharacterDevice()) return 'missing';
  return attempt(() => accessSync('/dev/fuse', constants.R_OK | constants.W_OK)).ok ? 'usable' : 'no-access';
}

function fusermount3(): DoctorFacts['fusermount3'] {
  for (const p of FUSERMOUNT_PATHS) {
    const st = orNull(() => statSync(p));
    if (st?.isFile()) return { path: p, setuid: st.uid === 0 && (st.mode & 0o4000) !== 0 };
  }
  return null;
}

/** The first loop device not attached to anything (sysfs has loopN/loop only while attached), and its limits. */
function loops(): Pick<DoctorFacts, 'freeLoop' | 'loopLimits'> {
  const names = (orNull(() => readdirSync('/sys/class/block')) ?? []).filter((n) => /^loop\d+$/.test(n));
  names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const free = names.find((n) => !existsSync(`/sys/class/block/${n}/loop`) && existsSync(`/dev/${n}`));
  if (free === undefined) return { freeLoop: null, loopLimits: null };
  return { freeLoop: `/dev/${free}`, loopLimits: orNull(() => queueLimits(`/dev/${free}`)) };
}

function askBus(bus: BusTarget, name: string): NameOnBus {
  try {
    return nameOnBus(bus, name);
  } catch (e) {
    // gdbus missing (a VaultError) or not runnable
    return { ok: false, busReachable: false, why: isVaultError(e) ? e.message : String(e) };
  }
}

function askSessionBus(): NameOnBus | null {
  const bus = sessionBus();
  if (bus === null) return null;
  // root asking for a user (sudo): the bus accepts only that user, who should run doctor themselves.
  if (bus.as) return { ok: false, busReachable: false, why: `the session bus of uid ${bus.as.uid} answers only that user: run \`vault doctor\` as them` };
  return askBus(bus, 'org.freedesktop.DBus');
}

/** Whether `vault setup-rootless`'s step is done; null when its files cannot be read by this user. */
function setupDone(step: string): boolean | null {
  return orNull(() => rootlessSteps({}).find((s) => s.name === step)!.check());
}

function polkitAnswer(): NonNullable<DoctorFacts['polkit']> {
  const action = 'org.freedesktop.udisks2.loop-setup';
  try {
    const refused = refusedAction();
    return { allowed: refused === null, detail: refused === null ? `pkcheck: ${action} is allowed` : `pkcheck: ${action} is not allowed (or polkitd is not running)` };
  } catch (e) {
    return { allowed: false, detail: isVaultError(e) ? `${e.message} (Debian package polkitd)` : String(e) };
  }
}

function runtimeDir(): NonNullable<DoctorFacts['runtimeDir']> {
  try {
    return { ok: true, dir: userRuntimeDir() };
  } catch (e) {
    if (!isVaultError(e)) throw e;
    return { ok: false, why: e.message, fix: e.hint ?? 'set XDG_RUNTIME_DIR to a private directory of yours' };
  }
}

/** RLIMIT_MEMLOCK's soft limit from /proc/self/limits, in bytes; null when unlimited. */
export function memlockLimit(limits: string): number | null {
  const v = /^Max locked memory\s+(\S+)/m.exec(limits)?.[1];
  return v === undefined || v === 'unlimited' ? null : Number(v);
}
