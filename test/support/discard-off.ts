/**
 * Turns discard off on an attached loop device through sysfs, so the branch that a kernel without
 * loop discard takes can be tested on every machine.
 *
 * The kernel keeps that setting as a user limit of the device, across detach and re-attach, and
 * once it is 0 the discard granularity reads 0 and no other value is accepted any more. So the
 * device itself must be renewed after it is detached: `renewLoopDevice` removes loopN through
 * /dev/loop-control and adds it again with the kernel's defaults. Node has no ioctl, so python3 (a
 * test dependency already, through python3-dbusmock) makes the two calls.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export function switchDiscardOff(device: string): void {
  writeFileSync(`/sys/class/block/${loopName(device)}/queue/discard_max_bytes`, '0');
}

const RENEW = `
import errno, fcntl, os, sys, time
LOOP_CTL_ADD, LOOP_CTL_REMOVE = 0x4C80, 0x4C81
n = int(sys.argv[1])
ctl = os.open('/dev/loop-control', os.O_RDWR | os.O_CLOEXEC)
for _ in range(200):  # udev may still hold the device for a moment after detach
    try:
        fcntl.ioctl(ctl, LOOP_CTL_REMOVE, n)
        break
    except OSError as e:
        if e.errno == errno.ENODEV:
            break  # already gone
        if e.errno != errno.EBUSY:
            raise
        time.sleep(0.05)
else:
    sys.exit(f'loop{n} stayed busy')
try:
    fcntl.ioctl(ctl, LOOP_CTL_ADD, n)
except OSError as e:
    if e.errno != errno.EEXIST:  # someone's losetup --find made it again: fresh all the same
        raise
`;

/** Removes a detached loop device and adds it again, so it forgets settings made through sysfs. */
export function renewLoopDevice(device: string): void {
  const n = /^loop(\d+)$/.exec(loopName(device))?.[1];
  if (n === undefined) throw new RangeError(`not a loop device: ${device}`);
  const r = spawnSync('python3', ['-c', RENEW, n], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`could not renew ${device}: ${r.stderr.trim() || r.error?.message}`);
}

function loopName(device: string): string {
  return path.basename(device);
}
