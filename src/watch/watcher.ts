/**
 * `vault watch`: dismounts volumes when the session locks or the machine goes to sleep.
 *
 * System bus (logind): a session's Lock signal or LockedHint becoming true → "lock";
 * PrepareForSleep(true) → "sleep". A delay inhibitor for sleep is held whenever logind is on the
 * bus and the machine is awake, so logind waits (up to its InhibitDelayMaxSec) for the dismounts;
 * it is released once they are done and taken again on PrepareForSleep(false), and after logind
 * or the bus restarted (the old descriptor belongs to the old logind).
 * Session bus: ActiveChanged(true) of the freedesktop, GNOME and Xfce screen savers → "lock".
 *
 * Triggers are handled one at a time, in order. Unlock, LockedHint=false and ActiveChanged(false)
 * are logged and never dismount anything.
 */
import { VaultError, isVaultError } from '../errors.js';
import type { Trigger } from '../mount/policy.js';
import { run } from '../mount/run.js';
import { sessionBus, systemBus, type BusTarget } from './bus-address.js';
import { closeVolumesFor } from './close-volumes.js';
import { LOGIND_NAME, SCREENSAVER_NAMES, type BusEvent } from './events.js';
import { SleepInhibitor } from './inhibitor.js';
import { BusMonitor } from './monitor.js';

export type BusChoice = 'system' | 'session' | 'all';

export interface Watcher {
  stop(): Promise<void>;
}

/** The D-Bus tools the watcher runs; missing ones are an error at start, not a silent retry loop. */
export function requireWatchTools(buses: BusChoice): void {
  const tools: [string, string[], string][] = [['gdbus', ['help'], 'libglib2.0-bin']];
  if (buses !== 'session') tools.push(['systemd-inhibit', ['--version'], 'systemd']);
  for (const [cmd, args, pkg] of tools) {
    try {
      run(cmd, args, { timeoutMs: 10_000 });
    } catch (e) {
      if (isVaultError(e, 'missing-component'))
        throw new VaultError('missing-component', `vault watch needs ${cmd}, which is not installed`, `install the Debian package "${pkg}" (apt-get install ${pkg})`);
      throw e;
    }
  }
}

export function startWatcher(buses: BusChoice, log: (m: string) => void): Watcher {
  const monitors: BusMonitor[] = [];
  let queue: Promise<void> = Promise.resolve();
  const enqueue = (job: () => Promise<void>) => {
    queue = queue.then(job).catch((e: unknown) => log(`internal error: ${(e as Error).stack ?? e}`));
  };
  const dismount = (trigger: Trigger, what: string) => {
    log(`${trigger}: ${what}`);
    enqueue(() => closeVolumesFor(trigger, log));
  };
  let inhibitor: SleepInhibitor | null = null;

  if (buses !== 'session') {
    const bus = systemBus();
    const inh = new SleepInhibitor(bus);
    inhibitor = inh;
    // The logind instance our inhibitor belongs to; undefined until gdbus has told us (again).
    let logindOwner: string | null | undefined;
    let asleep = false;
    const retake = () =>
      enqueue(async () => {
        await inh.release();
        if (asleep || !logindOwner) return;
        try {
          await inh.take();
          log(`sleep: holding a logind delay inhibitor (${logindOwner})`);
        } catch (e) {
          log(`sleep: cannot take a delay inhibitor, volumes may not be dismounted before suspend: ${(e as Error).message}`);
        }
      });
    const onEvent = (e: BusEvent) => {
      if (e.kind === 'owner') {
        if (e.owner === logindOwner) return;
        logindOwner = e.owner;
        log(e.owner ? `system bus: listening to logind (${e.owner}) on ${bus.address}` : 'system bus: logind is not running; waiting for it');
        retake();
      } else if (e.kind === 'lock') dismount('lock', e.what);
      else if (e.kind === 'sleep') {
        asleep = true;
        dismount('sleep', e.what);
        enqueue(async () => {
          await inh.release();
          log('sleep: dismounts done; released the delay inhibitor');
        });
      } else if (e.kind === 'resume') {
        asleep = false;
        log(`resume: ${e.what}`);
        retake();
      } else log(`${e.kind}: ${e.what} (nothing to do)`);
    };
    const m = new BusMonitor(bus, LOGIND_NAME, {
      onEvent,
      onDisconnect: () => {
        if (logindOwner === undefined) return;
        logindOwner = undefined;
        // A resume may have been missed while disconnected; awake is the safe assumption, as an
        // inhibitor taken needlessly only delays a suspend that is under way, briefly.
        asleep = false;
        retake(); // releases: that descriptor's logind is gone
      },
      log,
    });
    monitors.push(m);
  }

  if (buses !== 'system') {
    const bus = sessionBus();
    if (bus === null) log('session bus: none (DBUS_SESSION_BUS_ADDRESS, SUDO_UID and XDG_RUNTIME_DIR are unset); screen savers are not watched');
    else for (const name of SCREENSAVER_NAMES) monitors.push(screenSaverMonitor(bus, name, dismount, log));
  }

  for (const m of monitors) m.start();
  return {
    async stop() {
      for (const m of monitors) m.stop();
      await queue;
      await inhibitor?.release();
    },
  };
}

function screenSaverMonitor(bus: BusTarget, name: string, dismount: (t: Trigger, what: string) => void, log: (m: string) => void): BusMonitor {
  let owner: string | null = null;
  return new BusMonitor(bus, name, {
    onEvent: (e) => {
      if (e.kind === 'owner') {
        if (e.owner && e.owner !== owner) log(`session bus: listening to ${name} (${e.owner})`);
        owner = e.owner;
      } else if (e.kind === 'lock') dismount('lock', e.what);
      else log(`${e.kind}: ${e.what} (nothing to do)`);
    },
    onDisconnect: () => {
      owner = null;
    },
    log,
  });
}
