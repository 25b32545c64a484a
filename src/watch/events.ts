/**
 * What the watcher reacts to, read from `gdbus monitor` output lines. One line is one signal:
 *
 *   /org/freedesktop/login1/session/c1: org.freedesktop.login1.Session.Lock ()
 *   /org/freedesktop/login1/session/c1: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Session', {'LockedHint': <true>}, @as [])
 *   /org/freedesktop/login1: org.freedesktop.login1.Manager.PrepareForSleep (true,)
 *   /org/gnome/ScreenSaver: org.gnome.ScreenSaver.ActiveChanged (true,)
 *   The name org.freedesktop.login1 is owned by :1.3
 *   The name org.freedesktop.login1 does not have an owner
 *
 * Everything else (other signals, other properties) is ignored. Unlocking is parsed only so the
 * log can say it was seen: it never dismounts anything.
 */
export type BusEvent =
  /** `session`: the logind session object the event is about (its user's volumes are the ones to close). */
  | { kind: 'lock' | 'unlock' | 'sleep' | 'resume'; what: string; session?: string }
  | { kind: 'owner'; name: string; owner: string | null };

/** The screen savers whose ActiveChanged(true) means the screen was locked. */
export const SCREENSAVER_NAMES = ['org.freedesktop.ScreenSaver', 'org.gnome.ScreenSaver', 'org.xfce.ScreenSaver'] as const;
export const LOGIND_NAME = 'org.freedesktop.login1';

const SIGNAL = /^(\S+): ([A-Za-z_][\w.]*)\.(\w+) \((.*)\)$/;

export function parseMonitorLine(line: string): BusEvent | null {
  const owned = /^The name (\S+) is owned by (\S+)$/.exec(line);
  if (owned) return { kind: 'owner', name: owned[1]!, owner: owned[2]! };
  const unowned = /^The name (\S+) does not have an owner$/.exec(line);
  if (unowned) return { kind: 'owner', name: unowned[1]!, owner: null };

  const m = SIGNAL.exec(line);
  if (!m) return null;
  const [, objectPath, iface, member, args] = m as unknown as [string, string, string, string, string];
  const flag = (a: string) => (/^true,?$/.test(a.trim()) ? true : /^false,?$/.test(a.trim()) ? false : null);
  if (iface === 'org.freedesktop.login1.Session' && (member === 'Lock' || member === 'Unlock'))
    return { kind: member === 'Lock' ? 'lock' : 'unlock', what: `logind ${member} of ${objectPath}`, session: objectPath };
  if (iface === 'org.freedesktop.login1.Manager' && member === 'PrepareForSleep') {
    const f = flag(args);
    if (f === null) return null;
    return { kind: f ? 'sleep' : 'resume', what: `logind PrepareForSleep(${f})` };
  }
  if (iface === 'org.freedesktop.DBus.Properties' && member === 'PropertiesChanged' && args.startsWith("'org.freedesktop.login1.Session'")) {
    // Only the changed-properties dictionary counts, not the invalidated list after it.
    const hint = /'LockedHint': <(true|false)>/.exec(args);
    if (!hint) return null;
    return { kind: hint[1] === 'true' ? 'lock' : 'unlock', what: `logind LockedHint=${hint[1]} of ${objectPath}`, session: objectPath };
  }
  if ((SCREENSAVER_NAMES as readonly string[]).includes(iface) && member === 'ActiveChanged') {
    const f = flag(args);
    if (f === null) return null;
    return { kind: f ? 'lock' : 'unlock', what: `${iface} ActiveChanged(${f})` };
  }
  return null;
}
