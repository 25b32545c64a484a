/**
 * Where the watcher finds the D-Bus buses: the standard DBUS_SYSTEM_BUS_ADDRESS and
 * DBUS_SESSION_BUS_ADDRESS variables, else the standard locations.
 *
 * A session bus accepts only its own user, not even root (dbus-daemon's default policy). So when
 * root runs the watcher for a user (`sudo vault watch`, contrib/vault-watch-session.service), the
 * session bus listeners run as that user: the one in SUDO_UID/SUDO_GID. An ordinary user running
 * the watcher (contrib/vault-watch-user.service, issue 15) connects as themselves: SUDO_UID means
 * nothing to them (a `sudo -u` shell may carry someone else's), so only root honours it.
 */
export const DEFAULT_SYSTEM_BUS = 'unix:path=/run/dbus/system_bus_socket';

export interface BusTarget {
  kind: 'system' | 'session';
  address: string;
  /** The user to connect as (session bus of another user), or undefined for this process's. */
  as?: { uid: number; gid: number };
}

export function systemBus(env: NodeJS.ProcessEnv = process.env): BusTarget {
  return { kind: 'system', address: env.DBUS_SYSTEM_BUS_ADDRESS || DEFAULT_SYSTEM_BUS };
}

/** The session bus, or null when this process has none (e.g. a system service). */
export function sessionBus(env: NodeJS.ProcessEnv = process.env, euid: number = process.geteuid?.() ?? 0): BusTarget | null {
  const uid = Number(env.SUDO_UID);
  const gid = Number(env.SUDO_GID);
  const as = euid === 0 && Number.isInteger(uid) && uid > 0 && Number.isInteger(gid) ? { uid, gid } : undefined;
  if (env.DBUS_SESSION_BUS_ADDRESS) return { kind: 'session', address: env.DBUS_SESSION_BUS_ADDRESS, ...(as ? { as } : {}) };
  // systemd's user session puts the bus at $XDG_RUNTIME_DIR/bus, i.e. /run/user/<uid>/bus.
  if (as) return { kind: 'session', address: `unix:path=/run/user/${as.uid}/bus`, as };
  if (env.XDG_RUNTIME_DIR) return { kind: 'session', address: `unix:path=${env.XDG_RUNTIME_DIR}/bus` };
  return null;
}

/** The environment for a D-Bus tool (gdbus, systemd-inhibit) that should talk to `bus`. */
export function busEnv(bus: BusTarget, path: string): Record<string, string> {
  const env: Record<string, string> = { PATH: path, LANG: 'C' };
  env[bus.kind === 'system' ? 'DBUS_SYSTEM_BUS_ADDRESS' : 'DBUS_SESSION_BUS_ADDRESS'] = bus.address;
  return env;
}
