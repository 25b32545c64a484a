/**
 * The session bus side of `vault watch`: ActiveChanged(true) of a screen saver → "lock" of the
 * volumes of the bus's user (`user`), and of no one else's: any program of that user can own a
 * screen saver name and emit the signal (issue 13).
 * One monitor per screen saver name (freedesktop, GNOME, Xfce); names nobody owns cost nothing.
 */
import type { BusTarget } from '../system/bus-address.js';
import { BusMonitor } from './monitor.js';
import type { Actions } from './watcher.js';

export function screenSaverMonitor(bus: BusTarget, name: string, a: Actions, user: number): BusMonitor {
  let owner: string | null = null;
  return new BusMonitor(bus, name, {
    onEvent: (e) => {
      if (e.kind === 'owner') {
        if (e.owner && e.owner !== owner) a.log(`session bus: listening to ${name} (${e.owner})`);
        owner = e.owner;
      } else if (e.kind === 'lock') a.dismount('lock', e.what, () => user);
      else a.log(`${e.kind}: ${e.what} (nothing to do)`);
    },
    onDisconnect: () => {
      owner = null;
    },
    log: a.log,
  });
}
