/**
 * How guessable a new passphrase is (zxcvbn's score, 0 to 4), without this process ever holding it
 * as a JS string: a short-lived, hardened child (strength-child.ts) gets the bytes on a pipe and
 * answers with the score and feedback text only. The CLI's memory is scanned for the passphrase by
 * the leak tests; the child's goes back to the kernel when it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { closeSync, writeSync } from 'node:fs';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { packageRoot } from '../system/package-root.js';
import { makePipe } from '../crypto/process-hardening.js';

export interface Strength {
  /** zxcvbn's 0 (too guessable) to 4 (very unguessable). */
  score: number;
  warning: string | null;
  suggestions: string[];
}

/**
 * Below this a passphrase is called weak: score 3 is "safely unguessable: moderate protection from
 * an offline slow-hash scenario" (under 10^10 guesses), which is the attack a stolen container meets.
 */
export const STRONG_SCORE = 3;

/** zxcvbn looks at no more than this many characters; more bytes than this never change the score. */
const ESTIMATE_BYTES = 1024;

/** An estimate that takes longer than this is abandoned (the child is killed: the command reports it). */
const ESTIMATE_TIMEOUT_MS = 30_000;

const CHILD = () => path.join(packageRoot(), 'dist', 'src', 'cli', 'strength-child.js');

interface Estimator {
  writeEnd: number;
  result: Promise<Strength>;
  child: ChildProcess;
}

/** The child, started and waiting on its pipe (it builds zxcvbn's dictionaries before it reads). */
function startEstimator(): Estimator {
  const [readEnd, writeEnd] = makePipe();
  let child: ChildProcess;
  try {
    // No spawn timeout: its timer would hold this process 30 s when the child goes unused (see
    // estimateStrength, which sets one once the answer is awaited).
    // No environment: nothing in it is for the child, and NODE_OPTIONS could make Node preload code
    // into the process that reads the passphrase (--require). It also spares Node's start-up work
    // such as NODE_EXTRA_CA_CERTS, which some machines set for every process: 0.43 s against 0.33 s
    // for the child here (bench/RESULTS.md, 2026-12-07).
    child = spawn(process.execPath, [CHILD()], { stdio: [readEnd, 'pipe', 'pipe'], env: {} });
  } catch (e) {
    closeSync(writeEnd);
    throw e;
  } finally {
    closeSync(readEnd); // the child has its own copy
  }
  const result = new Promise<Strength>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status === 0) resolve(JSON.parse(out) as Strength);
      else reject(new VaultError('internal', `the passphrase strength check failed: ${(err || `exit ${status}`).trim().split('\n')[0]}`, "run `npm run build` in vault's directory, and report it if it persists"));
    });
  });
  return { writeEnd, result, child };
}

/** Whether the child and its pipes keep this process alive (they are sockets: 'pipe' stdio). */
function holdsProcess(e: Estimator, hold: boolean): void {
  for (const r of [e.child, e.child.stdout as Socket | null, e.child.stderr as Socket | null]) {
    if (hold) r?.ref();
    else r?.unref();
  }
}

let warm: Estimator | null = null;
let estimated = false;

/**
 * Starts the child early (main.ts, for the commands that take a new passphrase), so that its ~0.5 s
 * of loading dictionaries overlaps the CLI's own start-up and key derivation. Unused, it costs
 * nothing at exit: it holds no reference on this process, and its pipe closes with it.
 */
export function prestartStrength(): void {
  if (warm || estimated) return;
  warm = startEstimator();
  warm.result.catch(() => undefined); // awaited by estimateStrength, if it is ever asked
  holdsProcess(warm, false);
}

/**
 * Starts the estimate: the bytes go into a pipe the child reads (1 KiB always fits a pipe's buffer,
 * so this never blocks), so the caller may wipe `passphrase` as soon as this returns.
 */
export function estimateStrength(passphrase: Uint8Array): Promise<Strength> {
  const e = warm ?? startEstimator();
  warm = null;
  estimated = true;
  holdsProcess(e, true); // now awaited: keep this process until the answer comes
  try {
    writeSync(e.writeEnd, passphrase, 0, Math.min(passphrase.length, ESTIMATE_BYTES));
  } finally {
    closeSync(e.writeEnd);
  }
  const timer = setTimeout(() => e.child.kill(), ESTIMATE_TIMEOUT_MS);
  return e.result.finally(() => clearTimeout(timer));
}

/** The warning for a weak passphrase: what is wrong and what to do (zxcvbn's own words), one line each. */
export function weaknessText(s: Strength): string {
  const why = s.warning ? ` ${s.warning}` : '';
  const tips = s.suggestions.length ? ` ${s.suggestions.join(' ')}` : ' Use a longer passphrase of several uncommon words.';
  return `the new passphrase is weak (strength ${s.score} of 4): it can be guessed by someone who gets a copy of the container.${why}${tips}`;
}
