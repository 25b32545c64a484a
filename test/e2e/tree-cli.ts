/**
 * writeTree/readTree as a program, for tests that must write and check files as another user
 * (the rootless suite): `node tree-cli.js write <root> <bigBytes> <smallFiles>` or
 * `node tree-cli.js read <root>`; prints the path → sha256 map as JSON.
 */
import { readTree, writeTree } from './fill.js';

const [cmd, root, big, small] = process.argv.slice(2);
if (!root) throw new Error('usage: tree-cli write|read <root> [bigBytes smallFiles]');
const sums = cmd === 'write' ? writeTree(root, Number(big), Number(small)) : readTree(root);
process.stdout.write(JSON.stringify(Object.fromEntries(sums)) + '\n');
