/**
 * vault without root (issue 15), end to end, with the real daemons from Debian (dbus-daemon,
 * systemd-udevd, polkitd, udisksd: test/support/rootless-stack.ts) and real users. Root only sets
 * the machine up (`vault setup-rootless`) and plays the other parts a machine has: an administrator
 * who can see and dismount everything, a crash (kill -9), a daemon that is not running.
 *
 * Every vault command of a user runs as that user (setpriv), with the environment a login gives:
 * HOME, XDG_RUNTIME_DIR=/run/user/<uid> (0700, made here as logind would) and the system bus.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, FAST_KDF, ROOT, TRANSPORTS, e2eAvailable, ok, useTransport, vault, type VaultResult } from './harness.js';
import { localUser, runAs, type LocalUser } from '../support/unprivileged.js';
import { runtimeDir, userLeftovers } from '../support/user-leftovers.js';
import { startRootlessStack, type RootlessStack } from '../support/rootless-stack.js';
import { snapshotSetupFiles } from '../support/setup-files.js';
import { kernelSupports } from '../../src/mount/filesystem.js';

const RUN = e2eAvailable('rootless.test.ts');
const PASS = 'correct horse battery staple\n';
const TREE_CLI = path.join(ROOT, 'dist/test/e2e/tree-cli.js');
const FUSE_CONF = '/etc/fuse.conf';

let stack: RootlessStack;
let alice: LocalUser; // in group vault (setup-rootless --user)
let bob: LocalUser; // not in the group: polkit says no
let restoreSetupFiles = (): void => {};

/** `vault ARGS` as user `u`, with a login's environment. */
function asUser(u: LocalUser, args: string[], input = '', extraEnv: Record<string, string> = {}): VaultResult {
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
    HOME: u.home,
    USER: u.name,
    XDG_RUNTIME_DIR: runtimeDir(u),
    ...stack.env,
    ...extraEnv,
  };
  const r = runAs(u, 'env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, CLI, ...args], input);
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function treeAs(u: LocalUser, args: string[]): Record<string, string> {
  const r = runAs(u, process.execPath, [TREE_CLI, ...args]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

interface ListedVolume {
  id: string;
  container: string;
  mountpoint: string | null;
  loopDevice: string | null;
  route?: string;
  serverPid: number;
  ownerUid?: number;
  fsType: string | null;
}

function listAs(u: LocalUser): ListedVolume[] {
  return JSON.parse(ok(asUser(u, ['list', '--json']), 'list').stdout) as ListedVolume[];
}

/** A fresh container of `u`'s in their home, made as them. */
function createAs(u: LocalUser, name: string, size = '96M', fs = 'ext4'): string {
  const file = path.join(u.home, name);
  rmSync(file, { force: true });
  const r = asUser(u, ['create', file, '--size', size, '--fs', fs, '--password-stdin', '--quick', ...FAST_KDF], PASS);
  ok(r, `create as ${u.name}`);
  expect(statSync(file).uid).toBe(u.uid);
  return file;
}

/** Whether the running kernel mounts `fs` itself (then udisks can). */
function kernelHas(fs: string): boolean {
  return kernelSupports(fs);
}

describe.skipIf(!RUN)('vault as an ordinary user (issue 15)', () => {
  beforeAll(async () => {
    stack = await startRootlessStack(); // first: it waits for other runs' rootless suites
    restoreSetupFiles = snapshotSetupFiles();
    alice = localUser('vault-alice');
    bob = localUser('vault-bob');
    for (const u of [alice, bob]) {
      mkdirSync(runtimeDir(u), { recursive: true, mode: 0o700 });
      chownSync(runtimeDir(u), u.uid, u.gid);
    }
    const setup = vault(['setup-rootless', '--user', alice.name]);
    ok(setup, 'setup-rootless');
  }, 300_000);

  afterEach(() => {
    const left = [...userLeftovers(alice), ...userLeftovers(bob)];
    if (left.length) {
      for (const u of [alice, bob]) asUser(u, ['dismount', '--all', '--force']);
      vault(['dismount', '--all', '--force']);
    }
    expect(left, 'a test left these behind').toEqual([]);
  });

  afterAll(async () => {
    if (!stack) return;
    spawnSync('gpasswd', ['-d', alice.name, 'vault']);
    vault(['setup-rootless', '--undo']);
    restoreSetupFiles();
    await stack.stop();
  }, 120_000);

  it('creates, mounts through udisks, writes 64 MiB and 500 files as the user, dismounts, remounts and verifies', () => {
    const vol = createAs(alice, 'a.vol');
    const m = asUser(alice, ['mount', vol, '--password-stdin'], PASS);
    ok(m, 'mount');
    expect(m.stdout + m.stderr).toMatch(/route: udisks/);
    const [v] = listAs(alice);
    expect(v?.route).toBe('udisks');
    expect(v?.mountpoint).toMatch(new RegExp(`^/media/${alice.name}/`));
    const mp = v!.mountpoint!;
    // The kernel's ext4 on udisks's loop device, nosuid,nodev; its root is alice's.
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mp)!;
    expect(line).toMatch(/ - ext4 \/dev\/loop\d+ /);
    // setup-rootless's udev rule gave udisks's loop device direct I/O, as root's route has.
    const loop = v!.loopDevice!.replace('/dev/', '');
    expect(readFileSync(`/sys/block/${loop}/loop/dio`, 'utf8').trim()).toBe('1');
    expect(line.split(' ')[5]).toMatch(/nosuid/);
    expect(line.split(' ')[5]).toMatch(/nodev/);
    expect(statSync(mp).uid).toBe(alice.uid);
    const sums = treeAs(alice, ['write', mp, String(64 << 20), '500']);
    expect(Object.keys(sums)).toHaveLength(501);
    ok(asUser(alice, ['dismount', mp]), 'dismount');
    expect(userLeftovers(alice)).toEqual([]);
    ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS), 'remount');
    const mp2 = listAs(alice)[0]!.mountpoint!;
    expect(treeAs(alice, ['read', mp2])).toEqual(sums);
    ok(asUser(alice, ['dismount', mp2]), 'dismount again');
  });

  it.skipIf(!TRANSPORTS.includes('io_uring'))('serves the udisks route over FUSE io_uring too, and the files survive a remount on classic', () => {
    const vol = createAs(alice, 'u.vol', '64M');
    useTransport('io_uring'); // switches the kernel's enable_uring on, and back below
    try {
      ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS, { VAULT_FUSE_TRANSPORT: 'io_uring' }), 'mount on io_uring');
      const [v] = listAs(alice) as (ListedVolume & { transport?: string })[];
      expect(v?.route).toBe('udisks');
      expect(v?.transport).toBe('io_uring');
      const sums = treeAs(alice, ['write', v!.mountpoint!, String(16 << 20), '100']);
      ok(asUser(alice, ['dismount', v!.mountpoint!]));
      ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS, { VAULT_FUSE_TRANSPORT: 'classic' }), 'mount on classic');
      const [w] = listAs(alice);
      expect(treeAs(alice, ['read', w!.mountpoint!])).toEqual(sums);
      ok(asUser(alice, ['dismount', w!.mountpoint!]));
    } finally {
      useTransport('classic');
    }
  });

  it('keeps a volume from other users: bob can neither list, read nor dismount it; root sees and dismounts it', () => {
    const vol = createAs(alice, 'private.vol');
    ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS));
    const [v] = listAs(alice);
    const mp = v!.mountpoint!;
    treeAs(alice, ['write', mp, '4096', '3']);
    expect(listAs(bob)).toEqual([]);
    // The block file: FUSE without allow_other lets only alice (and root, allow_root) open it.
    const blockFile = path.join(runtimeDir(alice), 'vault', v!.id, 'fuse', 'volume');
    expect(runAs(bob, 'head', ['-c', '16', blockFile]).status).not.toBe(0);
    expect(runAs(bob, 'ls', [mp]).status).not.toBe(0);
    const d = asUser(bob, ['dismount', mp]);
    expect(d.status).not.toBe(0);
    expect(listAs(alice)).toHaveLength(1);
    // Root, without VAULT_RUN_DIR, sees alice's volume with its owner, and may dismount it.
    const env = { ...process.env };
    delete env.VAULT_RUN_DIR;
    const rootList = spawnSync(process.execPath, [CLI, 'list', '--json'], { encoding: 'utf8', env });
    const seen = (JSON.parse(rootList.stdout) as ListedVolume[]).find((x) => x.mountpoint === mp);
    expect(seen?.ownerUid).toBe(alice.uid);
    const rd = spawnSync(process.execPath, [CLI, 'dismount', mp], { encoding: 'utf8', env });
    expect(rd.status, rd.stderr).toBe(0);
    // Alice's next command clears her record of the volume root took down.
    const after = asUser(alice, ['list']);
    ok(after);
    expect(listAs(alice)).toEqual([]);
  });

  it('--no-filesystem --via udisks: udisks sets up a loop device for the user and nothing is mounted; root reads the ext4 on it; dismount by the device', () => {
    const vol = createAs(alice, 'raw.vol');
    const m = ok(asUser(alice, ['mount', vol, '--no-filesystem', '--via', 'udisks', '--password-stdin'], PASS), 'mount --no-filesystem --via udisks');
    const dev = m.stdout.trim();
    expect(dev).toMatch(/^\/dev\/loop\d+$/);
    const [v] = listAs(alice);
    expect(v).toMatchObject({ container: vol, route: 'udisks', loopDevice: dev, mountpoint: null, fsType: null });
    const blockFile = path.join(runtimeDir(alice), 'vault', v!.id, 'fuse', 'volume');
    expect(spawnSync('losetup', ['-j', blockFile], { encoding: 'utf8' }).stdout).toContain(`${dev}:`);
    expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.includes(` ${dev} `))).toBe(false);
    const fsck = spawnSync('e2fsck', ['-fn', dev], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    ok(asUser(alice, ['dismount', dev]), 'dismount by the device');
    expect(listAs(alice)).toEqual([]);
    expect(spawnSync('losetup', ['-j', blockFile], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('mounts through fuse2fs with --via fuse, and says what that route costs', () => {
    const vol = createAs(alice, 'f.vol');
    const m = asUser(alice, ['mount', vol, '--via', 'fuse', '--password-stdin'], PASS);
    ok(m, 'mount --via fuse');
    expect(m.stderr).toMatch(/fuse2fs/);
    const [v] = listAs(alice);
    expect(v?.route).toBe('fuse');
    expect(v?.mountpoint).toBe(path.join(alice.home, 'Vaults', 'f'));
    const sums = treeAs(alice, ['write', v!.mountpoint!, String(16 << 20), '100']);
    ok(asUser(alice, ['dismount', v!.mountpoint!]), 'dismount');
    ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS), 'remount through udisks');
    const mp = listAs(alice)[0]!.mountpoint!;
    expect(treeAs(alice, ['read', mp])).toEqual(sums);
    ok(asUser(alice, ['dismount', mp]));
  });

  it('polkit refusing: --via udisks fails naming setup-rootless; the automatic choice falls back to fuse and says why', () => {
    const vol = createAs(bob, 'b.vol');
    const forced = asUser(bob, ['mount', vol, '--via', 'udisks', '--password-stdin'], PASS);
    expect(forced.status).toBe(6);
    expect(forced.stderr).toMatch(/polkit/);
    expect(forced.stderr).toMatch(/setup-rootless/);
    expect(userLeftovers(bob)).toEqual([]);
    const auto = asUser(bob, ['mount', vol, '--password-stdin'], PASS);
    ok(auto, 'mount with the automatic route');
    expect(auto.stdout + auto.stderr).toMatch(/route: fuse \(not using udisks: polkit/);
    ok(asUser(bob, ['dismount', '--all']));
  });

  it('udisksd absent, or fuse.conf without user_allow_other: a clear error naming the fix, nothing left', async () => {
    const vol = createAs(alice, 'n.vol', '64M');
    await stack.stopUdisks();
    try {
      const r = asUser(alice, ['mount', vol, '--via', 'udisks', '--password-stdin'], PASS);
      expect(r.status).toBe(6);
      expect(r.stderr).toMatch(/udisks/);
      expect(r.stderr).toMatch(/setup-rootless/);
    } finally {
      await stack.startUdisks();
    }
    const conf = readFileSync(FUSE_CONF, 'utf8');
    writeFileSync(FUSE_CONF, conf.split('\n').filter((l) => l.trim() !== 'user_allow_other').join('\n'));
    try {
      const r = asUser(alice, ['mount', vol, '--via', 'udisks', '--password-stdin'], PASS);
      expect(r.status).toBe(6);
      expect(r.stderr).toMatch(/user_allow_other/);
      expect(r.stderr).toMatch(/setup-rootless/);
    } finally {
      writeFileSync(FUSE_CONF, conf);
    }
  });

  it('a volume server killed with -9 under a udisks mount: `vault list` reports it and leaves nothing attached', () => {
    const vol = createAs(alice, 'k.vol', '64M');
    ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS));
    const [v] = listAs(alice);
    process.kill(v!.serverPid, 'SIGKILL');
    spawnSync('sleep', ['0.3']);
    const l = asUser(alice, ['list']);
    ok(l);
    expect(l.stderr).toMatch(/volume server had died; cleaned up/);
    expect(userLeftovers(alice)).toEqual([]);
  });

  it('creates vfat and exfat volumes on the block file; mounts each through udisks where the kernel has its driver, else through its FUSE driver, else says why not', () => {
    for (const fs of ['vfat', 'exfat']) {
      const vol = createAs(alice, `${fs}.vol`, '64M', fs);
      const m = asUser(alice, ['mount', vol, '--password-stdin'], PASS);
      if (kernelHas(fs)) {
        ok(m, `mount ${fs}`);
        expect(listAs(alice)[0]?.route).toBe('udisks');
      } else if (fs === 'vfat') {
        ok(m, `mount ${fs}`);
        expect(m.stderr).toMatch(/no vfat driver.*fuse route/);
        expect(listAs(alice)[0]?.route).toBe('fuse');
      } else {
        expect(m.status, m.stderr).toBe(6);
        expect(m.stderr).toMatch(/no driver for exfat/);
        expect(userLeftovers(alice)).toEqual([]);
        continue;
      }
      const [v] = listAs(alice);
      expect(v?.fsType).toBe(fs);
      const sums = treeAs(alice, ['write', v!.mountpoint!, '65536', '10']);
      ok(asUser(alice, ['dismount', v!.mountpoint!]));
      ok(asUser(alice, ['mount', vol, '--password-stdin'], PASS), `remount ${fs}`);
      const [w] = listAs(alice);
      expect(treeAs(alice, ['read', w!.mountpoint!])).toEqual(sums);
      ok(asUser(alice, ['dismount', w!.mountpoint!]));
    }
  });
});
