import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { VaultError } from '../../errors.js';
import type { Header } from '../../format/types.js';
import { candidateHeaders, closeContainer, formatUuid, openContainer, readHeaderCopies } from '../../volume/container.js';
import { lockHeaderUpdates } from '../../volume/header-lock.js';
import { parseHeaderBackup, repairHeaders, restoreHeaders, writeHeaderBackup } from '../../volume/keyslots.js';
import { resolveContainer } from '../../mount/lifecycle.js';
import { promptLine } from '../passphrase.js';
import { info, warn } from '../output.js';
import { gatherKdfInput } from '../secrets.js';
import { openUnlocked, refuseForeign } from '../unlock.js';

const activeSlots = (h: Header) => h.keyslots.flatMap((s, i) => (s.state === 'active' ? [i] : []));

export function registerHeader(program: Command): void {
  const header = program.command('header').description('back up, restore and repair container headers');

  header
    .command('backup <container> <file>')
    .description('write both header copies (with all keyslots) to a new file, mode 0600')
    .action((container: string, file: string) => {
      refuseForeign(container, 'vault header backup');
      const c = openContainer(resolveContainer(container), true);
      try {
        const { uuid } = writeHeaderBackup(c, file);
        info(`backed up the headers of ${formatUuid(uuid)} to ${file}`);
        warn('the backup opens with the passphrases it holds now, even after you change or remove them: keep it as safe as the passphrases');
      } finally {
        closeContainer(c);
      }
    });

  header
    .command('restore <container> <file>')
    .description('overwrite the container headers with a backup of the same container')
    .option('--force', 'do not ask for confirmation')
    .action(async (container: string, file: string, o: { force?: boolean }) => {
      refuseForeign(container, 'vault header restore');
      let raw: Buffer;
      try {
        raw = readFileSync(file);
      } catch (e) {
        throw new VaultError('usage', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
      }
      const backup = parseHeaderBackup(raw);
      const c = openContainer(resolveContainer(container), false);
      const release = lockHeaderUpdates(c);
      try {
        let current: Header | null = null;
        try {
          current = candidateHeaders(c, readHeaderCopies(c)).candidates[0]!;
        } catch (e) {
          // Both headers unreadable (even "no signature" when both were overwritten): exactly the
          // case restore exists for. The backup's own checks and the size check below still apply.
          if (!(e instanceof VaultError)) throw e;
        }
        if (current && !current.uuid.equals(backup.uuid))
          throw new VaultError('usage', `the backup belongs to container ${formatUuid(backup.uuid)}, not to ${formatUuid(current.uuid)}`);
        const b = backup.copies[0]!;
        info(`restoring headers of ${formatUuid(backup.uuid)} from ${file}:`);
        info(current ? `  now:    sequence ${current.sequence}, active keyslots ${activeSlots(current).join(', ') || 'none'}` : '  now:    no readable header');
        info(`  backup: sequence ${b.sequence}, active keyslots ${activeSlots(b).join(', ') || 'none'}`);
        if (!o.force) {
          const answer = promptLine('Type YES to overwrite the headers: ');
          if (answer !== 'YES') throw new VaultError('usage', 'not restored');
        }
        restoreHeaders(c, backup);
        info('headers restored');
      } finally {
        release();
        closeContainer(c);
      }
    });

  header
    .command('repair <container>')
    .description('rewrite a damaged or stale header copy from the good one (needs a passphrase)')
    .option('--password-stdin', 'read the passphrase from standard input')
    .option('--keyfile <file>', 'keyfile (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .action(async (container: string, o: { passwordStdin?: boolean; keyfile?: string[] }) => {
      refuseForeign(container, 'vault header repair');
      const x = await openUnlocked(container, gatherKdfInput(o), { readOnly: false });
      try {
        if (x.u.warnings.length === 0) {
          info('both header copies are valid; nothing to repair');
          return;
        }
        repairHeaders(x.c, x.u);
        info('both header copies rewritten from the authenticated copy');
      } finally {
        x.close();
      }
    });
}
