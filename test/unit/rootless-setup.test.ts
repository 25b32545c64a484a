/**
 * Issue 15, `vault setup-rootless` without touching the machine: the fuse.conf edit (only what
 * vault added is taken back) and the polkit rule's decisions, the rule run as polkitd runs it
 * (a script calling polkit.addRule). test/e2e/setup-rootless.test.ts runs it against real daemons.
 */
import { describe, expect, it } from 'vitest';
import { runInNewContext } from 'node:vm';
import { FUSE_CONF_MARK, POLKIT_RULE, userAllowOther, withUserAllowOther, withoutVaultUserAllowOther } from '../../src/system/rootless-setup.js';

const DEBIAN_FUSE_CONF = '# user_allow_other - ...\n\n#user_allow_other\n\n#mount_max = 1000\n';

describe('fuse.conf', () => {
  it('adds user_allow_other marked as vault\'s, and takes back exactly that', () => {
    expect(userAllowOther(DEBIAN_FUSE_CONF)).toBe(false);
    const added = withUserAllowOther(DEBIAN_FUSE_CONF);
    expect(added).toBe(`${DEBIAN_FUSE_CONF}user_allow_other\n${FUSE_CONF_MARK}\n`);
    expect(userAllowOther(added)).toBe(true);
    expect(withoutVaultUserAllowOther(added)).toBe(DEBIAN_FUSE_CONF);
    expect(withUserAllowOther('')).toBe(`user_allow_other\n${FUSE_CONF_MARK}\n`);
  });

  it('leaves an admin\'s own user_allow_other alone', () => {
    const admins = 'mount_max = 10\n  user_allow_other \n';
    expect(userAllowOther(admins)).toBe(true);
    expect(withoutVaultUserAllowOther(admins)).toBe(admins);
  });
});

describe('the polkit rule', () => {
  type Rule = (action: { id: string; lookup(k: string): string | undefined }, subject: { isInGroup(g: string): boolean }) => unknown;
  const rules: Rule[] = [];
  runInNewContext(POLKIT_RULE, { polkit: { addRule: (r: Rule) => rules.push(r), Result: { YES: 'yes', NOT_HANDLED: null } } });
  const decide = (id: string, groups: string[], device?: string) =>
    rules[0]!({ id, lookup: (k) => (k === 'device' ? device : undefined) }, { isInGroup: (g) => groups.includes(g) });
  const udisks = (a: string) => `org.freedesktop.udisks2.${a}`;

  it('says yes to members of group vault for loop-setup, and filesystem-mount of a loop device', () => {
    expect(rules).toHaveLength(1);
    expect(decide(udisks('loop-setup'), ['users', 'vault'])).toBe('yes');
    expect(decide(udisks('filesystem-mount'), ['vault'], '/dev/loop12')).toBe('yes');
  });

  it('leaves everything else to the udisks2 policy', () => {
    expect(decide(udisks('loop-setup'), ['users'])).toBeNull();
    expect(decide(udisks('filesystem-mount'), ['vault'], '/dev/sdb1')).toBeNull();
    expect(decide(udisks('filesystem-mount'), ['vault'], '/dev/loop0p1x')).toBeNull();
    expect(decide(udisks('filesystem-mount'), ['vault'])).toBeNull();
    for (const a of ['filesystem-take-ownership', 'loop-delete-others', 'loop-modify-others', 'filesystem-unmount-others', 'filesystem-mount-system', 'filesystem-mount-other-seat'])
      expect(decide(udisks(a), ['vault'], '/dev/loop0'), a).toBeNull();
  });
});
