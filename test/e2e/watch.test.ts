/**
 * Issue 7, `vault watch` end to end: real volumes, a real private dbus-daemon per test, logind and
 * the GNOME screen saver played by python-dbusmock, and the built `vault watch` listening to them.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, FAST_KDF, RUN_DIR, e2eSuite, ok, removeDir, tempDir, vault } from './harness.js';
import { Logind, TestBus, WatchProcess, stopAll, waitFor } from './dbus.js';

const suite = e2eSuite('watch');
const run = suite.run;
const PW = 'lock me away\n';

interface Vol {
  container: string;
  mountpoint: string;
  id: string;
  serverPid: number;
}

const containers: Record<string, string> = {};

function mount(name: string, policy: string[], env: Record<string, string> = {}): Vol {
  const mp = path.join(suite.dir, `mp-${name}`);
  mkdirSync(mp, { recursive: true });
  ok(vault(['mount', containers[name]!, mp, '--password-stdin', ...policy], PW, env), `mount ${name}`);
  const v = JSON.parse(ok(vault(['list', '--json'])).stdout).find((r: { mountpoint: string }) => r.mountpoint === mp);
  return { container: v.container, mountpoint: mp, id: v.id, serverPid: v.serverPid };
}

/** Alive and not a zombie (an exited server that nobody has reaped yet holds no key). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
const mounted = (v: Vol) => existsSync(path.join(RUN_DIR, v.id)) || alive(v.serverPid);

let watchers: WatchProcess[] = [];
/** `vault watch` as a child process, its log collected. */
function watch(env: Record<string, string>, bus = 'system'): WatchProcess {
  const w = new WatchProcess(spawn(process.execPath, [CLI, 'watch', '--bus', bus], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  watchers.push(w);
  return w;
}

/** A private system bus with logind and one session, "c1". */
async function logindBus(): Promise<{ bus: TestBus; logind: Logind }> {
  const bus = new TestBus(suite.dir, 'system', 'system');
  await bus.start();
  const logind = await Logind.start(bus);
  logind.addSession('c1');
  return { bus, logind };
}

describe.runIf(run)('vault watch', () => {
  beforeAll(() => {
    for (const name of ['a', 'b']) {
      containers[name] = path.join(suite.dir, `${name}.vol`);
      ok(vault(['create', containers[name]!, '--size', '32M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW), `create ${name}`);
    }
  });

  afterEach(async () => {
    for (const w of watchers) {
      const status = await w.stop();
      expect(status, `vault watch should stop cleanly on SIGTERM:\n${w.log}`).toBe(0);
    }
    watchers = [];
    vault(['dismount', '--all', '--force', '--quiet']);
    await stopAll();
  });

  it('an unknown --bus is a usage error', () => {
    const r = vault(['watch', '--bus', 'nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--bus: unknown bus "nope"/);
  });

  it('Lock: within 5 s exactly the volume whose policy names lock is dismounted, and its server has exited', async () => {
    const { bus, logind } = await logindBus();
    const a = mount('a', ['--dismount-on', 'lock']);
    const b = mount('b', ['--dismount-on', 'sleep']);
    const w = watch(bus.env);
    await w.waitLog(/listening to logind/);
    const t0 = Date.now();
    logind.session('c1', 'Lock');
    await waitFor('volume a dismounted', () => !mounted(a), 5000);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(5000);
    expect(alive(a.serverPid)).toBe(false);
    expect(existsSync(path.join(RUN_DIR, a.id))).toBe(false);
    expect(mounted(b)).toBe(true);
    await w.waitLog(/lock: dismounted .*a\.vol .*key wiped/);
    // b still works
    writeFileSync(path.join(b.mountpoint, 'still-open.txt'), 'yes');
    console.log(`Lock → dismounted in ${elapsed} ms`);
  });

  it('Sleep: PrepareForSleep(true) dismounts the sleep volumes; the delay inhibitor is held before and released only after the dismount', async () => {
    const { bus, logind } = await logindBus();
    const a = mount('a', ['--dismount-on', 'lock,sleep']);
    const b = mount('b', ['--dismount-on', 'lock']);
    const w = watch(bus.env);
    await waitFor('the sleep inhibitor to be listed', () => logind.vaultInhibitorHeld(), 10_000, 100);
    logind.prepareForSleep(true);
    // Until the inhibitor is gone, poll both; read the inhibitor first: if it was already released
    // while the volume was still mounted afterwards, it was released too early.
    let polls = 0;
    for (;;) {
      const held = logind.vaultInhibitorHeld();
      const stillMounted = mounted(a);
      polls++;
      if (!held) {
        expect(stillMounted, 'inhibitor released before the dismount ended').toBe(false);
        break;
      }
      if (polls > 300) throw new Error(`the inhibitor was never released:\n${w.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive(a.serverPid)).toBe(false);
    expect(mounted(b)).toBe(true);
    await w.waitLog(/sleep: dismounted .*a\.vol/);
    await w.waitLog(/released the delay inhibitor/);
    // After resume the watcher takes the inhibitor again, for the next sleep.
    logind.prepareForSleep(false);
    await waitFor('the inhibitor to be taken again after resume', () => logind.vaultInhibitorHeld(), 10_000, 100);
    expect(mounted(b)).toBe(true);
  });

  it('Unlock does nothing: Unlock, LockedHint=false and ActiveChanged(false) leave volumes mounted', async () => {
    const { bus, logind } = await logindBus();
    const session = new TestBus(suite.dir, 'session', 'session');
    await session.start();
    await session.mock('gnome_screensaver', 'org.gnome.ScreenSaver');
    const a = mount('a', ['--dismount-on', 'lock,sleep']);
    const w = watch({ ...bus.env, ...session.env }, 'all');
    await w.waitLog(/listening to logind/);
    await w.waitLog(/listening to org\.gnome\.ScreenSaver/);
    logind.session('c1', 'Unlock');
    logind.session('c1', 'SetLockedHint', 'false');
    session.call('org.gnome.ScreenSaver', '/org/gnome/ScreenSaver', 'org.gnome.ScreenSaver.SetActive', 'false');
    await w.waitLog(/unlock: .*nothing to do/, 3);
    expect(mounted(a)).toBe(true);
    expect(w.log).not.toMatch(/dismounted/);
    // The same watcher does react to the screen saver locking (session bus).
    session.call('org.gnome.ScreenSaver', '/org/gnome/ScreenSaver', 'org.gnome.ScreenSaver.SetActive', 'true');
    await waitFor('volume a dismounted on ActiveChanged(true)', () => !mounted(a), 5000);
    await w.waitLog(/lock: dismounted .*a\.vol/);
  });

  it('under sudo, the screen savers are watched on the invoking user\'s own session bus, which refuses root', async () => {
    const nobody = { uid: 65534, gid: 65534 };
    // The user's bus lives in a directory of that user's (the suite's dir is root's, 0700).
    const dir = tempDir('watch-user');
    try {
      chownSync(dir, nobody.uid, nobody.gid);
      const session = new TestBus(dir, 'user-bus', 'session', nobody);
      await session.start();
      await session.mock('gnome_screensaver', 'org.gnome.ScreenSaver');
      const asRoot = session.gdbus(['call', '--session', '--dest', 'org.freedesktop.DBus', '--object-path', '/org/freedesktop/DBus', '--method', 'org.freedesktop.DBus.GetId'], false);
      expect(asRoot.status, 'root must not get onto the user bus').not.toBe(0);
      // A session bus speaks for its user only: the volume is the invoking user's (issue 13).
      const a = mount('a', ['--dismount-on', 'lock'], { SUDO_UID: String(nobody.uid), SUDO_GID: String(nobody.gid) });
      const w = watch({ ...session.env, SUDO_UID: String(nobody.uid), SUDO_GID: String(nobody.gid) }, 'session');
      await w.waitLog(/listening to org\.gnome\.ScreenSaver/);
      session.call('org.gnome.ScreenSaver', '/org/gnome/ScreenSaver', 'org.gnome.ScreenSaver.SetActive', 'true');
      await waitFor('volume a dismounted on ActiveChanged(true)', () => !mounted(a), 5000);
      await w.waitLog(/lock: dismounted .*a\.vol/);
    } finally {
      await stopAll();
      removeDir(dir);
    }
  });

  it('Lock with an open file: the volume is dismounted anyway, the process is ended and the log names it', async () => {
    const { bus, logind } = await logindBus();
    const a = mount('a', ['--dismount-on', 'lock']);
    writeFileSync(path.join(a.mountpoint, 'held.txt'), 'held open');
    // The shell opens the file itself, so this test process holds nothing on the volume.
    const holder = spawn('sh', ['-c', 'exec 3<"$1"; exec sleep 600', 'sh', path.join(a.mountpoint, 'held.txt')], { stdio: 'ignore' });
    try {
      await waitFor('the holder to open the file', () => {
        try {
          return readdirSync(`/proc/${holder.pid}/fd`).some((fd) => readlinkSync(`/proc/${holder.pid}/fd/${fd}`).endsWith('held.txt'));
        } catch {
          return false;
        }
      });
      const w = watch(bus.env);
      await w.waitLog(/listening to logind/);
      logind.session('c1', 'SetLockedHint', 'true'); // PropertiesChanged(LockedHint=true)
      await waitFor('volume a dismounted', () => !mounted(a), 10_000);
      await waitFor('the holder to be ended', () => holder.exitCode !== null || holder.signalCode !== null, 5000);
      await w.waitLog(new RegExp(`lock: dismounted .*a\\.vol .*ended pid ${holder.pid} \\(sleep\\)`));
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('Bus restart: the watcher reconnects, takes the inhibitor again and still reacts to the next Lock', async () => {
    const { bus } = await logindBus();
    const w = watch(bus.env);
    await w.waitLog(/listening to logind/);
    await bus.kill();
    await w.waitLog(/lost org\.freedesktop\.login1/);
    await bus.start();
    const logind = await Logind.start(bus);
    logind.addSession('c1');
    await w.waitLog(/listening to logind/, 2);
    await waitFor('the sleep inhibitor to be taken on the new bus', () => logind.vaultInhibitorHeld(), 10_000, 100);
    const a = mount('a', ['--dismount-on', 'lock']);
    logind.session('c1', 'Lock');
    await waitFor('volume a dismounted after the bus restart', () => !mounted(a), 5000);
    await w.waitLog(/lock: dismounted .*a\.vol/);
  });
});
