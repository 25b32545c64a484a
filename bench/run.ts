// vault's benchmark, issue 14's targets in one run: plain ext4 on a loop device, vault over each
// FUSE transport (classic and io_uring), and gocryptfs (the peer), on the same underlying
// filesystem, with fio and dd doing the I/O; issue 15's rootless routes beside root in the same
// run (an ordinary user's volumes through udisks and through fuse2fs, against the root route,
// vault-classic, with the real dbus-daemon, polkitd and udisksd: lib/rootless.ts); issue 18's VeraCrypt
// volume (made and mounted by vault, classic transport) against vault-classic in the same run
// (lib/report-veracrypt.ts); plus this machine's crypto ceiling (one core,
// AES-256-XTS decryption of 1 MiB buffers through vault's native addon), mount time with the fast
// KDF, the volume servers' peak RSS through the whole run, 8 volumes mounted and loaded at once,
// and `vault create` with a full random fill against dd.
//
//   npm run bench [-- --quick] [-- --setups plain,vault-classic,vault-udisks,vault-fuse2fs,veracrypt] [-- --json]
//   VAULT_BENCH_QUICK=1 npm run bench           (the same as --quick)
//   node dist/bench/run.js [options]            (after `npm run build`; as root)
//
// Progress goes to stderr; the table to stdout (to stderr with --json, which puts the JSON
// document alone on stdout); the JSON always goes to bench/results/<timestamp>.json.
// Everything it mounts, attaches or starts is undone at the end, on failure and on Ctrl-C; it
// dismounts only the volumes it mounted (by name), from its own VAULT_RUN_DIR under /run/vault-bench
// (and the bench user's, as that user); what the rootless setups change on the machine (fuse.conf,
// the polkit rule, group vault, the user, the daemons) is put back as it was.
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CleanupStack, installSignalHandlers } from './lib/cleanup.js';
import { elapsedS, progress } from './lib/log.js';
import { describeMachine, machineInfo, type MachineInfo } from './lib/machine.js';
import { Interrupted, run } from './lib/proc.js';
import { measureCeiling, type Ceiling } from './lib/ceiling.js';
import { createFill, type FillResult } from './lib/fill.js';
import { multiVolume, type MultiResult } from './lib/multi.js';
import {
  contextLine, evaluateRouteTargets, evaluateTargets, mainTable, ROUTE_MIN, routeTable, routeTargetLines, targetLines,
  type BenchFigures, type ColumnFigures, type RouteTargetResult, type TargetResult,
} from './lib/report.js';
import { evaluateVeraCryptTargets, VERACRYPT_MIN, veracryptTable, veracryptTargetLines, type VeraCryptTargetResult } from './lib/report-veracrypt.js';
import { Rootless, ROOTLESS_TOOLS } from './lib/rootless.js';
import { ServerRss } from './lib/rss.js';
import { formatOf, isVault, routeOf, SETUP_NAMES, transportOf, type SetupContext, type SetupName } from './lib/setups.js';
import { leftovers, runDirFor, sweep, sweepStale, WORK_PREFIX } from './lib/sweep.js';
import { otherIoLoad, statfsType } from './lib/system.js';
import { readUringParam, restoreStaleUringParam, UringParam, URING_PARAM } from './lib/uring.js';
import { BENCH_KDF, BENCH_VC_KDF, measureArgon2Ms, measureNodeStartMs, NODE_ENV_DROPPED, VaultCli } from './lib/vault.js';
import { benchSetup, type BenchParams, type SetupResult } from './lib/workloads.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Sizes per mode. --quick takes a few minutes; the create fill is the issue's 512 MiB in both. */
function paramsFor(quick: boolean): BenchParams {
  return quick
    ? {
        quick, volumeBytes: 1 * GiB, seqBytes: 256 * MiB, randRuntimeS: 5, mountReps: 3, seqReps: 3,
        multiVolumes: 8, multiVolumeBytes: 512 * MiB, multiBytes: 64 * MiB, fillBytes: 512 * MiB, fillReps: 1, ceilingSeconds: 2,
      }
    : {
        quick, volumeBytes: 2 * GiB, seqBytes: 1 * GiB, randRuntimeS: 20, mountReps: 7, seqReps: 3,
        multiVolumes: 8, multiVolumeBytes: 1 * GiB, multiBytes: 256 * MiB, fillBytes: 512 * MiB, fillReps: 3, ceilingSeconds: 5,
      };
}

interface Options {
  quick: boolean;
  setups: SetupName[];
  json: boolean;
  workBase: string;
  vaultCli: string;
  label: string | null;
}

