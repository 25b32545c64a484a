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
import { gatherNewKdfInput } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { addYesOption, confirmOrStop, type YesOption } from '../confirm.js';
import { completeCreateChoices, FILESYSTEMS, requireAnswerable } from '../create-wizard.js';
import { addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../kdf-options.js';
import { info, progress, warn } from '../output.js';
import { invokingUser } from '../owner.js';
import { abortOnSignals } from '../signals.js';
import { parseSize } from '../sizes.js';

interface CreateOptions extends KdfCliOptions, YesOption {
  size?: string;
  fs?: string;
  sectorSize: string;
  quick?: boolean;
  passwordStdin?: boolean;
  keyfile?: string[];
  force?: boolean;
}

/** What create goes on with once the wizard (or the options) settled everything. */
interface Settled {
  size: number;
  fs: string;
  quick: boolean;
  sectorSize: SectorSize;
  overwrite: boolean;
}

const FILESYSTEM_NAMES: readonly string[] = FILESYSTEMS.map((f) => f.value);

export function registerCreate(program: Command): void {
  const cmd = program
    .command('create <container>')
    .description('create a new encrypted container (on a terminal, asks for what the options leave out)')
    .option('--size <size>', 'container size, e.g. 512M, 2G, 1T')
    .option('--fs <type>', 'filesystem inside: ext4 (the default without a terminal), vfat, exfat or none')
    .option('--sector-size <bytes>', 'encryption sector size: 512 or 4096', String(DEFAULT_SECTOR_SIZE))
    .option('--quick', 'do not fill the data area (sparse file; reveals which sectors were written)')
    .option('--no-quick', 'fill the data area with random-looking ciphertext (the default without a terminal)');
  withSecretOptions(cmd).option('--force', 'overwrite an existing file without asking (implies --yes)');
  addKdfOptions(addYesOption(cmd)).action(async (target: string, o: CreateOptions) => {
      // Whatever was given is checked before anything is asked or opened.
      if (o.size !== undefined) parseSize(o.size);
      if (o.fs !== undefined && !FILESYSTEM_NAMES.includes(o.fs)) throw new VaultError('usage', `unknown filesystem "${o.fs}" (use ${FILESYSTEM_NAMES.join(', ')})`);
      const sectorSize = Number(o.sectorSize) as SectorSize;
      if (sectorSize !== 512 && sectorSize !== 4096) throw new VaultError('usage', '--sector-size must be 512 or 4096');
      requireAnswerable(o);
      const abs = path.resolve(target);
      const t = openTarget(abs);
      try {
        const overwrite = await mayOverwrite(t, abs, o);
        const c = await completeCreateChoices(o, t.dir.path, sectorSize);
        // root formats through its loop device; an ordinary user on the FUSE block file itself.
        const route = c.fs !== 'none' ? chooseRoute(undefined, false) : undefined;
        await createIn(t, abs, o, { size: parseSize(c.size), fs: c.fs, quick: c.quick, sectorSize, overwrite }, route);
      } finally {
        closeSync(t.dir.fd);
      }
    });
}

/**
 * Whether the target may be replaced: no file there, or --force, or --yes, or a "yes" on the
 * terminal. Never a mounted container, whatever the options.
 */
async function mayOverwrite(t: Target, abs: string, o: CreateOptions): Promise<boolean> {
  const existing = statAt(t.dir.fd, t.name); // a dangling symlink counts as existing too
  if (!existing) return false;
  const id = `${existing.dev}:${existing.ino}`; // any path to a mounted container, not only this one
  if (records().some((r) => r.container === abs || r.containerId === id)) throw new VaultError('busy', `${abs} is mounted; dismount it first`);
  await confirmOrStop({ yes: !!(o.yes || o.force) }, `${abs} already exists; overwriting it`, `${abs} already exists. Overwrite it?`, 'nothing was created');
  return true;
}

/** The create itself, inside the target directory opened once (see src/volume/create.ts). */
async function createIn(t: Target, abs: string, o: CreateOptions, x: Settled, route: RouteChoice | undefined): Promise<void> {
  for (const p of removeStalePartials(t)) warn(`removed ${p}, left by an interrupted create`);
  const { input: kdfInput, warnWeak } = await gatherNewKdfInput(o);
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
      size: x.size, sectorSize: x.sectorSize, kdf, kdfInput, quick: x.quick, signal,
      onProgress: (done, total) => progress('encrypting', done, total, started),
    });
  } finally {
    kdfInput.fill(0);
  }
  try {
    if (x.quick) warn('--quick: the data area is sparse, so anyone who sees the file can tell which parts hold data');
    if (route) await formatThroughMount(t, made, x.fs as FsType, signal, route);
    else made.key.dispose();
    if (signal.aborted) throw new VaultError('interrupted', 'interrupted; no container was made');
    finishContainer(t, made, x.overwrite);
  } catch (e) {
    made.key.dispose();
    removePartial(t, made);
    throw e;
  } finally {
    closeSync(made.fd);
    dispose();
  }
  await warnWeak(); // estimated while the container was written
  info(`created ${abs} (${x.fs === 'none' ? 'no filesystem' : x.fs}, ${x.sectorSize}-byte sectors, Argon2id ${kdf.memoryKiB / 1024} MiB × ${kdf.iterations} × ${kdf.parallelism})`);
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
