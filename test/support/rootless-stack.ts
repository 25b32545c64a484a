/**
 * The real daemons of "vault without root" (issue 15) for the tests. The stack itself lives in
 * bench/lib/rootless-stack.ts, because `npm run bench` starts the same daemons for its udisks and
 * fuse2fs setups and tsc compiles bench/ (not test/support/).
 */
export { startRootlessStack, type RootlessStack } from '../../bench/lib/rootless-stack.js';
