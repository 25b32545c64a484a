/**
 * `vault resize` growing a mounted volume (spec/format.md §12 "Online grow"): the container grows
 * under the running server, the server is told to serve the new size (SIGUSR2), the loop device
 * re-reads its capacity (LOOP_SET_CAPACITY), and resize2fs grows the mounted ext4. Where resize2fs
 * cannot (root without CAP_SYS_RESOURCE gets EPERM), the device grow stays: the filesystem is
 * finished offline later, by `vault resize <container>` without --size.
 */
import { statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import type { Header } from '../format/types.js';
import { resizeExt4 } from '../mount/resize-fs.js';
import { run, firstLine } from '../mount/run.js';
import { serverAlive, type VolumeRecord } from '../mount/state.js';
import type { ContainerFile } from '../volume/container-file.js';
import { growContainer } from '../volume/resize.js';
import { info, progress, warn } from './output.js';
import { formatSize } from './sizes.js';

/** What can be grown online: a read-write vault volume on the root route, with ext4 or nothing. */
export function requireOnlineGrowable(r: VolumeRecord): void {
  const refuse = (why: string) =>
    new VaultError('busy', `cannot grow ${r.container} while it is mounted: ${why}`, `dismount it (vault dismount ${r.mountpoint ?? r.container}), then run vault resize ${r.container} again`);
  if ((r.route ?? 'root') !== 'root') throw refuse(`online resize needs the root route (this volume took the ${r.route} route, where vault has no loop device of its own to grow)`);
  if (r.format !== 'vault') throw refuse(`it is a ${r.format} volume`);
  if (r.readOnly) throw refuse('it is mounted read-only');
  if (r.fsType !== null && r.fsType !== 'ext4') throw refuse(`${r.fsType} cannot be grown (no tool resizes it)`);
  if (!catchesSigusr2(r.serverPid)) throw refuse('its volume server was started by a vault without online resize (SIGUSR2 would end it)');
}

/**
 * Whether the server handles SIGUSR2 (/proc/<pid>/status SigCgt, bit 11). A server started by an
 * older vault does not, and SIGUSR2's default action would end it under a mounted filesystem.
 */
function catchesSigusr2(pid: number): boolean {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return !!m && (BigInt(`0x${m[1]}`) & (1n << 11n)) !== 0n;
  } catch {
    return false;
  }
}

async function waitFor(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new VaultError('io', `${what} did not happen within 5 s`);
}

function loopBytes(device: string): number {
  return Number(readFileSync(`/sys/block/${path.basename(device)}/size`, 'utf8').trim()) * 512;
}

export async function growOnline(r: VolumeRecord, c: ContainerFile, h: Header, masterKey: Uint8Array, dataSize: number, o: { quick: boolean; signal: AbortSignal }): Promise<void> {
  if (!serverAlive(r)) throw new VaultError('io', `the volume server of ${r.container} is not running`, 'run vault list (it cleans up), then vault resize again');
  const started = Date.now();
  await growContainer(c, h, masterKey, dataSize, { ...o, onProgress: (done, total) => progress('encrypting', done, total, started) });
  info(`the container grew from ${formatSize(h.dataSize)} to ${formatSize(dataSize)} of data`);
  // From here on nothing is undone: the container is larger and opens with its new size.
  process.kill(r.serverPid, 'SIGUSR2');
  await waitFor(`the volume server serving the new size (the container grew: dismount, then run vault resize ${r.container} without --size)`, () => statSync(r.blockFile).size === dataSize);
  if (r.loopDevice) {
    const l = run('losetup', ['-c', r.loopDevice]);
    if (l.status !== 0 || loopBytes(r.loopDevice) !== dataSize)
      throw new VaultError('io', `the container grew, but ${r.loopDevice} did not (losetup -c: ${firstLine(l.stderr) || 'size unchanged'})`, `dismount it, then run vault resize ${r.container} without --size`);
  }
  if (r.fsType !== 'ext4' || !r.loopDevice) {
    info('the device grew; the volume has no filesystem vault knows: grow what is inside yourself');
    return;
  }
  const fs = resizeExt4(r.loopDevice);
  if (fs.ok) {
    info(`the mounted filesystem now fills the volume (${formatSize(dataSize)})`);
    return;
  }
  warn(`resize2fs: ${fs.message}`);
  throw new VaultError(
    'privilege',
    `the volume grew to ${formatSize(dataSize)}, but the mounted ext4 filesystem could not grow (resize2fs needs CAP_SYS_RESOURCE to grow a mounted ext4)`,
    `nothing was lost and the volume works at its old filesystem size; to finish: vault dismount ${r.mountpoint ?? r.container}, then vault resize ${r.container} (without --size) grows the filesystem offline`,
  );
}
