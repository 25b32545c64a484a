/**
 * How a volume reaches the user (issue 15), chosen before any passphrase is asked:
 *
 *   root    vault runs as root: its own loop device and mount(2), as always.
 *   udisks  an ordinary user: the volume server's FUSE mount (allow_root, so udisksd and the loop
 *           driver may open the block file), then udisksd's LoopSetup and Filesystem.Mount, with
 *           polkit's consent. Kernel ext4 speed.
 *   fuse    an ordinary user without udisks: a user-space filesystem driver (fuse2fs) on the block
 *           file. Needs no administrator; slower, and without a journal.
 *
 * `--via` forces one; otherwise the first that can work, in that order, and the user is told why
 * an earlier one could not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { ADMIN_SETUP, refusedAction, udisksReachable } from './udisks.js';
import { runDir } from '../system/private-dir.js';

export const ROUTES = ['root', 'udisks', 'fuse'] as const;
export type Route = (typeof ROUTES)[number];

export interface RouteChoice {
  route: Route;
  /** Why an earlier route was passed over (printed as a note), when one was. */
  note?: string;
}

export function parseRoute(v: string | undefined): Route | undefined {
  if (v === undefined) return undefined;
  if ((ROUTES as readonly string[]).includes(v)) return v as Route;
  throw new VaultError('usage', `--via ${v}: unknown route`, `choose from ${ROUTES.join(', ')}`);
}

const FUSE_CONF = '/etc/fuse.conf';

/** Whether /etc/fuse.conf lets users mount with allow_root/allow_other. */
export function userAllowOther(file = FUSE_CONF): boolean {
  try {
    return readFileSync(file, 'utf8').split('\n').some((l) => l.trim() === 'user_allow_other');
  } catch {
    return false;
  }
}

function requireFuse(): void {
  if (!existsSync('/dev/fuse'))
    throw new VaultError('missing-component', '/dev/fuse is missing: the FUSE kernel module is not loaded', 'ask an administrator to run `modprobe fuse`');
  if (!existsSync('/usr/bin/fusermount3') && !existsSync('/bin/fusermount3'))
    throw new VaultError('missing-component', 'fusermount3 is not installed', 'ask an administrator to install fuse3 (`sudo vault setup-rootless`); `vault doctor` lists what else is missing');
}

/** What decides whether the udisks route can work; `vault doctor` probes each to report them all. */
export interface UdisksProbes {
  bus: ReturnType<typeof udisksReachable>;
  allowOther: boolean;
  /** The polkit action refused, or null (refusedAction). */
  refused: string | null;
}

/** Why the udisks route cannot work for this user now, and what would fix it; null when it can. Probes what `known` lacks. */
export function udisksUnavailable(known: Partial<UdisksProbes> = {}): { why: string; fix: string } | null {
  const bus = known.bus ?? udisksReachable();
  if (!bus.ok) return { why: bus.why, fix: 'an administrator must install udisks2 and run the system D-Bus (`sudo vault setup-rootless` installs udisks2)' };
  if (!(known.allowOther ?? userAllowOther())) return { why: `${FUSE_CONF} does not enable user_allow_other, which the udisks route needs`, fix: ADMIN_SETUP };
  const refused = known.refused !== undefined ? known.refused : refusedAction();
  if (refused) return { why: `polkit does not allow ${refused} for you`, fix: ADMIN_SETUP };
  return null;
}

/**
 * The route for a mount (or a create's format). `needsLoop` is false when no filesystem is to be
 * mounted (`--no-filesystem`, create's mkfs): an ordinary user then needs only the FUSE mount,
 * unless they ask for udisks by name (`--via udisks --no-filesystem`: a loop device set up by
 * udisksd for them, with nothing mounted on it).
 */
export function chooseRoute(via: Route | undefined, needsLoop = true): RouteChoice {
  const root = process.geteuid?.() === 0;
  if (root) {
    if (via && via !== 'root') throw new VaultError('usage', `--via ${via} is for ordinary users`, 'as root, vault mounts directly; run vault as yourself to use udisks or fuse');
    if (!existsSync('/dev/fuse'))
      throw new VaultError('missing-component', '/dev/fuse is missing: the FUSE kernel module is not loaded', 'run `modprobe fuse` as root');
    return { route: 'root' };
  }
  if (via === 'root') throw new VaultError('privilege', '--via root needs root privileges', 'run it with sudo, or choose --via udisks or --via fuse');
  requireFuse();
  runDir(); // $XDG_RUNTIME_DIR, checked now rather than after the passphrase

  if (via === 'fuse' || (!needsLoop && via !== 'udisks')) return { route: 'fuse' };
  const no = udisksUnavailable();
  if (no === null) return { route: 'udisks' };
  if (via === 'udisks') throw new VaultError(/polkit/.test(no.why) ? 'privilege' : 'missing-component', `the udisks route is not available: ${no.why}`, `${no.fix}, or mount with \`--via fuse\``);
  return { route: 'fuse', note: `not using udisks: ${no.why}; for the kernel's speed, ${no.fix}` };
}
