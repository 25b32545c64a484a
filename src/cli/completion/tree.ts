/**
 * The shape of vault's command line as the completion scripts need it, read from the commander
 * program itself (never written by hand, so it cannot drift): each command path, its aliases,
 * subcommands, options (whether they take an argument, their choices) and positional choices.
 */
import type { Command } from 'commander';

export interface OptionSpec {
  /** Every spelling: `--size`, and `-V` where there is a short one. */
  names: string[];
  long: string | undefined;
  description: string;
  takesArg: boolean;
  choices: string[];
}

export interface CommandSpec {
  /** The words that name it after `vault`: [] for vault itself, ['keyslot', 'add']. */
  path: string[];
  name: string;
  aliases: string[];
  description: string;
  options: OptionSpec[];
  subcommands: CommandSpec[];
  /** Choices of each positional argument, where commander knows them. */
  argChoices: string[][];
}

function optionSpec(o: Command['options'][number]): OptionSpec {
  return {
    names: [o.long, o.short].filter((n): n is string => !!n),
    long: o.long,
    description: o.description,
    takesArg: o.required || o.optional,
    choices: o.argChoices ?? [],
  };
}

/** The program's tree, without commander's implicit `help` command (its --help option stays). */
export function commandTree(cmd: Command, path: string[] = []): CommandSpec {
  const help = cmd.createHelp();
  return {
    path,
    name: cmd.name(),
    aliases: cmd.aliases(),
    description: cmd.description(),
    options: help.visibleOptions(cmd).map(optionSpec),
    subcommands: cmd.commands.filter((c) => c.name() !== 'help').map((c) => commandTree(c, [...path, c.name()])),
    argChoices: cmd.registeredArguments.map((a) => a.argChoices ?? []),
  };
}

/** Every command in the tree, depth first, the root included. */
export function allCommands(c: CommandSpec): CommandSpec[] {
  return [c, ...c.subcommands.flatMap(allCommands)];
}

/** Commands whose positional argument is a mounted volume: completed from `vault completion --mounted`. */
export const MOUNTED_TARGET = new Set(['dismount']);
