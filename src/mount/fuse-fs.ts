/**
 * The fuse route's filesystems (issue 15): when neither root nor udisks is at hand, a user-space
 * filesystem driver, run as the user on the volume's block file, mounts it through fusermount3.
 * No administrator needs to do anything, at a price: fuse2fs serves one request at a time (as many
 * random reads per second at queue depth 1 as at 16), so it runs at 0.14× to 0.6× of the kernel's
 * ext4 on one volume, the least under parallel random I/O (bench/RESULTS.md, issue 15), and it
 * writes without a journal. The volume server serves the block file through the page cache on this
 * route (ServerConfig.pageCache), since the drivers read and write it in 4 KiB pieces.
 *
 * Each driver daemonizes once its mount is up. Dismounting is `fusermount3 -u`, then waiting until
 * the driver has let go of the block file (it flushes for seconds after the unmount returns),
 * because the volume server must outlive every write.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { readMountInfo, type MountEntry } from './filesystem.js';
import { firstLine, run } from './run.js';

interface Driver {
  tool: string;
  pkg: string;
  args: (blockFile: string, mountpoint: string, readOnly: boolean) => string[];
  /** What the user should know about this driver. */
  note: string;
}

const DRIVERS: Record<string, Driver> = {
  // fakeroot: permission checks as if by root, so a volume formatted by root (files of uid 0) is
  // still the user's to use; the kernel already confines the mount to its owner.
  ext4: {
    tool: 'fuse2fs',
    pkg: 'fuse2fs',
    args: (b, m, ro) => [b, m, '-o', ['fakeroot', ro ? 'ro' : 'rw'].join(',')],
    note: 'ext4 through fuse2fs: slower than the kernel (it serves one request at a time: 0.14× to 0.6× of the root route here, least under parallel random I/O), and writes are not journaled, so a crash can leave the filesystem needing e2fsck',
  },
  vfat: { tool: 'fusefat', pkg: 'fusefat', args: (b, m, ro) => ['-o', ro ? 'ro' : 'rw+', b, m], note: 'FAT through fusefat (slow)' },
};
// exFAT has no driver here: exfat-fuse, run by a user, hands fusermount3 a `user=` option that only
// fuse 2's fusermount knew, and fusermount3 refuses the mount.

/** The fuse route's driver of a filesystem (its tool and Debian package), if it has one. */
export function fuseDriver(fsType: string): { tool: string; pkg: string } | undefined {
  return DRIVERS[fsType];
}

export function fuseDriverNote(fsType: string): string {
  return DRIVERS[fsType]?.note ?? '';
}

/** Mounts `blockFile`'s filesystem on `mountpoint` with its user-space driver; returns the mount. */
export function mountWithDriver(blockFile: string, mountpoint: string, fsType: string, readOnly: boolean): MountEntry {
  const d = DRIVERS[fsType];
  if (!d) throw new VaultError('missing-component', `the fuse route has no driver for ${fsType}`, 'mount it through udisks (`sudo vault setup-rootless --user $USER`), or as root');
  const r = run(d.tool, d.args(blockFile, mountpoint, readOnly), { timeoutMs: 120_000 });
  if (r.status !== 0) throw new VaultError('mount-failed', `${d.tool} could not mount the volume: ${firstLine(r.stderr) || firstLine(r.stdout) || `exit ${r.status}`}`);
  const entry = readMountInfo().filter((e) => e.mountpoint === mountpoint).at(-1);
  if (!entry) throw new VaultError('mount-failed', `${d.tool} exited without mounting ${mountpoint}`);
  return entry;
}

/** fusermount3 -u (lazily with `lazy`); false with the reason when it did not unmount. */
export function fuseUnmount(mountpoint: string, lazy: boolean): { ok: true } | { ok: false; busy: boolean; message: string } {
  const r = run('fusermount3', ['-u', ...(lazy ? ['-z'] : []), '--', mountpoint]);
  if (r.status === 0 || /not found in \/etc\/mtab|not mounted/i.test(r.stderr)) return { ok: true };
  return { ok: false, busy: /busy/i.test(r.stderr), message: firstLine(r.stderr) };
}

/** Pids of this user's processes that hold `file` open (the driver, after its unmount). */
export function processesHolding(file: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(path.join('/proc', name, 'fd', fd)) === file) {
          out.push(Number(name));
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

/** Waits until no process holds `file` (the driver flushed and exited); false on timeout. */
export async function waitReleased(file: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (processesHolding(file).length > 0) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
