/**
 * How a test runs the CLI with the test hooks preloaded (test/support/hooks.ts, compiled by
 * `npm run build` into dist/test/support/hooks.js): put HOOKS_ARGV before the CLI's path.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Node options that preload the hooks; `node ...HOOKS_ARGV dist/src/cli/main.js <args>`. */
export const HOOKS_ARGV = [`--import=${path.join(ROOT, 'dist/test/support/hooks.js')}`];
