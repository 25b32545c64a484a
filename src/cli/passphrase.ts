/**
 * Reading passphrases from standard input (--password-stdin); the terminal prompt is tty-prompt.ts.
 * Never an argument or an environment variable.
 *
 * The passphrase stays in Buffers from the first byte: it never becomes a JS string (strings are
 * immutable and cannot be wiped). Callers wipe the returned buffers when done.
 */
import { readSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { secretBuffer, secretCopy, wipe } from '../crypto/wipe.js';

export const MAX_PASSPHRASE = 64 * 1024;

/**
 * Reads `count` newline-terminated passphrases from stdin (for commands that need an old and a new
 * one). The last may lack its newline. With count = 1 the whole input is one passphrase.
 */
export function readStdinLines(count: number): Buffer[] {
  // Straight into one buffer of its own, sized for the bound: no growing copies left behind.
  const limit = MAX_PASSPHRASE * count + count;
  const all = secretBuffer(limit + 1);
  let total = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(0, all, total, all.length - total, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') {
          // A non-blocking stdin (inherited O_NONBLOCK) with nothing yet: wait a little, don't spin.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
          continue;
        }
        if (code === 'EOF') break;
        throw new VaultError('usage', `cannot read the passphrase from standard input (${code})`);
      }
      if (n === 0) break;
      total += n;
      if (total > limit) throw new VaultError('usage', `the passphrase on standard input is longer than ${MAX_PASSPHRASE} bytes`);
    }
    return splitLines(all.subarray(0, total), count);
  } finally {
    wipe(all);
  }
}

/** `count` passphrases, one per line (the last may lack its newline), each in a buffer of its own. */
function splitLines(all: Buffer, count: number): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const nl = i < count - 1 ? all.indexOf(0x0a, start) : -1;
    if (i < count - 1 && nl < 0) {
      wipe(...out);
      throw new VaultError('usage', `expected ${count} lines on standard input (one passphrase per line)`);
    }
    let end = nl < 0 ? all.length : nl;
    if (nl < 0 && end > start && all[end - 1] === 0x0a) end--; // exactly one trailing newline
    out.push(secretCopy(all.subarray(start, end)));
    start = end + 1;
  }
  return out;
}
