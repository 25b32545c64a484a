/**
 * Whether a well-known name (udisksd, logind, a screen saver) can be reached on a D-Bus bus: owned
 * now, or startable by D-Bus activation. Asked through GLib's `gdbus call` (libglib2.0-bin), vault's
 * D-Bus tool, of the bus daemon itself; one call when the name is owned, two when it is not.
 */
import { run, toolPath, type RunResult } from '../mount/run.js';
import { busEnv, type BusTarget } from './bus-address.js';

export type NameOnBus =
  | { ok: true; how: 'owned' | 'activatable' }
  /** `busReachable`: false when the bus itself could not be reached (then `why` says so). */
  | { ok: false; busReachable: boolean; why: string };

export function nameOnBus(bus: BusTarget, name: string): NameOnBus {
  const env = busEnv(bus, toolPath());
  const call = (method: string, args: string[]) =>
    run('gdbus', ['call', `--${bus.kind}`, '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', `org.freedesktop.DBus.${method}`, ...args], { env, timeoutMs: 10_000 });
  const owner = call('NameHasOwner', [name]);
  if (owner.status !== 0) return { ok: false, busReachable: false, why: `the ${bus.kind} bus is not reachable (${busError(owner).message})` };
  if (/true/.test(owner.stdout)) return { ok: true, how: 'owned' };
  const act = call('ListActivatableNames', []);
  if (act.status === 0 && act.stdout.includes(`'${name}'`)) return { ok: true, how: 'activatable' };
  return { ok: false, busReachable: true, why: `nothing owns ${name} on the ${bus.kind} bus` };
}

/** The D-Bus error name and message of a failed gdbus call ("GDBus.Error:<name>: <message>"). */
export function busError(r: RunResult): { name: string; message: string } {
  const m = /GDBus\.Error:([\w.]+):\s*(.*)/.exec(r.stderr);
  if (m) return { name: m[1]!, message: m[2]!.trim() };
  return { name: '', message: r.stderr.trim().split('\n')[0] || `gdbus exited with status ${r.status}` };
}