const USAGE = `usage: node dist/bench/run.js [options]          (as root; npm run bench -- [options])

  --quick                 smaller sizes (256 MiB sequential, 5 s random, 8 × 64 MiB); a few minutes
                          (also VAULT_BENCH_QUICK=1)
  --setups LIST           comma-separated subset of plain,vault-classic,vault-io_uring,vault-udisks,
                          vault-fuse2fs,veracrypt,gocryptfs (vault = both vault transports, rootless =
                          both routes of an ordinary user; default: all seven). The rootless routes
                          and veracrypt (a VeraCrypt volume vault makes and mounts, classic transport)
                          are judged against vault-classic: include it for their ratios
  --json                  also print the JSON document to stdout (the table then goes to stderr)
  --workdir DIR           where images, containers and mounts go (default /var/tmp; not tmpfs)
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
    quick: /^(1|yes|true)$/i.test(process.env['VAULT_BENCH_QUICK'] ?? ''),
    setups: [...SETUP_NAMES],
    json: false,
    workBase: '/var/tmp',
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
        const list = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .flatMap((s) => (s === 'vault' ? ['vault-classic', 'vault-io_uring'] : s === 'rootless' ? ['vault-udisks', 'vault-fuse2fs'] : [s]));
        for (const s of list)
          if (!(SETUP_NAMES as readonly string[]).includes(s))
            usageError(`unknown setup "${s}" (use ${SETUP_NAMES.join(', ')}, vault for both vault transports, or rootless for both routes)`);
        if (list.length === 0) usageError('--setups needs at least one setup');
        // Always in the canonical order: plain first, so its figures exist when ratios are printed.
        o.setups = SETUP_NAMES.filter((s) => list.includes(s));
        break;
      }
      case '--workdir':
        o.workBase = value();
        break;
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
  const need = ['fio', 'dd', 'mkfs.ext4', 'losetup', ...(o.setups.includes('gocryptfs') ? ['gocryptfs', 'fusermount'] : [])];
  for (const tool of need) {
    const t = await run('sh', ['-c', `command -v ${tool}`]);
    if (t.code !== 0) throw new FatalSetupError(`${tool} is not installed`, 6);
  }
  if (anyRoute(o.setups))
    for (const tool of ROOTLESS_TOOLS) {
      const t = tool.startsWith('/') ? existsSync(tool) : (await run('sh', ['-c', `command -v ${tool}`])).code === 0;
      if (!t) throw new FatalSetupError(`${tool} is not installed (the rootless setups need it: scripts/setup-system.sh --bench)`, 6);
    }
  const anyVault = o.setups.some(isVault);
  if ((anyVault || o.setups.includes('gocryptfs')) && !existsSync('/dev/fuse'))
    throw new FatalSetupError('/dev/fuse is missing (modprobe fuse)', 6);
  if (anyVault && !existsSync(o.vaultCli))
    throw new FatalSetupError(`${o.vaultCli} does not exist: run \`npm run build\` first`, 6);
}

