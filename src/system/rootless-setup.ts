/**
 * What root sets up once so that ordinary users can mount vault volumes (issue 15, "vault without
 * root"): they ask udisks2 (over the D-Bus system bus, decided by polkit) for a loop device and a
 * mount, and run their volume server through fusermount3. `vault setup-rootless` runs these steps.
 *
 * Each step is data: a name, what it changes and why (one line, said before it changes anything),
 * check() (already done?), apply() and undo(). A second run finds every step done and changes
 * nothing; --undo reverses what vault did and leaves what an admin did alone.
 */
import { statSync, unlinkSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { firstLine, run, runOk, toolEnv } from '../mount/run.js';
import { LOOP_DIO_RULE_FILE, loopDioStep } from './loop-dio-rule.js';
import { modeOf, readOptional, writeFileAtomic } from './atomic-file.js';

/** The group whose members polkit lets use udisks2 for vault. */
export const VAULT_GROUP = 'vault';

/**
 * Debian packages: udisks2 (loop devices and mounts for users), polkitd (decides who may),
 * fuse2fs (ext4 in user space, for volumes without a loop device), fuse3 (fusermount3, the
 * setuid helper a user's volume server mounts with), libglib2.0-bin (gdbus, how vault talks D-Bus).
 */
export const ROOTLESS_PACKAGES = ['udisks2', 'polkitd', 'fuse2fs', 'fuse3', 'libglib2.0-bin'] as const;

export const POLKIT_RULE_FILE = '/etc/polkit-1/rules.d/50-vault.rules';
export const FUSE_CONF = '/etc/fuse.conf';
/** The line after the `user_allow_other` that vault added: how --undo tells it from an admin's. */
export const FUSE_CONF_MARK = '# added by vault setup-rootless';

/**
 * The udisks2 actions members of group vault get without an active local session, each checked
 * against udisks 2.9.4 (Debian 12), src/udiskslinuxmanager.c and src/udiskslinuxfilesystem.c.
 * Unmounting what the user mounted and deleting a loop device the user set up ask polkit nothing
 * (see the rule's comment); filesystem-take-ownership is left out on purpose (see the rule too).
 */
export const POLKIT_ACTIONS = ['org.freedesktop.udisks2.loop-setup', 'org.freedesktop.udisks2.filesystem-mount'] as const;

/** The rule file: JavaScript as polkitd 122 runs it (ES5: duktape). */
export const POLKIT_RULE = `// Written by \`vault setup-rootless\`, removed by \`vault setup-rootless --undo\`; vault rewrites it.
//
// Members of group "${VAULT_GROUP}" may ask udisks2 for what an ordinary user's \`vault mount\` and
// \`vault dismount\` need, also without an active local session (ssh, cron, a service), where the
// udisks2 policy would otherwise ask for an administrator's password. Checked against udisks 2.9.4:
//
// org.freedesktop.udisks2.loop-setup: Manager.LoopSetup (src/udiskslinuxmanager.c) attaches the
//   volume's block file to a loop device. The file comes as a descriptor the user opened, so it is
//   only ever a file the user can open read-write. udisks records the user as the device's owner.
// org.freedesktop.udisks2.filesystem-mount: Filesystem.Mount (src/udiskslinuxfilesystem.c) of a
//   loop device; udisks mounts it nosuid,nodev under /media/USER. Only for /dev/loopN here: other
//   devices (USB sticks) keep the udisks2 policy. For a loop device the caller set up, udisks asks
//   this action; for anyone else's it asks filesystem-mount-system or -other-seat, not granted.
//
// Not granted, because not needed:
// - Filesystem.Unmount asks filesystem-unmount-others only when another user mounted it, and
//   Loop.Delete asks loop-delete-others only when another user set it up
//   (handle_unmount, src/udiskslinuxfilesystem.c; handle_delete, src/udiskslinuxloop.c).
// - Loop.SetAutoclear asks loop-modify-others only for another user's loop device
//   (handle_set_autoclear, src/udiskslinuxloop.c); vault does not call it.
// - filesystem-take-ownership: Filesystem.TakeOwnership (handle_take_ownership) checks neither who
//   set the device up nor whether it is a system device, and mounts it itself if need be: granted,
//   a member could take / or another user's volume. vault makes a user's filesystem theirs at mkfs
//   time (ext4 root_owner); FAT and exFAT are mounted with the user's uid by udisks.
polkit.addRule(function (action, subject) {
  var actions = ${JSON.stringify(POLKIT_ACTIONS)};
  if (actions.indexOf(action.id) < 0 || !subject.isInGroup("${VAULT_GROUP}")) return polkit.Result.NOT_HANDLED;
  if (action.id == "org.freedesktop.udisks2.filesystem-mount" && !/^\\/dev\\/loop[0-9]+$/.test(action.lookup("device") || ""))
    return polkit.Result.NOT_HANDLED;
  return polkit.Result.YES;
});
`;

/** One change to the machine. */
export interface Step {
  name: string;
  /** What apply() changes and why, in one line; asked only when check() says it is not done. */
  explain(): string;
  /** True when the machine already is as apply() would leave it. */
  check(): boolean;
  apply(): void;
  /** What --undo does for this step: a line saying so, and the change itself (none: nothing to do). */
  undo(): { explain: string; run?: () => void };
}

export interface SetupOptions {
  /** A login to add to (or, with --undo, remove from) group vault. */
  user?: string;
}

/** Lines for the person running the command. */
export type Say = (line: string) => void;

/** Makes the machine ready for vault without root; returns how many steps changed something. */
export function setupRootless(opts: SetupOptions, say: Say): number {
  let changed = 0;
  for (const step of rootlessSteps(opts)) {
    if (step.check()) {
      say(`${step.name}: already done`);
      continue;
    }
    say(`${step.name}: ${step.explain()}`);
    step.apply();
    changed++;
  }
  if (opts.user === undefined) say(`to let a user mount without root: vault setup-rootless --user NAME (as root), or gpasswd -a NAME ${VAULT_GROUP}`);
  else say(`${opts.user} must log in again (or run \`newgrp ${VAULT_GROUP}\`) for the membership of group ${VAULT_GROUP} to take effect`);
  return changed;
}

/**
 * Reverses setupRootless. With a user, only that user's membership; without, the rule, the
 * fuse.conf line and the group (only when nobody is left in it), last step first.
 */
export function undoRootless(opts: SetupOptions, say: Say): number {
  const steps = rootlessSteps(opts);
  let changed = 0;
  for (const step of opts.user !== undefined ? steps.filter((s) => s.name === 'membership') : steps.reverse()) {
    const u = step.undo();
    say(`${step.name}: ${u.explain}`);
    if (u.run) {
      u.run();
      changed++;
    }
  }
  return changed;
}

/** Every file `vault setup-rootless` writes (what a test or the bench saves and puts back). */
export const SETUP_FILES: readonly string[] = [FUSE_CONF, POLKIT_RULE_FILE, LOOP_DIO_RULE_FILE];

/** The steps, in the order they are applied. */
export function rootlessSteps(opts: SetupOptions): Step[] {
  const steps = [packagesStep(), groupStep(), polkitRuleStep(POLKIT_RULE_FILE), fuseConfStep(FUSE_CONF), loopDioStep()];
  if (opts.user !== undefined) steps.push(membershipStep(checkedUser(opts.user)));
  return steps;
}

function packagesStep(): Step {
  const missing = () => ROOTLESS_PACKAGES.filter((p) => !packageInstalled(p));
  return {
    name: 'packages',
    explain: () =>
      `install ${missing().join(', ')} with apt-get: udisks2 gives users loop devices and mounts, polkitd decides who may, ` +
      'fuse3 (fusermount3) and fuse2fs serve and mount without root, libglib2.0-bin (gdbus) is how vault asks udisks2',
    check: () => missing().length === 0,
    apply: () => aptInstall(missing()),
    undo: () => ({ explain: `left installed (--undo removes no packages; other software may use them): ${ROOTLESS_PACKAGES.join(' ')}` }),
  };
}

function packageInstalled(pkg: string): boolean {
  let r;
  try {
    r = run('dpkg-query', ['-W', '-f=${Status}', pkg]);
  } catch (e) {
    if (e instanceof VaultError && e.code === 'missing-component')
      throw new VaultError('missing-component', 'dpkg-query is missing: vault setup-rootless installs Debian packages', `install ${ROOTLESS_PACKAGES.join(', ')} (or what your system calls them) by hand, then run it again`);
    throw e;
  }
  return r.status === 0 && r.stdout.trim() === 'install ok installed';
}

function aptInstall(pkgs: string[]): void {
  const byHand = `run as root: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}; then vault setup-rootless again`;
  const env = { ...toolEnv(), DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
    let r;
    try {
      r = run('apt-get', args, { env, timeoutMs: 900_000 });
    } catch (e) {
      throw new VaultError('missing-component', `apt-get cannot run: ${(e as Error).message}`, byHand);
    }
    if (r.status !== 0) throw new VaultError('missing-component', `apt-get ${args[0]} failed: ${firstLine(r.stderr) || `exit status ${r.status}`}`, byHand);
  }
}

function groupStep(): Step {
  return {
    name: `group ${VAULT_GROUP}`,
    explain: () => `create the system group ${VAULT_GROUP} (groupadd --system): its members may use udisks2 for vault`,
    check: () => groupMembers() !== null,
    apply: () => void runOk('groupadd', ['--system', VAULT_GROUP]),
    undo: () => {
      const members = groupMembers();
      if (members === null) return { explain: 'does not exist: nothing to undo' };
      if (members.length > 0)
        return { explain: `kept: ${members.join(', ')} still in it (vault setup-rootless --undo --user NAME removes one; then --undo again)` };
      return { explain: `remove the group ${VAULT_GROUP} (groupdel): nobody is left in it`, run: () => void runOk('groupdel', [VAULT_GROUP]) };
    },
  };
}

/** The members of group vault (the member list of /etc/group), or null when there is no such group. */
export function groupMembers(): string[] | null {
  return vaultGroup()?.members ?? null;
}

/** Group vault's id and members (getent group), or null when there is no such group. */
export function vaultGroup(): { gid: number; members: string[] } | null {
  const r = run('getent', ['group', VAULT_GROUP]);
  if (r.status !== 0) return null;
  const fields = r.stdout.trim().split(':');
  return { gid: Number(fields[2]), members: (fields[3] ?? '').split(',').filter(Boolean) };
}

function polkitRuleStep(file: string): Step {
  const current = () => readOptional(file);
  return {
    name: 'polkit rule',
    explain: () =>
      `${current() === null ? `write ${file}` : `rewrite ${file} (it is not what this vault writes)`}: members of group ${VAULT_GROUP} may ` +
      'set up loop devices and mount them through udisks2 without an active local session (ssh, cron, services)',
    check: () => {
      if (current() !== POLKIT_RULE) return false;
      const st = statSync(file);
      return (st.mode & 0o7777) === 0o644 && st.uid === 0 && st.gid === 0;
    },
    apply: () => writeFileAtomic(file, POLKIT_RULE, { mode: 0o644, uid: 0, gid: 0 }),
    undo: () => (current() === null ? { explain: `${file} does not exist: nothing to undo` } : { explain: `remove ${file}`, run: () => unlinkSync(file) }),
  };
}

function fuseConfStep(file: string): Step {
  const text = () => readOptional(file) ?? '';
  return {
    name: 'fuse.conf',
    explain: () => `enable user_allow_other in ${file}: a user's volume server mounts allow_other (served to its owner and root only), so that udisksd and the loop driver may open its block file`,
    check: () => userAllowOther(text()),
    apply: () => writeFileAtomic(file, withUserAllowOther(text()), modeOf(file, 0o644)),
    undo: () => {
      const t = text();
      const without = withoutVaultUserAllowOther(t);
      if (without !== t) return { explain: `remove the user_allow_other line vault added to ${file}`, run: () => writeFileAtomic(file, without, modeOf(file, 0o644)) };
      return { explain: userAllowOther(t) ? `user_allow_other in ${file} was not added by vault: left as it is` : `no user_allow_other in ${file}: nothing to undo` };
    },
  };
}

/** Whether fuse.conf text enables user_allow_other (fuse wants it on a line by itself). */
export function userAllowOther(text: string): boolean {
  return /^[ \t]*user_allow_other[ \t]*$/m.test(text);
}

/** fuse.conf text with user_allow_other appended and marked as vault's. */
export function withUserAllowOther(text: string): string {
  return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}user_allow_other\n${FUSE_CONF_MARK}\n`;
}

/** fuse.conf text without the user_allow_other that vault added (the line followed by the mark); the rest as it was. */
export function withoutVaultUserAllowOther(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^[ \t]*user_allow_other[ \t]*$/.test(lines[i]!) && lines[i + 1] === FUSE_CONF_MARK) i++;
    else out.push(lines[i]!);
  }
  return out.join('\n');
}

function membershipStep(user: string): Step {
  const isMember = () => groupMembers()?.includes(user) ?? false;
  return {
    name: 'membership',
    explain: () => `add ${user} to group ${VAULT_GROUP} (gpasswd -a): the polkit rule then lets ${user} mount vault volumes without root`,
    check: isMember,
    apply: () => void runOk('gpasswd', ['-a', user, VAULT_GROUP]),
    undo: () =>
      isMember()
        ? { explain: `remove ${user} from group ${VAULT_GROUP} (gpasswd -d): ${user} can no longer use udisks2 for vault`, run: () => void runOk('gpasswd', ['-d', user, VAULT_GROUP]) }
        : { explain: `${user} is not in group ${VAULT_GROUP}: nothing to undo` },
  };
}

/** A login name that exists here (and cannot pass for an option of gpasswd). */
function checkedUser(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name) || run('getent', ['passwd', name]).status !== 0)
    throw new VaultError('usage', `there is no user named ${JSON.stringify(name)}`, 'give an existing login name: --user NAME');
  return name;
}
