/**
 * Issue 15, auto-dismount from an ordinary user's own session: `vault watch` run as the user (no
 * sudo) on their session bus and on logind, and the volume server's idle limit, each closing the
 * user's udisks and fuse volumes completely. Real components as in rootless.test.ts (the stack:
 * dbus-daemon, udevd, polkitd, udisksd) and watch.test.ts (python-dbusmock plays the GNOME screen
 * saver on a session bus the user runs at $XDG_RUNTIME_DIR/bus, and logind on the stack's system
 * bus, under logind's own bus policy from /usr/share/dbus-1/system.d).
 *
 * After every test nothing of the user may be left: no mount, loop device, server, state, nor any
 * process of theirs (the watcher's gdbus monitors and systemd-inhibit included).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, FAST_KDF, e2eAvailable, ok, vault, type VaultResult } from './harness.js';
import { Logind, TestBus, WatchProcess, stopAll, waitFor } from './dbus.js';
import { localUser, runAs, spawnAs, type LocalUser } from '../support/unprivileged.js';
import { runtimeDir, userLeftovers, userProcesses } from '../support/user-leftovers.js';
import { startRootlessStack, type RootlessStack } from '../support/rootless-stack.js';
import { snapshotSetupFiles } from '../support/setup-files.js';

const RUN = e2eAvailable('rootless-watch.test.ts');
const PASS = 'lock it when I leave\n';
const SCREENSAVER = 'org.gnome.ScreenSaver';

let stack: RootlessStack;
/** In group vault (setup-rootless --user): mounts through udisks, or fuse with --via fuse. */
let wanda: LocalUser;
let restoreSetupFiles = (): void => {};

