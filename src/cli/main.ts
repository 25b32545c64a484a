#!/usr/bin/env node
/**
 * vault's command line. Commands are thin: parse options, call the core, and let this file map
 * every error to one line, an optional hint, and a documented exit code (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { isVaultError } from '../errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { hardenProcess } from '../crypto/process-hardening.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when needed: a command line that names one command loads
 * just that one. Node spends most of a short command's time loading modules, and `vault list`
 * (run by scripts, status bars and the watcher) must stay fast; only help loads them all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  create: async () => (await import('./commands/create.js')).registerCreate,
  mount: async () => (await import('./commands/mount.js')).registerMount,
  dismount: async () => (await import('./commands/dismount.js')).registerDismount,
  list: async () => (await import('./commands/list.js')).registerList,
  passwd: async () => (await import('./commands/passwd.js')).registerPasswd,
  keyslot: async () => (await import('./commands/keyslot.js')).registerKeyslot,
  keyfile: async () => (await import('./commands/keyfile.js')).registerKeyfile,
  header: async () => (await import('./commands/header.js')).registerHeader,
  info: async () => (await import('./commands/info.js')).registerInfo,
  benchmark: async () => (await import('./commands/benchmark.js')).registerBenchmark,
  watch: async () => (await import('./commands/watch.js')).registerWatch,
  uring: async () => (await import('./commands/uring.js')).registerUring,
  'setup-rootless': async () => (await import('./commands/setup-rootless.js')).registerSetupRootless,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctor,
};
const ALIASES: Record<string, string> = { unmount: 'dismount' };

/** The command a command line names (the first argument that is not an option), if it is one of ours. */
function namedCommand(argv: string[]): string | null {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (first === undefined) return null;
  const name = ALIASES[first] ?? first;
  return name in COMMANDS ? name : null;
}


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

/** The program with the commands `argv` needs: the one it names, or all of them (help, typos). */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command();
  program
    .name('vault')
    .description('on-the-fly encrypted volumes: XTS-AES-256 containers mounted through FUSE and a loop device')
    .version('0.1.0')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`vault: ${str.replace(/^error: /, '')}`) });
  const named = namedCommand(argv);
  for (const load of named ? [COMMANDS[named]!] : Object.values(COMMANDS)) (await load())(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  return program;
}

async function main(): Promise<void> {
  // The CLI holds passphrases and master keys for a moment: no core dumps, no ptrace by non-root.
  hardenProcess();
  try {
    await (await buildProgram()).parseAsync(process.argv);
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
