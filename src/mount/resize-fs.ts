/**
 * The filesystem half of `vault resize`: ext4 grown or shrunk with resize2fs on the decrypted
 * device (a loop device on the root route, the volume server's block file otherwise). FAT and
 * exFAT have no resize tool in Debian (dosfstools and exfatprogs cannot), so they are refused.
 */
import { VaultError } from '../errors.js';
import { firstLine, run } from './run.js';

/** Refuses anything but ext4 for a filesystem resize; `null` (no filesystem) passes for a grow. */
export function requireResizable(fsType: string | null, what: 'grow' | 'shrink'): void {
  if (fsType === 'ext4' || (fsType === null && what === 'grow')) return;
  if (fsType === null)
    throw new VaultError('unsafe', 'the volume has no filesystem vault recognises, so vault cannot tell whether a shrink would cut off data', 'shrink what is inside yourself first (vault mount --no-filesystem), or keep the size');
  const why = fsType === 'vfat' || fsType === 'exfat'
    ? `no tool can ${what} ${fsType === 'vfat' ? 'a FAT' : 'an exFAT'} filesystem in place (dosfstools and exfatprogs cannot resize)`
    : `vault resizes ext4 filesystems only, and this volume holds ${fsType}`;
  throw new VaultError('unsafe', `refusing to ${what} the volume: ${why}; the container was not changed`, 'copy the files to a new container of the size you want (vault create)');
}

/**
 * A forced full check, repairing only what is safe without asking (e2fsck -p); resize2fs requires
 * one before working offline. A filesystem with errors that need a human is refused.
 */
export function checkExt4(device: string): void {
  const r = run('e2fsck', ['-f', '-p', device], { timeoutMs: 600_000 });
  if (r.status > 1)
    throw new VaultError('unsafe', `the volume's ext4 filesystem has errors e2fsck will not fix by itself (e2fsck exit ${r.status}: ${firstLine(r.stderr) || firstLine(r.stdout)}); nothing was resized`, 'mount it with --no-filesystem, run e2fsck -f on the device it prints, then run vault resize again');
}

/** The smallest size resize2fs can shrink the filesystem to, in bytes (resize2fs -P). */
export function ext4MinimumBytes(device: string): number {
  const p = run('resize2fs', ['-P', device]);
  const blocks = /minimum size of the filesystem:\s*(\d+)/i.exec(p.stdout + p.stderr);
  const d = run('dumpe2fs', ['-h', device]);
  const block = /^Block size:\s*(\d+)/m.exec(d.stdout);
  if (p.status !== 0 || !blocks || !block)
    throw new VaultError('io', `cannot determine the filesystem's minimum size: ${firstLine(p.stderr) || firstLine(d.stderr) || 'resize2fs -P said nothing'}`);
  return Number(blocks[1]) * Number(block[1]);
}

/**
 * Resizes the ext4 filesystem on `device` to `bytes` (rounded down to whole KiB, and by resize2fs
 * to whole blocks), or to fill the device when `bytes` is undefined. Returns resize2fs's status
 * and message for the caller to judge (online, EPERM is expected on machines without
 * CAP_SYS_RESOURCE).
 */
export function resizeExt4(device: string, bytes?: number): { ok: boolean; message: string; nothingToDo: boolean } {
  const args = bytes === undefined ? [device] : [device, `${Math.floor(bytes / 1024)}K`];
  const r = run('resize2fs', args, { timeoutMs: 3_600_000 });
  const text = `${r.stdout}\n${r.stderr}`;
  const message = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('resize2fs ')).join('; ');
  return { ok: r.status === 0, message, nothingToDo: /Nothing to do/i.test(text) };
}
