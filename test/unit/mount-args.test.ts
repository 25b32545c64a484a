/**
 * kernelMountArgs (src/mount/filesystem.ts): mount(8)'s options as the kernel's mount API takes
 * them, the mount's flags for fsmount and the filesystem's parameters for fsconfig. The mounts
 * themselves are tested on real devices in test/system/system-tools.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { kernelMountArgs } from '../../src/mount/filesystem.js';

const NOSUID = 0x2;
const NODEV = 0x4;
const NOEXEC = 0x8;
const RDONLY = 0x1;
const NOATIME = 0x10;
const STRICTATIME = 0x20;
const NODIRATIME = 0x80;

describe('kernelMountArgs', () => {
  it("vault's defaults are mount flags, not filesystem parameters", () => {
    expect(kernelMountArgs(['nosuid', 'nodev'])).toEqual({ params: [], attrs: NOSUID | NODEV });
  });

  it('ro sets the mount and the superblock read-only', () => {
    expect(kernelMountArgs(['nosuid', 'nodev', 'ro'])).toEqual({ params: [['ro', null]], attrs: NOSUID | NODEV | RDONLY });
    expect(kernelMountArgs(['ro', 'rw'])).toEqual({ params: [], attrs: 0 }); // the later one wins
  });

  it("a user's option after vault's wins: suid, dev, exec clear what nosuid, nodev, noexec set", () => {
    expect(kernelMountArgs(['nosuid', 'nodev', 'noexec', 'suid']).attrs).toBe(NODEV | NOEXEC);
    expect(kernelMountArgs(['nosuid', 'nodev', 'dev', 'exec']).attrs).toBe(NOSUID);
  });

  it('one atime mode at a time, nodiratime beside it', () => {
    expect(kernelMountArgs(['noatime']).attrs).toBe(NOATIME);
    expect(kernelMountArgs(['noatime', 'strictatime']).attrs).toBe(STRICTATIME);
    expect(kernelMountArgs(['noatime', 'relatime', 'nodiratime']).attrs).toBe(NODIRATIME);
  });

  it('everything else goes to the filesystem: flags, and name=value (a value may hold more "=")', () => {
    expect(kernelMountArgs(['uid=1000', 'gid=1000', 'umask=077', 'utf8', 'discard', 'data=ordered', 'sync', 'x=a=b']).params).toEqual([
      ['uid', '1000'], ['gid', '1000'], ['umask', '077'], ['utf8', null], ['discard', null], ['data', 'ordered'], ['sync', null], ['x', 'a=b'],
    ]);
  });

  it("drops what only mount(8) and fstab know, and refuses a name or value that is missing", () => {
    expect(kernelMountArgs(['defaults', 'noauto', 'nofail', 'x-systemd.automount', 'comment=foo', '_netdev', 'user'])).toEqual({ params: [], attrs: 0 });
    expect(() => kernelMountArgs(['errors='])).toThrow(/"errors=" has no value/);
    expect(() => kernelMountArgs(['=x'])).toThrow(/"=x" has no name/);
  });
});
