/**
 * `vault completion bash|zsh|fish`: prints a completion script generated from this very program, so
 * it always matches the installed vault. `--mounted` prints the caller's mounted volumes (mount point
 * and container, one per line) for the scripts to offer after `dismount`: read-only, no root needed,
 * and silent on any error, since it runs at every Tab.
 */
import { Argument, type Command } from 'commander';
import { bashCompletion } from '../completion/bash.js';
import { fishCompletion } from '../completion/fish.js';
import { zshCompletion } from '../completion/zsh.js';
import { commandTree } from '../completion/tree.js';
import { VaultError } from '../../errors.js';

const SHELLS = { bash: bashCompletion, zsh: zshCompletion, fish: fishCompletion };

async function printMounted(): Promise<void> {
  try {
    const { inScope, records } = await import('../../mount/state.js');
    const { actingScope } = await import('../owner.js');
    const scope = actingScope();
    const out = records()
      .filter((r) => inScope(r, scope))
      .flatMap((r) => [r.mountpoint ?? r.loopDevice, r.container].filter((x): x is string => !!x));
    process.stdout.write(out.map((l) => `${l}\n`).join(''));
  } catch {
    // Completion must never print an error into the user's command line.
  }
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish), generated from vault\'s own commands')
    .addArgument(new Argument('[shell]', 'the shell').choices(Object.keys(SHELLS)))
    .option('--mounted', 'print the mounted volumes, one mount point or container per line (what the scripts call)')
    .action(async (shell: keyof typeof SHELLS | undefined, o: { mounted?: boolean }) => {
      if (o.mounted) return printMounted();
      if (!shell) throw new VaultError('usage', 'name a shell: vault completion bash|zsh|fish', 'e.g. vault completion bash > ~/.local/share/bash-completion/completions/vault');
      // The script covers every command, so the whole program is built, not just this command.
      const { buildProgram } = await import('../program.js');
      process.stdout.write(SHELLS[shell](commandTree(await buildProgram(['node', 'vault']))));
    });
}
