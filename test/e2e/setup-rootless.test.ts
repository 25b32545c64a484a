/**
 * Issue 15, `vault setup-rootless`: what root sets up once for vault without root, proven against
 * the real daemons (test/support/rootless-stack.ts: dbus-daemon, polkitd, udisksd, udevd) and real
 * polkit decisions for real users without a session:
 *
 * - it says each change before making it, makes the rule, the fuse.conf line and the membership,
 *   and a second run changes nothing;
 * - a member (u1) attaches its ext4 image, mounts it (nosuid,nodev under /media/u1), unmounts it
 *   and deletes the loop device through udisks2; a non-member (u2) is refused by polkit;
 * - --undo --user and --undo put the files back as they were, and u1 is refused again;
 * - a non-root caller is refused with the privilege exit code.
 *
 * It changes machine-wide files (/etc/fuse.conf, /etc/polkit-1/rules.d/50-vault.rules, group
 * vault) and puts them back as they were in afterAll, whatever happened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, e2eAvailable } from './harness.js';
import { startRootlessStack, type RootlessStack } from '../support/rootless-stack.js';
import { localUser, runAs, type LocalUser } from '../support/unprivileged.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { FUSE_CONF, POLKIT_RULE_FILE, VAULT_GROUP, groupMembers } from '../../src/system/rootless-setup.js';
import { LOOP_DIO_RULE, LOOP_DIO_RULE_FILE } from '../../src/system/loop-dio-rule.js';

const run = e2eAvailable('setup-rootless.test.ts');
const NO_INTERACTION = "{'auth.no_user_interaction': <true>}";

/** `vault ARGS` as root, stdin closed. */
function vault(args: string[]): { status: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const readOptional = (file: string) => (existsSync(file) ? readFileSync(file) : null);
const members = () => groupMembers() ?? [];

/** The loop devices whose backing file is `file`. */
function loopsOf(file: string): string[] {
  return readdirSync('/sys/block')
    .filter((d) => d.startsWith('loop'))
    .filter((d) => {
      try {
        return readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').trim() === file;
      } catch {
        return false; // not attached
      }
    });
}

describe.runIf(run)('vault setup-rootless', () => {
  let stack: RootlessStack;
  let dir: string;
  let u1: LocalUser;
  let u2: LocalUser;
  const images = new Map<string, string>();
  // What was there before: restored byte for byte in afterAll.
  let fuseConfWas: Buffer | null;
  let ruleWas: Buffer | null;
  let udevRuleWas: Buffer | null;
  let groupWas: string[] | null;

  /** `gdbus call` on udisks2 as `user`, on the private bus; with `fd3`, that file open read-write as fd 3. */
  function udisks(user: LocalUser, objectPath: string, method: string, args: string[], fd3?: string) {
    const call = ['gdbus', 'call', '--system', '-d', 'org.freedesktop.UDisks2', '-o', objectPath, '-m', `org.freedesktop.UDisks2.${method}`, ...args];
    const argv = fd3 === undefined ? call : ['sh', '-c', 'f=$1; shift; exec "$@" 3<>"$f"', 'sh', fd3, ...call];
    const r = runAs(user, 'env', [`DBUS_SYSTEM_BUS_ADDRESS=${stack.env.DBUS_SYSTEM_BUS_ADDRESS}`, ...argv]);
    return { status: r.status ?? -1, out: r.stdout.trim(), err: r.stderr.trim() };
  }
  const loopSetup = (user: LocalUser) => udisks(user, '/org/freedesktop/UDisks2/Manager', 'Manager.LoopSetup', ['3', NO_INTERACTION], images.get(user.name));

  beforeAll(async () => {
    // First: it waits for any other run's rootless suite to finish with the machine's setup.
    stack = await startRootlessStack();
    fuseConfWas = readOptional(FUSE_CONF);
    ruleWas = readOptional(POLKIT_RULE_FILE);
    udevRuleWas = readOptional(LOOP_DIO_RULE_FILE);
    groupWas = groupMembers();
    u1 = localUser('vault-rl1');
    u2 = localUser('vault-rl2');
    for (const u of [u1, u2]) spawnSync('gpasswd', ['-d', u.name, VAULT_GROUP]); // a failed run's
    dir = mkdtempSync('/tmp/vault-e2e-rootless-');
    chmodSync(dir, 0o711);
    for (const u of [u1, u2]) {
      const img = path.join(dir, `${u.name}.img`);
      writeFileSync(img, '');
      expect(spawnSync('truncate', ['-s', '8M', img]).status).toBe(0);
      expect(spawnSync('mkfs.ext4', ['-q', '-F', '-E', `root_owner=${u.uid}:${u.gid}`, img]).status).toBe(0);
      chownSync(img, u.uid, u.gid);
      chmodSync(img, 0o600);
      images.set(u.name, img);
    }
  }, 300_000);

  afterAll(async () => {
    if (!stack) return; // never got the machine: nothing saved, nothing to restore
    const restore = (file: string, was: Buffer | null) => {
      if (was === null) rmSync(file, { force: true });
      else if (!readOptional(file)?.equals(was)) writeFileSync(file, was);
    };
    try {
      restore(FUSE_CONF, fuseConfWas);
      restore(POLKIT_RULE_FILE, ruleWas);
      restore(LOOP_DIO_RULE_FILE, udevRuleWas);
      if (groupWas === null) spawnSync('groupdel', [VAULT_GROUP]);
      else {
        if (groupMembers() === null) spawnSync('groupadd', ['--system', VAULT_GROUP]);
        spawnSync('gpasswd', ['-M', groupWas.join(','), VAULT_GROUP]);
      }
    } finally {
      // A failed test's loop devices (a LoopSetup that timed out still leaves the device attached).
      for (const img of images.values()) for (const loop of loopsOf(img)) spawnSync('losetup', ['-d', `/dev/${loop}`]);
      await stack?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
      try {
        rmdirSync(`/media/${u1.name}`); // udisksd's, for u1's mounts; left empty
      } catch {
        // not made, or not empty: not ours to remove
      }
    }
  });

  it('explains and makes each change; a second run changes nothing', () => {
    const r = vault(['setup-rootless', '--user', u1.name]);
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/^packages: already done$/m);
    expect(r.out).toMatch(new RegExp(`^polkit rule: (write|rewrite) ${POLKIT_RULE_FILE}( \\(.*\\))?: members of group vault may set up loop devices`, 'm'));
    expect(r.out).toMatch(/^membership: add vault-rl1 to group vault \(gpasswd -a\)/m);
    expect(r.out).toMatch(/vault-rl1 must log in again \(or run `newgrp vault`\)/);
    if (fuseConfWas?.toString().match(/^user_allow_other$/m)) expect(r.out).toMatch(/^fuse\.conf: already done$/m);
    else expect(r.out).toMatch(/^fuse\.conf: enable user_allow_other in \/etc\/fuse\.conf: .*allow_other/m);
    expect(r.out).toMatch(new RegExp(`^udev rule: (write|rewrite) ${LOOP_DIO_RULE_FILE}( \\(.*\\))?: direct I/O for the loop devices`, 'm'));
    expect(readFileSync(LOOP_DIO_RULE_FILE, 'utf8')).toBe(LOOP_DIO_RULE);

    const rule = statSync(POLKIT_RULE_FILE);
    expect(rule.mode & 0o7777).toBe(0o644);
    expect([rule.uid, rule.gid]).toEqual([0, 0]);
    expect(readFileSync(FUSE_CONF, 'utf8')).toMatch(/^user_allow_other$/m);
    expect(members()).toContain(u1.name);

    const before = [FUSE_CONF, POLKIT_RULE_FILE, LOOP_DIO_RULE_FILE].map((f) => ({ bytes: readFileSync(f), mtime: statSync(f).mtimeMs }));
    const again = vault(['setup-rootless', '--user', u1.name]);
    expect(again.status, again.err).toBe(0);
    for (const step of ['packages', 'group vault', 'polkit rule', 'fuse.conf', 'membership']) expect(again.out).toContain(`${step}: already done`);
    expect(again.out).toMatch(/nothing changed/);
    expect([FUSE_CONF, POLKIT_RULE_FILE, LOOP_DIO_RULE_FILE].map((f) => ({ bytes: readFileSync(f), mtime: statSync(f).mtimeMs }))).toEqual(before);
  });

  it('a member sets up a loop device, mounts, unmounts and deletes it through udisks2', async () => {
    const img = images.get(u1.name)!;
    const setup = loopSetup(u1);
    expect(setup.status, `${setup.err}\n${stack.logs()}`).toBe(0);
    const loop = /objectpath '([^']+)'/.exec(setup.out)?.[1];
    expect(loop, setup.out).toMatch(/^\/org\/freedesktop\/UDisks2\/block_devices\/loop\d+$/);
    expect(loopsOf(img)).toHaveLength(1);
    try {
      // udisks adds the Filesystem interface once udev has probed the new device
      let mount = udisks(u1, loop!, 'Filesystem.Mount', [NO_INTERACTION]);
      for (let i = 0; i < 50 && mount.status !== 0 && /UnknownMethod|No such interface/.test(mount.err); i++) {
        await new Promise((r) => setTimeout(r, 100));
        mount = udisks(u1, loop!, 'Filesystem.Mount', [NO_INTERACTION]);
      }
      expect(mount.status, `${mount.err}\n${stack.logs()}`).toBe(0);
      const mountpoint = /\('([^']+)',\)/.exec(mount.out)?.[1] ?? '';
      expect(mountpoint.startsWith(`/media/${u1.name}/`), mount.out).toBe(true);
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mountpoint) ?? '';
      expect(line.split(' ')[5]).toMatch(/(^|,)nosuid(,|$)/);
      expect(line.split(' ')[5]).toMatch(/(^|,)nodev(,|$)/);
      expect(runAs(u1, 'touch', [`${mountpoint}/mine`]).status, 'the filesystem root is the user\'s').toBe(0);

      const unmount = udisks(u1, loop!, 'Filesystem.Unmount', [NO_INTERACTION]);
      expect(unmount.status, unmount.err).toBe(0);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mountpoint} `);
    } finally {
      const del = udisks(u1, loop!, 'Loop.Delete', [NO_INTERACTION]);
      expect(del.status, del.err).toBe(0);
    }
    expect(loopsOf(img)).toEqual([]);
  });

  it('a user outside group vault is refused by polkit, and nothing is attached', () => {
    const r = loopSetup(u2);
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(/org\.freedesktop\.UDisks2\.Error\.NotAuthorized/);
    expect(loopsOf(images.get(u2.name)!)).toEqual([]);
  });

  it('the stack can take udisksd away and bring it back (for "udisksd absent" tests)', async () => {
    await stack.stopUdisks();
    expect(loopSetup(u1).err).toMatch(/org\.freedesktop\.DBus\.Error\.ServiceUnknown/);
    await stack.startUdisks();
    expect(udisks(u1, '/org/freedesktop/UDisks2/Manager', 'Manager.GetBlockDevices', ['{}']).status).toBe(0);
  });

  it('--undo --user, then --undo, put everything back; the user is refused again', () => {
    const one = vault(['setup-rootless', '--undo', '--user', u1.name]);
    expect(one.status, one.err).toBe(0);
    expect(one.out).toMatch(/^membership: remove vault-rl1 from group vault/m);
    expect(one.out).not.toMatch(/^(polkit rule|fuse\.conf|group vault):/m);
    expect(members()).not.toContain(u1.name);

    const all = vault(['setup-rootless', '--undo']);
    expect(all.status, all.err).toBe(0);
    expect(all.out).toMatch(/^packages: left installed/m);
    expect(existsSync(POLKIT_RULE_FILE)).toBe(false);
    expect(existsSync(LOOP_DIO_RULE_FILE)).toBe(false);
    expect(readOptional(FUSE_CONF)).toEqual(fuseConfWas);
    if (groupWas === null || groupWas.length === 0) expect(groupMembers()).toBeNull();
    else expect(all.out).toContain(`group vault: kept: ${groupWas.join(', ')} still in it`);

    const refused = loopSetup(u1);
    expect(refused.err).toMatch(/org\.freedesktop\.UDisks2\.Error\.NotAuthorized/);
    expect(loopsOf(images.get(u1.name)!)).toEqual([]);
  });

  it('refuses to run without root (privilege exit code)', () => {
    const r = runAs(u2, process.execPath, [CLI, 'setup-rootless']);
    expect(r.status, r.stderr).toBe(EXIT.privilege);
    expect(r.stderr).toMatch(/vault setup-rootless needs root privileges/);
    expect(r.stderr).toMatch(/^hint: run it with sudo: sudo vault setup-rootless$/m);
  });
});
