/**
 * When vault may ask a question, and the streams inquirer asks on.
 *
 * vault asks (a confirmation, the create wizard) only when a person is evidently there: standard
 * input is a terminal and the process has a controlling terminal. A script (stdin redirected or
 * piped, as with --password-stdin, or no terminal at all) is never asked anything: it must say what
 * it wants with flags (--yes, --size, …), and is told so at once. Questions are drawn on /dev/tty,
 * like the passphrase prompt, so standard output stays clean for what a command prints.
 */
import { closeSync, openSync } from 'node:fs';
import tty from 'node:tty';
import type confirm from '@inquirer/confirm';
import { VaultError } from '../errors.js';

/** Where an inquirer prompt reads and draws (the same for every @inquirer prompt). */
export type Context = NonNullable<Parameters<typeof confirm>[1]>;

/** True when vault may ask questions (see above). */
export function canAsk(): boolean {
  if (!process.stdin.isTTY) return false;
  try {
    closeSync(openSync('/dev/tty', 'r+'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs inquirer prompts on the controlling terminal. Ctrl-C in a prompt becomes the usual
 * "interrupted" (exit 130); inquirer has put the terminal back by then.
 */
export async function askOnTty<T>(ask: (context: Context) => Promise<T>): Promise<T> {
  let input: tty.ReadStream;
  let output: tty.WriteStream;
  try {
    input = new tty.ReadStream(openSync('/dev/tty', 'r'));
    output = new tty.WriteStream(openSync('/dev/tty', 'w'));
  } catch {
    throw new VaultError('usage', 'no terminal to ask on', 'give the answers as options (see `vault help <command>`)');
  }
  try {
    return await ask({ input, output, clearPromptOnDone: false });
  } catch (e) {
    if ((e as Error).name === 'ExitPromptError') throw new VaultError('interrupted', 'interrupted');
    throw e;
  } finally {
    input.destroy();
    output.destroy();
  }
}
