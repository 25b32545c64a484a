// vault's benchmark: plain ext4 on a loop device (the ceiling), vault, and gocryptfs (the peer),
// on the same underlying filesystem, with fio and a small-file workload; plus vault's mount time
// without the KDF, its volume server's peak RSS, and create/mount time for 1 GiB vs 1 TiB.
//
//   npm run bench [-- --quick] [-- --setups plain,vault,gocryptfs] [-- --json]
//   node dist/bench/run.js [options]            (after `npm run build`; as root)
//
// Progress goes to stderr; the table to stdout (to stderr with --json, which puts the JSON
// document alone on stdout); the JSON always goes to bench/results/<timestamp>.json.
// Everything it mounts, attaches or starts is undone at the end, on failure and on Ctrl-C.
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CleanupStack, installSignalHandlers } from './lib/cleanup.js';
import { elapsedS, progress } from './lib/log.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { Interrupted, run } from './lib/proc.js';
import { checkTargets, mainTable, scalingTable, targetsTable, type ResultsBySetup, type TargetCheck } from './lib/report.js';
import { sizeIndependence, type ScalingResult } from './lib/scaling.js';
import { SETUP_NAMES, type SetupContext, type SetupName } from './lib/setups.js';
import { leftovers, runDirFor, sweep, sweepStale, WORK_PREFIX } from './lib/sweep.js';
import { otherIoLoad, statfsType } from './lib/system.js';
import { BENCH_KDF, measureArgon2Ms, measureNodeStartMs, VaultCli } from './lib/vault.js';
import { benchSetup, type BenchParams } from './lib/workloads.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Sizes per mode. --quick must finish in under 2 minutes for all three setups. */
function paramsFor(quick: boolean): BenchParams {
  return quick
    ? { quick, volumeBytes: 1 * GiB, seqBytes: 256 * MiB, randRuntimeS: 5, metaFiles: 2_000, sizeTestReps: 1 }
    : { quick, volumeBytes: 2 * GiB, seqBytes: 1 * GiB, randRuntimeS: 20, metaFiles: 20_000, sizeTestReps: 3 };
}

interface Options {
  quick: boolean;
  setups: SetupName[];
  json: boolean;
  workBase: string;
  vaultLoopDio: 'on' | 'off';
  vaultCli: string;
  label: string | null;
}

const USAGE = `usage: node dist/bench/run.js [options]          (as root; npm run bench -- [options])

  --quick                 smaller sizes (256 MiB sequential, 5 s random, 2,000 files); under 2 minutes
  --setups LIST           comma-separated subset of plain,vault,gocryptfs (default: all three)
  --json                  also print the JSON document to stdout (the table then goes to stderr)
  --workdir DIR           where images, containers and mounts go (default /var/tmp; not tmpfs)
  --vault-loop-dio on|off experiment: switch the vault loop device's direct I/O off after mounting
  --vault-cli PATH        the vault CLI to run (default: dist/src/cli/main.js of this checkout)
  --label TEXT            a name for this run, stored in the JSON and printed with the table
  -h, --help              this text

exit codes: 0 ok, 1 a setup or the cleanup failed, 2 usage, 6 not root or a tool missing, 130 interrupted`;

function usageError(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    setups: [...SETUP_NAMES],
    json: false,
    workBase: '/var/tmp',
    vaultLoopDio: 'on',
    vaultCli: path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'),
    label: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.startsWith('--') && argv[i]!.includes('=') ? argv[i]!.split(/=(.*)/s, 2) : [argv[i]!, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '--setups': {
        const list = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const s of list) if (!(SETUP_NAMES as readonly string[]).includes(s)) usageError(`unknown setup "${s}" (use ${SETUP_NAMES.join(', ')})`);
        if (list.length === 0) usageError('--setups needs at least one setup');
        // Always in the canonical order: plain first, so its figures exist when ratios are printed.
        o.setups = SETUP_NAMES.filter((s) => list.includes(s));
        break;
      }
      case '--workdir':
        o.workBase = value();
        break;
      case '--vault-loop-dio': {
        const v = value();
        if (v !== 'on' && v !== 'off') usageError('--vault-loop-dio takes on or off');
        o.vaultLoopDio = v;
        break;
      }
      case '--vault-cli':
        o.vaultCli = path.resolve(value());
        break;
      case '--label':
        o.label = value();
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      // falls through (unreachable: process.exit)
      default:
        usageError(`unknown argument ${argv[i]}`);
    }
  }
  return o;
}

class FatalSetupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** The system packages (fio, gocryptfs) come from the project's own installer, never from here. */
async function ensureTools(o: Options): Promise<void> {
  const script = path.join(REPO_ROOT, 'scripts', 'setup-system.sh');
  progress('checking system packages (scripts/setup-system.sh --bench)');
  const r = await run('bash', [script, '--bench'], { timeoutMs: 15 * 60_000 });
  for (const line of `${r.stdout}${r.stderr}`.split('\n')) if (line.trim()) progress(`  ${line.trim()}`);
  if (r.code !== 0) throw new FatalSetupError(`scripts/setup-system.sh --bench failed (exit ${r.code})`, r.code === 6 ? 6 : 1);
  const need = ['fio', 'mkfs.ext4', 'losetup', ...(o.setups.includes('gocryptfs') ? ['gocryptfs', 'fusermount'] : [])];
  for (const tool of need) {
    const t = await run('sh', ['-c', `command -v ${tool}`]);
    if (t.code !== 0) throw new FatalSetupError(`${tool} is not installed`, 6);
  }
  if ((o.setups.includes('vault') || o.setups.includes('gocryptfs')) && !existsSync('/dev/fuse'))
    throw new FatalSetupError('/dev/fuse is missing (modprobe fuse)', 6);
  if (o.setups.includes('vault') && !existsSync(o.vaultCli))
    throw new FatalSetupError(`${o.vaultCli} does not exist: run \`npm run build\` first`, 6);
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (loop devices, mounts, FUSE, drop_caches): run it with sudo\n');
    return 6;
  }
  const wasInterrupted = installSignalHandlers();
  const p = paramsFor(o.quick);
  const startedAt = new Date();
  const loadAvgStart = os.loadavg();
  const cleanup = new CleanupStack();
  if (!existsSync(o.workBase)) usageError(`--workdir ${o.workBase} does not exist`);
  const base = realpathSync(o.workBase);
  const workDir = path.join(base, `${WORK_PREFIX}${process.pid}`);
  const runDir = runDirFor(process.pid);
  const vault = new VaultCli(o.vaultCli, runDir);
  const results: ResultsBySetup = {};
  const notes: string[] = [];
  let machine: MachineInfo | null = null;
  let kdf: { medianMs: number; samplesMs: number[] } | null = null;
  let nodeStartMs: number | null = null;
  let scaling: ScalingResult | null = null;
  let scalingError: string | null = null;
  let exitCode = 0;
  let cleanupFailures: string[] = [];
  let left: string[] = [];

  progress(`vault bench, ${o.quick ? 'QUICK' : 'full'} run: ${o.setups.join(', ')}${o.label ? ` [${o.label}]` : ''}`);
  try {
    await ensureTools(o);
    const fsType = await statfsType(base);
    // The comparison is about a disk-backed filesystem: tmpfs would hide every I/O cost.
    if (/^(tmpfs|ramfs)$/.test(fsType)) throw new FatalSetupError(`${base} is on ${fsType}; use --workdir on a disk filesystem`, 2);
    await sweepStale(base, o.vaultCli);
    mkdirSync(workDir, { mode: 0o700 });
    // Pushed first, so it runs last: the net under everything else (see sweep.ts).
    cleanup.push('sweep work dir', async () => {
      const actions = await sweep(workDir, runDir, o.vaultCli);
      if (actions.length) progress(`cleanup sweep: ${actions.join('; ')}`);
    });
    machine = await machineInfo(workDir, o.vaultCli);
    for (const line of describeMachine(machine)) progress(line);
    // Other work on the machine skews every figure; record it rather than pretend it away.
    const busy = otherIoLoad();
    if (busy.length > 0) {
      const n = `other I/O benchmarks were running when this run started: ${busy.join('; ')}`;
      notes.push(n);
      progress(`WARNING: ${n}`);
    }
    if (o.setups.includes('vault')) {
      kdf = await measureArgon2Ms();
      nodeStartMs = await measureNodeStartMs();
      progress(`Argon2id ${BENCH_KDF.memoryMiB} MiB × ${BENCH_KDF.iterations} × ${BENCH_KDF.parallelism}: ${kdf.medianMs.toFixed(1)} ms; node start: ${nodeStartMs.toFixed(0)} ms`);
    }
    const ctx: SetupContext = { workDir, volumeBytes: p.volumeBytes, cleanup, vault, vaultLoopDio: o.vaultLoopDio, kdfMs: kdf?.medianMs ?? null };
    for (const name of o.setups) {
      const before = otherIoLoad();
      const r = await benchSetup(name, ctx, p);
      const after = otherIoLoad();
      if (before.length + after.length > 0) {
        const n = `${name}: other I/O benchmarks ran on this machine during the measurement (${[...new Set([...before, ...after])].length} processes seen)`;
        r.notes.push(n);
        progress(`WARNING: ${n}`);
      }
      results[name] = r;
      notes.push(...r.notes);
      if (!r.ok) {
        exitCode = 1;
        notes.push(`${name}: ${r.error ?? 'failed'}`);
      }
    }
    if (o.setups.includes('vault')) {
      try {
        scaling = await sizeIndependence(vault, workDir, cleanup, p.sizeTestReps, kdf?.medianMs ?? null);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        scalingError = (e as Error).message;
        notes.push(`size test failed: ${scalingError}`);
        progress(`size test FAILED: ${scalingError}`);
        exitCode = 1;
      }
    }
  } catch (e) {
    if (e instanceof Interrupted) exitCode = 130;
    else {
      exitCode = e instanceof FatalSetupError ? e.exitCode : 1;
      notes.push(`aborted: ${(e as Error).message}`);
      progress(`error: ${(e as Error).message}`);
    }
  } finally {
    progress('cleaning up');
    cleanupFailures = await cleanup.runAll();
    left = leftovers(workDir, runDir);
    if (left.length > 0) {
      progress(`LEFT BEHIND: ${left.join('; ')}`);
      exitCode = exitCode || 1;
    }
    if (cleanupFailures.length > 0) exitCode = exitCode || 1;
  }
  if (wasInterrupted()) exitCode = 130;

  const finishedAt = new Date();
  const loadAvgEnd = os.loadavg();
  const targets: TargetCheck[] = checkTargets(results, scaling);
  const doc = {
    tool: 'vault bench',
    schema: 1,
    label: o.label,
    mode: o.quick ? 'quick' : 'full',
    quick: o.quick,
    command: ['node', ...process.argv.slice(1).map((a, i) => (i === 0 ? path.relative(REPO_ROOT, a) : a))].join(' '),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: elapsedS(),
    exitCode,
    interrupted: exitCode === 130,
    options: { setups: o.setups, workBase: base, vaultLoopDio: o.vaultLoopDio, vaultCli: o.vaultCli },
    params: { ...p, randBlockBytes: 4096, randIodepth: 16, seqBlockBytes: MiB, metaFileBytes: 4096, kdf: BENCH_KDF },
    machine,
    // 1, 5 and 15-minute load averages: on 2 cores, anything near 2 means the run shared the CPU.
    load: { start: loadAvgStart, end: loadAvgEnd },
    vault: {
      argon2idMs: kdf,
      nodeStartMs,
      mountEndToEndMs: results.vault?.mountEndToEndMs ?? null,
      mountWithoutKdfMs: results.vault?.mountMs ?? null,
      mountWithoutKdfMethod: 'computed from outside: end-to-end `vault mount` minus the in-process Argon2id time of the same parameters',
      serverPeakRssBytes: results.vault?.peakRssBytes ?? null,
      sizeIndependence: scaling,
      sizeIndependenceError: scalingError,
    },
    setups: results,
    targets,
    notes,
    cleanup: { failures: cleanupFailures, leftBehind: left },
  };
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, `${timestamp(startedAt)}${o.quick ? '-quick' : ''}.json`);
  writeFileSync(jsonFile, JSON.stringify(doc, null, 2) + '\n');

  const lines: string[] = [];
  lines.push(
    `vault benchmark — ${o.quick ? 'QUICK run (smaller sizes: not comparable with full runs)' : 'full run'}${o.label ? ` — ${o.label}` : ''}`,
    `${startedAt.toISOString()}, ${elapsedS().toFixed(0)} s${exitCode === 130 ? ', INTERRUPTED' : ''}`,
  );
  if (machine) lines.push(...describeMachine(machine));
  lines.push(`load average at start ${loadAvgStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAvgEnd.map((l) => l.toFixed(2)).join(' ')}`);
  lines.push(
    `volumes ${p.volumeBytes / GiB} GiB; sequential ${p.seqBytes / MiB} MiB (bs 1M, psync); random 4 KiB, libaio QD16, O_DIRECT, ` +
      `${p.randRuntimeS} s on that file; ${p.metaFiles} files of 4 KiB`,
  );
  if (results.vault?.info?.['engine'] !== undefined) lines.push(`vault volume server engine: ${String(results.vault.info['engine'])}`);
  if (o.vaultLoopDio === 'off') lines.push('EXPERIMENT: vault loop device with direct I/O OFF');
  if (kdf && results.vault?.mountEndToEndMs !== undefined)
    lines.push(
      `vault mount end to end ${results.vault.mountEndToEndMs.toFixed(0)} ms = Argon2id ${BENCH_KDF.memoryMiB} MiB×${BENCH_KDF.iterations}×${BENCH_KDF.parallelism} ` +
        `${kdf.medianMs.toFixed(1)} ms (measured in-process) + ${results.vault.mountMs!.toFixed(0)} ms without KDF (computed); node start alone ${nodeStartMs?.toFixed(0)} ms`,
    );
  lines.push('', mainTable(results), '');
  if (scaling) lines.push(scalingTable(scaling, p.sizeTestReps), '');
  if (o.setups.includes('vault')) lines.push(targetsTable(targets), '');
  for (const n of notes) lines.push(`note: ${n}`);
  if (left.length) lines.push(`LEFT BEHIND: ${left.join('; ')}`);
  lines.push(`results: ${path.relative(process.cwd(), jsonFile) || jsonFile}`);
  const text = lines.join('\n') + '\n';
  if (o.json) {
    process.stderr.write(text);
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(text);
  }
  return exitCode;
}

process.exitCode = await main();
// Lingering timers (a child's drain grace period) must not keep a finished run alive.
process.exit(process.exitCode);
