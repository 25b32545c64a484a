import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { requireWatchTools, startWatcher, type BusChoice } from '../../watch/watcher.js';
import { runDir } from '../../system/private-dir.js';
import { actingScope } from '../owner.js';

const BUSES: readonly BusChoice[] = ['system', 'session', 'all'];

/** One line per event, with the time: run by hand it reads like a log, under systemd it is one. */
function log(m: string): void {
  process.stdout.write(`${new Date().toISOString()} ${m}\n`);
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('dismount volumes when the session locks or the machine goes to sleep (runs until stopped)')
    .option('--bus <bus>', 'which D-Bus to listen on: system (logind), session (screen savers) or all', 'all')
    .action(async (o: { bus: string }) => {
      if (!(BUSES as readonly string[]).includes(o.bus))
        throw new VaultError('usage', `--bus: unknown bus "${o.bus}"`, `choose from ${BUSES.join(', ')}`);
      requireWatchTools(o.bus as BusChoice);
      // An ordinary user's volumes are found in $XDG_RUNTIME_DIR/vault (issue 15): without it the
      // watcher could never dismount anything, so that is an error now, not at the first lock.
      const state = runDir();
      // Started from inside a volume, the watcher's own cwd would keep that volume busy.
      process.chdir('/');
      const scope = actingScope();
      const watcher = startWatcher(o.bus as BusChoice, log, scope);
      log(`vault watch: started (pid ${process.pid}) for ${scope === 'all' ? "every user's volumes" : `the volumes of uid ${scope}`} (${state})`);
      const why = await new Promise<string>((resolve) => {
        for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => resolve(sig));
      });
      log(`vault watch: stopping (${why})`);
      await watcher.stop();
    });
}
