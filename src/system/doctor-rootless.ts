/**
 * `vault doctor`'s checks for ordinary users (issue 15's routes: udisks, fuse) and for `vault
 * watch`. What root sets up for them is `vault setup-rootless` (rootless-setup.ts), so that is the
 * fix for every machine-wide miss here. As root, only the machine-wide checks are made: what a user
 * may do depends on who they are, so they run `vault doctor` themselves.
 */
import { FUSE_CONF, POLKIT_RULE_FILE, VAULT_GROUP } from './rootless-setup.js';
import { LOOP_DIO_RULE_FILE } from './loop-dio-rule.js';
import { fuseDriver } from '../mount/fuse-fs.js';
import type { DoctorFacts } from './doctor.js';
import { asRoot, bytes, check, install, toolCheck, type Check, type CheckGroup } from './doctor-item.js';

/**
 * RLIMIT_MEMLOCK an ordinary user's volume server needs: the key and its AES schedules, a few pages
 * per worker (native/fuse_user.c reserves 64 KiB + 16 KiB a worker), with room to spare.
 */
export const MEMLOCK_KEY = 256 * 1024;
/** Enough to lock the I/O buffers too (test/system/native-fuse-unprivileged.test.ts: 32 MiB). */
export const MEMLOCK_IO = 32 * 1024 * 1024;

const MEMLOCK_FIX = 'raise memlock in /etc/security/limits.conf (LimitMEMLOCK= for a systemd service), then log in again';

function setupCommand(f: DoctorFacts): string {
  return asRoot(f, `vault setup-rootless --user ${f.euid === 0 ? 'NAME' : f.user}`);
}

const systemBusFix = (f: DoctorFacts): string => (f.tools['dbus-daemon'] ? asRoot(f, 'systemctl start dbus') : install(f, 'dbus-daemon'));

function systemBusCheck(f: DoctorFacts): Check {
  const reachable = f.udisks.ok || f.udisks.busReachable;
  const noGdbus = f.tools['gdbus'] === null;
  const fix = systemBusFix(f);
  const detail = noGdbus ? 'unknown: gdbus is not installed' : f.udisks.ok || f.udisks.busReachable ? 'reachable' : f.udisks.why;
  return check('system-bus', 'D-Bus system bus', noGdbus ? null : reachable, detail, fix);
}

function perUser(f: DoctorFacts): Check[] {
  if (f.euid === 0) return [];
  const rt = f.runtimeDir!;
  const lim = f.memlock === null ? 'unlimited' : bytes(f.memlock);
  return [
    check('runtime-dir', 'XDG_RUNTIME_DIR', rt.ok, rt.ok ? `${rt.dir} (where vault keeps your volumes' state)` : rt.why, rt.ok ? null : rt.fix),
    check('memlock', 'locked memory for keys', f.memlock === null || f.memlock >= MEMLOCK_KEY, `RLIMIT_MEMLOCK is ${lim}; a volume's key needs about ${bytes(MEMLOCK_KEY)}`, MEMLOCK_FIX),
  ];
}

function rootless(f: DoctorFacts): CheckGroup {
  const fm = f.fusermount3;
  return {
    id: 'rootless',
    title: 'without root: every route',
    items: [
      check('fusermount3', 'fusermount3', fm !== null && fm.setuid, fm === null ? 'not installed (Debian package fuse3)' : fm.setuid ? `${fm.path}, setuid root (mounts a user's volume server)` : `${fm.path} is not setuid root`, fm === null ? install(f, 'fuse3') : asRoot(f, `chmod u+s ${fm.path}`)),
      ...perUser(f),
    ],
  };
}

function udisks(f: DoctorFacts): CheckGroup {
  const setup = setupCommand(f);
  const bus = f.udisks.ok || f.udisks.busReachable;
  const g = f.group;
  const items: Check[] = [
    toolCheck(f, 'gdbus', 'how vault talks to udisksd'),
    systemBusCheck(f),
    check('udisksd', 'udisksd', bus ? f.udisks.ok : null, f.udisks.ok ? `on the system bus (${f.udisks.how})` : bus ? 'not on the system bus (udisks2 is not installed, or not running)' : 'unknown: the system bus is not reachable', bus ? setup : systemBusFix(f)),
    check('user-allow-other', 'user_allow_other', f.allowOther, `${f.allowOther ? 'enabled' : 'not enabled'} in ${FUSE_CONF} (udisksd must open a user's FUSE block file)`, setup),
    check('group', `group ${VAULT_GROUP}`, g !== null, g ? `exists (gid ${g.gid}; members: ${g.members.join(', ') || 'none'})` : 'does not exist', setup, false),
    check('polkit-rule', 'polkit rule', f.polkitRule, f.polkitRule === null ? `unknown: only root can read ${POLKIT_RULE_FILE}` : `${POLKIT_RULE_FILE} ${f.polkitRule ? 'is vault\'s' : 'is missing or not vault\'s'}`, setup, false),
  ];
  if (f.euid !== 0) {
    const listed = g?.members.includes(f.user) ?? false;
    const now = g !== null && f.groups.includes(g.gid);
    items.push(
      check('member', `you in group ${VAULT_GROUP}`, now, now ? 'yes' : listed ? `listed in group ${VAULT_GROUP}, but not in this login's groups` : 'no', listed ? `newgrp ${VAULT_GROUP} (or log in again)` : setup, false),
      check('polkit', 'polkit allows you', f.polkit!.allowed, f.polkit!.detail, setup),
    );
  }
  items.push(check('loop-dio-rule', 'udev rule (direct I/O)', f.loopDioRule, f.loopDioRule === null ? `unknown: ${LOOP_DIO_RULE_FILE} cannot be read` : `${LOOP_DIO_RULE_FILE} ${f.loopDioRule ? 'is vault\'s' : 'is missing: random I/O at about half the speed'}`, setup, false));
  return { id: 'udisks', title: 'without root, udisks route (the kernel\'s ext4 speed)', items };
}

function fuse(f: DoctorFacts): CheckGroup {
  return {
    id: 'fuse',
    title: 'without root, fuse route (needs no administrator; slower, no journal)',
    items: [
      toolCheck(f, fuseDriver('ext4')!.tool, 'mounts ext4 in user space'),
      toolCheck(f, 'e2fsck', 'repairs ext4 after a crash (fuse2fs writes without a journal)', false),
      toolCheck(f, fuseDriver('vfat')!.tool, 'mounts FAT in user space', false),
    ],
  };
}

function watch(f: DoctorFacts): CheckGroup {
  const logindFix = 'logind runs on machines booted with systemd (Debian package systemd)';
  const s = f.sessionBus;
  return {
    id: 'watch',
    title: 'auto-dismount on lock and sleep (vault watch)',
    items: [
      toolCheck(f, 'gdbus', 'listens to D-Bus signals', false),
      toolCheck(f, 'systemd-inhibit', 'holds off sleep until volumes are dismounted', false),
      check('logind', 'logind', f.logind.ok ? true : f.logind.busReachable ? false : null, f.logind.ok ? `on the system bus (${f.logind.how}): lock and sleep` : f.logind.why, logindFix, false),
      check('session-bus', 'D-Bus session bus', s === null ? false : s.ok ? true : s.busReachable ? false : null, s === null ? 'this process has no session bus (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR unset)' : s.ok ? 'reachable: screen saver locks' : s.why, 'log in through a desktop session (Debian package dbus-user-session)', false),
    ],
  };
}

export function rootlessGroups(f: DoctorFacts): CheckGroup[] {
  return [rootless(f), udisks(f), fuse(f), watch(f)];
}
