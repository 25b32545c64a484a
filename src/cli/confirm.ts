/**
 * Confirmations before something that cannot be undone (overwriting a file or the headers, removing
 * a keyslot so that one or none is left), and the --yes option that answers them in scripts.
 *
 *   --yes    answer "yes" to every confirmation. Without a terminal (see terminal.ts) vault never
 *            asks: a command that would ask fails at once, with a hint naming --yes.
 *   --force  allow what is refused outright without it (removing the last keyslot; create over an
 *            existing file; restore over headers). It also answers that one confirmation, as it
 *            always did, so scripts written before --yes existed keep working.
 */
import type { Command } from 'commander';
import { VaultError } from '../errors.js';
import { askOnTty, canAsk } from './terminal.js';

export interface YesOption {
  yes?: boolean;
}

export function addYesOption(cmd: Command): Command {
  return cmd.option('-y, --yes', 'answer yes to confirmations (needed to confirm without a terminal)');
}

/**
 * Fails at once, before any passphrase is read, when `action` would need a confirmation that
 * cannot be asked. Returns whether it will be asked (false: --yes answered it).
 */
export function confirmationPossible(o: YesOption, action: string): boolean {
  if (o.yes) return false;
  if (!canAsk()) throw new VaultError('usage', `${action} needs a confirmation, and there is no terminal to ask on`, 'add --yes to confirm it in a script');
  return true;
}

/** Asks `question` (default: no) unless --yes answered it; a "no" stops the command with `refusal`. */
export async function confirmOrStop(o: YesOption, action: string, question: string, refusal: string): Promise<void> {
  if (!confirmationPossible(o, action)) return;
  const { default: confirm } = await import('@inquirer/confirm'); // loaded only to ask: keeps start-up short
  const yes = await askOnTty((context) => confirm({ message: question, default: false }, context));
  if (!yes) throw new VaultError('usage', refusal);
}
