/**
 * The udisks2 route's client (issue 15): an ordinary user's loop device and filesystem mount, made
 * by udisksd (root) after polkit said yes, as GNOME and KDE do it.
 *
 * Calls go through GLib's `gdbus call` (libglib2.0-bin), already vault's D-Bus tool for `vault
 * watch`. It passes a unix fd for an `h` argument by number, so LoopSetup gets the open descriptor
 * of the user's block file as gdbus's fd 3 and root never opens the user's path. The npm
 * alternative, dbus-next, needs the native `usocket` module for fd passing and has had no release
 * since 2021; a spawn costs ~30 ms per call, a handful of calls per mount.
 */
import { VaultError } from '../errors.js';
import { busEnv, systemBus } from '../system/bus-address.js';
import { busError, nameOnBus, type NameOnBus } from '../system/bus-names.js';
import { run, toolPath, type RunResult } from './run.js';

export const UDISKS_NAME = 'org.freedesktop.UDisks2';
const MANAGER = '/org/freedesktop/UDisks2/Manager';
const IFACE = 'org.freedesktop.UDisks2';
/** udisksd asks polkit; without this a desktop's authentication agent would pop up a dialog. */
const NO_INTERACTION = "'auth.no_user_interaction': <true>";

export const ADMIN_SETUP = 'ask an administrator to run `sudo vault setup-rootless --user $USER`';
export const SETUP_HINT = `${ADMIN_SETUP}, or mount with \`--via fuse\``;

function gdbus(objectPath: string, method: string, args: readonly string[], fd3?: number): RunResult {
  return run('gdbus', ['call', '--system', '--dest', UDISKS_NAME, '--object-path', objectPath, '--method', method, ...args], {
    env: busEnv(systemBus(), toolPath()),
    timeoutMs: 60_000,
    ...(fd3 !== undefined ? { fd3 } : {}),
  });
}

function fail(what: string, r: RunResult): VaultError {
  const e = busError(r);
  if (/NotAuthorized/.test(e.name))
    return new VaultError('privilege', `udisks refused to ${what}: polkit did not allow it (${e.message})`, SETUP_HINT);
  if (/ServiceUnknown|NameHasNoOwner|Spawn\./.test(e.name) || /Could not connect|No such file/.test(e.message))
    return new VaultError('missing-component', `cannot ${what}: udisksd is not reachable on the system bus (${e.message})`, 'install and start udisks2 (`sudo vault setup-rootless`), or mount with `--via fuse`');
  if (/DeviceBusy|Busy/.test(e.name) || /target is busy/.test(e.message)) return new VaultError('busy', `cannot ${what}: ${e.message}`);
  return new VaultError('mount-failed', `udisks could not ${what}: ${e.message}${e.name ? ` (${e.name})` : ''}`);
}

/** Whether udisksd owns its name on the system bus, or can be started by D-Bus activation (`n`: as already asked). */
export function udisksReachable(n: NameOnBus = nameOnBus(systemBus(), UDISKS_NAME)): { ok: true } | { ok: false; why: string } {
  if (n.ok) return { ok: true };
  return { ok: false, why: n.busReachable ? 'udisksd is not running on the system bus (is udisks2 installed?)' : n.why };
}

/** The loop device udisksd made for an open block file: its D-Bus object and /dev node. */
export interface UdisksLoop {
  object: string;
  device: string;
}

/** Manager.LoopSetup on an open descriptor; the device is the caller's to Delete. */
export function loopSetup(fd: number, readOnly: boolean): UdisksLoop {
  const opts = `{${NO_INTERACTION}${readOnly ? ", 'read-only': <true>" : ''}}`;
  const r = gdbus(MANAGER, `${IFACE}.Manager.LoopSetup`, ['3', opts], fd);
  if (r.status !== 0) throw fail('set up a loop device', r);
  const m = /objectpath '(\/org\/freedesktop\/UDisks2\/block_devices\/(loop\d+))'/.exec(r.stdout);
  if (!m) throw new VaultError('mount-failed', `udisks set up a loop device but answered "${r.stdout.trim()}"`);
  return { object: m[1]!, device: `/dev/${m[2]!}` };
}

/**
 * Filesystem.Mount: udisksd picks /media/<user>/<label or uuid> and mounts nosuid,nodev. It can
 * only mount once udev has probed the new device and udisksd has seen the filesystem on it, so a
 * missing Filesystem interface is retried for a few seconds.
 */
export async function mountFs(loop: UdisksLoop, fsType: string, readOnly: boolean): Promise<void> {
  const opts = `{${NO_INTERACTION}, 'fstype': <'${fsType}'>${readOnly ? ", 'options': <'ro'>" : ''}}`;
  const until = Date.now() + 10_000;
  for (;;) {
    const r = gdbus(loop.object, `${IFACE}.Filesystem.Mount`, [opts]);
    if (r.status === 0) return;
    const e = busError(r);
    if (!(/UnknownMethod|UnknownInterface/.test(e.name) && /interface/i.test(e.message)) || Date.now() > until) throw fail(`mount ${loop.device}`, r);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Filesystem.Unmount; `force` detaches lazily. A filesystem that is no longer mounted is fine. */
export function unmountFs(object: string, force: boolean): void {
  const r = gdbus(object, `${IFACE}.Filesystem.Unmount`, [`{${NO_INTERACTION}${force ? ", 'force': <true>" : ''}}`]);
  if (r.status === 0 || /NotMounted/.test(busError(r).name)) return;
  throw fail('unmount the volume', r);
}

/** Loop.Delete. A device udisks no longer knows (already gone) is fine. */
export function loopDelete(object: string): void {
  const r = gdbus(object, `${IFACE}.Loop.Delete`, [`{${NO_INTERACTION}}`]);
  if (r.status === 0 || /UnknownMethod|UnknownObject/.test(busError(r).name)) return;
  throw fail('delete the loop device', r);
}

/**
 * Whether polkit will let this process set up a loop device, asked before any passphrase is
 * (pkcheck, from polkitd). Returns the action refused, or null. The mount itself is decided for
 * the device udisks makes (vault's rule allows loop devices only), so it can only be asked then.
 */
export function refusedAction(): string | null {
  const action = 'org.freedesktop.udisks2.loop-setup';
  const r = run('pkcheck', ['--action-id', action, '--process', String(process.pid)], { env: busEnv(systemBus(), toolPath()), timeoutMs: 10_000 });
  return r.status === 0 ? null : action;
}
