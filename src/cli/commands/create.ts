import { closeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { DEFAULT_SECTOR_SIZE, type SectorSize } from '../../format/constants.js';
import { finishContainer, openTarget, removePartial, removeStalePartials, writeNewContainer, type Target } from '../../volume/create.js';
import { statAt } from '../../system/fs-at.js';
import { chooseRoute, type RouteChoice } from '../../mount/route.js';
import type { FsType } from '../../mount/filesystem.js';
import { records } from '../../mount/state.js';
import { vaultVolume } from '../../formats/vault.js';
import { gatherNewKdfInput } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { addYesOption, confirmOrStop, type YesOption } from '../confirm.js';
import { completeCreateChoices, FILESYSTEMS, requireAnswerable } from '../create-wizard.js';
import { addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../kdf-options.js';
import { info, progress, warn } from '../output.js';
import { abortOnSignals } from '../signals.js';
import { parseSize } from '../sizes.js';
import { checkVeraCryptOptions, createVeraCryptIn } from './create-veracrypt.js';
import { addVeraCryptOptions, veraCryptChoice, type VeraCryptCliOptions } from './create-veracrypt-options.js';
import { formatThroughMount } from '../format-new.js';

interface CreateOptions extends KdfCliOptions, YesOption, VeraCryptCliOptions {
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
  addVeraCryptOptions(cmd);
  addKdfOptions(addYesOption(cmd)).action(async (target: string, o: CreateOptions) => {
      // Whatever was given is checked before anything is asked or opened.
      if (o.size !== undefined) parseSize(o.size);
      if (o.fs !== undefined && !FILESYSTEM_NAMES.includes(o.fs)) throw new VaultError('usage', `unknown filesystem "${o.fs}" (use ${FILESYSTEM_NAMES.join(', ')})`);
      const sectorSize = Number(o.sectorSize) as SectorSize;
      if (sectorSize !== 512 && sectorSize !== 4096) throw new VaultError('usage', '--sector-size must be 512 or 4096');
      requireAnswerable(o);
      const vc = veraCryptChoice(o, FILESYSTEM_NAMES);
      // Before any question: without --fs, a hidden volume's outer filesystem is FAT (below), and
      // any other is fine; checked again once the wizard settled it.
      if (vc) checkVeraCryptOptions(vc, o.fs ?? 'vfat');
      const abs = path.resolve(target);
      const t = openTarget(abs);
      try {
        const overwrite = await mayOverwrite(t, abs, o);
        // A VeraCrypt volume with a hidden one inside holds FAT by default: ext4 cannot (create-veracrypt.ts).
        const c = await completeCreateChoices({ ...o, ...(vc?.hiddenSize !== undefined && o.fs === undefined ? { fs: 'vfat' } : {}) }, t.dir.path, sectorSize);
        if (vc) {
          checkVeraCryptOptions(vc, c.fs);
          return await createVeraCryptIn(t, abs, vc, { size: parseSize(c.size), fs: c.fs, quick: c.quick, overwrite }, () => chooseRoute(undefined, false));
        }
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
    if (route) await formatThroughMount(t, made, vaultVolume(made.header, made.key, []), x.fs as FsType, signal, route);
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
