/**
 * Real D-Bus for the watcher tests: a private dbus-daemon per test (config in dbus/test-bus.conf)
 * on which python-dbusmock, run by Debian's own python3 (the one python3-dbusmock installs for),
 * plays logind (template `logind`) or the GNOME screen saver (template `gnome_screensaver`).
 * Everything started here is stopped by stopAll(), which the tests call after each test.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.js';

const BUS_CONF = path.join(ROOT, 'test/e2e/dbus/test-bus.conf');
/** A session bus as dbus-daemon's own session.conf sets it up: only its owner may connect. */
const OWNER_ONLY_CONF = path.join(ROOT, 'test/e2e/dbus/owner-only-bus.conf');

export interface User {
  uid: number;
  gid: number;
}
/** Debian's interpreter: python3 on PATH may be another one (pyenv) without the dbusmock package. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const started = new Set<ChildProcess>();

/** Starts `argv` (as `user` if given) and remembers it for stopAll(). */
function launch(argv: string[], env: Record<string, string>, user?: User): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...(user ?? {}) });
  started.add(child);
  child.on('exit', () => started.delete(child));
  return child;
}

async function kill(child: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(sig);
  await gone;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((c) => kill(c, 'SIGKILL')));
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Date.now() - t0;
}

/**
 * A private dbus-daemon listening on a socket in `dir`; restartable on the same address. With
 * `owner`, it is a user's session bus: run by that user, and closed to everyone else, root too.
 */
export class TestBus {
  readonly socket: string;
  private daemon: ChildProcess | null = null;

  constructor(
    dir: string,
    name: string,
    readonly kind: 'system' | 'session',
    readonly owner?: User,
  ) {
    this.socket = path.join(dir, `${name}.sock`);
  }

  /**
   * A bus on the socket at `socket`: to start there (a user's session bus at the place systemd
   * puts it, $XDG_RUNTIME_DIR/bus), or one already running (the rootless stack's system bus) to
   * call and run mocks on, without start().
   */
  static at(socket: string, kind: 'system' | 'session', owner?: User): TestBus {
    const bus = new TestBus(path.dirname(socket), path.basename(socket), kind, owner);
    (bus as { socket: string }).socket = socket;
    return bus;
  }

  get address(): string {
    return `unix:path=${this.socket}`;
  }

  /** The variable that points vault and the mocks at this bus. */
  get env(): Record<string, string> {
    return { [this.kind === 'system' ? 'DBUS_SYSTEM_BUS_ADDRESS' : 'DBUS_SESSION_BUS_ADDRESS']: this.address };
  }

  async start(): Promise<void> {
    rmSync(this.socket, { force: true });
    let conf = BUS_CONF;
    if (this.owner) {
      // The daemon runs as the owner, who may not be able to read the checkout.
      conf = path.join(path.dirname(this.socket), path.basename(OWNER_ONLY_CONF));
      copyFileSync(OWNER_ONLY_CONF, conf);
      chmodSync(conf, 0o644);
    }
    this.daemon = launch(['dbus-daemon', `--config-file=${conf}`, `--address=${this.address}`, '--nofork', '--nopidfile'], {}, this.owner);
    await waitFor(`dbus-daemon on ${this.socket}`, () => existsSync(this.socket), 10_000);
    // Read once at start: the copy must not stay behind in the owner's directory.
    if (conf !== BUS_CONF) rmSync(conf, { force: true });
  }

  /** Kills the daemon outright (SIGKILL), as a crash would. Every client loses its connection. */
  async kill(): Promise<void> {
    if (this.daemon) await kill(this.daemon, 'SIGKILL');
    this.daemon = null;
  }

  /** `gdbus call` on this bus (as its owner); returns its output (a GVariant text) or throws with its error. */
  call(dest: string, objectPath: string, method: string, ...args: string[]): string {
    const r = this.gdbus(['call', `--${this.kind}`, '--dest', dest, '--object-path', objectPath, '--method', method, ...args]);
    if (r.status !== 0) throw new Error(`gdbus call ${method}: ${r.stderr.trim() || r.error?.message}`);
    return r.stdout.trim();
  }

  /** Runs gdbus on this bus, as the bus's owner if it has one. */
  gdbus(args: string[], asOwner = true): SpawnSyncReturns<string> {
    return spawnSync('gdbus', args, {
      encoding: 'utf8',
      env: { ...process.env, ...this.env },
      timeout: 10_000,
      ...(asOwner && this.owner ? this.owner : {}),
    });
  }

  /** Starts python-dbusmock with `template` and waits until it owns `name`. */
  async mock(template: string, name: string): Promise<ChildProcess> {
    const argv = [DEBIAN_PYTHON, '-m', 'dbusmock', ...(this.kind === 'system' ? ['--system'] : []), '--template', template];
    const child = launch(argv, this.env, this.owner);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(
      `dbusmock ${template} to own ${name}`,
      () => {
        if (child.exitCode !== null) throw new Error(`dbusmock ${template} exited: ${stderr}`);
        return this.gdbus(['introspect', `--${this.kind}`, '--dest', name, '--object-path', '/']).status === 0;
      },
      15_000,
      100,
    );
    return child;
  }
}

/** A running `vault watch` (started by the caller: as root, or as a user), its output collected. */
export class WatchProcess {
  log = '';

  constructor(readonly child: ChildProcess) {
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  count(re: RegExp): number {
    return this.log.split('\n').filter((l) => re.test(l)).length;
  }

  async waitLog(re: RegExp, times = 1, ms = 15_000): Promise<void> {
    await waitFor(`watch log ${re} ×${times}\n${this.log}`, () => this.count(re) >= times, ms);
  }

  /** SIGTERM; resolves with its exit status (0 when it stopped cleanly). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const done = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill('SIGTERM');
    return done;
  }
}

/** The logind mock's helpers: sessions, their signals, sleep, and the inhibitor list. */
export class Logind {
  static readonly NAME = 'org.freedesktop.login1';
  static readonly PATH = '/org/freedesktop/login1';

  constructor(readonly bus: TestBus) {}

  static async start(bus: TestBus): Promise<Logind> {
    await bus.mock('logind', Logind.NAME);
    return new Logind(bus);
  }

  /**
   * Adds session `id` of user `uid` and returns its object path. A session's lock closes only its
   * user's volumes (issue 13): root's by default, as the suite mounts as plain root.
   */
  addSession(id: string, uid = 0, name = 'root'): string {
    this.bus.call(Logind.NAME, Logind.PATH, 'org.freedesktop.DBus.Mock.AddSession', id, 'seat0', String(uid), name, 'true');
    return `${Logind.PATH}/session/${id}`;
  }

  session(id: string, method: 'Lock' | 'Unlock' | 'SetLockedHint', ...args: string[]): void {
    this.bus.call(Logind.NAME, `${Logind.PATH}/session/${id}`, `org.freedesktop.login1.Session.${method}`, ...args);
  }

  prepareForSleep(start: boolean): void {
    this.bus.call(Logind.NAME, Logind.PATH, 'org.freedesktop.DBus.Mock.EmitSignal', 'org.freedesktop.login1.Manager', 'PrepareForSleep', 'b', `[<${start}>]`);
  }

  /** Whether vault's sleep delay inhibitor is held (logind's ListInhibitors). */
  vaultInhibitorHeld(): boolean {
    const out = this.bus.call(Logind.NAME, Logind.PATH, 'org.freedesktop.login1.Manager.ListInhibitors');
    return /\('sleep', 'vault', '[^']*', 'delay'/.test(out);
  }
}
