/**
 * The long exerciser run (issue 20), outside vitest: `npm run soak -- [options]`.
 *
 * For each combination of transport (classic, io_uring) and route (root; udisks, the rootless one
 * through udisksd and polkit), on a fresh container each: fsx (1,000,000 operations) and fsstress
 * (8 workers for 10 minutes), each followed by `e2fsck -fn` on the plaintext, which must be clean.
 * The own tools (test/torture/*.c) are built for the run; with XFSTESTS_DIR set, xfstests'
 * $XFSTESTS_DIR/ltp/fsx and ltp/fsstress run instead. Prints a table (combo, tool, ops, time,
 * result) on stdout; exits 1 when anything failed.
 *
 *   --combos classic/root,io_uring/root,classic/udisks,io_uring/udisks   (default: all four)
 *   --tools fsx,fsstress   --fsx-ops N   --fsstress-procs N   --fsstress-seconds S
 *   --seed N   --size-mib N (each container; default 1024)
 *
 * State: VAULT_RUN_DIR (default /run/vault-soak) for root's volumes; a temp dir /tmp/vault-soak-*.
 * Everything made is undone at the end, after a failure, and after Ctrl-C.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CleanupStack, installSignalHandlers } from '../../bench/lib/cleanup.js';
import { progress } from '../../bench/lib/log.js';
import { Rootless } from '../../bench/lib/rootless.js';
import { VaultCli } from '../../bench/lib/vault.js';
import { fuseOverIoUring, setFuseOverIoUring } from '../../src/system/capabilities.js';
import { fsstressSession, fsxSession, type SessionResult } from './sessions.js';
import { buildOwnTools, xfstestsTools } from './tools.js';
import { TortureVolume, type Route, type Transport } from './volume.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const ALL_COMBOS = ['classic/root', 'io_uring/root', 'classic/udisks', 'io_uring/udisks'];

interface Options {
  combos: { transport: Transport; route: Route }[];
  tools: ('fsx' | 'fsstress')[];
  fsxOps: number;
  procs: number;
  seconds: number;
  seed: number;
  sizeMiB: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { combos: [], tools: ['fsx', 'fsstress'], fsxOps: 1_000_000, procs: 8, seconds: 600, seed: Date.now() % 1_000_000, sizeMiB: 1024 };
  let combos = ALL_COMBOS;
  const num = (k: string, v: string | undefined) => {
    if (!v || !/^\d+$/.test(v)) throw new Error(`${k} needs a whole number`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (k === '--combos') combos = (v ?? '').split(',');
    else if (k === '--tools') o.tools = (v ?? '').split(',') as Options['tools'];
    else if (k === '--fsx-ops') o.fsxOps = num(k, v);
    else if (k === '--fsstress-procs') o.procs = num(k, v);
    else if (k === '--fsstress-seconds') o.seconds = num(k, v);
    else if (k === '--seed') o.seed = num(k, v);
    else if (k === '--size-mib') o.sizeMiB = num(k, v);
    else throw new Error(`unknown option ${k} (see test/torture/soak.ts for the options)`);
  }
  for (const c of combos) {
    if (!ALL_COMBOS.includes(c)) throw new Error(`--combos: ${c} is not one of ${ALL_COMBOS.join(', ')}`);
    const [transport, route] = c.split('/') as [Transport, Route];
    o.combos.push({ transport, route });
  }
  for (const t of o.tools) if (t !== 'fsx' && t !== 'fsstress') throw new Error(`--tools: ${t} is neither fsx nor fsstress`);
  return o;
}

interface Row {
  combo: string;
  tool: string;
  ops: string;
  seconds: string;
  result: string;
}

function printTable(rows: Row[]): void {
  const head: Row = { combo: 'combo', tool: 'tool', ops: 'ops', seconds: 'time (s)', result: 'result' };
  const keys = Object.keys(head) as (keyof Row)[];
  const w = keys.map((k) => Math.max(...[head, ...rows].map((r) => r[k].length)));
  const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(w[i]!)).join(' | ')} |`;
  console.log([line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('npm run soak needs root (it mounts volumes and runs e2fsck)');
  const interrupted = installSignalHandlers();
  const cleanup = new CleanupStack();
  const rows: Row[] = [];
  let failed = false;
  try {
    const work = mkdtempSync('/tmp/vault-soak-');
    cleanup.push(`remove ${work}`, async () => rmSync(work, { recursive: true, force: true }));
    const own = buildOwnTools(work);
    const xfs = process.env['XFSTESTS_DIR'];
    const tools = xfs ? xfstestsTools(xfs) : own;
    progress(`tools: ${tools.kind} (${tools.fsx}, ${tools.fsstress}); seed ${o.seed}`);
    const rootCli = new VaultCli(CLI, process.env['VAULT_RUN_DIR'] ?? '/run/vault-soak');
    const rootless = o.combos.some((c) => c.route === 'udisks') ? await Rootless.start(cleanup, CLI, work) : undefined;
    const uringWas = fuseOverIoUring();
    if (uringWas !== 'absent') cleanup.push('put enable_uring back', async () => setFuseOverIoUring(uringWas === 'on'));
    for (const { transport, route } of o.combos) {
      for (const tool of o.tools) {
        if (interrupted()) break;
        const combo = `${transport}/${route}`;
        if (transport === 'io_uring') {
          if (uringWas === 'absent') {
            rows.push({ combo, tool, ops: '-', seconds: '-', result: 'not run: this kernel has no FUSE over io_uring' });
            continue;
          }
          setFuseOverIoUring(true);
        }
        const dir = path.join(work, `${transport}-${route}-${tool}`);
        mkdirSync(dir);
        progress(`${combo} ${tool}: creating a ${o.sizeMiB} MiB container`);
        const vol = await TortureVolume.create({ route, transport, dir, sizeBytes: o.sizeMiB << 20, rootCli, ...(rootless ? { rootless } : {}) });
        const undo = cleanup.push(`dismount ${vol.container}`, () => vol.dismount());
        progress(`${combo} ${tool}: running`);
        let r: SessionResult;
        try {
          r =
            tool === 'fsx'
              ? await fsxSession(vol, tools, own.fsx, { ops: o.fsxOps, seed: o.seed, maxLen: 1 << 20, maxOpLen: 128 << 10, direct: tools.kind === 'own', workDir: dir, timeoutMs: 6 * 3600_000 })
              : await fsstressSession(vol, tools, { procs: o.procs, seconds: o.seconds, seed: o.seed, maxSize: 1 << 20 });
        } catch (e) {
          r = { tool, passed: false, ops: null, seconds: 0, commands: [], counts: {}, failure: (e as Error).message };
        }
        await undo.run();
        rmSync(vol.container, { force: true });
        failed ||= !r.passed;
        const result = r.passed ? 'passed, e2fsck clean' : `FAILED: ${r.failure.split('\n')[0]}`;
        // fsstress's ops count every attempt; how many succeeded (the rest met an expected error) beside it.
        const succeeded = tool === 'fsstress' && Object.keys(r.counts).length ? ` (${Object.values(r.counts).reduce((a, b) => a + b, 0)} ok)` : '';
        rows.push({ combo, tool: `${tools.kind} ${tool}`, ops: r.ops === null ? 'n/a' : `${r.ops}${succeeded}`, seconds: r.seconds.toFixed(0), result });
        progress(`${combo} ${tool}: ${result} (${r.ops ?? 'n/a'} ops, ${r.seconds.toFixed(0)} s)`);
        for (const c of r.commands) progress(`  ran: ${c}`);
        if (Object.keys(r.counts).length) progress(`  counts: ${Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
        if (!r.passed) progress(r.failure);
      }
    }
  } finally {
    const errs = await cleanup.runAll();
    if (errs.length) {
      failed = true;
      for (const e of errs) progress(`cleanup failed: ${e}`);
    }
  }
  printTable(rows);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`soak: ${(e as Error).message}`);
    process.exit(2);
  },
);
