/**
 * vault's commander program: the root command, its global options, and each command registered from
 * its own module in src/cli/commands/. Kept apart from main.ts (the entry point, which runs at
 * import) so that tests, the man page check and the completion generator can build it in-process.
 */
import { Command } from 'commander';
import { packageVersion } from '../system/package-root.js';

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
  completion: async () => (await import('./commands/completion.js')).registerCompletion,
  reencrypt: async () => (await import('./commands/reencrypt.js')).registerReencrypt,
  resize: async () => (await import('./commands/resize.js')).registerResize,
  enroll: async () => (await import('./commands/enroll.js')).registerEnroll,
};
const ALIASES: Record<string, string> = { unmount: 'dismount' };

/** The command a command line names (the first argument that is not an option), if it is one of ours. */
function namedCommand(argv: string[]): string | null {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (first === undefined) return null;
  const name = ALIASES[first] ?? first;
  return name in COMMANDS ? name : null;
}

/** The program with the commands `argv` needs: the one it names, or all of them (help, typos). */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command();
  program
    .name('vault')
    .description('on-the-fly encrypted volumes: XTS-AES-256 containers mounted through FUSE and a loop device')
    .version(packageVersion())
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`vault: ${str.replace(/^error: /, '')}`) });
  const named = namedCommand(argv);
  for (const load of named ? [COMMANDS[named]!] : Object.values(COMMANDS)) (await load())(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  return program;
}