const anyRoute = (setups: readonly SetupName[]): boolean => setups.some((s) => routeOf(s) !== null);

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
  // Read first, before this run adds any load of its own.
  const loadAvgStart = os.loadavg();
  const cleanup = new CleanupStack();
  if (!existsSync(o.workBase)) usageError(`--workdir ${o.workBase} does not exist`);
  const base = realpathSync(o.workBase);
  const workDir = path.join(base, `${WORK_PREFIX}${process.pid}`);
  const runDir = runDirFor(process.pid);
  const vault = new VaultCli(o.vaultCli, runDir);
  const rss = new ServerRss(o.vaultCli, runDir);
  const uring = new UringParam(cleanup);
  const results: Partial<Record<SetupName, SetupResult>> = {};
  const multi: Partial<Record<SetupName, MultiResult>> = {};
  const notes: string[] = [];
  const anyVault = o.setups.some(isVault);
  let machine: MachineInfo | null = null;
  let ceiling: Ceiling | null = null;
  let fill: FillResult | null = null;
  let kdf: { medianMs: number; samplesMs: number[] } | null = null;
  let nodeStartMs: number | null = null;
  let exitCode = 0;
  let rootless: Rootless | null = null;
  let cleanupFailures: string[] = [];
  let left: string[] = [];
  const uringParamAtStart = readUringParam();

  progress(`vault bench, ${o.quick ? 'QUICK' : 'full'} run: ${o.setups.join(', ')}${o.label ? ` [${o.label}]` : ''}`);
  progress(`load average at start ${loadAvgStart.map((l) => l.toFixed(2)).join(' ')}`);
  const droppedEnv = NODE_ENV_DROPPED.filter((k) => process.env[k] !== undefined);
  if (droppedEnv.length) notes.push(`vault's commands and the Node start figure run without ${droppedEnv.join(' and ')} (set in this run's environment), as a user's login shell and the rootless setups' commands do`);
  try {
    await ensureTools(o);
    const fsType = await statfsType(base);
    // The comparison is about a disk-backed filesystem: tmpfs would hide every I/O cost.
    if (/^(tmpfs|ramfs)$/.test(fsType)) throw new FatalSetupError(`${base} is on ${fsType}; use --workdir on a disk filesystem`, 2);
    const restored = restoreStaleUringParam();
    if (restored) {
      notes.push(restored);
      progress(restored);
    }
    await sweepStale(base, o.vaultCli);
    mkdirSync(workDir, { mode: 0o700 });
    // Pushed first, so it runs last: the net under everything else (see sweep.ts).
    cleanup.push('sweep work dir', async () => {
      const actions = await sweep(workDir, runDir, o.vaultCli);
      if (actions.length) progress(`cleanup sweep: ${actions.join('; ')}`);
    });
    machine = await machineInfo(workDir, o.vaultCli);
    for (const line of describeMachine(machine)) progress(line);
    progress(`${URING_PARAM}: ${uringParamAtStart ?? 'absent'}`);
    // Other work on the machine skews every figure; record it rather than pretend it away.
    const busy = otherIoLoad();
    if (busy.length > 0) {
      const n = `other I/O benchmarks were running when this run started: ${busy.join('; ')}`;
      notes.push(n);
      progress(`WARNING: ${n}`);
    }
    rss.start();

    progress(`ceiling: one core, AES-256-XTS decrypt of 1 MiB buffers through the native addon, ${p.ceilingSeconds} s`);
    try {
      ceiling = measureCeiling(p.ceilingSeconds);
      progress(`ceiling: ${ceiling.mibps.toFixed(0)} MiB/s`);
    } catch (e) {
      notes.push(`ceiling not measured: ${(e as Error).message}`);
      progress(`ceiling FAILED: ${(e as Error).message}`);
      exitCode = 1;
    }
    if (anyVault) {
      kdf = await measureArgon2Ms();
      nodeStartMs = await measureNodeStartMs();
      progress(`context: Argon2id ${BENCH_KDF.memoryMiB} MiB × ${BENCH_KDF.iterations} × ${BENCH_KDF.parallelism}: ${kdf.medianMs.toFixed(1)} ms; node start: ${nodeStartMs.toFixed(0)} ms`);
    }

    const ctx: SetupContext = { workDir, cleanup, vault, uring, rss, rootless: null };
    // Before the first setup, so every setup (root's included) runs beside the same idle daemons.
    if (anyRoute(o.setups)) {
      progress('rootless: starting dbus-daemon, polkitd, udisksd; user and `vault setup-rootless` for the udisks and fuse2fs routes');
      try {
        rootless = ctx.rootless = await Rootless.start(cleanup, o.vaultCli, workDir);
        for (const n of rootless.notes) progress(n);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        ctx.rootlessError = (e as Error).message.split('\n')[0]!;
        progress(`rootless: FAILED: ${(e as Error).message}`);
        exitCode = 1;
      }
    }
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
      if (r.unavailable) notes.push(`${name}: unavailable: ${r.unavailable}`);
      else if (!r.ok) {
        exitCode = 1;
        notes.push(`${name}: ${r.error ?? 'failed'}`);
      }
    }

    // 8 volumes at once: plain, every vault transport that could run, the routes and veracrypt.
    for (const name of o.setups) {
      if (name === 'gocryptfs' || results[name]?.unavailable) continue;
      const m = await multiVolume(name, ctx, { volumes: p.multiVolumes, volumeBytes: p.multiVolumeBytes, bytesEach: p.multiBytes });
      multi[name] = m;
      if (m.error) {
        exitCode = 1;
        notes.push(`${name} ×${p.multiVolumes}: ${m.error}`);
      }
    }

    if (anyVault) {
      try {
        fill = await createFill(vault, workDir, p.fillBytes, p.fillReps);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        notes.push(`create fill failed: ${(e as Error).message}`);
        progress(`create fill FAILED: ${(e as Error).message}`);
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
    rss.stop();
    left = [...leftovers(workDir, runDir), ...(rootless?.leftovers() ?? [])];
    // Gathered at the end: setup checks during the run and the cleanup add to them.
    if (rootless) notes.push(...rootless.notes);
    if (left.length > 0) {
      progress(`LEFT BEHIND: ${left.join('; ')}`);
      exitCode = exitCode || 1;
    }
    if (cleanupFailures.length > 0) exitCode = exitCode || 1;
    const uringNow = readUringParam();
    if (uringNow !== uringParamAtStart) {
      const n = `${URING_PARAM} is ${uringNow} at the end, ${uringParamAtStart} at the start (changed by someone else, or not restored)`;
      notes.push(n);
      progress(`WARNING: ${n}`);
    }
  }
  if (wasInterrupted()) exitCode = 130;

  const finishedAt = new Date();
  const loadAvgEnd = os.loadavg();
  const figures = toFigures(o.setups, results, multi, fill, ceiling, rss, loadAvgStart, loadAvgEnd);
  const targets: TargetResult[] = evaluateTargets(figures);
  const routeTargets: RouteTargetResult[] = evaluateRouteTargets(figures);
  const veracryptTargets: VeraCryptTargetResult[] = evaluateVeraCryptTargets(figures);
  const doc = {
    tool: 'vault bench',
    schema: 4,
    issues: [14, 15, 18],
    label: o.label,
    mode: o.quick ? 'quick' : 'full',
    quick: o.quick,
    command: ['node', ...process.argv.slice(1).map((a, i) => (i === 0 ? path.relative(REPO_ROOT, a) : a))].join(' '),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: elapsedS(),
    exitCode,
    interrupted: exitCode === 130,
    options: { setups: o.setups, workBase: base, vaultCli: o.vaultCli, runDir },
    params: { ...p, randBlockBytes: 4096, randIodepth: 16, seqBlockBytes: MiB, kdf: BENCH_KDF, veracryptKdf: BENCH_VC_KDF },
    machine,
    // 1, 5 and 15-minute load averages: on 2 cores, anything near 2 means the run shared the CPU.
    load: { start: loadAvgStart, end: loadAvgEnd },
    ceiling,
    uringParam: { atStart: uringParamAtStart, switchedOnForMounts: uring.switches },
    context: { argon2idMs: kdf, nodeStartMs },
    figures,
    targets,
    routeTargets,
    veracryptTargets,
    setups: results,
    multi,
    createFill: fill,
    serverRss: { peakAllBytes: rss.peakBytes(), peakSumBytes: rss.peakSumBytes, serversSeen: rss.serversSeen() },
    notes,
    cleanup: { failures: cleanupFailures, leftBehind: left },
  };
  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonFile = path.join(resultsDir, `${timestamp(startedAt)}${o.quick ? '-quick' : ''}.json`);
  writeFileSync(jsonFile, JSON.stringify(doc, null, 2) + '\n');

  const lines: string[] = [];
  lines.push(
    `vault benchmark (issues 14, 15 and 18) — ${o.quick ? 'QUICK run (smaller sizes: not comparable with full runs)' : 'full run'}${o.label ? ` — ${o.label}` : ''}`,
    `${startedAt.toISOString()}, ${elapsedS().toFixed(0)} s${exitCode === 130 ? ', INTERRUPTED' : ''}`,
  );
  if (machine) lines.push(...describeMachine(machine));
  lines.push(
    `volumes ${p.volumeBytes / GiB} GiB; sequential ${p.seqBytes / MiB} MiB (fio bs 1M, psync; median of ${p.seqReps} writes, each to a new file after a sync, end_fsync; median of ${p.seqReps} reads, caches dropped before each); ` +
      `random 4 KiB, libaio QD16, O_DIRECT, ${p.randRuntimeS} s on that file; mount: median of ${p.mountReps}; ` +
      `${p.multiVolumes} volumes of ${p.multiVolumeBytes / MiB} MiB at once, ${p.multiBytes / MiB} MiB written then read on each; ` +
      `create fill ${p.fillBytes / MiB} MiB (median of ${p.fillReps})`,
  );
  if (kdf) lines.push(`context: Argon2id ${BENCH_KDF.memoryMiB} MiB×${BENCH_KDF.iterations}×${BENCH_KDF.parallelism} ${kdf.medianMs.toFixed(1)} ms (inside every vault mount figure); node start alone ${nodeStartMs?.toFixed(0)} ms`);
  if (fill) lines.push(`create fill: \`${fill.ddCommand}\` ${fill.ddSamplesMs.map((m) => m.toFixed(0)).join('/')} ms; vault create --fs none ${fill.vaultSamplesMs.map((m) => m.toFixed(0)).join('/')} ms`);
  lines.push(
    `server RSS: highest VmHWM of any of the ${rss.serversSeen()} vault servers this run started ${fmtMB(rss.peakBytes())}; ` +
      `highest sum of their VmRSS at one time ${fmtMB(rss.peakSumBytes)}`,
  );
  lines.push('', contextLine(figures), '', mainTable(figures, targets), '', contextLine(figures), '');
  lines.push(...targetLines(targets), '');
  if (anyRoute(o.setups)) {
    lines.push(
      `issue 15: the rootless routes, each volume made and mounted by user ${rootless?.user.name ?? '?'} (fio as that user too), ` +
        `÷ the root route (vault classic); targets udisks ≥ ${ROUTE_MIN.udisks}×, fuse2fs ≥ ${ROUTE_MIN.fuse2fs}× on every workload`,
      '',
      routeTable(figures, routeTargets),
      '',
      ...routeTargetLines(routeTargets),
      '',
    );
  }
  if (o.setups.includes('veracrypt')) {
    lines.push(
      `issue 18: a VeraCrypt volume (AES-256-XTS, made by \`vault create --type veracrypt --quick --fs ext4 --hash ${BENCH_VC_KDF.hash} --pim ${BENCH_VC_KDF.pim}\`, ` +
        `mounted by \`vault mount\`, classic transport) ÷ a vault container (vault classic), same run; target ≥ ${VERACRYPT_MIN}× on sequential read and write`,
      '',
      veracryptTable(figures, veracryptTargets),
      '',
      ...veracryptTargetLines(veracryptTargets),
      '',
    );
  }
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

function fmtMB(bytes: number | null): string {
  return bytes === null ? 'n/a' : `${(bytes / 1e6).toFixed(1)} MB`;
}

function toFigures(
  setups: readonly SetupName[],
  results: Partial<Record<SetupName, SetupResult>>,
  multi: Partial<Record<SetupName, MultiResult>>,
  fill: FillResult | null,
  ceiling: Ceiling | null,
  rss: ServerRss,
  loadStart: number[],
  loadEnd: number[],
): BenchFigures {
  const columns: BenchFigures['columns'] = {};
  const set = <K extends keyof ColumnFigures>(c: ColumnFigures, k: K, v: ColumnFigures[K] | null | undefined): void => {
    if (v !== null && v !== undefined) c[k] = v;
  };
  for (const name of setups) {
    const r = results[name];
    const c: ColumnFigures = { available: r !== undefined && r.unavailable === undefined };
    if (!r) {
      c.unavailable = 'not run (the run stopped before it)';
      columns[name] = c;
      continue;
    }
    if (r.unavailable) c.unavailable = r.unavailable;
    if (r.error) c.error = r.error;
    const t = transportOf(name);
    const vaultServer = isVault(name);
    if (vaultServer) c.transport = r.transport ?? null;
    set(c, 'seqWriteMiBps', r.seqWrite ? r.seqWrite.bytesPerS / MiB : null);
    set(c, 'seqReadMiBps', r.seqRead ? r.seqRead.bytesPerS / MiB : null);
    set(c, 'randReadIops', r.randRead?.iops);
    set(c, 'randWriteIops', r.randWrite?.iops);
    set(c, 'mountMs', r.mountMs);
    set(c, 'mountSamplesMs', r.mountSamplesMs);
    const peak = vaultServer ? rss.peakBytes(name) : r.peakRssBytes;
    set(c, 'peakRssMB', peak != null ? peak / 1e6 : null);
    const m = multi[name];
    if (m) {
      set(c, 'multiWriteMiBps', m.write ? m.write.bytesPerS / MiB : null);
      set(c, 'multiReadMiBps', m.read ? m.read.bytesPerS / MiB : null);
      if (vaultServer) c.multiTransport = m.transport;
    }
    // The fill is of a vault container: vault-classic's and vault-io_uring's figure (no server runs).
    if (fill) set(c, 'createFillMBps', name === 'plain' ? fill.ddMBps : t && formatOf(name) === 'vault' ? fill.vaultMBps : null);
    columns[name] = c;
  }
  // The dd reference exists even when plain itself was not among the setups.
  if (fill && !columns.plain) columns.plain = { available: true, createFillMBps: fill.ddMBps };
  const all = rss.peakBytes();
  return { columns, ceilingMiBps: ceiling?.mibps ?? null, loadStart, loadEnd, peakRssAllMB: all === null ? null : all / 1e6 };
}

process.exitCode = await main();
// Lingering timers (a child's drain grace period) must not keep a finished run alive.
process.exit(process.exitCode);
