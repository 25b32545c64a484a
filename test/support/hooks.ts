/**
 * Test hooks, kept out of vault's shipped code: a module the tests preload into the CLI with
 * `node --import <dist/test/support/hooks.js>` (see HOOKS_ARGV in test/support/cli-hooks.ts). It
 * subscribes to vault's diagnostics channels (src/diagnostics.ts) and acts as the environment asks:
 *
 *   VAULT_TEST_PAUSE_BEFORE_EXIT=1  SIGSTOP itself once a command succeeded, every secret wiped,
 *                                   so the leak tests can scan its memory for the passphrase
 *   VAULT_TEST_CRASH_AT=k           SIGKILL itself (no cleanup, like a crash) just before
 *                                   header-write step k (1-4), for the crash tests
 *
 * Both variables are read here only, by the tests' own code; vault never reads them.
 */
import { subscribe } from 'node:diagnostics_channel';
import { CHANNEL, type HeaderWriteStep } from '../../src/diagnostics.js';

if (process.env.VAULT_TEST_PAUSE_BEFORE_EXIT === '1') subscribe(CHANNEL.cliDone, () => process.kill(process.pid, 'SIGSTOP'));

const crashAt = process.env.VAULT_TEST_CRASH_AT;
if (crashAt)
  subscribe(CHANNEL.headerWrite, (m) => {
    if (String((m as HeaderWriteStep).step) === crashAt) process.kill(process.pid, 'SIGKILL');
  });
