/**
 * `vault watch`: dismounts volumes when the session locks or the machine goes to sleep, from
 * logind on the system bus (logind.ts) and the screen savers on the session bus (screensaver.ts).
 *
 * Triggers are handled one at a time, in order, by one queue (so is the sleep inhibitor's
 * bookkeeping, which must come after the dismounts it waits for). Unlock, LockedHint=false and
 * ActiveChanged(false) are logged and never dismount anything.
 */
import { VaultError, isVaultError } from '../errors.js';
import type { Trigger } from '../mount/policy.js';
import type { Scope } from '../mount/state.js';
import { run } from '../mount/run.js';
import { sessionBus } from '../system/bus-address.js';
import { closeVolumesFor } from './close-volumes.js';
import { SCREENSAVER_NAMES } from './events.js';
import type { SleepInhibitor } from './inhibitor.js';
import { logindMonitor } from './logind.js';
import type { BusMonitor } from './monitor.js';
import { screenSaverMonitor } from './screensaver.js';

export type BusChoice = 'system' | 'session' | 'all';

export interface Watcher {
  stop(): Promise<void>;
}

/** What the bus listeners may do. */
export interface Actions {
  /**
   * Dismount (forced) every volume whose policy names `trigger`; `what` is the event, for the log.
   * `user` says whose volumes (the locked session's user, the session bus's user), resolved when
   * the job runs; null: nobody's. Without it, the watcher's own scope (sleep).
   */
  dismount(trigger: Trigger, what: string, user?: () => number | null): void;
  /** Runs `job` after everything queued before it. */
  enqueue(job: () => Promise<void>): void;
  log(m: string): void;
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

/**
 * `scope`: whose volumes this watcher may close at all: everyone's under plain root, the invoking
 * user's under sudo (issue 13), an ordinary user's own when they run it (issue 15: their records
 * in $XDG_RUNTIME_DIR/vault, dismounted through their routes, udisks or fusermount3). Events about
 * a user narrow it to that user.
 */
export function startWatcher(buses: BusChoice, log: (m: string) => void, scope: Scope): Watcher {
  let queue: Promise<void> = Promise.resolve();
  const actions: Actions = {
    enqueue(job) {
      queue = queue.then(job).catch((e: unknown) => log(`internal error: ${(e as Error).stack ?? e}`));
    },
    dismount(trigger, what, user) {
      log(`${trigger}: ${what}`);
      actions.enqueue(async () => {
        const uid = user ? user() : scope;
        if (uid === null) return log(`${trigger}: cannot tell whose session this is; nothing dismounted`);
        if (scope !== 'all' && uid !== scope) return log(`${trigger}: uid ${uid} is not the user this watcher runs for (uid ${scope}); nothing dismounted`);
        await closeVolumesFor(trigger, log, uid);
      });
    },
    log,
  };

  const monitors: BusMonitor[] = [];
  let inhibitor: SleepInhibitor | null = null;
  if (buses !== 'session') {
    const logind = logindMonitor(actions);
    monitors.push(logind.monitor);
    inhibitor = logind.inhibitor;
  }
  if (buses !== 'system') {
    const bus = sessionBus();
    if (bus === null)
      log(
        `session bus: none (DBUS_SESSION_BUS_ADDRESS${process.geteuid?.() === 0 ? ', SUDO_UID' : ''} and XDG_RUNTIME_DIR are unset); screen savers are not watched`,
      );
    else for (const name of SCREENSAVER_NAMES) monitors.push(screenSaverMonitor(bus, name, actions, bus.as?.uid ?? process.getuid?.() ?? 0));
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
