#!/usr/bin/env node
/**
 * vault's command line. Commands are thin: parse options, call the core, and let this file map
 * every error to one line, an optional hint, and a documented exit code (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { isVaultError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { hardenProcess } from '../crypto/process-hardening.js';
import { registerCreate } from './commands/create.js';
import { registerDismount } from './commands/dismount.js';
import { registerList } from './commands/list.js';
import { registerMount } from './commands/mount.js';
import { registerPasswd } from './commands/passwd.js';
import { registerKeyslot } from './commands/keyslot.js';
import { registerKeyfile } from './commands/keyfile.js';
import { registerHeader } from './commands/header.js';
import { registerInfo } from './commands/info.js';
import { registerBenchmark } from './commands/benchmark.js';

const debug = process.argv.includes('--debug');

/**
 * Test hook for the leak tests (issue 6): stop just before a successful exit, after every secret
 * buffer was wiped, so the test can scan this process's memory for the passphrase. It stops the
 * process and nothing else; it reveals nothing.
 */
function pauseForMemoryScan(): void {
  if (process.env.VAULT_TEST_PAUSE_BEFORE_EXIT === '1') process.kill(process.pid, 'SIGSTOP');
}

function fail(message: string, hint: string | undefined, code: number): never {
  process.stderr.write(`vault: ${message}\n`);
  if (hint) process.stderr.write(`hint: ${hint}\n`);
  process.exit(code);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vault')
    .description('on-the-fly encrypted volumes: XTS-AES-256 containers mounted through FUSE and a loop device')
    .version('0.1.0')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`vault: ${str.replace(/^error: /, '')}`) });
  registerCreate(program);
  registerMount(program);
  registerDismount(program);
  registerList(program);
  registerPasswd(program);
  registerKeyslot(program);
  registerKeyfile(program);
  registerHeader(program);
  registerInfo(program);
  registerBenchmark(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  return program;
}

async function main(): Promise<void> {
  // The CLI holds passphrases and master keys for a moment: no core dumps, no ptrace by non-root.
  hardenProcess();
  try {
    await buildProgram().parseAsync(process.argv);
    pauseForMemoryScan();
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

await main();
