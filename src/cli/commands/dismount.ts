import type { Command } from 'commander';
import { VaultError, isVaultError } from '../../errors.js';
import { dismountVolume, findVolume, listVolumes } from '../../mount/dismount.js';
import { inScope, records, userRecords } from '../../mount/state.js';
import { actingScope } from '../owner.js';
import { info, setQuiet, warn } from '../output.js';

interface DismountOptions {
  all?: boolean;
  force?: boolean;
  quiet?: boolean;
}

export function registerDismount(program: Command): void {
  program
    .command('dismount [target]')
    .alias('unmount')
    .description('unmount a volume (by mount point, container, or loop device), detach it and wipe its key')
    .option('--all', 'dismount every mounted volume (under sudo: every volume of the invoking user)')
    .option('--force', 'end processes that keep the filesystem busy; if it still cannot be unmounted, detach it lazily')
    .option('--quiet', 'print nothing on success')
    .action(async (target: string | undefined, o: DismountOptions) => {
      if (o.quiet) setQuiet(true);
      if (!target && !o.all) throw new VaultError('usage', 'name a volume to dismount, or use --all', 'see `vault list`');
      if (target && o.all) throw new VaultError('usage', 'give either a volume or --all, not both');
      // Under sudo, only the invoking user's volumes (issue 13); plain root, all.
      const scope = actingScope();
      if (o.all) {
        // Dead volumes are cleaned up by the listing itself.
        await listVolumes(
          (rep) => info(`cleaned up ${rep.record.container}: ${rep.actions.join('; ')}`),
          (actions) => info(actions.join('; ')),
          scope,
        );
        const failures: string[] = [];
        for (const r of [...records(), ...userRecords()].filter((x) => inScope(x, scope))) {
          try {
            const rep = await dismountVolume(r, !!o.force);
            info(`dismounted ${r.container}${rep.actions.length ? ` (${rep.actions.join('; ')})` : ''}`);
          } catch (e) {
            if (!isVaultError(e)) throw e;
            failures.push(e.message);
            warn(e.message);
          }
        }
        if (failures.length) throw new VaultError('busy', `${failures.length} volume(s) could not be dismounted`, 'use --force to end the processes using them');
        return;
      }
      const r = findVolume(target!, scope);
      const rep = await dismountVolume(r, !!o.force);
      info(`dismounted ${r.container}${rep.actions.length ? ` (${rep.actions.join('; ')})` : ''}`);
    });
}
