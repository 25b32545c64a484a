import type { Command } from 'commander';
import { closeSync } from 'node:fs';
import { VaultError } from '../../errors.js';
import { HEADER_SIZE } from '../../format/constants.js';
import type { Header } from '../../format/types.js';
import { candidateHeaders, formatUuid, readHeaderCopies } from '../../volume/container.js';
import { type ContainerFile } from '../../volume/container-file.js';
import { lockHeaderUpdates } from '../../volume/header-lock.js';
import { authenticateBackup, parseHeaderBackup, repairHeaders, repairOwed, requireBackupFits, restoreHeaders, writeHeaderBackup, type BackupContents } from '../../volume/keyslots.js';
import { openRegularFile, readHead } from '../../system/safe-open.js';
import { addYesOption, confirmationPossible, confirmOrStop, type YesOption } from '../confirm.js';
import { info, warn } from '../output.js';
import { parseHeaderCopyOption } from '../format-options.js';
import { copyName } from '../../volume/header-agreement.js';
import { gatherKdfInput, type SecretOptions } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { unlockOpened, withVaultContainer } from '../unlock.js';

const activeSlots = (h: Header) => h.keyslots.flatMap((s, i) => (s.state === 'active' ? [i] : []));

type RestoreOptions = SecretOptions & YesOption & { force?: boolean };
/** restore's --force has always meant "do not ask": it answers the confirmation like --yes. */
const yesOrForce = (o: RestoreOptions): YesOption => ({ yes: !!(o.yes || o.force) });

/** A backup file, read through O_NOFOLLOW|O_NONBLOCK as a regular file and never more than a backup's size (a FIFO or a huge file cannot stall root). */
function readBackupFile(file: string): BackupContents {
  const { fd } = openRegularFile(file, 'header backup');
  try {
    return parseHeaderBackup(readHead(fd, 2 * HEADER_SIZE + 1)); // one byte more, so a longer file is refused
  } finally {
    closeSync(fd);
  }
}

export function registerHeader(program: Command): void {
  const header = program.command('header').description('back up, restore and repair container headers');

  header
    .command('backup <container> <file>')
    .description('write both header copies (with all keyslots) to a new file, mode 0600')
    .action((container: string, file: string) =>
      withVaultContainer(container, 'vault header backup', true, (c) => {
        const { uuid } = writeHeaderBackup(c, file);
        info(`backed up the headers of ${formatUuid(uuid)} to ${file}`);
        warn('the backup opens with the passphrases it holds now, even after you change or remove them: keep it as safe as the passphrases');
      }),
    );

  const restore = header
    .command('restore <container> <file>')
    .description('overwrite the container headers with a backup of the same container (needs a passphrase the backup holds)')
    .option('--force', 'restore without asking (the same as --yes here)');
  addYesOption(withSecretOptions(restore)).action((container: string, file: string, o: RestoreOptions) =>
      withVaultContainer(container, 'vault header restore', false, async (c) => {
        confirmationPossible(yesOrForce(o), 'restoring the headers'); // before the passphrase is read
        const backup = readBackupFile(file);
        const release = lockHeaderUpdates(c);
        try {
          await restoreFrom(c, backup, file, o);
        } finally {
          release();
        }
      }),
    );

  const repair = header
    .command('repair <container>')
    .description('rewrite a damaged or stale header copy from the good one (needs a passphrase)')
    .option('--header-copy <copy>', 'rewrite both copies from this one, primary or secondary, whatever the other says (when the two disagree; asks first)');
  addYesOption(withSecretOptions(repair)).action((container: string, o: RepairOptions) =>
      withVaultContainer(container, 'vault header repair', false, async (c) => {
        const chosen = parseHeaderCopyOption(o.headerCopy);
        if (chosen !== undefined) {
          confirmationPossible(o, 'replacing a header copy'); // before the passphrase is read
          c.headerCopy = chosen;
        }
        const x = await unlockOpened(c, gatherKdfInput(o));
        try {
          if (x.u.warnings.length === 0 && !repairOwed(x.c, x.u)) {
            info('both header copies are valid; nothing to repair');
            return;
          }
          if (chosen !== undefined) await confirmReplace(x.c, x.u.header, o);
          const { finished } = await repairHeaders(x.c, x.u);
          info(`both header copies rewritten from the ${chosen === undefined ? 'authenticated' : copyName(x.u.header)} copy`);
          for (const f of finished) info(f);
        } finally {
          x.close();
        }
      }),
    );
}

type RepairOptions = SecretOptions & YesOption & { headerCopy?: string };

/** What `repair --header-copy` will make of the container, and the user's yes (spec §6 "Choosing a copy"). */
async function confirmReplace(c: ContainerFile, h: Header, o: RepairOptions): Promise<void> {
  const name = copyName(h);
  const other = name === 'primary' ? 'secondary' : 'primary';
  info(`the ${other} header copy of ${c.path} will be replaced by the ${name} copy:`);
  info(`  ${name}: sequence ${h.sequence}, ${h.sectorSize}-byte sectors, data size ${h.dataSize} bytes, active keyslots ${activeSlots(h).join(', ') || 'none'}`);
  await confirmOrStop(o, 'replacing a header copy', `Make both header copies the ${name} one? The ${other} copy's differences are lost.`, 'not repaired');
}

/**
 * The checks before a restore writes a byte (spec §10): the UUID (a quick, public answer to "wrong
 * backup"), the geometry against the file, then a passphrase that opens the backup, which proves it
 * was made with this container's key and has its authenticated geometry.
 */
async function restoreFrom(c: ContainerFile, backup: BackupContents, file: string, o: RestoreOptions): Promise<void> {
  let current: Header | null = null;
  try {
    current = candidateHeaders(c, readHeaderCopies(c)).candidates[0]!;
  } catch (e) {
    // Both headers unreadable (even "no signature" when both were overwritten): exactly the case
    // restore exists for. The backup's own checks still apply.
    if (!(e instanceof VaultError)) throw e;
  }
  if (current && !current.uuid.equals(backup.uuid))
    throw new VaultError('usage', `the backup belongs to container ${formatUuid(backup.uuid)}, not to ${formatUuid(current.uuid)}`);
  requireBackupFits(c, backup);
  const input = gatherKdfInput(o, 'Passphrase (of the backup): ');
  let proof;
  try {
    proof = await authenticateBackup(c, backup, input);
  } finally {
    input.fill(0);
  }
  if (current && !proof.currentAuthenticated) warn('the current headers do not authenticate with this passphrase; the backup replaces them');
  const b = backup.copies[0]!;
  info(`restoring headers of ${formatUuid(backup.uuid)} from ${file}:`);
  info(current ? `  now:    sequence ${current.sequence}, active keyslots ${activeSlots(current).join(', ') || 'none'}` : '  now:    no readable header');
  info(`  backup: sequence ${b.sequence}, active keyslots ${activeSlots(b).join(', ') || 'none'}`);
  await confirmOrStop(yesOrForce(o), 'restoring the headers', 'Overwrite both headers with the backup?', 'not restored');
  restoreHeaders(c, backup);
  info('headers restored');
}
