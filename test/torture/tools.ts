/**
 * The exercisers (issue 20): the project's own fsx and fsstress (test/torture/fsx.c, fsstress.c),
 * compiled from source for each run with `cc -O2` into a temp dir and never committed as binaries,
 * or, with XFSTESTS_DIR set, xfstests' real ltp/fsx and ltp/fsstress built outside the repository.
 * Each run's output is parsed into what the summary needs: passed, operations done, seconds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from '../../bench/lib/proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, from test/torture (vitest) or dist/test/torture (npm run soak). */
const ROOT = path.resolve(HERE, HERE.split(path.sep).includes('dist') ? '../../..' : '../..');

export interface Tools {
  fsx: string;
  fsstress: string;
  /** 'own' (this project's) or 'xfstests' (XFSTESTS_DIR's). */
  kind: 'own' | 'xfstests';
}

/** Compiles test/torture/NAME.c into outDir; throws with the compiler's output when it fails. */
function compile(name: string, outDir: string): string {
  const out = path.join(outDir, name);
  const src = path.join(ROOT, 'test/torture', `${name}.c`);
  const cc = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc ${src} failed (is a C compiler installed? Debian: build-essential):\n${cc.stderr}`);
  return out;
}

/** The own tools, built in outDir. */
export function buildOwnTools(outDir: string): Tools {
  return { fsx: compile('fsx', outDir), fsstress: compile('fsstress', outDir), kind: 'own' };
}

/** xfstests' ltp/fsx and ltp/fsstress under dir; throws naming what is missing. */
export function xfstestsTools(dir: string): Tools {
  const t: Tools = { fsx: path.join(dir, 'ltp/fsx'), fsstress: path.join(dir, 'ltp/fsstress'), kind: 'xfstests' };
  for (const f of [t.fsx, t.fsstress]) if (!existsSync(f)) throw new Error(`XFSTESTS_DIR=${dir}: ${f} is missing (build xfstests there first: make)`);
  return t;
}

export interface ToolRun {
  passed: boolean;
  /** Operations done (fsstress of xfstests does not print them: null). */
  ops: number | null;
  seconds: number;
  /** The command line, for the report and for rerunning a failure. */
  command: string;
  /** Per-operation counts the own tools print ("name" → count). */
  counts: Record<string, number>;
  output: string;
}

function toolRun(r: RunResult, passed: boolean, ops: number | null, counts: Record<string, number>): ToolRun {
  const output = `${r.stdout}${r.stderr}${r.error ? `\n(${r.error})` : ''}`;
  return { passed, ops, seconds: r.ms / 1000, command: r.command, counts, output };
}

/** Lines "PREFIX NAME N …" into { NAME: N }. */
function countsOf(out: string, prefix: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of out.matchAll(new RegExp(`^${prefix} (\\S+) (\\d+)`, 'gm'))) counts[m[1]!] = Number(m[2]);
  return counts;
}

export interface FsxOptions {
  ops: number;
  seed: number;
  /** Where the own fsx saves its model of the file, for verify() after a drop_caches or remount. */
  model: string;
  /** Largest file size and operation length (bytes). */
  maxLen?: number;
  maxOpLen?: number;
  /** O_DIRECT reads and writes too (own fsx only: -D). */
  direct?: boolean;
  timeoutMs?: number;
}

const timeout = (ms: number | undefined) => (ms === undefined ? {} : { timeoutMs: ms });

/** One fsx run on `file`. */
export async function runFsx(tools: Tools, file: string, o: FsxOptions): Promise<ToolRun> {
  const size = [...(o.maxLen ? ['-l', String(o.maxLen)] : []), ...(o.maxOpLen ? ['-o', String(o.maxOpLen)] : [])];
  if (tools.kind === 'xfstests') {
    // -q: quiet; -S: seed; -N: ops. Its own "All N operations completed A-OK!" is the verdict.
    const r = await run(tools.fsx, ['-q', '-S', String(o.seed), '-N', String(o.ops), ...size, file], timeout(o.timeoutMs));
    const passed = r.code === 0 && /completed A-OK/.test(r.stdout);
    return toolRun(r, passed, passed ? o.ops : null, {});
  }
  const args = ['-q', '-N', String(o.ops), '-S', String(o.seed), '-W', o.model, ...size, ...(o.direct ? ['-D'] : []), file];
  const r = await run(tools.fsx, args, timeout(o.timeoutMs));
  const passed = r.code === 0 && /^fsx: PASSED/m.test(r.stdout);
  return toolRun(r, passed, passed ? o.ops : null, countsOf(r.stdout, 'fsx-count'));
}

/**
 * Compares `file` with the model the own fsx saved (after a drop_caches or a remount). xfstests'
 * fsx keeps its model to itself: `ownFsx` is the own one even then.
 */
export async function verifyFsx(ownFsx: string, file: string, model: string): Promise<ToolRun> {
  const r = await run(ownFsx, ['-c', model, file]);
  return toolRun(r, r.code === 0, null, {});
}

export interface FsstressOptions {
  procs: number;
  seconds: number;
  seed: number;
  /** Largest size a file gets (own fsstress). */
  maxSize?: number;
}

/** One fsstress run in `dir` for o.seconds with o.procs workers. */
export async function runFsstress(tools: Tools, dir: string, o: FsstressOptions): Promise<ToolRun> {
  const grace = 120_000;
  if (tools.kind === 'xfstests') {
    // xfstests' fsstress: --duration runs it for that many seconds (its -n is then ignored).
    const args = ['-d', dir, '-p', String(o.procs), '-s', String(o.seed), `--duration=${o.seconds}`];
    const r = await run(tools.fsstress, args, { timeoutMs: o.seconds * 1000 + grace });
    return toolRun(r, r.code === 0 && !r.error, null, {});
  }
  const args = ['-d', dir, '-p', String(o.procs), '-t', String(o.seconds), '-s', String(o.seed), ...(o.maxSize ? ['-m', String(o.maxSize)] : [])];
  const r = await run(tools.fsstress, args, { timeoutMs: o.seconds * 1000 + grace });
  const m = /^fsstress: PASSED: (\d+) ops/m.exec(r.stdout);
  const counts = countsOf(r.stdout, 'fsstress-count');
  return toolRun(r, r.code === 0 && m !== null, m ? Number(m[1]) : null, counts);
}
