import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { DEFAULT_SECTOR_SIZE, type SectorSize } from '../../format/constants.js';
import { finishContainer, removeStalePartials, writeNewContainer } from '../../volume/create.js';
import { closeContainer } from '../../volume/container.js';
import { mountUnlocked, openLocked } from '../../mount/lifecycle.js';
import { dismountVolume } from '../../mount/dismount.js';
import { requireMountPrivileges } from '../../mount/privileges.js';
import { makeFilesystem, type FsType } from '../../mount/filesystem.js';
import { records } from '../../mount/state.js';
import { vaultVolume } from '../../formats/vault.js';
import { gatherKdfInput } from '../secrets.js';
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
    .option('--quick', 'do not fill the data area (sparse file; reveals which sectors were written)')
    .option('--password-stdin', 'read the passphrase from standard input')
    .option('--keyfile <file>', 'use a keyfile (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--force', 'overwrite an existing file');
  addKdfOptions(cmd).action(async (target: string, o: CreateOptions) => {
      const size = parseSize(o.size);
      if (!FILESYSTEMS.includes(o.fs)) throw new VaultError('usage', `unknown filesystem "${o.fs}" (use ${FILESYSTEMS.join(', ')})`);
      const sectorSize = Number(o.sectorSize) as SectorSize;
      if (sectorSize !== 512 && sectorSize !== 4096) throw new VaultError('usage', '--sector-size must be 512 or 4096');
      const abs = path.resolve(target);
      if (o.fs !== 'none') requireMountPrivileges('vault create');
      if (existsSync(abs)) {
        if (!o.force) throw new VaultError('exists', `${abs} already exists`, 'use --force to overwrite it');
        if (records().some((r) => r.container === abs)) throw new VaultError('busy', `${abs} is mounted; dismount it first`);
      }
      for (const p of removeStalePartials(abs)) warn(`removed ${p}, left by an interrupted create`);
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
        made = await writeNewContainer(abs, {
          size, sectorSize, kdf, kdfInput, quick: !!o.quick, signal,
          onProgress: (done, total) => progress('encrypting', done, total, started),
        });
      } finally {
        kdfInput.fill(0);
      }
      try {
        if (o.quick) warn('--quick: the data area is sparse, so anyone who sees the file can tell which parts hold data');
        if (o.fs !== 'none') await formatThroughMount(made.tmpPath, made, o.fs as FsType, signal);
        else made.key.dispose();
        if (signal.aborted) throw new VaultError('interrupted', 'interrupted; no container was made');
        finishContainer(made.tmpPath, abs);
      } catch (e) {
        made.key.dispose();
        rmSync(made.tmpPath, { force: true });
        throw e;
      } finally {
        dispose();
      }
      info(`created ${abs} (${o.fs === 'none' ? 'no filesystem' : o.fs}, ${sectorSize}-byte sectors, Argon2id ${kdf.memoryKiB / 1024} MiB × ${kdf.iterations} × ${kdf.parallelism})`);
    });
}

/** Formats the new container through the normal mount path: mkfs writes only through the encryption. */
async function formatThroughMount(tmpPath: string, made: Awaited<ReturnType<typeof writeNewContainer>>, fs: FsType, signal: AbortSignal) {
  const c = openLocked(tmpPath, false);
  let record;
  try {
    record = await mountUnlocked(c, vaultVolume(made.header, made.key, []), { readOnly: false, noFilesystem: true, warn, signal, transient: true });
  } finally {
    closeContainer(c);
  }
  try {
    const owner = invokingUser();
    makeFilesystem(record.loopDevice!, fs, { fresh: true, ...(owner ? { ownerUid: owner.uid, ownerGid: owner.gid } : {}) });
  } finally {
    await dismountVolume(record, true);
  }
}
