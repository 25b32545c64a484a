/**
 * Starts the software FIDO2 authenticator (test/support/fido2-authenticator/authenticator.py) on a
 * unix socket, for the real libfido2 to reach through native/fido2.c's `unix:` transport.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fido2-authenticator');

export interface SimOptions {
  master?: string; // 64 hex digits
  pin?: string;
  uv?: boolean;
  ctap21?: boolean;
  presence?: 'ok' | 'deny' | 'timeout' | 'slow';
  presenceMs?: number;
  upAlways?: boolean;
  /** CTAP 2.1 alwaysUv: getAssertion without the PIN (or built-in UV) fails with PUAT_REQUIRED. */
  alwaysUv?: boolean;
}

export interface Sim {
  device: string; // unix:<socket>
  socket: string;
  master: string;
  /** The lines the authenticator logged (one per CTAP2 command). */
  log(): string[];
  stop(): Promise<void>;
}

export async function startSim(dir: string, name: string, o: SimOptions = {}): Promise<Sim> {
  const socket = path.join(dir, `${name}.sock`);
  const logFile = path.join(dir, `${name}.log`);
  const master = o.master ?? randomBytes(32).toString('hex');
  const args = [path.join(DIR, 'authenticator.py'), '--socket', socket, '--master', master, '--log', logFile];
  if (o.pin !== undefined) args.push('--pin', o.pin);
  if (o.uv) args.push('--uv');
  if (o.ctap21) args.push('--ctap21');
  if (o.presence) args.push('--presence', o.presence);
  if (o.upAlways) args.push('--up-always');
  if (o.alwaysUv) args.push('--always-uv');
  if (o.presenceMs !== undefined) args.push('--presence-ms', String(o.presenceMs));
  const child: ChildProcess = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the software authenticator exited (${code}) before it listened`)));
  });
  return {
    device: `unix:${socket}`,
    socket,
    master,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n') : []),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** HMAC-SHA-256(CredRandom, salt) as the CTAP 2.1 hmac-secret algorithm defines it, computed from the credential id in Python. */
export function expectedHmac(master: string, rpId: string, credentialId: Uint8Array, salt: Uint8Array, uv: boolean): string {
  const r = spawnSync(
    'python3',
    [path.join(DIR, 'expected_hmac.py'), master, rpId, Buffer.from(credentialId).toString('hex'), Buffer.from(salt).toString('hex'), uv ? '1' : '0'],
    { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
  );
  if (r.status !== 0) throw new Error(`expected_hmac.py: ${r.stderr}`);
  return r.stdout.trim();
}

/** A test file's simulators in `dir`: `sim(name, options)` starts one; all stop, and `dir` goes, after the file's tests. */
export function simulators(dir: string): (name: string, o?: SimOptions) => Promise<Sim> {
  const sims: Sim[] = [];
  afterAll(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  return async (name, o = {}) => {
    const s = await startSim(dir, name, o);
    sims.push(s);
    return s;
  };
}
