/**
 * Everything the benchmark makes (work directory, images, loop devices, mounts, volume servers,
 * gocryptfs daemons) is registered here the moment it exists, and undone in reverse order at the
 * end: after a normal run, after a failed step, and after Ctrl-C. A setup's normal teardown runs
 * its own entry through the same handle, so the success path and the failure path share code.
 */
import { progress } from './log.js';
import { interrupt } from './proc.js';

export interface CleanupHandle {
  /** Runs this entry now (if it has not run yet) and forgets it; throws what the action threw. */
  run(): Promise<void>;
}

interface Entry {
  label: string;
  action: () => Promise<void>;
  done: boolean;
}

export class CleanupStack {
  readonly #entries: Entry[] = [];

  push(label: string, action: () => Promise<void>): CleanupHandle {
    const entry: Entry = { label, action, done: false };
    this.#entries.push(entry);
    return {
      run: async () => {
        if (entry.done) return;
        entry.done = true;
        await action();
      },
    };
  }

  /** Runs every pending entry, newest first. A failing entry does not stop the others. */
  async runAll(): Promise<string[]> {
    const failures: string[] = [];
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i]!;
      if (e.done) continue;
      e.done = true;
      try {
        await e.action();
      } catch (err) {
        failures.push(`${e.label}: ${(err as Error).message}`);
        progress(`cleanup: ${e.label} failed: ${(err as Error).message}`);
      }
    }
    return failures;
  }
}

/**
 * SIGINT/SIGTERM/SIGHUP: stop the step in progress; the main flow then unwinds into its `finally`
 * and cleans up. Further signals only say that cleanup is under way: exiting then is what would
 * leave mounts and loop devices behind.
 */
export function installSignalHandlers(): () => boolean {
  let received: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (received === null) {
      received = sig;
      progress(`${sig} received: stopping the current step, then cleaning up (this takes a few seconds)`);
      interrupt('SIGINT');
    } else {
      progress(`${sig} received again: still cleaning up, please wait`);
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  return () => received !== null;
}
