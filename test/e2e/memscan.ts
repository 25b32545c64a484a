/**
 * Reads a live process's memory through /proc/<pid>/mem (as root) and finds byte strings in it,
 * telling for each hit whether the mapping holding it is locked in RAM (smaps "Locked:").
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { HOOKS_ARGV } from '../support/cli-hooks.js';

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  name: string;
  /** kB of the mapping locked in RAM (mlock). */
  lockedKb: number;
}

export interface Hit {
  needle: number;
  address: number;
  mapping: Mapping;
}

export function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, name: head[4] ?? '', lockedKb: 0 };
      out.push(cur);
      continue;
    }
    const locked = /^Locked:\s+(\d+) kB/.exec(line);
    if (locked && cur) cur.lockedKb = Number(locked[1]);
  }
  return out;
}

/** Every occurrence of each needle in the readable memory of `pid`. */
export function scanMemory(pid: number, needles: Buffer[]): Hit[] {
  const hits: Hit[] = [];
  const longest = Math.max(...needles.map((n) => n.length));
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const m of mappings(pid)) {
      if (!m.perms.startsWith('r') || m.name === '[vvar]' || m.name === '[vsyscall]' || m.name === '[vvar_vclock]') continue;
      const CHUNK = 1 << 20;
      // Chunks overlap by the longest needle, so a needle spanning two chunks is still found.
      for (let at = m.start; at < m.end; at += CHUNK) {
        const len = Math.min(CHUNK + longest, m.end - at);
        const buf = Buffer.alloc(len);
        let n: number;
        try {
          n = readSync(fd, buf, 0, len, at);
        } catch {
          continue; // e.g. a guard page or a device mapping
        }
        const view = buf.subarray(0, n);
        needles.forEach((needle, i) => {
          for (let p = view.indexOf(needle); p >= 0 && p < Math.min(n, CHUNK); p = view.indexOf(needle, p + 1))
            hits.push({ needle: i, address: at + p, mapping: m });
        });
      }
    }
  } finally {
    closeSync(fd);
  }
  return hits;
}

/** The process's state letter from /proc/<pid>/stat (R, S, T for stopped, Z, ...), or null when gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

export function describeHit(h: Hit): string {
  return `0x${h.address.toString(16)} in ${h.mapping.perms} ${h.mapping.name || '[anonymous]'} (locked ${h.mapping.lockedKb} kB)`;
}

/** Runs the CLI with the pause hook (test/support/hooks.ts, preloaded); resolves with its pid once it has stopped itself before exiting. */
export interface Paused {
  pid: number;
  done: Promise<number>;
  stderr: () => string;
}

export function runPaused(cli: string, args: string[], input: Buffer): Promise<Paused> {
  const child = spawn(process.execPath, [...HOOKS_ARGV, cli, ...args], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, VAULT_TEST_PAUSE_BEFORE_EXIT: '1' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<number>((r) => child.on('close', (s) => r(s ?? -1)));
  child.stdin.end(input);
  return whenPaused(() => child.pid, { done, stderr: () => stderr }, `vault ${args[0]}`);
}

/**
 * Resolves once process pid() (known once it is not undefined) has stopped itself (state T);
 * rejects if it ends first.
 */
export function whenPaused(pid: () => number | undefined, p: Omit<Paused, 'pid'>, what: string): Promise<Paused> {
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      const id = pid();
      if (id === undefined) return;
      const st = processState(id);
      if (st === 'T') {
        clearInterval(poll);
        resolve({ pid: id, ...p });
      } else if (st === null || st === 'Z') {
        clearInterval(poll);
        reject(new Error(`${what} exited before pausing: ${p.stderr()}`));
      }
    }, 20);
  });
}
