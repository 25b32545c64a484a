/**
 * The long header fuzz run, outside vitest (test/FUZZING.md):
 *   npm run fuzz -- --cases 1000000 --seed 42 [--from 0] [--json]
 *
 * The cases run in a worker thread; this thread is a watchdog. The worker publishes the index of
 * the case it is in through shared memory, so a case that hangs (even in synchronous code, which
 * no timer inside the worker could interrupt) is named with its seed and index, and the run fails.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { closeBases, makeBases, runFuzz, type Stats } from './header-fuzz.js';

const HANG_MS = 120_000;
/** The repository root, from dist/test/fuzz/run.js. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Args {
  cases: number;
  seed: string;
  from: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { cases: 1_000_000, seed: String(Date.now() % 1_000_000), from: 0, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--json') a.json = true;
    else if ((k === '--cases' || k === '--from') && v && /^\d+$/.test(v)) (a[k === '--cases' ? 'cases' : 'from'] = Number(v)), i++;
    else if (k === '--seed' && v) (a.seed = v), i++;
    else throw new Error(`usage: run.js --cases N --seed S [--from I] [--json] (bad argument ${k})`);
  }
  return a;
}

interface Summary {
  seed: string;
  from: number;
  cases: number;
  seconds: number;
  derivations: number;
  classes: Record<string, number>;
  violations: string[];
  slowestCaseMs: number;
  rssStartMiB: number;
  rssPeakSampledMiB: number;
  heapStartMiB: number;
  heapPeakMiB: number;
  processPeakRssMiB: number;
  machine: string;
}

const mib = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;

function vmHwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function worker(): Promise<void> {
  const { args, progress } = workerData as { args: Args; progress: SharedArrayBuffer };
  const current = new Float64Array(progress);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vault-fuzz-'));
  const bases = await makeBases(dir, path.join(ROOT, 'test/fixtures/v1'));
  const t0 = performance.now();
  let stats: Stats;
  try {
    stats = await runFuzz(bases, {
      seed: args.seed,
      from: args.from,
      cases: args.cases,
      onCase: (i) => (current[0] = i),
      onProgress: (done, s) => {
        if (done % 50_000 === 0) parentPort!.postMessage({ progress: done, violations: s.violations.length, seconds: (performance.now() - t0) / 1000 });
      },
    });
  } finally {
    closeBases(bases);
    rmSync(dir, { recursive: true, force: true });
  }
  const summary: Omit<Summary, 'processPeakRssMiB' | 'machine'> = {
    seed: args.seed,
    from: args.from,
    cases: stats.cases,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    derivations: stats.derivations,
    classes: Object.fromEntries([...stats.classes].sort()),
    violations: stats.violations.slice(0, 50),
    slowestCaseMs: Math.round(stats.slowestCaseMs),
    rssStartMiB: mib(stats.rssStart),
    rssPeakSampledMiB: mib(stats.rssPeak),
    heapStartMiB: mib(stats.heapStart),
    heapPeakMiB: mib(stats.heapPeak),
  };
  parentPort!.postMessage({ summary });
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const progress = new SharedArrayBuffer(8);
  const current = new Float64Array(progress);
  current[0] = -1;
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { args, progress } });
  process.stderr.write(`header fuzz: seed ${args.seed}, cases ${args.from}..${args.from + args.cases - 1}\n`);
  let last = -2;
  let lastChange = Date.now();
  const watchdog = setInterval(() => {
    if (current[0] !== last) {
      last = current[0]!;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > HANG_MS) {
      process.stderr.write(`header fuzz: HANG: seed=${args.seed} case=${last} has run for over ${HANG_MS / 1000} s\n`);
      process.exit(2);
    }
  }, 1000);
  w.on('message', (m: { progress?: number; violations?: number; seconds?: number; summary?: Omit<Summary, 'processPeakRssMiB' | 'machine'> }) => {
    if (m.progress) process.stderr.write(`header fuzz: ${m.progress} cases, ${m.violations} violations, ${m.seconds!.toFixed(0)} s\n`);
    if (!m.summary) return;
    clearInterval(watchdog);
    const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
    const summary: Summary = { ...m.summary, processPeakRssMiB: mib(vmHwm()), machine: `${os.cpus().length} × ${cpu}, ${mib(os.totalmem())} MiB RAM, Node ${process.version}, ${os.release()}` };
    if (args.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    else {
      const width = Math.max(...Object.keys(summary.classes).map((k) => k.length));
      process.stdout.write(`seed ${summary.seed}, cases ${summary.cases} from ${summary.from}, ${summary.seconds} s, ${summary.derivations} Argon2id derivations\n`);
      for (const [k, v] of Object.entries(summary.classes)) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
      process.stdout.write(`slowest case ${summary.slowestCaseMs} ms; RSS ${summary.rssStartMiB} → ${summary.rssPeakSampledMiB} MiB sampled, process peak ${summary.processPeakRssMiB} MiB; heap ${summary.heapStartMiB} → ${summary.heapPeakMiB} MiB\n`);
      process.stdout.write(`${summary.machine}\n`);
      for (const v of summary.violations) process.stdout.write(`VIOLATION ${v}\n`);
      process.stdout.write(`${summary.violations.length === 0 ? 'no property violated' : `${m.summary.violations.length} violations`}\n`);
    }
    process.exitCode = summary.violations.length === 0 ? 0 : 1;
  });
  w.on('error', (e) => {
    clearInterval(watchdog);
    process.stderr.write(`header fuzz: the worker failed at seed=${args.seed} case=${current[0]}: ${e.stack ?? e}\n`);
    process.exitCode = 1;
  });
}

if (isMainThread) main();
else await worker();
