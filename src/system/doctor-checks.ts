/**
 * The checks `vault doctor` reports, built from the facts the probes found, grouped by what they
 * serve. Each says what was found and, for a miss, the one command (or step) that fixes it.
 * The groups about users without root are in doctor-rootless.ts.
 */
import { MKFS } from '../mount/filesystem.js';
import { fuseDriver } from '../mount/fuse-fs.js';
import type { DoctorFacts } from './doctor.js';
import { rootlessGroups } from './doctor-rootless.js';
import { asRoot, check, install, TOOL_PACKAGES, toolCheck, type Check, type CheckGroup } from './doctor-item.js';

function capability(f: DoctorFacts, name: string): { available: boolean | null; detail: string } {
  const c = f.capabilities.find((x) => x.name === name);
  return c ? { available: c.available, detail: `${c.detail}; for ${c.uses}` } : { available: null, detail: 'not probed' };
}

function core(f: DoctorFacts): CheckGroup {
  const fuse = { usable: 'a character device this user can open', 'no-access': 'exists, but this user cannot open it', missing: 'missing: the fuse kernel module is not loaded' }[f.devFuse];
  return {
    id: 'core',
    title: 'core: create and mount (every route)',
    items: [
      check('addon', 'native addon', f.addon.ok, f.addon.ok ? 'loads (keys in locked memory, the FUSE server)' : f.addon.why, 'npm run build:native (in vault\'s directory; needs scripts/setup-system.sh\'s build packages)'),
      check('core-dumps', 'no core dumps of secrets', f.dumpable === null ? null : !f.dumpable, f.dumpable === null ? 'unknown: the native addon did not load' : f.dumpable ? 'vault\'s process is still dumpable after hardening' : 'vault\'s processes cannot dump core or be traced (PR_SET_DUMPABLE 0)', null, false),
      check('dev-fuse', '/dev/fuse', f.devFuse === 'usable', `${fuse} (every volume is served through FUSE)`, f.devFuse === 'missing' ? asRoot(f, 'modprobe fuse') : asRoot(f, 'chmod 0666 /dev/fuse')),
      toolCheck(f, 'mkfs.ext4', 'creates ext4, the default filesystem'),
      toolCheck(f, 'debugfs', 'makes a new ext4 volume\'s root directory private'),
      toolCheck(f, 'wipefs', 'clears old signatures before mkfs'),
    ],
  };
}

function root(f: DoctorFacts): CheckGroup {
  const cap = capability(f, 'CAP_SYS_RESOURCE');
  const free = f.freeLoop ?? (f.loopControl ? 'none free now; the kernel makes one on demand' : null);
  return {
    id: 'root',
    title: 'as root: loop devices and the kernel\'s filesystems',
    items: [
      check('loop-control', '/dev/loop-control', f.loopControl, f.loopControl ? 'present (vault binds a free loop device through it)' : 'missing: the loop module is not loaded', asRoot(f, 'modprobe loop')),
      check('loop-free', 'a free loop device', free !== null, free ?? 'none, and no /dev/loop-control to make one', asRoot(f, 'modprobe loop')),
      toolCheck(f, 'losetup', 'detaches and resizes loop devices'),
      toolCheck(f, 'mount', 'mounts FAT and exFAT through their FUSE drivers where the kernel has none'),
      toolCheck(f, 'umount', 'unmounts it'),
      check('kernel:ext4', 'ext4 in the kernel', f.kernelFs.ext4, f.kernelFs.ext4 ? 'built in or loadable (/proc/filesystems, modules)' : 'the running kernel has no ext4 driver', asRoot(f, 'modprobe ext4')),
      check('cap-sys-resource', 'CAP_SYS_RESOURCE', cap.available, cap.detail, 'run vault outside the container that dropped it', false),
    ],
  };
}

function filesystems(f: DoctorFacts): CheckGroup {
  const driver = (fs: 'vfat' | 'exfat', fuseTool: string, pkg: string): Check => {
    const k = f.kernelFs[fs];
    const u = f.tools[fuseTool] ?? null;
    const detail = k ? 'the kernel\'s driver' : u ? `no kernel driver: root mounts through ${u}` : `neither a kernel driver nor ${fuseTool}`;
    return check(`kernel:${fs}`, `${fs} driver`, k || u !== null, detail, `${asRoot(f, `modprobe ${fs}`)}, or ${install(f, pkg)}`, false);
  };
  return {
    id: 'filesystems',
    title: 'other filesystems (--fs vfat, --fs exfat)',
    items: [
      toolCheck(f, MKFS.vfat.tool, 'creates FAT volumes', false),
      driver('vfat', fuseDriver('vfat')!.tool, fuseDriver('vfat')!.pkg),
      toolCheck(f, MKFS.exfat.tool, 'creates exFAT volumes', false),
      driver('exfat', 'mount.exfat-fuse', TOOL_PACKAGES['mount.exfat-fuse']!),
    ],
  };
}

function speed(f: DoctorFacts): CheckGroup {
  const uring = capability(f, 'io_uring');
  const fuseUring = capability(f, 'FUSE over io_uring');
  return {
    id: 'speed',
    title: 'speed: FUSE over io_uring',
    items: [
      check('io-uring', 'io_uring', uring.available, uring.detail, asRoot(f, 'sysctl kernel.io_uring_disabled=0'), false),
      check('fuse-uring', 'FUSE over io_uring', fuseUring.available, fuseUring.detail, f.fuseUring === 'absent' ? 'needs Linux 6.14 or later built with CONFIG_FUSE_IO_URING' : asRoot(f, 'vault uring enable'), false),
    ],
  };
}

function tests(f: DoctorFacts): CheckGroup {
  const alg = capability(f, 'AF_ALG');
  const uhid = capability(f, 'UHID');
  const l = f.loopLimits;
  const on = (n: number | undefined) => (n === undefined ? null : n > 0);
  const where = f.freeLoop ?? 'a loop device';
  return {
    id: 'tests',
    title: 'development: what the test suite probes',
    items: [
      check('af-alg', 'AF_ALG', alg.available, alg.detail, 'a kernel built with CONFIG_CRYPTO_USER_API_SKCIPHER', false),
      check('uhid', 'UHID', uhid.available, uhid.detail, asRoot(f, 'modprobe uhid'), false),
      check('loop-discard', 'loop discard', on(l?.discardMaxBytes), l ? `discard_max_bytes of ${where} is ${l.discardMaxBytes} (BLKDISCARD and fstrim reach the device)` : 'no free loop device to read', null, false),
      check('loop-write-zeroes', 'loop write-zeroes', on(l?.writeZeroesMaxBytes), l ? `write_zeroes_max_bytes of ${where} is ${l.writeZeroesMaxBytes} (BLKZEROOUT without writing zero pages)` : 'no free loop device to read', null, false),
    ],
  };
}

/** Every group, in the order doctor prints them. */
export function checkGroups(f: DoctorFacts): CheckGroup[] {
  return [core(f), root(f), ...rootlessGroups(f), filesystems(f), speed(f), tests(f)];
}
