import type { Command } from 'commander';
import { requireRoot } from '../../mount/privileges.js';
import { setupRootless, undoRootless } from '../../system/rootless-setup.js';
import { info } from '../output.js';

/**
 * `vault setup-rootless [--user NAME] [--undo]`: what root does once so that ordinary users mount
 * vault volumes through udisks2 and fusermount3 (issue 15): the packages, group vault, a polkit
 * rule for its members, user_allow_other in /etc/fuse.conf, and a user added to the group. Each
 * change is said (what and why) before it is made; a second run changes nothing; --undo reverses
 * what vault changed (src/system/rootless-setup.ts has the steps).
 */
export function registerSetupRootless(program: Command): void {
  program
    .command('setup-rootless')
    .description('let members of group vault mount volumes without root: udisks2, polkit rule, fuse.conf (root, once)')
    .option('--user <name>', 'also add this user to group vault (with --undo: remove them, and nothing else)')
    .option('--undo', 'reverse what setup-rootless changed (packages stay installed)')
    .action((o: { user?: string; undo?: boolean }) => {
      requireRoot('vault setup-rootless');
      const opts = o.user !== undefined ? { user: o.user } : {};
      if (o.undo) {
        const n = undoRootless(opts, info);
        info(n === 0 ? 'nothing to undo' : 'undone');
      } else {
        const n = setupRootless(opts, info);
        info(n === 0 ? 'nothing changed: everything was already set up' : `done: ${n} change${n === 1 ? '' : 's'}`);
      }
    });
}
