#!/usr/bin/env node
/**
 * The `vault` executable. `vault mount` starts its volume server before anything else is loaded
 * (src/server/prelaunch.ts): the server's Node start-up then overlaps this process's own, instead
 * of following it. Everything else is run-cli.ts.
 */
import { prelaunchServer } from '../server/prelaunch.js';
import { commandWords } from './argv-words.js';

/** `vault mount …` with something to mount: not help, not a bare `vault mount`. */
function startsServer(argv: string[]): boolean {
  const words = commandWords(argv);
  return words !== null && words[0] === 'mount' && words.length > 1;
}

// Node opens its inspector on SIGUSR1, which any process of this user may send: refused from the
// first line (hardenProcess, in run-cli.ts, does it again with the rest of the hardening).
process.on('SIGUSR1', () => undefined);
if (startsServer(process.argv)) prelaunchServer();
// Not a top-level await: the same module is bundled as CommonJS (scripts/bundle.mjs).
void import('./run-cli.js').then((m) => m.runCli());
