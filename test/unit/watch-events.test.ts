/**
 * The watcher's reading of `gdbus monitor` lines (the lines are as gdbus 2.74 prints them, captured
 * from python-dbusmock's logind and gnome_screensaver templates).
 */
import { describe, expect, it } from 'vitest';
import { parseMonitorLine } from '../../src/watch/events.js';
import { sessionBus } from '../../src/system/bus-address.js';

describe('parseMonitorLine', () => {
  const cases: [string, unknown][] = [
    ['/org/freedesktop/login1/session/c1: org.freedesktop.login1.Session.Lock ()', { kind: 'lock', what: 'logind Lock of /org/freedesktop/login1/session/c1', session: '/org/freedesktop/login1/session/c1' }],
    ['/org/freedesktop/login1/session/c1: org.freedesktop.login1.Session.Unlock ()', { kind: 'unlock', what: 'logind Unlock of /org/freedesktop/login1/session/c1', session: '/org/freedesktop/login1/session/c1' }],
    [
      "/org/freedesktop/login1/session/c1: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Session', {'LockedHint': <true>}, @as [])",
      { kind: 'lock', what: 'logind LockedHint=true of /org/freedesktop/login1/session/c1', session: '/org/freedesktop/login1/session/c1' },
    ],
    [
      "/org/freedesktop/login1/session/c1: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Session', {'IdleHint': <false>, 'LockedHint': <false>}, @as [])",
      { kind: 'unlock', what: 'logind LockedHint=false of /org/freedesktop/login1/session/c1', session: '/org/freedesktop/login1/session/c1' },
    ],
    ['/org/freedesktop/login1: org.freedesktop.login1.Manager.PrepareForSleep (true,)', { kind: 'sleep', what: 'logind PrepareForSleep(true)' }],
    ['/org/freedesktop/login1: org.freedesktop.login1.Manager.PrepareForSleep (false,)', { kind: 'resume', what: 'logind PrepareForSleep(false)' }],
    ['/org/gnome/ScreenSaver: org.gnome.ScreenSaver.ActiveChanged (true,)', { kind: 'lock', what: 'org.gnome.ScreenSaver ActiveChanged(true)' }],
    ['/ScreenSaver: org.freedesktop.ScreenSaver.ActiveChanged (false,)', { kind: 'unlock', what: 'org.freedesktop.ScreenSaver ActiveChanged(false)' }],
    ['/org/xfce/ScreenSaver: org.xfce.ScreenSaver.ActiveChanged (true,)', { kind: 'lock', what: 'org.xfce.ScreenSaver ActiveChanged(true)' }],
    ['The name org.freedesktop.login1 is owned by :1.3', { kind: 'owner', name: 'org.freedesktop.login1', owner: ':1.3' }],
    ['The name org.gnome.ScreenSaver does not have an owner', { kind: 'owner', name: 'org.gnome.ScreenSaver', owner: null }],
  ];
  for (const [line, event] of cases) it(line.slice(0, 90), () => expect(parseMonitorLine(line)).toEqual(event));

  it('ignores everything else: other signals, other properties, other interfaces, noise', () => {
    for (const line of [
      'Monitoring signals from all objects owned by org.freedesktop.login1',
      "/org/freedesktop/login1/session/c1: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Session', {'IdleHint': <true>}, @as [])",
      "/org/freedesktop/login1/session/c1: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Session', @a{sv} {}, ['LockedHint'])",
      "/org/freedesktop/login1/seat/seat0: org.freedesktop.DBus.Properties.PropertiesChanged ('org.freedesktop.login1.Seat', {'LockedHint': <true>}, @as [])",
      "/org/freedesktop/login1/session/c1: org.freedesktop.DBus.Mock.MethodCalled ('Lock', @av [])",
      '/org/freedesktop/login1: org.freedesktop.login1.Manager.PrepareForShutdown (true,)',
      '/org/example: com.example.Session.Lock ()',
      '',
    ])
      expect(parseMonitorLine(line), line).toBeNull();
  });
});

describe('sessionBus', () => {
  const sudo = { SUDO_UID: '1000', SUDO_GID: '1000' };
  it('root under sudo: the invoking user\'s bus, connected to as that user', () => {
    expect(sessionBus(sudo, 0)).toEqual({ kind: 'session', address: 'unix:path=/run/user/1000/bus', as: { uid: 1000, gid: 1000 } });
    expect(sessionBus({ ...sudo, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/x' }, 0)).toEqual({ kind: 'session', address: 'unix:path=/x', as: { uid: 1000, gid: 1000 } });
  });

  it('an ordinary user (issue 15): their own bus as themselves, whatever SUDO_UID says', () => {
    const env = { ...sudo, XDG_RUNTIME_DIR: '/run/user/1001' };
    expect(sessionBus(env, 1001)).toEqual({ kind: 'session', address: 'unix:path=/run/user/1001/bus' });
    expect(sessionBus({ ...env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/y' }, 1001)).toEqual({ kind: 'session', address: 'unix:path=/y' });
    expect(sessionBus(sudo, 1001)).toBeNull();
  });
});
