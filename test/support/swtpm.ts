/**
 * A real software TPM for tests: `swtpm socket --tpm2` (Debian: swtpm) on two free TCP ports, its
 * state in a fresh temporary directory, reached through tpm2-tss's swtpm TCTI. PCRs are extended
 * with tpm2-tools' tpm2_pcrextend (Debian: tpm2-tools). stop() ends this swtpm (by its pid) and
 * removes its directory; swtpm also ends when the test process dies first (setpriv --pdeathsig).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { commandExists } from './requirements.js';

export interface Swtpm {
  /** The TCTI string for tpm2-tss ("swtpm:host=127.0.0.1,port=P"). */
  readonly tcti: string;
  readonly port: number;
  /** Extends a PCR of the sha256 bank with SHA-256(`data`). */
  extendPcr(pcr: number, data?: string): void;
  /** Reads a PCR of the sha256 bank (hex). */
  readPcr(pcr: number): string;
  /** Sessions and transient objects still loaded in the TPM (their handles): what clients forgot to flush. */
  leftovers(): string[];
  /** Flushes them, as the kernel's resource manager (/dev/tpmrm0) does when a client closes. */
  flushSessions(): void;
  stop(): Promise<void>;
}

/** What this machine lacks to run swtpm tests (for requirementsMet). */
export function swtpmMissing(): string[] {
  return ['swtpm', 'setpriv', 'tpm2_pcrextend', 'tpm2_pcrread', 'tpm2_getcap', 'tpm2_flushcontext'].filter((c) => !commandExists(c)).map((c) => `${c} (scripts/setup-system.sh --test)`);
}

/** A port nobody listens on right now, with the next one free too. */
async function freePortPair(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = await listenOnce(0);
    if (port < 65535 && (await listenOnce(port + 1).catch(() => 0)) === port + 1) return port;
  }
  throw new Error('no two consecutive free TCP ports for swtpm');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

/** Whether anything accepts connections on `host`:`port`. */
export function connects(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function tpm2Tool(tcti: string, args: string[]): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', env: { ...process.env, TPM2TOOLS_TCTI: tcti }, timeout: 20_000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

export async function startSwtpm(): Promise<Swtpm> {
  const tag = process.env['VAULT_E2E_TAG'] ? `${process.env['VAULT_E2E_TAG']}-` : '';
  const dir = mkdtempSync(path.join(tmpdir(), `vault-swtpm-${tag}`));
  for (let attempt = 0; ; attempt++) {
    const port = await freePortPair();
    // setpriv --pdeathsig: swtpm ends with the test process even when that is killed before stop().
    const child: ChildProcess = spawn(
      'setpriv',
      ['--pdeathsig', 'TERM', '--', 'swtpm', 'socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
        '--tpmstate', `dir=${dir}`, '--flags', 'startup-clear'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => void (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let up = false;
    for (let i = 0; i < 100 && child.exitCode === null && !up; i++) {
      up = await connects(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 3) continue; // a port taken between the probe and swtpm's bind
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`swtpm did not start on port ${port}: ${stderr}`);
    }
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    return {
      tcti,
      port,
      extendPcr(pcr, data = 'vault test measurement') {
        const digest = createHash('sha256').update(data).digest('hex');
        tpm2Tool(tcti, ['tpm2_pcrextend', `${pcr}:sha256=${digest}`]);
      },
      readPcr(pcr) {
        const m = /:\s*0x([0-9A-Fa-f]{64})/.exec(tpm2Tool(tcti, ['tpm2_pcrread', `sha256:${pcr}`]));
        if (!m) throw new Error(`tpm2_pcrread printed no sha256 value for PCR ${pcr}`);
        return m[1]!.toLowerCase();
      },
      leftovers() {
        return ['handles-loaded-session', 'handles-transient'].flatMap((cap) =>
          tpm2Tool(tcti, ['tpm2_getcap', cap]).split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2)),
        );
      },
      flushSessions() {
        tpm2Tool(tcti, ['tpm2_flushcontext', '--loaded-session']);
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
