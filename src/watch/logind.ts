/**
 * The system bus side of `vault watch`: systemd-logind.
 *
 * A session's Lock signal, or its LockedHint becoming true → "lock"; PrepareForSleep(true) →
 * "sleep". A delay inhibitor for sleep is held whenever logind is on the bus and the machine is
 * awake, so logind waits (up to its InhibitDelayMaxSec) for the dismounts; it is released once
 * they are done, taken again on PrepareForSleep(false), and renewed after logind or the bus
 * restarted (the old descriptor belongs to the old logind).
 */
import { busEnv, systemBus, type BusTarget } from '../system/bus-address.js';
import { run, toolPath } from '../mount/run.js';
import { LOGIND_NAME, type BusEvent } from './events.js';
import { SleepInhibitor } from './inhibitor.js';
import { BusMonitor } from './monitor.js';
import type { Actions } from './watcher.js';

export function logindMonitor(a: Actions): { monitor: BusMonitor; inhibitor: SleepInhibitor } {
  const bus = systemBus();
  const inhibitor = new SleepInhibitor(bus);
  // The logind instance our inhibitor belongs to; undefined until gdbus has told us (again).
  let owner: string | null | undefined;
  let asleep = false;

  const retake = () =>
    a.enqueue(async () => {
      await inhibitor.release();
      if (asleep || !owner) return;
      try {
        await inhibitor.take();
        a.log(`sleep: holding a logind delay inhibitor (${owner})`);
      } catch (e) {
        a.log(`sleep: cannot take a delay inhibitor, volumes may not be dismounted before suspend: ${(e as Error).message}`);
      }
    });

  const onEvent = (e: BusEvent) => {
    if (e.kind === 'owner') {
      if (e.owner === owner) return;
      owner = e.owner;
      a.log(e.owner ? `system bus: listening to logind (${e.owner}) on ${bus.address}` : 'system bus: logind is not running; waiting for it');
      retake();
    } else if (e.kind === 'lock') a.dismount('lock', e.what, () => (e.session ? sessionUser(bus, e.session) : null));
    else if (e.kind === 'sleep') {
      asleep = true;
      a.dismount('sleep', e.what);
      a.enqueue(async () => {
        await inhibitor.release();
        a.log('sleep: dismounts done; released the delay inhibitor');
      });
    } else if (e.kind === 'resume') {
      asleep = false;
      a.log(`resume: ${e.what}`);
      retake();
    } else a.log(`${e.kind}: ${e.what} (nothing to do)`);
  };

  const monitor = new BusMonitor(bus, LOGIND_NAME, {
    onEvent,
    onDisconnect: () => {
      if (owner === undefined) return;
      owner = undefined;
      // A resume may have been missed while disconnected; awake is the safe assumption, as an
      // inhibitor taken needlessly only delays a suspend that is under way, briefly.
      asleep = false;
      retake(); // releases: that descriptor's logind is gone
    },
    log: a.log,
  });
  return { monitor, inhibitor };
}

/**
 * The uid of a logind session (its User property), or null when logind does not say. A session's
 * lock closes only that user's volumes (issue 13): any user may lock their own session.
 */
export function sessionUser(bus: BusTarget, session: string): number | null {
  if (!/^\/org\/freedesktop\/login1\/session\/[A-Za-z0-9_]+$/.test(session)) return null;
  const r = run('gdbus', ['call', '--system', '--dest', LOGIND_NAME, '--object-path', session, '--method', 'org.freedesktop.DBus.Properties.Get', 'org.freedesktop.login1.Session', 'User'], {
    timeoutMs: 5000,
    env: busEnv(bus, toolPath()),
  });
  const m = /\(uint32 (\d+),/.exec(r.stdout);
  return r.status === 0 && m ? Number(m[1]) : null;
}
