import { fstatSync } from 'node:fs';
import type { Command } from 'commander';
import { VaultError, isVaultError } from '../../errors.js';
import { detectFormat } from '../../formats/index.js';
import { formatLabel, type FormatAdapter } from '../../formats/types.js';
import { vaultVolume } from '../../formats/vault.js';
import { HEADER_SIZE } from '../../format/constants.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { secretCopy } from '../../crypto/wipe.js';
import { growContainer, shrinkContainer } from '../../volume/resize.js';
import { findVolume } from '../../mount/dismount.js';
import { lockContainer } from '../../mount/lifecycle.js';
import type { VolumeRecord } from '../../mount/state.js';
import { candidateHeaders, readHeaderCopies } from '../../volume/container.js';
import { closeContainer, openContainer, resolveContainer, type ContainerFile } from '../../volume/container-file.js';
import { parseSizeRequest, plannedDataSize, type SizeRequest } from '../resize-size.js';
import { fixedSegment, resizeLuks } from '../resize-luks.js';
import { resizeOffline } from '../resize-offline.js';
import { growOnline, requireOnlineGrowable } from '../resize-online.js';
import { gatherKdfInput } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { abortOnSignals } from '../signals.js';
import { unlockOpened } from '../unlock.js';

interface ResizeOptions {
  size?: string;
  quick?: boolean;
  passwordStdin?: boolean;
  keyfile?: string[];
}

export function registerResize(program: Command): void {
  const cmd = program
    .command('resize <target>')
    .description('grow or shrink a container and its ext4 filesystem (target: the container, or the mount point of a mounted one)')
    .option('--size <size>', 'new container size (512M, 2G) or +<delta>; without it, grow the filesystem to fill the volume')
    .option('--quick', 'leave the new space sparse instead of filling it with ciphertext')
    .option('--no-quick', 'fill the new space with ciphertext (the default)');
  withSecretOptions(cmd).action(async (target: string, o: ResizeOptions) => {
    const req = o.size !== undefined ? parseSizeRequest(o.size) : undefined;
    const mounted = mountedVolume(target);
    const c = openWritable(mounted ? mounted.container : resolveContainer(target));
    try {
      refuseReadOnlyMode(c);
      const adapter = await resizableFormat(c);
      const record = mounted ?? lockOrFind(c);
      const { signal, dispose } = abortOnSignals();
      try {
        if (adapter.name === 'vault') await resizeVault(c, record, o, req, signal);
        else if (record) throw new VaultError('busy', `${c.path} is mounted: a ${formatLabel(adapter.name)} container resizes offline only`, `vault dismount ${record.mountpoint ?? record.container}, then run vault resize again`);
        else await resizeLuks(c, adapter, o, req, signal);
      } finally {
        dispose();
      }
    } finally {
      closeContainer(c);
    }
  });
}

async function resizeVault(c: ContainerFile, record: VolumeRecord | null, o: ResizeOptions, req: SizeRequest | undefined, signal: AbortSignal): Promise<void> {
  // The size is checked before the passphrase is asked (+0 is a usage error).
  const current = candidateHeaders(c, readHeaderCopies(c)).candidates[0]!;
  const planned = req ? plannedDataSize(req, current) : undefined;
  if (record) requireOnline(record, planned, current.dataSize);
  const x = await unlockOpened(c, gatherKdfInput(o));
  try {
    const h = x.u.header;
    const mk = x.u.masterKey;
    const dataSize = req ? plannedDataSize(req, h) : undefined;
    if (record) return await growOnline(record, c, h, mk, dataSize!, { quick: !!o.quick, signal });
    const volume = vaultVolume(h, KeyHandle.fromBytes(secretCopy(mk)), []);
    try {
      await resizeOffline({
        c, volume, dataSize, quick: !!o.quick, signal, overhead: h.dataOffset + HEADER_SIZE,
        growFile: async (size, g) => void (await growContainer(c, h, mk, size, g)),
        shrinkFile: (size) => void shrinkContainer(c, h, mk, size),
      });
    } finally {
      volume.key.dispose();
    }
  } finally {
    x.close();
  }
}

/** The mounted volume `target` names (its mount point, container or loop device), if any. */
function mountedVolume(target: string): VolumeRecord | null {
  try {
    return findVolume(target);
  } catch (e) {
    if (isVaultError(e, 'not-mounted')) return null;
    throw e;
  }
}

/** Takes the container's lock for an offline resize; held by a server, it is mounted: its record. */
function lockOrFind(c: ContainerFile): VolumeRecord | null {
  try {
    lockContainer(c);
    return null;
  } catch (e) {
    if (!isVaultError(e, 'already-mounted')) throw e;
    return findVolume(c.path);
  }
}

function requireOnline(r: VolumeRecord, planned: number | undefined, current: number): void {
  const next = `vault dismount ${r.mountpoint ?? r.container}, then vault resize ${r.container}`;
  if (planned === undefined)
    throw new VaultError('busy', `${r.container} is mounted: growing its filesystem to fill the volume works offline only`, `${next} (without --size)`);
  if (planned < current)
    throw new VaultError('busy', `${r.container} is mounted: shrinking works offline only`, `${next} --size …`);
  requireOnlineGrowable(r);
}

function openWritable(path: string): ContainerFile {
  try {
    return openContainer(path, false);
  } catch (e) {
    if (isVaultError(e, 'privilege')) throw new VaultError('privilege', `${e.message}; nothing was changed`, 'vault resize writes the container: make it (or its filesystem) writable, then try again');
    throw e;
  }
}

/** A file nobody may write (chmod a-w) is not resized, even by root, who could. */
function refuseReadOnlyMode(c: ContainerFile): void {
  const mode = fstatSync(c.fd).mode;
  if ((mode & 0o222) === 0)
    throw new VaultError('privilege', `${c.path} is read-only (mode ${(mode & 0o777).toString(8)}); nothing was changed`, `make it writable (chmod u+w ${c.path}), then run vault resize again`);
}

/** The container's format, if vault can resize it: vault, LUKS1, LUKS2 with one plain data segment. */
async function resizableFormat(c: ContainerFile): Promise<FormatAdapter> {
  const a = await detectFormat(c);
  fixedSegment(c, a); // refuses, before any passphrase, a LUKS2 header vault does not resize
  if (a.name === 'vault' || a.name === 'luks1' || a.name === 'luks2') return a;
  throw new VaultError(
    'unsupported-feature',
    `${c.path} is not a vault or LUKS container (it looks like VeraCrypt/TrueCrypt): vault does not resize it, because a hidden volume may fill the end of its outer volume and its backup headers sit at fixed offsets from the end of the file, so a resize would destroy one or the other; the container was not changed`,
    'create a new container of the size you want and copy the files over',
  );
}
