/**
 * The secret options, declared once with one help text and shared by every command that unlocks a
 * container or sets a secret: `--password-stdin` and `--keyfile` (create, mount, info, passwd,
 * keyslot add/remove, header restore/repair), plus `--new-keyfile` where a command has an existing
 * and a new secret (passwd, keyslot add). gatherKdfInput, gatherSecret and gatherOldAndNew
 * (secrets.ts) read what they hold.
 */
import type { Command } from 'commander';

const collect = (v: string, acc: string[] = []) => [...acc, v];

/** `--password-stdin` and `--keyfile`: one secret, to unlock with or to set. */
export function withSecretOptions(cmd: Command): Command {
  return cmd
    .option('--password-stdin', 'read the passphrase from standard input: all of it, less one trailing newline (for scripts; no prompt)')
    .option('--keyfile <file>', 'use a keyfile, with or without a passphrase (repeatable)', collect);
}

/** The same for an existing and a new secret: two lines on stdin, `--keyfile` and `--new-keyfile`. */
export function withNewSecretOptions(cmd: Command): Command {
  return cmd
    .option('--password-stdin', 'read an existing passphrase, then the new one, from standard input, one per line (for scripts; no prompt)')
    .option('--keyfile <file>', 'keyfile of the existing secret (repeatable)', collect)
    .option('--new-keyfile <file>', 'keyfile of the new secret (repeatable)', collect);
}