function loginEnv(u: LocalUser, extra: Record<string, string>): string[] {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, USER: u.name, XDG_RUNTIME_DIR: runtimeDir(u), ...stack.env, ...extra };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** `vault ARGS` as user `u`, with a login's environment. */
function asUser(u: LocalUser, args: string[], input = ''): VaultResult {
  const r = runAs(u, 'env', [...loginEnv(u, {}), process.execPath, CLI, ...args], input);
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Vol {
  id: string;
  container: string;
  mountpoint: string;
  route: string;
  serverPid: number;
  loopDevice: string | null;
}

function listAs(u: LocalUser): Vol[] {
  return JSON.parse(ok(asUser(u, ['list', '--json']), 'list').stdout) as Vol[];
}

/** Creates NAME.vol in the user's home (ext4) and mounts it with `opts`; returns its listing. */
function mountAs(u: LocalUser, name: string, opts: string[]): Vol {
  const file = path.join(u.home, `${name}.vol`);
  if (!existsSync(file)) ok(asUser(u, ['create', file, '--size', '48M', '--fs', 'ext4', '--password-stdin', '--quick', ...FAST_KDF], PASS), `create ${name}`);
  const m = asUser(u, ['mount', file, '--password-stdin', ...opts], PASS);
  ok(m, `mount ${name} ${opts.join(' ')}`);
  const v = listAs(u).find((x) => x.container === file);
  expect(v, `${name} in vault list`).toBeDefined();
  return v!;
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Everything of the volume is gone: its state, its server, its filesystem and its loop device. */
function gone(u: LocalUser, v: Vol): boolean {
  if (existsSync(path.join(runtimeDir(u), 'vault', v.id)) || alive(v.serverPid)) return false;
  if (readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === v.mountpoint)) return false;
  if (v.loopDevice) {
    try {
      readFileSync(`/sys/block/${path.basename(v.loopDevice)}/loop/backing_file`, 'utf8');
      return false;
    } catch {
      // detached
    }
  }
  return true;
}

let watchers: WatchProcess[] = [];
/** `vault watch` run by the user (setpriv, then env, then node: one pid). */
function watch(bus: string, env: Record<string, string> = {}): WatchProcess {
  const w = new WatchProcess(spawnAs(wanda, 'env', [...loginEnv(wanda, env), process.execPath, CLI, 'watch', '--bus', bus]));
  watchers.push(w);
  return w;
}

/** `vault watch` as plain root, as contrib/vault-watch.service runs it (no VAULT_RUN_DIR: every user's volumes). */
function rootWatch(bus: string): WatchProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...stack.env };
  delete env.VAULT_RUN_DIR;
  const w = new WatchProcess(spawn(process.execPath, [CLI, 'watch', '--bus', bus], { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', env }));
  watchers.push(w);
  return w;
}

/** The user's session bus where systemd puts it ($XDG_RUNTIME_DIR/bus), run by the user, with the GNOME screen saver. */
async function sessionBus(u: LocalUser): Promise<TestBus> {
  const bus = TestBus.at(path.join(runtimeDir(u), 'bus'), 'session', { uid: u.uid, gid: u.gid });
  await bus.start();
  await bus.mock('gnome_screensaver', SCREENSAVER);
  return bus;
}

/** logind (python-dbusmock, run by root, as logind is) on the stack's system bus, with session c1 of `u`. */
async function logindFor(u: LocalUser): Promise<{ logind: Logind; session: string }> {
  const bus = TestBus.at(stack.env.DBUS_SYSTEM_BUS_ADDRESS.replace(/^unix:path=/, ''), 'system');
  const logind = await Logind.start(bus);
  return { logind, session: logind.addSession('c1', u.uid, u.name) };
}

describe.skipIf(!RUN)('auto-dismount from an ordinary user\'s session (issue 15)', () => {
  beforeAll(async () => {
    stack = await startRootlessStack(); // first: it waits for other runs' rootless suites
    restoreSetupFiles = snapshotSetupFiles();
    wanda = localUser('vault-wanda');
    mkdirSync(runtimeDir(wanda), { recursive: true, mode: 0o700 });
    chownSync(runtimeDir(wanda), wanda.uid, wanda.gid);
    for (const f of ['a', 'b', 'c'].map((n) => path.join(wanda.home, `${n}.vol`))) rmSync(f, { force: true }); // a failed run's
    ok(vault(['setup-rootless', '--user', wanda.name]), 'setup-rootless');
  }, 300_000);

  afterEach(async () => {
    const statuses: [number | null, string][] = [];
    for (const w of watchers) statuses.push([await w.stop(), w.log]);
    watchers = [];
    await stopAll(); // the buses and mocks
    rmSync(path.join(runtimeDir(wanda), 'bus'), { force: true });
    const left = [...userLeftovers(wanda), ...userProcesses(wanda)];
    if (left.length) {
      asUser(wanda, ['dismount', '--all', '--force']);
      for (const p of userProcesses(wanda)) process.kill(Number(/^process (\d+)/.exec(p)![1]), 'SIGKILL');
    }
    for (const [status, log] of statuses) expect(status, `vault watch should stop cleanly on SIGTERM:\n${log}`).toBe(0);
    expect(left, 'a test left these behind').toEqual([]);
  });

  afterAll(async () => {
    if (!stack) return;
    spawnSync('gpasswd', ['-d', wanda.name, 'vault']);
    vault(['setup-rootless', '--undo']);
    restoreSetupFiles();
    await stack.stop();
  }, 120_000);

  it('screen saver ActiveChanged(true) on the user\'s session bus: the user\'s watcher, without sudo, closes their lock volumes (udisks and fuse) and leaves the others', async () => {
    const session = await sessionBus(wanda);
    const a = mountAs(wanda, 'a', ['--dismount-on', 'lock']);
    const b = mountAs(wanda, 'b', ['--dismount-on', 'sleep']);
    const c = mountAs(wanda, 'c', ['--dismount-on', 'lock', '--via', 'fuse']);
    expect([a.route, b.route, c.route]).toEqual(['udisks', 'udisks', 'fuse']);
    // A SUDO_UID in the user's environment (a shell from `sudo -u`) names nobody the watcher may
    // act for: it must neither connect as that uid nor narrow its scope to it.
    const w = watch('session', { DBUS_SESSION_BUS_ADDRESS: session.address, SUDO_UID: '65534', SUDO_GID: '65534' });
    await w.waitLog(new RegExp(`started .* for the volumes of uid ${wanda.uid} \\(${runtimeDir(wanda)}/vault\\)`));
    await w.waitLog(/listening to org\.gnome\.ScreenSaver/);
    const t0 = Date.now();
    session.call(SCREENSAVER, '/org/gnome/ScreenSaver', `${SCREENSAVER}.SetActive`, 'true');
    await waitFor(`a and c dismounted\n${w.log}`, () => gone(wanda, a) && gone(wanda, c), 15_000, 50);
    const elapsed = Date.now() - t0;
    await w.waitLog(/lock: dismounted .*\/a\.vol \(.*deleted \/dev\/loop\d+.*key wiped\)/);
    await w.waitLog(/lock: dismounted .*\/c\.vol \(.*key wiped\)/);
    expect(gone(wanda, b)).toBe(false);
    expect(listAs(wanda).map((v) => v.id)).toEqual([b.id]);
    const probe = runAs(wanda, 'sh', ['-c', 'echo still-open > "$1/probe" && cat "$1/probe"', 'sh', b.mountpoint]);
    expect(probe.stdout.trim(), probe.stderr).toBe('still-open');
    ok(asUser(wanda, ['dismount', b.mountpoint]), 'dismount b');
    console.log(`ActiveChanged(true) → udisks and fuse volumes dismounted by the user's watcher in ${elapsed} ms`);
  });

  it('logind as the user: the sleep delay inhibitor is the user\'s, PrepareForSleep(true) closes their sleep volumes before it is released, their session\'s Lock their lock volume', async () => {
    await sessionBus(wanda);
    const { logind, session } = await logindFor(wanda);
    const a = mountAs(wanda, 'a', ['--dismount-on', 'sleep']);
    const b = mountAs(wanda, 'b', ['--dismount-on', 'lock']);
    const c = mountAs(wanda, 'c', ['--dismount-on', 'lock,sleep', '--via', 'fuse']);
    // What the user unit runs: both buses, the session bus found at $XDG_RUNTIME_DIR/bus.
    const w = watch('all');
    await w.waitLog(/listening to logind/);
    await w.waitLog(/listening to org\.gnome\.ScreenSaver/);
    await waitFor(`the user's sleep inhibitor\n${w.log}`, () => logind.vaultInhibitorHeld(), 10_000, 100);
    const inhibitor = spawnSync('pgrep', ['-u', String(wanda.uid), '-f', 'systemd-inhibit --what=sleep'], { encoding: 'utf8' });
    expect(inhibitor.stdout.trim(), 'systemd-inhibit runs as the user').not.toBe('');
    logind.prepareForSleep(true);
    // The inhibitor goes only after both sleep volumes are closed.
    for (let polls = 0; ; polls++) {
      const held = logind.vaultInhibitorHeld();
      const closed = gone(wanda, a) && gone(wanda, c);
      if (!held) {
        expect(closed, `inhibitor released before the dismounts ended\n${w.log}`).toBe(true);
        break;
      }
      if (polls > 1000) throw new Error(`the inhibitor was never released:\n${w.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await w.waitLog(/sleep: dismounted .*\/a\.vol/);
    await w.waitLog(/sleep: dismounted .*\/c\.vol/);
    await w.waitLog(/released the delay inhibitor/);
    expect(gone(wanda, b)).toBe(false);
    logind.prepareForSleep(false);
    await waitFor(`the inhibitor taken again after resume\n${w.log}`, () => logind.vaultInhibitorHeld(), 10_000, 100);
    // The user's logind session locks: their lock volume closes.
    logind.session('c1', 'Lock');
    await waitFor(`b dismounted on the Lock of ${session}\n${w.log}`, () => gone(wanda, b), 15_000, 50);
    await w.waitLog(/lock: dismounted .*\/b\.vol/);
  });

  it('logind refusing the user a delay inhibitor: the watcher says why and still dismounts on PrepareForSleep(true)', async () => {
    const { logind } = await logindFor(wanda);
    // What logind answers when polkit says no (org.freedesktop.login1.inhibit-delay-sleep).
    logind.bus.call(Logind.NAME, Logind.PATH, 'org.freedesktop.DBus.Mock.AddMethod', 'org.freedesktop.login1.Manager', 'Inhibit', 'ssss', 'h',
      'raise dbus.exceptions.DBusException("Access denied", name="org.freedesktop.DBus.Error.AccessDenied")');
    const a = mountAs(wanda, 'a', ['--dismount-on', 'sleep']);
    const w = watch('system');
    await w.waitLog(/sleep: cannot take a delay inhibitor, volumes may not be dismounted before suspend: .*Access denied/);
    expect(logind.vaultInhibitorHeld()).toBe(false);
    logind.prepareForSleep(true);
    await waitFor(`a dismounted without an inhibitor\n${w.log}`, () => gone(wanda, a), 15_000, 50);
    await w.waitLog(/sleep: dismounted .*\/a\.vol/);
    logind.prepareForSleep(false);
    await w.waitLog(/resume: /);
  });

  it('plain root\'s system watcher (vault-watch.service) closes the sleep volumes users mounted themselves; their data is intact', async () => {
    const { logind } = await logindFor(wanda);
    const a = mountAs(wanda, 'a', ['--dismount-on', 'sleep']);
    const c = mountAs(wanda, 'c', ['--dismount-on', 'sleep', '--via', 'fuse']);
    const b = mountAs(wanda, 'b', ['--dismount-on', 'lock']);
    for (const v of [a, c]) {
      const w = runAs(wanda, 'sh', ['-c', 'head -c 1048576 /dev/urandom > "$1/data" && sha256sum < "$1/data"', 'sh', v.mountpoint]);
      expect(w.status, w.stderr).toBe(0);
      (v as Vol & { sum?: string }).sum = w.stdout.trim();
    }
    const w = rootWatch('system');
    await waitFor(`root's sleep inhibitor\n${w.log}`, () => logind.vaultInhibitorHeld(), 10_000, 100);
    logind.prepareForSleep(true);
    await w.waitLog(/released the delay inhibitor/);
    expect(w.log).toMatch(/sleep: dismounted .*\/a\.vol/);
    expect(w.log).toMatch(/sleep: dismounted .*\/c\.vol/);
    // Root leaves the user's records to the user's next vault command, which clears them.
    ok(asUser(wanda, ['list']));
    expect(gone(wanda, a) && gone(wanda, c), w.log).toBe(true);
    expect(gone(wanda, b)).toBe(false);
    ok(asUser(wanda, ['dismount', b.mountpoint]), 'dismount b');
    logind.prepareForSleep(false);
    for (const [name, v, via] of [['a', a, 'udisks'], ['c', c, 'fuse']] as const) {
      const m = mountAs(wanda, name, ['--via', via]);
      const r = runAs(wanda, 'sh', ['-c', 'sha256sum < "$1/data"', 'sh', m.mountpoint]);
      expect(r.stdout.trim(), `${name} after root's dismount: ${r.stderr}`).toBe((v as Vol & { sum?: string }).sum);
      ok(asUser(wanda, ['dismount', m.mountpoint]), `dismount ${name}`);
    }
  });

  for (const via of ['udisks', 'fuse'] as const) {
    it(`--idle 3s on a user's ${via} volume: its server dismounts it completely after ~3 s without I/O; a volume without a limit stays`, async () => {
      const keep = mountAs(wanda, 'b', ['--via', via]);
      const t0 = Date.now();
      const a = mountAs(wanda, 'a', ['--idle', '3s', '--via', via]);
      const mountedAt = Date.now();
      expect(a.route).toBe(via);
      const serverLog = path.join(runtimeDir(wanda), 'vault', a.id, 'server.log');
      await waitFor(`the idle ${via} volume to be dismounted`, () => gone(wanda, a), 30_000, 100).catch((e: Error) => {
        throw new Error(`${e.message}\n${existsSync(serverLog) ? readFileSync(serverLog, 'utf8') : ''}`);
      });
      const after = Date.now() - mountedAt;
      expect(after).toBeGreaterThanOrEqual(2000);
      const log = readFileSync(path.join(runtimeDir(wanda), 'vault', keep.id, 'server.log'), 'utf8');
      expect(log).not.toMatch(/idle/);
      expect(gone(wanda, keep)).toBe(false);
      expect(listAs(wanda).map((v) => v.id)).toEqual([keep.id]);
      ok(asUser(wanda, ['dismount', keep.mountpoint]), 'dismount the other');
      console.log(`idle ${via} volume dismounted ${after} ms after its mount returned (${mountedAt - t0} ms to mount)`);
    });
  }
});
