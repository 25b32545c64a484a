/**
 * The real daemons of "vault without root" (issue 15), started as root for one test file or one
 * `npm run bench`, never mocks: a private system bus (dbus-daemon with a system-bus config on a
 * socket in a fresh temp dir), systemd-udevd unless one already runs (it is machine-wide), polkitd
 * and udisksd on that bus.
 * Clients reach them through DBUS_SYSTEM_BUS_ADDRESS (`env`); a user's process started through
 * setpriv --reset-env needs it passed explicitly (`env` the program). stop() ends exactly what
 * start started, process group by process group, and removes the temp dir.
 *
 * Shared by the tests (test/support/rootless-stack.ts re-exports it) and the bench (rootless.ts).
 *
 * What these suites change is machine-wide (udevd, /etc/fuse.conf, the polkit rule, group vault,
 * which their afterAll undoes), so a stack also holds a lock (flock on LOCK_FILE) from start to
 * stop: suites of parallel runs (worktrees) wait for each other instead of undoing each other's
 * setup mid-test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface RootlessStack {
  /** The temp dir with the bus socket, its config and the daemons' logs. */
  readonly dir: string;
  /** The private system bus, as DBUS_SYSTEM_BUS_ADDRESS. */
  readonly env: { DBUS_SYSTEM_BUS_ADDRESS: string };
  /** Stops udisksd alone (a test of "udisksd absent"), until startUdisks(). */
  stopUdisks(): Promise<void>;
  startUdisks(): Promise<void>;
  /**
   * Starts a udevd of this stack's if none serves the machine now (another stack's, which this one
   * relied on, may have stopped meanwhile); true when it had to.
   */
  ensureUdevd(): Promise<boolean>;
  /** The daemons' logs, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

const UDEVD = '/lib/systemd/systemd-udevd';
const POLKITD = '/usr/lib/polkit-1/polkitd';
const UDISKSD = '/usr/libexec/udisks2/udisksd';
const START_TIMEOUT_MS = 20_000;
const LOCK_FILE = '/run/lock/vault-e2e-rootless.lock';
/** Below the suites' beforeAll timeouts (300 s). */
const LOCK_WAIT_S = 270;

/**
 * Takes LOCK_FILE in a helper (`flock … sh`, which says "held" once it has it) and returns its
 * release. The lock dies with the helper, which dies when this process closes its stdin: a test
 * process that crashes cannot leave it taken.
 */
async function machineLock(): Promise<() => Promise<void>> {
  const child = spawn('flock', ['-w', String(LOCK_WAIT_S), LOCK_FILE, 'sh', '-c', 'echo held; read -r _'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`no rootless stack lock (${LOCK_FILE}) after ${LOCK_WAIT_S} s: another run holds it (flock exit ${code}: ${stderr.trim()})`)));
    child.stdout!.once('data', () => resolve());
  });
  child.removeAllListeners('exit');
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    await gone;
  };
}

/** A system bus as /usr/share/dbus-1/system.conf sets it up, minus the user switch, activation and syslog. */
function busConfig(socket: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
`;
}

/**
 * Whether a udevd serves this machine: its control socket exists and answers (a udevd that was
 * killed leaves the socket file behind).
 */
function udevdRuns(): boolean {
  return existsSync('/run/udev/control') && spawnSync('udevadm', ['control', '--ping', '--timeout=2'], { stdio: 'ignore' }).status === 0;
}

/** Starts the stack and waits until polkitd and udisksd own their names on the bus. */
export async function startRootlessStack(): Promise<RootlessStack> {
  const unlock = await machineLock();
  const dir = mkdtempSync('/tmp/vault-rootless-');
  chmodSync(dir, 0o755); // polkitd drops to its own user, and test users connect too
  const socket = path.join(dir, 'system_bus_socket');
  const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${socket}` };
  const daemons = new Map<string, ChildProcess>();
  const logFile = (name: string) => path.join(dir, `${name}.log`);

  const logs = () =>
    [...daemons.keys()]
      .map((name) => `--- ${name} (${daemons.get(name)!.exitCode ?? daemons.get(name)!.signalCode ?? 'running'}):\n${readFileSync(logFile(name), 'utf8')}`)
      .join('\n');

  /** A daemon in its own process group, its output in NAME.log. */
  const launch = (name: string, argv: string[]) => {
    const log = openSync(logFile(name), 'a');
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
    closeSync(log);
    daemons.set(name, child);
  };

  const waitUntil = async (what: string, cond: () => boolean) => {
    const t0 = Date.now();
    while (!cond()) {
      const dead = [...daemons].find(([, c]) => c.exitCode !== null || c.signalCode !== null);
      if (dead) throw new Error(`${dead[0]} exited while waiting for ${what}\n${logs()}`);
      if (Date.now() - t0 > START_TIMEOUT_MS) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for ${what}\n${logs()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const owned = (name: string) =>
    spawnSync('gdbus', ['call', '--system', '-d', 'org.freedesktop.DBus', '-o', '/org/freedesktop/DBus', '-m', 'org.freedesktop.DBus.NameHasOwner', name], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 5_000,
    }).stdout.trim() === '(true,)';

  const stopOne = async (name: string) => {
    const child = daemons.get(name);
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          // the group is gone already
        }
      };
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    daemons.delete(name);
  };

  const startUdisks = async () => {
    if (daemons.has('udisksd')) return;
    launch('udisksd', [UDISKSD, '--no-sigint']);
    await waitUntil('udisksd to own org.freedesktop.UDisks2', () => owned('org.freedesktop.UDisks2'));
  };

  const ensureUdevd = async () => {
    if (udevdRuns()) return false;
    if (daemons.has('systemd-udevd')) await stopOne('systemd-udevd'); // ours, but no longer answering
    launch('systemd-udevd', [UDEVD]);
    await waitUntil('systemd-udevd to answer on /run/udev/control', udevdRuns);
    return true;
  };

  const stop = async () => {
    for (const name of [...daemons.keys()].reverse()) await stopOne(name);
    rmSync(dir, { recursive: true, force: true });
    await unlock();
  };

  try {
    writeFileSync(path.join(dir, 'bus.conf'), busConfig(socket));
    launch('dbus-daemon', ['dbus-daemon', `--config-file=${path.join(dir, 'bus.conf')}`, '--nofork', '--nopidfile']);
    await waitUntil(`dbus-daemon on ${socket}`, () => existsSync(socket));
    await ensureUdevd();
    // polkitd first: udisksd asks it from its first request on.
    launch('polkitd', [POLKITD, '--no-debug']);
    await waitUntil('polkitd to own org.freedesktop.PolicyKit1', () => owned('org.freedesktop.PolicyKit1'));
    await startUdisks();
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, stopUdisks: () => stopOne('udisksd'), startUdisks, ensureUdevd, logs, stop };
}
