/**
 * Reading passphrases: a masked prompt on a terminal, or --password-stdin. Never an argument or an
 * environment variable.
 *
 * The passphrase stays in Buffers from the first byte: it never becomes a JS string (strings are
 * immutable and cannot be wiped), which is why we do not use @inquirer/password (it returns a string).
 * Callers wipe the returned buffer when done.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { secretBuffer, secretCopy, wipe } from '../crypto/wipe.js';

const MAX_PASSPHRASE = 64 * 1024;

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

/** A masked prompt on the controlling terminal. Refuses at once when there is none. */
export function promptPassphrase(question: string): Buffer {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new VaultError(
      'usage',
      'no terminal to ask for the passphrase',
      'pass it on standard input with --password-stdin (or use a keyfile)',
    );
  }
  const restore = setRawMode(fd, true);
  // Typed bytes go into one preallocated buffer of their own, wiped below whatever happens: a
  // growing JS array would leave a copy of the passphrase in the heap at every reallocation.
  const typed = secretBuffer(MAX_PASSPHRASE);
  const one = secretBuffer(1);
  let length = 0;
  try {
    writeSync(fd, question);
    for (;;) {
      const n = readSync(fd, one, 0, 1, null);
      if (n === 0) break;
      const c = one[0]!;
      if (c === 0x0d || c === 0x0a) break;
      if (c === 0x03) throw new VaultError('interrupted', 'interrupted');
      if (c === 0x04 && length === 0) break;
      if (c === 0x7f || c === 0x08) {
        if (length) {
          typed[--length] = 0;
          writeSync(fd, '\b \b');
        }
        continue;
      }
      if (length === typed.length) {
        writeSync(fd, '\n');
        throw new VaultError('usage', `the passphrase is longer than ${MAX_PASSPHRASE} bytes`);
      }
      typed[length++] = c;
      // One star per character, not per UTF-8 continuation byte.
      if ((c & 0xc0) !== 0x80) writeSync(fd, '*');
    }
    writeSync(fd, '\n');
    return secretCopy(typed.subarray(0, length));
  } finally {
    wipe(typed, one);
    restore();
    closeSync(fd);
  }
}

/** Puts the terminal in raw, no-echo mode with stty and returns a function that restores it. */
function setRawMode(fd: number, raw: boolean): () => void {
  const saved = spawnSync('stty', ['-g'], { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8' }).stdout?.trim();
  if (raw) spawnSync('stty', ['raw', '-echo'], { stdio: [fd, 'ignore', 'ignore'] });
  return () => {
    if (saved) spawnSync('stty', [saved], { stdio: [fd, 'ignore', 'ignore'] });
  };
}

/** Reads one visible line from the terminal (for confirmations). Refuses when there is none. */
export function promptLine(question: string): string {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    throw new VaultError('usage', 'no terminal to ask for confirmation', 'use --force to proceed without asking');
  }
  try {
    writeSync(fd, question);
    const bytes: number[] = [];
    const one = Buffer.alloc(1);
    while (readSync(fd, one, 0, 1, null) === 1 && one[0] !== 0x0a) bytes.push(one[0]!);
    return Buffer.from(bytes).toString('utf8').trim();
  } finally {
    closeSync(fd);
  }
}
