import { closeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { DEFAULT_SECTOR_SIZE, type SectorSize } from '../../format/constants.js';
import { finishContainer, openTarget, removePartial, removeStalePartials, writeNewContainer, type NewContainer, type Target } from '../../volume/create.js';
import { containerFromFd } from '../../volume/container-file.js';
import { lockContainer, mountUnlocked } from '../../mount/lifecycle.js';
import { statAt } from '../../system/fs-at.js';
import { dismountVolume } from '../../mount/dismount.js';
import { chooseRoute, type RouteChoice } from '../../mount/route.js';
import { makeFilesystem, type FsType } from '../../mount/filesystem.js';
import { records } from '../../mount/state.js';
import { vaultVolume } from '../../formats/vault.js';
import { gatherKdfInput } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../kdf-options.js';
import { info, progress, warn } from '../output.js';
import { invokingUser } from '../owner.js';
import { abortOnSignals } from '../signals.js';
import { parseSize } from '../sizes.js';

interface CreateOptions extends KdfCliOptions {
  size: string;
  fs: string;
  sectorSize: string;
  quick?: boolean;
  passwordStdin?: boolean;
  keyfile?: string[];
  force?: boolean;
}

const FILESYSTEMS = ['ext4', 'vfat', 'exfat', 'none'];

export function registerCreate(program: Command): void {
  const cmd = program
    .command('create <container>')
    .description('create a new encrypted container')
    .requiredOption('--size <size>', 'container size, e.g. 512M, 2G, 1T')
    .option('--fs <type>', 'filesystem inside: ext4, vfat, exfat or none', 'ext4')
    .option('--sector-size <bytes>', 'encryption sector size: 512 or 4096', String(DEFAULT_SECTOR_SIZE))
    .option('--quick', 'do not fill the data area (sparse file; reveals which sectors were written)');
  withSecretOptions(cmd).option('--force', 'overwrite an existing file');
  addKdfOptions(cmd).action(async (target: string, o: CreateOptions) => {
      const size = parseSize(o.size);
      if (!FILESYSTEMS.includes(o.fs)) throw new VaultError('usage', `unknown filesystem "${o.fs}" (use ${FILESYSTEMS.join(', ')})`);
      const sectorSize = Number(o.sectorSize) as SectorSize;
      if (sectorSize !== 512 && sectorSize !== 4096) throw new VaultError('usage', '--sector-size must be 512 or 4096');
      const abs = path.resolve(target);
      // root formats through its loop device; an ordinary user on the FUSE block file itself.
      const route = o.fs !== 'none' ? chooseRoute(undefined, false) : undefined;
      const t = openTarget(abs);
      try {
        await createIn(t, abs, o, size, sectorSize, route);
      } finally {
        closeSync(t.dir.fd);
      }
    });
}

/** The create itself, inside the target directory opened once (see src/volume/create.ts). */
async function createIn(t: Target, abs: string, o: CreateOptions, size: number, sectorSize: SectorSize, route: RouteChoice | undefined): Promise<void> {
  const existing = statAt(t.dir.fd, t.name); // a dangling symlink counts as existing too
  if (existing) {
    if (!o.force) throw new VaultError('exists', `${abs} already exists`, 'use --force to overwrite it');
    const id = `${existing.dev}:${existing.ino}`; // any path to a mounted container, not only this one
    if (records().some((r) => r.container === abs || r.containerId === id)) throw new VaultError('busy', `${abs} is mounted; dismount it first`);
  }
  for (const p of removeStalePartials(t)) warn(`removed ${p}, left by an interrupted create`);
  const kdfInput = gatherKdfInput(o, 'New passphrase: ', true);
  // After the prompt (calibration takes seconds), so a bad --kdf-* value must not leave it unwiped.
  const kdf = await kdfFromOptions(o).catch((e: unknown) => {
    kdfInput.fill(0);
    throw e;
  });
  const { signal, dispose } = abortOnSignals();
  const started = Date.now();
  let made;
  try {
    made = await writeNewContainer(t, {
      size, sectorSize, kdf, kdfInput, quick: !!o.quick, signal,
      onProgress: (done, total) => progress('encrypting', done, total, started),
    });
  } finally {
    kdfInput.fill(0);
  }
  try {
    if (o.quick) warn('--quick: the data area is sparse, so anyone who sees the file can tell which parts hold data');
    if (route) await formatThroughMount(t, made, o.fs as FsType, signal, route);
    else made.key.dispose();
    if (signal.aborted) throw new VaultError('interrupted', 'interrupted; no container was made');
    finishContainer(t, made, !!o.force);
  } catch (e) {
    made.key.dispose();
    removePartial(t, made);
    throw e;
  } finally {
    closeSync(made.fd);
    dispose();
  }
  info(`created ${abs} (${o.fs === 'none' ? 'no filesystem' : o.fs}, ${sectorSize}-byte sectors, Argon2id ${kdf.memoryKiB / 1024} MiB × ${kdf.iterations} × ${kdf.parallelism})`);
}

/**
 * Formats the new container through the normal mount path: mkfs writes only through the encryption,
 * and only into the file this create made (its descriptor, never its name).
 */
async function formatThroughMount(t: Target, made: NewContainer, fs: FsType, signal: AbortSignal, route: RouteChoice) {
  const c = containerFromFd(made.fd, path.join(t.dir.path, made.tmpName), false);
  lockContainer(c);
  const record = await mountUnlocked(c, vaultVolume(made.header, made.key, []), { readOnly: false, noFilesystem: true, warn, signal, transient: true, route });
  try {
    const owner = invokingUser() ?? selfUnlessRoot();
    makeFilesystem(record.loopDevice ?? record.blockFile, fs, { fresh: true, ...(owner ? { ownerUid: owner.uid, ownerGid: owner.gid } : {}) });
  } finally {
    await dismountVolume(record, true);
  }
}

/** An ordinary user owns the root of the filesystem they create (mkfs.ext4 -E root_owner). */
function selfUnlessRoot(): { uid: number; gid: number } | undefined {
  const uid = process.geteuid?.() ?? 0;
  return uid === 0 ? undefined : { uid, gid: process.getegid?.() ?? 0 };
}
