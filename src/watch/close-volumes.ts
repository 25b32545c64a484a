/**
 * What a trigger does: `vault dismount --force` for every mounted volume in `scope` whose policy
 * names it, with a log line per volume saying what was done (processes ended, lazy detach, key
 * wiped). The scope is the user whose session locked (issue 13): one user's lock must never close
 * another user's volumes or end their programs. Only a machine-wide event under plain root
 * (sleep) reaches every user's: root's own and those ordinary users mounted themselves (issue 15,
 * their records in /run/user/<uid>/vault, which root dismounts after the kernel confirms what is
 * theirs; see dismountUserVolume). A watcher run by an ordinary user sees their own only.
 */
import { isVaultError } from '../errors.js';
import { dismountVolume } from '../mount/dismount.js';
import type { Trigger } from '../mount/policy.js';
import { inScope, records, userRecords, type Scope } from '../mount/state.js';

export async function closeVolumesFor(trigger: Trigger, log: (m: string) => void, scope: Scope): Promise<void> {
  const due = [...records(), ...userRecords()].filter((r) => inScope(r, scope) && (r.policy?.dismountOn ?? []).includes(trigger));
  if (due.length === 0) {
    log(`${trigger}: no mounted volume${scope === 'all' ? '' : ` of uid ${scope}`} is set to dismount on ${trigger}`);
    return;
  }
  for (const r of due) {
    try {
      const rep = await dismountVolume(r, true);
      log(`${trigger}: dismounted ${r.container}${rep.actions.length ? ` (${rep.actions.join('; ')})` : ''}`);
    } catch (e) {
      // One volume failing must not keep the others open.
      log(`${trigger}: FAILED to dismount ${r.container}: ${isVaultError(e) ? e.message : (e as Error).stack}`);
    }
  }
}
