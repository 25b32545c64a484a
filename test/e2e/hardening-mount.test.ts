/**
 * Issue 13, a local user against root's mounts: each test reproduces an attack as a real
 * unprivileged user (test/support/unprivileged.ts) and shows it fails, the target untouched.
 *
 * - mount point swapped between check and mount (and the recorded path redirected at dismount)
 * - another user's volumes closed by `dismount --all` under sudo, or by a lock on a session bus
 * - volumes readable by every user
 * - filesystem types vault should not hand to the kernel without being told
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, FAST_KDF, e2eSuite, forceCleanup, ok, removeDir, tempDir, vault, type VaultResult } from './harness.js';
import { Logind, TestBus, stopAll, waitFor } from './dbus.js';
import { localUser, runAs, spawnAs, type LocalUser } from '../support/unprivileged.js';

const suite = e2eSuite('hardening-mount');
const run = suite.run;
const PW = 'hardened\n';
/** Mounts and dismounts per race (half as many on vfat): 20 in CI, more in `npm run test:long`. */
const RACE_ATTEMPTS = Number(process.env.VAULT_HARDENING_MOUNTS ?? 20);

function create(name: string, fs: string, env: Record<string, string> = {}): string {
  const file = path.join(suite.dir, name);
  ok(vault(['create', file, '--size', '32M', '--fs', fs, '--password-stdin', ...FAST_KDF], PW, env), `create ${name}`);
  return file;
}

const sudo = (u: LocalUser) => ({ SUDO_UID: String(u.uid), SUDO_GID: String(u.gid) });

function mountinfo(): { mountpoint: string; fstype: string; source: string }[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    const sep = f.indexOf('-', 6);
    return { mountpoint: f[4]!.replace(/\\040/g, ' '), fstype: f[sep + 1]!, source: f[sep + 2]! };
  });
}

/** A refusal: the documented exit code and one line (plus an optional hint line). */
function expectRefused(r: VaultResult, code: number, msg: RegExp): void {
  expect(r.status, r.stderr).toBe(code);
  expect(r.stderr).toMatch(msg);
  expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('hint:')).length, r.stderr).toBe(1);
}

/** renameat2(RENAME_EXCHANGE) of each pair, round and round until SIGTERM; prints the swaps made. */
const RACER = `
import ctypes, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
args = [a.encode() for a in sys.argv[1:]]
pairs = list(zip(args[0::2], args[1::2]))
n = 0
stop = False
def halt(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, halt)
while not stop:
    for a, b in pairs:
        if libc.renameat2(-100, a, -100, b, 2) == 0:
            n += 1
print(n, flush=True)
`;

