/**
 * vault's command line (started by main.ts). Commands are thin: parse options, call the core, and
 * let this file map every error to one line, an optional hint, and a documented exit code
 * (exit-codes.ts).
 */
import { CommanderError } from 'commander';
import { isVaultError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { hardenProcess } from '../crypto/process-hardening.js';
import { buildProgram } from './program.js';
import { cliDone } from '../diagnostics.js';
import { commandWords } from './argv-words.js';

const debug = process.argv.includes('--debug');

function fail(message: string, hint: string | undefined, code: number): never {
  process.stderr.write(`vault: ${message}\n`);
  if (hint) process.stderr.write(`hint: ${hint}\n`);
  process.exit(code);
}

/** create, passwd and keyslot add estimate a new passphrase's strength (strength.ts): start early. */
function takesNewPassphrase(argv: string[]): boolean {
  const words = commandWords(argv);
  return words !== null && (words[0] === 'create' || words[0] === 'passwd' || (words[0] === 'keyslot' && words[1] === 'add'));
}

export async function runCli(): Promise<void> {
  // The CLI holds passphrases and master keys for a moment: no core dumps, no ptrace by non-root.
  hardenProcess();
  // Best effort: if the early start fails, the estimate starts later the usual way (and reports).
  if (takesNewPassphrase(process.argv)) void import('./strength.js').then((m) => m.prestartStrength()).catch(() => undefined);
  try {
    await (await buildProgram()).parseAsync(process.argv);
    // Every secret is wiped by now: observers (the leak tests' memory scan) may look.
    if (cliDone.hasSubscribers) cliDone.publish({});
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; every other commander error is a usage error
      process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage);
    }
    if (debug) process.stderr.write(`${(e as Error).stack}\n`);
    if (isVaultError(e)) fail(e.message, e.hint, exitCodeFor(e.code));
    fail(`unexpected error: ${(e as Error).message}`, 'rerun with --debug for details, and report it', EXIT.failure);
  }
}
