import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { requireWatchTools, startWatcher, type BusChoice } from '../../watch/watcher.js';
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
      // Started from inside a volume, the watcher's own cwd would keep that volume busy.
      process.chdir('/');
      const watcher = startWatcher(o.bus as BusChoice, log, actingScope());
      log(`vault watch: started (pid ${process.pid})`);
      const why = await new Promise<string>((resolve) => {
        for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => resolve(sig));
      });
      log(`vault watch: stopping (${why})`);
      await watcher.stop();
    });
}