describe.runIf(run)('hardening: a local user against root’s mounts', () => {
  let mallory: LocalUser;
  let bob: LocalUser;
  beforeAll(() => {
    mallory = localUser('vault-mallory');
    bob = localUser('vault-bob');
  });
  afterEach(async () => {
    await stopAll();
  });
  afterAll(() => forceCleanup());

  // ext4 through the kernel's driver; vfat through fusefat where the kernel has no FAT driver (as
  // on these machines), which resolves a mount point by name itself and so mounts on root's own
  // staging directory, moved onto the user's by descriptor.
  for (const [fs, attempts] of [['ext4', RACE_ATTEMPTS], ['vfat', RACE_ATTEMPTS / 2]] as const) {
    it(`mount point swapped for a symlink between check and mount (${fs}, ${attempts} mounts and dismounts against a renameat2 racer): root's directory is never covered nor unmounted`, async () => {
      const file = create(`race-${fs}.vol`, fs);
      // Root's directory the attack aims at: a tmpfs mount holding a canary, in a root-owned directory.
      const q = path.join(suite.dir, 'q');
      const target = path.join(q, 'mnt');
      mkdirSync(target, { recursive: true, mode: 0o755 });
      expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=755', 'vault-canary', target]).status).toBe(0);
      // Mallory's side: race/mnt (her empty directory) and race/lnk → target; decoy → q, to redirect race/ itself.
      const home = path.join(mallory.home, `race-${fs}-${process.pid}`);
      const race = path.join(home, 'race');
      // Whatever happens below, root's tmpfs goes again: a later test must not find it as a leftover.
      try {
        writeFileSync(path.join(target, 'canary'), 'root owns this');
        const script = `mkdir -p "$1/race/mnt" && ln -sfn "$2" "$1/race/lnk" && ln -sfn "$3" "$1/decoy"`;
        expect(runAs(mallory, '/bin/sh', ['-c', script, 'sh', home, target, q]).status).toBe(0);
        const racer = spawnAs(mallory, '/usr/bin/python3', ['-c', RACER, path.join(race, 'mnt'), path.join(race, 'lnk'), race, path.join(home, 'decoy')]);
        let swaps = '';
        racer.stdout!.on('data', (d: Buffer) => (swaps += d.toString()));
        const outcomes: Record<string, number> = {};
        const targetIntact = () => {
          const top = mountinfo().filter((m) => m.mountpoint === target).at(-1);
          expect(top, 'the target tmpfs must stay mounted and on top').toMatchObject({ fstype: 'tmpfs', source: 'vault-canary' });
          expect(readFileSync(path.join(target, 'canary'), 'utf8')).toBe('root owns this');
        };
        try {
          for (let i = 0; i < attempts; i++) {
            const r = vault(['mount', file, path.join(race, 'mnt'), '--password-stdin'], PW, sudo(mallory));
            outcomes[r.status] = (outcomes[r.status] ?? 0) + 1;
            // 0: mounted on her directory, wherever it is now; 2, 4, 8: refused (not empty, already a
            // mount point: the target as seen through her symlink; unsafe)
            expect([0, 2, 4, 8], r.stderr).toContain(r.status);
            if (r.status !== 0) expect(r.stderr.trim().split('\n').filter((l) => !l.startsWith('hint:') && !l.startsWith('vault: warning:')), r.stderr).toHaveLength(1); // one error line; an undo may warn
            targetIntact();
            if (r.status === 0) {
              // Dismount by the recorded path while mallory keeps redirecting it.
              const d = vault(['dismount', path.join(race, 'mnt'), '--force']);
              if (d.status !== 0) ok(vault(['dismount', file, '--force']), 'dismount by container');
              targetIntact();
            }
            expect(mountinfo().filter((m) => m.mountpoint === target).map((m) => m.source)).toEqual(['vault-canary']);
            // A refused or dismounted attempt leaves nothing mounted in her tree, wherever it moved.
            expect(mountinfo().filter((m) => m.mountpoint.startsWith(`${home}/`)).map((m) => `${m.mountpoint} (${m.fstype})`)).toEqual([]);
          }
        } finally {
          racer.kill('SIGTERM');
          await waitFor('the racer to report', () => racer.exitCode !== null || racer.signalCode !== null, 10_000);
        }
        const count = Number(swaps.trim());
        console.log(`[race] ${fs}: ${attempts} mounts against ${count} swaps; exit codes: ${JSON.stringify(outcomes)}`);
        expect(count).toBeGreaterThan(attempts * 10);
        targetIntact();
        // Without the racer, vault works on mallory's directory, wherever the race left it.
        expect(runAs(mallory, '/bin/sh', ['-c', `rm -rf "$1" && mkdir -p "$1/race/mnt"`, 'sh', home]).status).toBe(0);
        ok(vault(['mount', file, path.join(race, 'mnt'), '--password-stdin'], PW, sudo(mallory)));
        ok(vault(['dismount', path.join(race, 'mnt')]));
        targetIntact();
        // Nothing of vault's is left mounted in her tree either, wherever the race moved it.
        expect(mountinfo().filter((m) => m.mountpoint.startsWith(`${home}/`)).map((m) => m.mountpoint)).toEqual([]);
      } finally {
        spawnSync('umount', [target]);
        // Debris of a failed attempt must not outlive the test (and fail every later one).
        for (const m of mountinfo().filter((m) => m.mountpoint.startsWith(`${home}/`)).reverse()) spawnSync('umount', ['-l', m.mountpoint]);
        removeDir(home);
      }
    });
  }

  it('a mount point through another user\'s symlink, or owned by another user, is refused with exit 8', () => {
    const file = create('sym.vol', 'ext4');
    const empty = path.join(suite.dir, 'root-empty');
    mkdirSync(empty);
    const link = path.join(mallory.home, `to-root-${process.pid}`);
    expect(runAs(mallory, '/bin/ln', ['-sfn', empty, link]).status).toBe(0);
    expectRefused(vault(['mount', file, link, '--password-stdin'], PW), 8, /symlink of another user/);
    const hers = path.join(mallory.home, `mp-${process.pid}`);
    expect(runAs(mallory, '/bin/mkdir', ['-p', hers]).status).toBe(0);
    expectRefused(vault(['mount', file, hers, '--password-stdin'], PW, sudo(bob)), 8, /belongs to another user/);
    expect(mountinfo().some((m) => m.mountpoint === empty || m.mountpoint === hers)).toBe(false);
    removeDir(link);
    removeDir(hers);
  });

  it('dismount --all --force under sudo (the README\'s sudoers line) closes only the caller\'s volumes; another user\'s volume and its programs survive', async () => {
    const bobs = create('bob.vol', 'ext4', sudo(bob));
    const mine = create('mallory.vol', 'ext4', sudo(mallory));
    ok(vault(['mount', bobs, '--password-stdin'], PW, sudo(bob)));
    ok(vault(['mount', mine, '--password-stdin'], PW, sudo(mallory)));
    const list = JSON.parse(ok(vault(['list', '--json'])).stdout) as { container: string; mountpoint: string; ownerUid: number }[];
    const bobMp = list.find((v) => v.container === bobs)!.mountpoint;
    expect(list.find((v) => v.container === bobs)!.ownerUid).toBe(bob.uid);
    // bob works in his volume
    const holder = spawnAs(bob, '/bin/sh', ['-c', `cd "${bobMp}" && exec sleep 600`]);
    await waitFor('bob\'s shell in his volume', () => {
      try {
        return readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').includes('sleep');
      } catch {
        return false;
      }
    });
    try {
      // mallory, through sudo: the other user's volume by name is refused, --all skips it.
      expectRefused(vault(['dismount', bobMp, '--force'], '', sudo(mallory)), 8, /mounted by another user/);
      const all = ok(vault(['dismount', '--all', '--force'], '', sudo(mallory)));
      expect(all.stdout).toMatch(/mallory\.vol/);
      expect(all.stdout).not.toMatch(/bob\.vol/);
      const shown = ok(vault(['list'], '', sudo(mallory)));
      expect(shown.stdout).not.toMatch(/bob\.vol/);
      expect(shown.stdout).toMatch(/1 volume\(s\) of other users not shown/);
      expect(holder.exitCode).toBeNull();
      expect(mountinfo().some((m) => m.mountpoint === bobMp)).toBe(true);
      // bob himself may
      expect(ok(vault(['list'], '', sudo(bob))).stdout).toMatch(/bob\.vol/);
    } finally {
      holder.kill('SIGKILL');
      spawnSync('pkill', ['-KILL', '-u', String(bob.uid), '-x', 'sleep']);
    }
    ok(vault(['dismount', bobs, '--force']));
  });

  it('a ScreenSaver ActiveChanged(true) on the caller\'s own session bus (run as that user) closes only that user\'s volumes; a logind Lock only the session user\'s', async () => {
    const bobs = create('bob-w.vol', 'ext4');
    const mine = create('mallory-w.vol', 'ext4');
    ok(vault(['mount', bobs, '--password-stdin', '--dismount-on', 'lock'], PW, sudo(bob)));
    ok(vault(['mount', mine, '--password-stdin', '--dismount-on', 'lock'], PW, sudo(mallory)));
    const dir = tempDir('hardening-bus');
    chownSync(dir, mallory.uid, mallory.gid);
    const session = new TestBus(dir, 'mallory-bus', 'session', mallory);
    await session.start();
    // mallory owns the screen saver name on her own bus and says the screen locked
    await session.mock('gnome_screensaver', 'org.gnome.ScreenSaver');
    const w = spawn(process.execPath, [CLI, 'watch', '--bus', 'session'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...session.env, ...sudo(mallory) } });
    let log = '';
    w.stdout.on('data', (d: Buffer) => (log += d));
    w.stderr.on('data', (d: Buffer) => (log += d));
    const mounted = (c: string) => (JSON.parse(ok(vault(['list', '--json'])).stdout) as { container: string }[]).some((v) => v.container === c);
    try {
      await waitFor(`watcher listening\n${log}`, () => /listening to org\.gnome\.ScreenSaver/.test(log));
      session.call('org.gnome.ScreenSaver', '/org/gnome/ScreenSaver', 'org.gnome.ScreenSaver.SetActive', 'true');
      await waitFor(`mallory's volume dismounted\n${log}`, () => !mounted(mine), 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(mounted(bobs), log).toBe(true);
    } finally {
      w.kill('SIGTERM');
      await stopAll();
      removeDir(dir);
    }
    // The system bus: mallory locks her own logind session; a root watcher closes only her volumes.
    ok(vault(['mount', mine, '--password-stdin', '--dismount-on', 'lock'], PW, sudo(mallory)));
    const sys = new TestBus(suite.dir, 'system', 'system');
    await sys.start();
    const logind = await Logind.start(sys);
    logind.addSession('c9', mallory.uid, mallory.name);
    const root = spawn(process.execPath, [CLI, 'watch', '--bus', 'system'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...sys.env } });
    let rlog = '';
    root.stdout.on('data', (d: Buffer) => (rlog += d));
    try {
      await waitFor(`root watcher on logind\n${rlog}`, () => /listening to logind/.test(rlog));
      logind.session('c9', 'Lock');
      await waitFor(`mallory's volume dismounted on her Lock\n${rlog}`, () => !mounted(mine), 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(mounted(bobs), rlog).toBe(true);
    } finally {
      root.kill('SIGTERM');
    }
    ok(vault(['dismount', bobs, '--force']));
  });

  it('a volume is private to the user who mounted it: /media/vault/<user> 0700, the volume root 0700; another user reads nothing', () => {
    for (const fs of ['ext4', 'vfat']) {
      const file = path.join(suite.dir, `private-${fs}.vol`);
      ok(vault(['create', file, '--size', '32M', '--fs', fs, '--password-stdin', ...FAST_KDF], PW, sudo(mallory)));
      const r = ok(vault(['mount', file, '--password-stdin'], PW, sudo(mallory)));
      const mp = path.join('/media/vault', mallory.name, `private-${fs}`);
      expect(r.stdout).toContain(mp);
      expect(statSync('/media/vault').mode & 0o777).toBe(0o711);
      const base = statSync(path.dirname(mp));
      expect([base.uid, base.mode & 0o777]).toEqual([mallory.uid, 0o700]);
      const root = statSync(mp);
      expect([root.uid, root.mode & 0o777], fs).toEqual([mallory.uid, 0o700]);
      expect(runAs(mallory, '/bin/sh', ['-c', `echo mine > "${mp}/secret.txt"`]).status).toBe(0);
      const peek = runAs(bob, '/bin/cat', [path.join(mp, 'secret.txt')]);
      expect(peek.status).not.toBe(0);
      expect(peek.stderr).toMatch(/Permission denied/);
      ok(vault(['dismount', mp]));
    }
  });

  it('a volume whose filesystem is not ext4, vfat or exfat (an ext2 image) is refused with exit 8 and mounts with --allow-fs ext2', () => {
    const file = create('ext2.vol', 'none');
    const dev = ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], PW)).stdout.trim();
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    expect(spawnSync('mkfs.ext2', ['-q', '-F', dev]).status).toBe(0);
    ok(vault(['dismount', dev]));
    const r = vault(['mount', file, '--password-stdin'], PW, sudo(mallory));
    expectRefused(r, 8, /holds a ext2 filesystem, which vault does not mount by default/);
    expect(r.stderr).toMatch(/hint: .*--allow-fs ext2/);
    expect(existsSync(path.join('/media/vault', mallory.name, 'ext2'))).toBe(false);
    expect(mountinfo().some((m) => m.fstype === 'ext2' && m.mountpoint.startsWith('/media/vault/'))).toBe(false);
    const mp = ok(vault(['mount', file, '--allow-fs', 'ext2', '--password-stdin'], PW, sudo(mallory))).stdout;
    expect(mp).toMatch(/\(ext2\)/);
    ok(vault(['dismount', file]));
  });
});
