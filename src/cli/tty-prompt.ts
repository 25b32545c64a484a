/**
 * The masked passphrase prompt on the controlling terminal (/dev/tty), written by hand because every
 * prompt library returns a JS string, which cannot be wiped: typed bytes go straight into a Buffer.
 *
 * The terminal is switched to non-canonical, no-echo, no-signal mode (so Ctrl-C arrives as a byte
 * and we can wipe and restore before leaving) with output processing on (opost onlcr, set even if
 * it was off): "\n" returns to column 0, so nothing is drawn as a staircase. (`stty raw` turned it
 * off, and every line after the first started where the previous one ended.) One star per
 * character: Backspace removes a whole UTF-8 character (all its bytes) and one star, Ctrl-U the lot.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { secretBuffer, secretCopy, wipe } from '../crypto/wipe.js';
import { MAX_PASSPHRASE } from './passphrase.js';

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;
const isBackspace = (c: number) => c === 0x7f || c === 0x08;
const isContinuation = (c: number) => (c & 0xc0) === 0x80;

/** /dev/tty opened for reading and writing; a usage error with `hint` when there is no terminal. */
export function openTty(hint: string): number {
  try {
    return openSync('/dev/tty', 'r+');
  } catch {
    throw new VaultError('usage', 'no terminal to ask on', hint);
  }
}

/** Writes `text` (lines) to the controlling terminal, if there is one. */
export function sayOnTty(text: string): void {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    return;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** A masked prompt on the controlling terminal. Refuses at once when there is none. */
export function promptPassphrase(question: string): Buffer {
  const fd = openTty('pass it on standard input with --password-stdin (or use a keyfile)');
  const restore = keystrokeMode(fd);
  // Typed bytes go into one preallocated buffer of their own, wiped below whatever happens: a
  // growing JS array would leave a copy of the passphrase in the heap at every reallocation.
  const typed = secretBuffer(MAX_PASSPHRASE);
  const one = secretBuffer(1);
  let length = 0;
  let stars = 0;
  try {
    writeSync(fd, question);
    for (;;) {
      const n = readSync(fd, one, 0, 1, null);
      if (n === 0) break;
      const c = one[0]!;
      if (c === 0x0d || c === 0x0a) break;
      if (c === CTRL_C) {
        writeSync(fd, '\n');
        throw new VaultError('interrupted', 'interrupted');
      }
      if (c === CTRL_D && length === 0) break;
      if (isBackspace(c) || c === CTRL_U) {
        const erased = c === CTRL_U ? stars : Math.min(stars, 1);
        length = eraseCharacters(typed, length, erased);
        stars -= erased;
        if (erased) writeSync(fd, '\b \b'.repeat(erased));
        continue;
      }
      if (length === typed.length) {
        writeSync(fd, '\n');
        throw new VaultError('usage', `the passphrase is longer than ${MAX_PASSPHRASE} bytes`);
      }
      typed[length++] = c;
      if (!isContinuation(c)) {
        stars++;
        writeSync(fd, '*');
      }
    }
    writeSync(fd, '\n');
    return secretCopy(typed.subarray(0, length));
  } finally {
    wipe(typed, one);
    restore();
    closeSync(fd);
  }
}

/** Wipes the last `count` characters (each a lead byte and its continuation bytes); the new length. */
function eraseCharacters(typed: Buffer, length: number, count: number): number {
  for (let i = 0; i < count && length > 0; i++) {
    let b: number;
    do {
      b = typed[--length]!;
      typed[length] = 0;
    } while (length > 0 && isContinuation(b));
  }
  return length;
}

/**
 * Keystrokes one at a time, unechoed, Ctrl-C/Ctrl-Z/Ctrl-V/Ctrl-S as bytes; "\n" written as "\r\n".
 * Returns the function that puts the terminal back as it was.
 */
function keystrokeMode(fd: number): () => void {
  const saved = spawnSync('stty', ['-g'], { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8' }).stdout?.trim();
  spawnSync('stty', ['-icanon', '-echo', '-isig', '-iexten', '-ixon', 'min', '1', 'time', '0', 'opost', 'onlcr'], { stdio: [fd, 'ignore', 'ignore'] });
  return () => {
    if (saved) spawnSync('stty', [saved], { stdio: [fd, 'ignore', 'ignore'] });
  };
}
