/**
 * Peak RSS of every vault volume server this run starts, through the whole bench: the servers of
 * the single-volume setups, of the mount-time cycles, of the 8 volumes at once, and the brief ones
 * `vault create` starts for mkfs. A server is ours when it runs this checkout's server script
 * (entries.ts) and its log (its stdout) lies in this run's VAULT_RUN_DIR. VmHWM is the
 * kernel's own high-water mark of the process, so sampling only has to see each server once
 * before it exits; it is read every 200 ms and once more just before each dismount.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { serverEntries } from './entries.js';
import { procStatusBytes, under } from './system.js';

export class ServerRss {
  readonly #serverMains: string[];
  readonly #runDir: string;
  readonly #peak = new Map<number, number>();
  readonly #tags = new Map<number, string>();
  #timer: NodeJS.Timeout | null = null;
  /** Highest sum of VmRSS over our servers seen in one sample (the 8-volume phase's footprint). */
  peakSumBytes = 0;

  constructor(cliPath: string, runDir: string) {
    this.#serverMains = serverEntries(cliPath);
    this.#runDir = runDir;
  }

  start(intervalMs = 200): void {
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.sample();
  }

  /** Our server processes now. */
  servers(): number[] {
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
        if (!this.#serverMains.some((m) => argv.includes(m))) continue;
        if (!under(this.#runDir, readlinkSync(`/proc/${name}/fd/1`))) continue;
        out.push(Number(name));
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  sample(): void {
    let sum = 0;
    for (const pid of this.servers()) this.#read(pid, (rss) => (sum += rss));
    for (const pid of this.#tags.keys()) this.#read(pid);
    this.peakSumBytes = Math.max(this.peakSumBytes, sum);
  }

  #read(pid: number, rss?: (bytes: number) => void): void {
    const hwm = procStatusBytes(pid, 'VmHWM');
    if (hwm !== null) this.#peak.set(pid, Math.max(this.#peak.get(pid) ?? 0, hwm));
    if (rss) rss(procStatusBytes(pid, 'VmRSS') ?? 0);
  }

  /** Says which setup a server belongs to, and reads it now. */
  tag(pid: number, tag: string): void {
    this.#tags.set(pid, tag);
    this.#read(pid);
  }

  /** Reads a server's high-water mark (call just before stopping it). */
  readNow(pid: number): void {
    this.#read(pid);
  }

  /** Highest VmHWM of the servers tagged `tag`, or of all servers seen; bytes, null if none. */
  peakBytes(tag?: string): number | null {
    let best: number | null = null;
    for (const [pid, v] of this.#peak) if (tag === undefined || this.#tags.get(pid) === tag) best = Math.max(best ?? 0, v);
    return best;
  }

  serversSeen(): number {
    return this.#peak.size;
  }
}
