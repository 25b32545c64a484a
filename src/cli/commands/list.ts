import type { Command } from 'commander';
import { listVolumes } from '../../mount/dismount.js';
import { info, warn } from '../output.js';
import { formatLabel, type FormatName } from '../../formats/types.js';
import { NO_POLICY, describePolicy } from '../../mount/policy.js';
import { actingScope } from '../owner.js';
import { hiddenProtectionOf, listedVolume } from '../list-json.js';
import { describeIoErrors, inScope, ioErrorsOf, records } from '../../mount/state.js';

export function registerList(program: Command): void {
  program
    .command('list')
    .description('show mounted volumes (under sudo: those of the invoking user)')
    .option('--json', 'print JSON for scripts')
    .action(async (o: { json?: boolean }) => {
      const cleaned: string[] = [];
      const debris: string[] = [];
      // Under sudo only the invoking user's volumes are shown (issue 13); the others are counted.
      const scope = actingScope();
      const volumes = await listVolumes(
        (rep) => cleaned.push(`${rep.record.container}: ${rep.actions.join('; ')}`),
        (actions) => debris.push(actions.join('; ')),
        scope,
      );
      const others = records().filter((r) => !inScope(r, scope)).length;
      if (o.json) {
        process.stdout.write(JSON.stringify(volumes.map(listedVolume), null, 2) + '\n');
      } else if (volumes.length === 0) {
        info('no volumes mounted');
      } else {
        for (const v of volumes) {
          const r = v.record;
          const where = r.mountpoint ?? r.loopDevice ?? r.blockFile;
          const policy = describePolicy(r.policy ?? NO_POLICY);
          const state = v.state === 'mounted' ? '' : r.userDir ? '  [volume server died: its user clears it]' : '  [volume server died: cleaned up]';
          const whose = r.userDir ? `  uid ${r.ownerUid}` : '';
          const protection = hiddenProtectionOf(r);
          const mode = r.readOnly || protection === 'tripped' ? 'ro' : 'rw';
          const guard = protection === 'on' ? ',hidden-protected' : protection === 'tripped' ? ',hidden-protected (a write into the hidden volume was refused: read-only since)' : '';
          info(`${r.container}  ${formatOf(r.format)}  ${where}  ${r.fsType ?? 'no filesystem'}  ${r.loopDevice ?? ''}  ${mode}${r.allowDiscards ? ',discard' : ''}${guard}  via ${r.route ?? 'root'}${whose}  pid ${r.serverPid}  auto-dismount: ${policy}${state}`);
          const errors = describeIoErrors(ioErrorsOf(r));
          if (errors) info(`  ${errors}: the disk under the container failed or is full (README, "Troubleshooting")`);
        }
      }
      if (others > 0 && !o.json) info(`(${others} volume(s) of other users not shown)`);
      for (const c of cleaned) warn(`volume server had died; cleaned up ${c}`);
      for (const d of debris) warn(d);
    });
}

/** Records written before formats existed say `vault-v1`. */
function formatOf(f: string): string {
  return f === 'vault-v1' ? 'vault' : formatLabel(f as FormatName) ?? f;
}
