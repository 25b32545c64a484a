/**
 * What this kernel and this process offer, of the things vault or its tests depend on.
 *
 * Machines change under a project: a kernel build dropped discard from loop devices, root in a
 * container may lack CAP_SYS_RESOURCE, AF_ALG or UHID may not be compiled in. Code and tests ask
 * here instead of assuming, and say which branch they took. Each probe reads what the kernel says
 * about itself (procfs, sysfs) or makes one attempt that leaves nothing behind; none changes the
 * machine. `vault doctor` reports the same list.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { nativeAddon } from '../crypto/native.js';

/** What a block device's request queue accepts beyond reads and writes; 0 means not at all. */
export interface QueueLimits {
  /** BLKDISCARD and fstrim reach the device (for a loop device: a hole punch in its backing file). */
  discardMaxBytes: number;
  /** REQ_OP_WRITE_ZEROES reaches the device; without it BLKZEROOUT falls back to writing zero pages. */
  writeZeroesMaxBytes: number;
}

/** The limits of a whole block device such as /dev/loop3, read from /sys/class/block/NAME/queue. */
export function queueLimits(device: string): QueueLimits {
  const name = /^\/dev\/([a-z][a-z0-9]*)$/.exec(device)?.[1];
  if (name === undefined) throw new RangeError(`not a whole block device name: ${JSON.stringify(device)}`);
  const read = (attr: string) => Number(readFileSync(`/sys/class/block/${name}/queue/${attr}`, 'utf8').trim());
  return { discardMaxBytes: read('discard_max_bytes'), writeZeroesMaxBytes: read('write_zeroes_max_bytes') };
}

/** Bit numbers from <linux/capability.h> of the capabilities vault's routes need. */
export const CAPABILITY = {
  /** mlock beyond RLIMIT_MEMLOCK. */
  CAP_IPC_LOCK: 14,
  /** mount, loop devices. */
  CAP_SYS_ADMIN: 21,
  /** Online ext4 resize (EXT4_IOC_RESIZE_FS), PR_SET_IO_FLUSHER, raising hard rlimits. */
  CAP_SYS_RESOURCE: 24,
} as const;
export type CapabilityName = keyof typeof CAPABILITY;

/** The effective capability set of this process (CapEff of /proc/self/status). */
export function effectiveCapabilities(status: string = readFileSync('/proc/self/status', 'utf8')): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) throw new Error('/proc/self/status has no CapEff line');
  return BigInt(`0x${hex}`);
}

export function hasCapability(name: CapabilityName, caps: bigint = effectiveCapabilities()): boolean {
  return ((caps >> BigInt(CAPABILITY[name])) & 1n) === 1n;
}

/** kernel.io_uring_disabled: 0 everyone, 1 only CAP_SYS_ADMIN or io_uring_group, 2 nobody. */
export type IoUringPolicy = 'enabled' | 'restricted' | 'disabled' | 'unknown';

export function ioUringPolicy(): IoUringPolicy {
  const v = readOptional('/proc/sys/kernel/io_uring_disabled');
  if (v === null) return 'unknown'; // kernels before 6.6 have no such sysctl
  return v === '0' ? 'enabled' : v === '1' ? 'restricted' : 'disabled';
}

/** Whether this process may create an io_uring under that policy. */
export function ioUringUsable(policy: IoUringPolicy = ioUringPolicy()): boolean {
  if (policy === 'disabled') return false;
  if (policy === 'restricted') return hasCapability('CAP_SYS_ADMIN');
  return true;
}

/**
 * FUSE over io_uring: 'absent' when the kernel was built without CONFIG_FUSE_IO_URING (or fuse is
 * not loaded), otherwise whether root switched it on (/sys/module/fuse/parameters/enable_uring).
 */
export function fuseOverIoUring(): 'on' | 'off' | 'absent' {
  const v = readOptional(ENABLE_URING);
  return v === null ? 'absent' : v === 'Y' || v === '1' ? 'on' : 'off';
}

/** The kernel's machine-wide switch for FUSE over io_uring (root only; off by default). */
export const ENABLE_URING = '/sys/module/fuse/parameters/enable_uring';

/** What to do when io_uring was asked for and the switch is off. */
export const URING_HINT = 'as root: `vault uring enable`, or VAULT_FUSE_TRANSPORT=auto';

/** Sets the switch (root only; vault does so only when asked: `vault uring`, tests, the bench). */
export function setFuseOverIoUring(on: boolean): void {
  writeFileSync(ENABLE_URING, on ? 'Y' : 'N');
}

const AF_ALG = 38;
const SOCK_SEQPACKET = 5;

/** The kernel crypto API for user space (AF_ALG), which cryptsetup's benchmark and keyslot code use. */
export function afAlgAvailable(): boolean {
  return nativeAddon().probeSocket(AF_ALG, SOCK_SEQPACKET) === 0;
}

/** /dev/uhid, through which a FIDO2 authenticator can be simulated at its HID transport. */
export function uhidAvailable(): boolean {
  try {
    return statSync('/dev/uhid').isCharacterDevice();
  } catch {
    return false;
  }
}

export interface Capability {
  name: string;
  /** null: could not be determined. */
  available: boolean | null;
  detail: string;
  /** What depends on it. */
  uses: string;
}

/** Every capability above, for `vault doctor` and for the test run's closing summary. */
export function machineCapabilities(): Capability[] {
  const caps = effectiveCapabilities();
  const policy = ioUringPolicy();
  const fuseUring = fuseOverIoUring();
  const alg = afAlgAvailable();
  return [
    {
      name: 'CAP_SYS_RESOURCE',
      available: hasCapability('CAP_SYS_RESOURCE', caps),
      detail: hasCapability('CAP_SYS_RESOURCE', caps) ? 'in the effective set' : 'not in the effective set (a container may drop it, even for root)',
      uses: 'online ext4 resize of a mounted volume, PR_SET_IO_FLUSHER for the volume server',
    },
    {
      name: 'io_uring',
      available: ioUringUsable(policy),
      detail: `kernel.io_uring_disabled says ${policy}`,
      uses: 'the io_uring FUSE transport',
    },
    {
      name: 'FUSE over io_uring',
      available: fuseUring === 'on',
      detail: fuseUring === 'absent' ? 'the kernel has no enable_uring parameter' : `enable_uring is ${fuseUring}`,
      uses: 'the io_uring FUSE transport',
    },
    {
      name: 'AF_ALG',
      available: alg,
      detail: alg === null ? 'unknown: the native addon is not loaded' : alg ? 'socket(AF_ALG) works' : 'socket(AF_ALG) is refused',
      uses: "cryptsetup's kernel crypto backend (tests use cryptsetup as the interop oracle)",
    },
    {
      name: 'UHID',
      available: uhidAvailable(),
      detail: uhidAvailable() ? '/dev/uhid exists' : '/dev/uhid is missing',
      uses: 'a simulated FIDO2 authenticator in tests',
    },
  ];
}

function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}
