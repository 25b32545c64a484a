/**
 * A first look at argv, before commander is loaded: main.ts and run-cli.ts start work early for
 * some commands (the volume server for `mount`, the strength estimator for a new passphrase).
 */

/** The command line's words without its options (`mount`, `secret.vol`, …), or null for a help request. */
export function commandWords(argv: readonly string[]): string[] | null {
  const args = argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) return null;
  return args.filter((a) => !a.startsWith('-'));
}
