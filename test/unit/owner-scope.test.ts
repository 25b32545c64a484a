/**
 * Issue 13: whose volumes a command may act on. Under sudo only the invoking user's; plain root
 * all; records from before owners were kept count as root's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { inScope, ownerOf, type VolumeRecord } from '../../src/mount/state.js';
import { actingScope } from '../../src/cli/owner.js';
import { checkFsAllowed } from '../../src/mount/filesystem.js';

const rec = (ownerUid?: number) => ({ id: '00000000', ...(ownerUid === undefined ? {} : { ownerUid }) }) as VolumeRecord;

describe('volume owners', () => {
  const saved = { uid: process.env.SUDO_UID, gid: process.env.SUDO_GID };
  afterEach(() => {
    for (const [k, v] of [['SUDO_UID', saved.uid], ['SUDO_GID', saved.gid]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('an old record without an owner is root\'s', () => {
    expect(ownerOf(rec())).toBe(0);
    expect(inScope(rec(), 0)).toBe(true);
    expect(inScope(rec(), 1000)).toBe(false);
  });

  it('a user\'s scope holds only that user\'s volumes; "all" holds every one', () => {
    expect(inScope(rec(1000), 1000)).toBe(true);
    expect(inScope(rec(1001), 1000)).toBe(false);
    expect(inScope(rec(1001), 'all')).toBe(true);
  });

  it('under sudo the scope is SUDO_UID; without it, plain root acts on all and others on their own', () => {
    process.env.SUDO_UID = '1234';
    process.env.SUDO_GID = '1234';
    expect(actingScope()).toBe(1234);
    delete process.env.SUDO_UID;
    const uid = process.getuid!();
    expect(actingScope()).toBe(uid === 0 ? 'all' : uid);
  });
});

describe('filesystem types', () => {
  it('ext4, vfat and exfat mount by default; others only when allowed, refused as unsafe', () => {
    for (const t of ['ext4', 'vfat', 'exfat']) expect(() => checkFsAllowed(t)).not.toThrow();
    expect(() => checkFsAllowed('btrfs')).toThrow(expect.objectContaining({ code: 'unsafe', hint: expect.stringMatching(/--allow-fs btrfs/) }));
    expect(() => checkFsAllowed('btrfs', ['btrfs'])).not.toThrow();
    expect(() => checkFsAllowed('squashfs', ['btrfs'])).toThrow(/squashfs/);
  });
});
