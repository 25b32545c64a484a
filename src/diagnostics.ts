/**
 * The points in vault's work that outside observers can watch, published on node:diagnostics_channel.
 * Publishing costs nothing without a subscriber, and nothing here carries a secret: only which
 * step was reached. The test suite subscribes from a preload module (test/support/hooks.ts, loaded
 * with `node --import`) to stop the CLI before it exits (memory scans for leaked passphrases) or to
 * kill it between header writes (crash tests); shipped code has no test hook of its own.
 */
import { channel } from 'node:diagnostics_channel';

/** Channel names: part of the observability contract (CLI_ABI.md, "Diagnostics channels"). */
export const CHANNEL = {
  /** `{}` — the CLI finished a command successfully, every secret wiped, just before it exits 0. */
  cliDone: 'vault:cli:done',
  /** `{ step }` — a header update is about to do step 1 (write the first copy), 2 (sync it),
   *  3 (write the second copy) or 4 (sync it). */
  headerWrite: 'vault:header:write',
} as const;

export const cliDone = channel(CHANNEL.cliDone);
export const headerWrite = channel(CHANNEL.headerWrite);

export interface HeaderWriteStep {
  step: 1 | 2 | 3 | 4;
}
