/**
 * `vault doctor` on this machine, as root and as an unprivileged uid (nobody, through setpriv):
 * each reported check is compared with an independent look (test -c, command -v, /proc, the
 * sockets), the JSON with spec/doctor.schema.json, the exit code with the checks, and the run must
 * change nothing and be quick.
 *
 * Needs root (to become nobody) and the built CLI; fails instead of skipping on CI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETUP_FILES } from '../../src/system/rootless-setup.js';
import { TRUSTED_PATH } from '../../src/mount/run.js';
import { schemaErrors } from '../support/schemas.js';
import { requirementsMet } from '../support/requirements.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const NOBODY = { uid: 65534, gid: 65534 };

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push('root');
if (!existsSync(CLI)) missing.push('the built CLI (npm run build)');
const run = requirementsMet('doctor', missing);

interface Item { id: string; status: string; needed: boolean; fix: string | null; detail: string }
interface Report { user: { uid: number; root: boolean }; route: { name: string }; groups: { id: string; items: Item[] }[]; missing: string[]; ok: boolean; exitCode: number }

/** Runs a command as root, or as nobody with a clean environment, and times it. */
function as(who: 'root' | 'nobody', cmd: string, args: string[], env: Record<string, string> = {}) {
  const base = { PATH: '/usr/bin:/bin', LANG: 'C', ...env };
  const argv = who === 'root' ? [cmd, ...args] : ['setpriv', '--reuid', String(NOBODY.uid), '--regid', String(NOBODY.gid), '--clear-groups', '--', cmd, ...args];
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: base, cwd: '/', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

/** An independent yes/no: a shell test run as that user. */
function sh(who: 'root' | 'nobody', script: string, env: Record<string, string> = {}): boolean {
  return as(who, 'sh', ['-c', script], env).status === 0;
}

function doctor(who: 'root' | 'nobody', env: Record<string, string> = {}) {
  const r = as(who, process.execPath, [CLI, 'doctor', '--json'], env);
  return { ...r, report: JSON.parse(r.stdout) as Report };
}

function items(r: Report): Map<string, Item> {
  return new Map(r.groups.flatMap((g) => g.items).map((i) => [i.id, i]));
}

/** What a user's doctor must agree with, whoever runs it. */
function agreesWithMachine(who: 'root' | 'nobody', r: Report, env: Record<string, string>): void {
  const m = items(r);
  const ok = (id: string) => m.get(id)!.status === 'ok';
  const findTool = (t: string) => sh(who, `PATH=${TRUSTED_PATH} command -v ${t}`);
  expect(ok('dev-fuse'), 'dev-fuse').toBe(sh(who, 'test -c /dev/fuse && test -r /dev/fuse && test -w /dev/fuse'));
  for (const t of ['mkfs.ext4', 'debugfs', 'wipefs', 'losetup', 'mkfs.vfat', 'mkfs.exfat', 'fuse2fs', 'fusefat', 'e2fsck', 'gdbus', 'systemd-inhibit'])
    expect(ok(`tool:${t}`), t).toBe(findTool(t));
  expect(ok('loop-control'), 'loop-control').toBe(sh(who, 'test -e /dev/loop-control'));
  expect(ok('kernel:ext4'), 'kernel:ext4').toBe(sh(who, 'grep -qw ext4 /proc/filesystems || grep -q "/ext4\\.ko" /lib/modules/$(uname -r)/modules.*'));
  expect(ok('kernel:vfat'), 'kernel:vfat').toBe(sh(who, 'grep -qw vfat /proc/filesystems || grep -q "/vfat\\.ko" /lib/modules/$(uname -r)/modules.* || command -v fusefat'));
  expect(ok('fusermount3'), 'fusermount3').toBe(sh(who, 'test -u /usr/bin/fusermount3 || test -u /bin/fusermount3'));
  expect(ok('user-allow-other'), 'user-allow-other').toBe(sh(who, 'grep -qx "[[:space:]]*user_allow_other[[:space:]]*" /etc/fuse.conf'));
  expect(ok('group'), 'group vault').toBe(sh(who, 'getent group vault'));
  const bus = sh(who, 'test -S /run/dbus/system_bus_socket');
  expect(m.get('system-bus')!.status, 'system-bus').toBe(bus ? 'ok' : 'missing');
  if (!bus) expect(r.route.name === 'root' || r.route.name === 'fuse').toBe(true);
  expect(ok('io-uring'), 'io-uring').toBe(sh(who, 'test "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0'));
  expect(ok('fuse-uring'), 'fuse-uring').toBe(sh(who, 'grep -qE "^(Y|1)$" /sys/module/fuse/parameters/enable_uring'));
  if (who === 'nobody') expect(ok('runtime-dir'), 'runtime-dir').toBe(env.XDG_RUNTIME_DIR !== undefined);
  // The verdict follows from the checks; a fix comes with every miss.
  const needed = [...m.values()].filter((i) => i.needed && i.status === 'missing').map((i) => i.id);
  expect(r.missing).toEqual(needed);
  expect(r.exitCode).toBe(needed.length === 0 ? 0 : 6);
  for (const i of m.values()) if (i.status === 'missing' && i.id !== 'loop-discard' && i.id !== 'loop-write-zeroes') expect(i.fix, i.id).toBeTruthy();
}

describe.runIf(run)('vault doctor on this machine', () => {
  let xdg: string;
  const before = () => [
    ...SETUP_FILES.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : null)),
    spawnSync('getent', ['group', 'vault'], { encoding: 'utf8' }).stdout,
    String(existsSync('/run/vault')),
  ];
  let saved: (string | null)[];

  beforeAll(() => {
    saved = before();
    xdg = mkdtempSync(path.join(tmpdir(), 'doctor-xdg-'));
    chownSync(xdg, NOBODY.uid, NOBODY.gid);
  });
  afterAll(() => {
    rmSync(xdg, { recursive: true, force: true });
  });

  it('as root: every check agrees with the machine, the exit code with the checks, the JSON with the schema', () => {
    const r = doctor('root');
    expect(schemaErrors('doctor', r.report)).toEqual([]);
    expect(r.report.user).toMatchObject({ uid: 0, root: true });
    expect(r.report.route.name).toBe('root');
    agreesWithMachine('root', r.report, {});
    expect(r.status).toBe(r.report.exitCode);
    console.log(`[doctor] as root: exit ${r.status}, ${r.ms.toFixed(0)} ms, missing: ${r.report.missing.join(', ') || 'nothing'}`);
    expect(r.ms).toBeLessThan(3000);
  });

  it('as nobody without XDG_RUNTIME_DIR: that is missing, and the run fails with 6', () => {
    const r = doctor('nobody');
    expect(schemaErrors('doctor', r.report)).toEqual([]);
    expect(r.report.user).toMatchObject({ uid: NOBODY.uid, root: false });
    agreesWithMachine('nobody', r.report, {});
    expect(r.report.missing).toContain('runtime-dir');
    expect(r.status).toBe(6);
  });

  it('as nobody with a runtime directory: the route vault would take, and the exit code that follows', () => {
    const env = { XDG_RUNTIME_DIR: xdg };
    const r = doctor('nobody', env);
    expect(schemaErrors('doctor', r.report)).toEqual([]);
    agreesWithMachine('nobody', r.report, env);
    expect(['udisks', 'fuse']).toContain(r.report.route.name);
    expect(r.status).toBe(r.report.exitCode);
    // nobody is in no group: never a member of vault, and pkcheck's answer comes with a fix
    expect(items(r.report).get('member')!.status).toBe('missing');
    console.log(`[doctor] as nobody: route ${r.report.route.name}, exit ${r.status}, ${r.ms.toFixed(0)} ms, missing: ${r.report.missing.join(', ') || 'nothing'}`);
    expect(r.ms).toBeLessThan(3000);
    expect(existsSync(path.join(xdg, 'vault')), 'doctor made no state directory').toBe(false);
  });

  it('plain text off a terminal: words, not symbols, and a fix line under each miss', () => {
    const r = as('nobody', process.execPath, [CLI, 'doctor']);
    expect(r.status).toBe(6);
    expect(r.stdout).toMatch(/^you are \S+ \(uid 65534\)/);
    expect(r.stdout).toMatch(/\n {2}missing +XDG_RUNTIME_DIR .*\n +fix: /);
    expect(r.stdout).not.toMatch(/[✓✗]/);
  });

  it("changed nothing: the setup files, group vault and root's state directory are as they were", () => {
    expect(before()).toEqual(saved);
  });
});
