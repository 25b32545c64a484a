/**
 * Running xfstests' `./check` on one pair of devices, within a time budget, and reading back what
 * became of each test.
 *
 * The tests of a group come from the tree's own group files (tests/generic/group.list and
 * tests/ext4/group.list, written by its `make`), and a shard takes every N-th of them, so slow and
 * quick tests spread over the shards. `check` gets that explicit list.
 *
 * Its configuration is a file of this run's (HOST_OPTIONS), results go to this run's directory
 * (RESULT_BASE): nothing is written into the xfstests tree but what `check` itself keeps there.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { progress } from '../../bench/lib/log.js';
import type { Devices } from './devices.js';

export type Outcome = 'pass' | 'fail' | 'notrun' | 'unfinished';

export interface ShardResult {
  side: string;
  detail: string;
  tests: string[];
  outcomes: Record<string, Outcome>;
  /** check's report for each failed test: its own lines (mismatch diff, fsck complaint). */
  failures: Record<string, string>;
  seconds: number;
  budgetHit: boolean;
  exitCode: number | null;
  log: string;
}

/** The tests of `group` for ext4 (generic and ext4 directories), sorted. */
export function groupTests(xfstestsDir: string, group: string): string[] {
  const tests: string[] = [];
  for (const d of ['generic', 'ext4']) {
    const file = path.join(xfstestsDir, 'tests', d, 'group.list');
    if (!existsSync(file)) throw new Error(`${file} is missing: run make in ${xfstestsDir} first`);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (!line.startsWith('#') && f.length > 1 && f.slice(1).includes(group)) tests.push(`${d}/${f[0]}`);
    }
  }
  return tests.sort();
}

export function shardOf<T>(all: readonly T[], index: number, count: number): T[] {
  return all.filter((_, i) => i % count === index - 1);
}

export function writeConfig(file: string, d: Devices, dir: string): void {
  const mk = (p: string) => (mkdirSync(p, { recursive: true }), p);
  const lines = [
    'export FSTYP=ext4',
    `export TEST_DEV=${d.testDev}`,
    `export TEST_DIR=${mk(path.join(dir, 'test'))}`,
    `export SCRATCH_DEV=${d.scratchDev}`,
    `export SCRATCH_MNT=${mk(path.join(dir, 'scratch'))}`,
    `export RESULT_BASE=${mk(path.join(dir, 'results'))}`,
  ];
  writeFileSync(file, lines.join('\n') + '\n');
}

const TEST_LINE = /^((?:generic|ext4)\/\d+)\b/;

/**
 * What check's output says of each test: its line starts with the test's name; "[not run]" marks a
 * skip, "[expunged]" one left out, and a mismatch, "[failed", or a _check_* complaint (fsck, dmesg)
 * on the test's line or the lines after it a failure. A test whose line ends in a duration passed.
 */
export function parseCheckOutput(out: string, tests: readonly string[]): { outcomes: Record<string, Outcome>; failures: Record<string, string> } {
  const text: Record<string, string[]> = {};
  let current: string | null = null;
  for (const line of out.split('\n')) {
    const m = TEST_LINE.exec(line);
    if (m && tests.includes(m[1]!)) (current = m[1]!), (text[current] = [line]);
    else if (/^(Ran|Not run|Failures|Failed|Passed all|SECTION)/.test(line)) current = null;
    else if (current) text[current]!.push(line);
  }
  const outcomes: Record<string, Outcome> = {};
  const failures: Record<string, string> = {};
  for (const t of tests) {
    const lines = text[t];
    if (!lines) {
      outcomes[t] = 'unfinished';
      continue;
    }
    const all = lines.join('\n');
    if (/\[not run\]|\[expunged\]/.test(lines[0]!)) outcomes[t] = 'notrun';
    else if (/output mismatch|\[failed|_check_|inconsistent|dmesg/.test(all)) {
      outcomes[t] = 'fail';
      failures[t] = all;
    } else if (/\d+s\s*$/.test(lines[0]!)) outcomes[t] = 'pass';
    else outcomes[t] = 'unfinished';
  }
  return { outcomes, failures };
}

/** Runs ./check on `tests`, stopping it (SIGINT to its group, as Ctrl-C) when the budget runs out. */
export function runCheck(xfstestsDir: string, d: Devices, dir: string, tests: string[], budgetMin: number): Promise<ShardResult> {
  const config = path.join(dir, 'local.config');
  writeConfig(config, d, dir);
  const log = path.join(dir, 'check.log');
  const logStream = createWriteStream(log);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('./check', tests, { cwd: xfstestsDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOST_OPTIONS: config } });
    let out = '';
    let budgetHit = false;
    const onData = (b: Buffer) => {
      out += b.toString('utf8');
      logStream.write(b);
      for (const l of b.toString('utf8').split('\n')) if (TEST_LINE.test(l)) progress(`[${d.side}] ${l.trim().slice(0, 160)}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, s);
      } catch {
        // gone
      }
    };
    const budget = setTimeout(() => {
      budgetHit = true;
      progress(`[${d.side}] the ${budgetMin}-minute budget is spent: stopping check`);
      signal('SIGINT');
      setTimeout(() => signal('SIGKILL'), 120_000).unref();
    }, budgetMin * 60_000);
    const onInterrupt = () => signal('SIGINT');
    process.on('SIGINT', onInterrupt);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(budget);
      process.off('SIGINT', onInterrupt);
      logStream.end();
      const { outcomes, failures } = parseCheckOutput(out, tests);
      resolve({ side: d.side, detail: d.detail, tests, outcomes, failures, seconds: Math.round((Date.now() - t0) / 1000), budgetHit, exitCode: code, log });
    });
  });
}
