/** Issues 14, 15 and 18: the bench's target evaluation and report (bench/lib/report.ts, report-veracrypt.ts), without running anything. */
import { describe, expect, it } from 'vitest';
import {
  checkTransport,
  cliReason,
  contextLine,
  evaluateRouteTargets,
  evaluateTargets,
  mainTable,
  routeTable,
  routeTargetLines,
  targetLines,
  worstTransport,
  type BenchFigures,
  type ColumnFigures,
  type RouteTargetResult,
  type TargetResult,
} from '../../bench/lib/report.js';
import { evaluateVeraCryptTargets, veracryptTable, veracryptTargetLines, type VeraCryptTargetResult } from '../../bench/lib/report-veracrypt.js';

const ok = (t: 'classic' | 'io_uring') => checkTransport(t, t);

function vault(t: 'classic' | 'io_uring', o: Partial<ColumnFigures> = {}): ColumnFigures {
  return {
    available: true,
    transport: ok(t),
    multiTransport: ok(t),
    seqWriteMiBps: 300,
    seqReadMiBps: 600,
    randReadIops: 20_000,
    randWriteIops: 20_000,
    mountMs: 150,
    peakRssMB: 80,
    multiWriteMiBps: 250,
    multiReadMiBps: 500,
    createFillMBps: 250,
    ...o,
  };
}

function figures(o: Partial<BenchFigures> = {}, cols: BenchFigures['columns'] = {}): BenchFigures {
  return {
    ceilingMiBps: 2000,
    loadStart: [0.5, 0.25, 0.125],
    loadEnd: [1.5, 1, 0.75],
    peakRssAllMB: 80,
    columns: {
      plain: { available: true, seqWriteMiBps: 350, seqReadMiBps: 800, randReadIops: 30_000, randWriteIops: 36_000, mountMs: 15, multiWriteMiBps: 300, multiReadMiBps: 700, createFillMBps: 340 },
      'vault-classic': vault('classic'),
      'vault-io_uring': vault('io_uring'),
      gocryptfs: { available: true, seqWriteMiBps: 140, seqReadMiBps: 350, randReadIops: 10_000, randWriteIops: 4_000, mountMs: 30, peakRssMB: 27 },
      ...cols,
    },
    ...o,
  };
}

const find = (rs: TargetResult[], id: string, t: 'classic' | 'io_uring'): TargetResult => {
  const r = rs.find((x) => x.id === id && x.transport === t);
  if (!r) throw new Error(`no result ${id}/${t}`);
  return r;
};

describe('transport verification', () => {
  it('verifies a match, flags a mismatch and a missing field', () => {
    expect(checkTransport('io_uring', 'io_uring').status).toBe('verified');
    expect(checkTransport('io_uring', 'classic')).toEqual({ requested: 'io_uring', reported: 'classic', status: 'MISMATCH!' });
    expect(checkTransport('classic', undefined)).toEqual({ requested: 'classic', reported: null, status: 'UNVERIFIED!' });
    expect(checkTransport('classic', '').status).toBe('UNVERIFIED!');
  });
  it('cuts a failed vault command down to the CLI\'s reason', () => {
    const msg =
      '`/usr/bin/node /x/dist/src/cli/main.js mount /v.vol /mnt --password-stdin` failed (exit code 7): ' +
      'vault: FUSE mount failed: FUSE over io_uring is not available in this build of vault | hint: see /run/vault-bench/1/ab/server.log';
    expect(cliReason(msg)).toBe('FUSE mount failed: FUSE over io_uring is not available in this build of vault (exit code 7)');
    expect(cliReason('something else entirely')).toBe('something else entirely');
  });
  it('a mismatch among several volumes wins over verified ones', () => {
    expect(worstTransport([ok('classic'), checkTransport('classic', 'io_uring'), checkTransport('classic', null)])?.status).toBe('MISMATCH!');
    expect(worstTransport([ok('classic'), checkTransport('classic', null)])?.status).toBe('UNVERIFIED!');
    expect(worstTransport([])).toBeNull();
  });
});

describe('targets', () => {
  it('sequential read is judged against min(plain, ceiling)', () => {
    // Ceiling below plain: the ceiling is the reference.
    const low = evaluateTargets(figures({ ceilingMiBps: 500 }));
    const r = find(low, 'seq-read', 'classic');
    expect(r.reference).toBe(500);
    expect(r.ratio).toBeCloseTo(600 / 500);
    expect(r.verdict).toBe('met');
    // Ceiling above plain: plain is; 600/800 = 0.75 ≥ 0.7.
    const high = find(evaluateTargets(figures({ ceilingMiBps: 5000 })), 'seq-read', 'classic');
    expect(high.reference).toBe(800);
    expect(high.verdict).toBe('met');
    // 0.69 × is missed, not rounded up.
    const miss = find(evaluateTargets(figures({}, { 'vault-classic': vault('classic', { seqReadMiBps: 0.69 * 800 }) })), 'seq-read', 'classic');
    expect(miss.verdict).toBe('MISSED');
    // Without a ceiling there is no verdict.
    const none = find(evaluateTargets(figures({ ceilingMiBps: null })), 'seq-read', 'classic');
    expect(none.verdict).toBe('n/a');
    expect(none.why).toMatch(/ceiling/);
  });

  it('applies each threshold at its boundary', () => {
    const rs = evaluateTargets(
      figures({}, {
        'vault-classic': vault('classic', { seqWriteMiBps: 280, randReadIops: 15_000, randWriteIops: 17_999, mountMs: 200, peakRssMB: 100, createFillMBps: 0.7 * 340 }),
      }),
    );
    expect(find(rs, 'seq-write-plain', 'classic').verdict).toBe('met'); // 280/350 = 0.8 exactly
    expect(find(rs, 'seq-write-gocryptfs', 'classic').verdict).toBe('met'); // 280/140 = 2 exactly
    expect(find(rs, 'rand-read', 'classic').verdict).toBe('met'); // 0.5 exactly
    expect(find(rs, 'rand-write', 'classic').verdict).toBe('MISSED'); // 17999/36000 < 0.5
    expect(find(rs, 'mount', 'classic').verdict).toBe('met'); // ≤ 200
    expect(find(rs, 'rss', 'classic').verdict).toBe('MISSED'); // < 100 is strict
    expect(find(rs, 'create-fill', 'classic').verdict).toBe('met');
    const slow = find(evaluateTargets(figures({}, { 'vault-classic': vault('classic', { mountMs: 201 }) })), 'mount', 'classic');
    expect(slow.verdict).toBe('MISSED');
  });

  it('an unavailable setup gives n/a with its reason, and the other transport is still judged', () => {
    const rs = evaluateTargets(figures({}, { 'vault-io_uring': { available: false, unavailable: 'ERR_VAULT_NO_IO_URING: not in this build' } }));
    const u = rs.filter((r) => r.transport === 'io_uring');
    expect(u.length).toBeGreaterThan(5);
    for (const r of u) {
      expect(r.verdict).toBe('n/a');
      expect(r.why).toContain('ERR_VAULT_NO_IO_URING');
    }
    expect(rs.filter((r) => r.transport === 'classic').every((r) => r.verdict === 'met')).toBe(true);
  });

  it('a figure from a volume on the wrong transport does not count', () => {
    const rs = evaluateTargets(figures({}, { 'vault-io_uring': vault('io_uring', { transport: checkTransport('io_uring', 'classic') }) }));
    const r = find(rs, 'seq-write-plain', 'io_uring');
    expect(r.verdict).toBe('n/a');
    expect(r.why).toMatch(/^MISMATCH!/);
    expect(r.value).toBe(300); // still reported
    // The create fill runs no server: its figure does not depend on the transport.
    expect(find(rs, 'create-fill', 'io_uring').verdict).toBe('met');
    // Peak RSS also covers the 8-volume phase: a mismatch there taints it.
    const multi = evaluateTargets(figures({}, { 'vault-classic': vault('classic', { multiTransport: checkTransport('classic', null) }) }));
    expect(find(multi, 'rss', 'classic').why).toMatch(/^UNVERIFIED!/);
  });

  it('a missing reference is n/a, not met', () => {
    const cols = figures().columns;
    delete cols.gocryptfs;
    const r = find(evaluateTargets(figures()), 'seq-write-gocryptfs', 'classic');
    expect(r.verdict).toBe('met');
    const without = evaluateTargets({ ...figures(), columns: cols });
    expect(find(without, 'seq-write-gocryptfs', 'classic')).toMatchObject({ verdict: 'n/a', why: 'no gocryptfs figure' });
  });
});

describe('report text', () => {
  it('prints the transport beside every vault figure, MISSED for a miss, and the context', () => {
    const f = figures({}, {
      'vault-classic': vault('classic', { seqWriteMiBps: 100 }),
      'vault-io_uring': { available: false, unavailable: 'FUSE over io_uring is not available in this build of vault' },
    });
    const table = mainTable(f);
    const lines = table.split('\n');
    const seqw = lines.find((l) => l.startsWith('| sequential write, MiB/s '))!;
    expect(seqw).toContain('100.0 [classic]');
    expect(seqw).toContain('unavailable');
    expect(seqw).toContain('classic MISSED');
    expect(seqw).toContain('io_uring unavailable');
    expect(seqw).toContain('classic 0.29×');
    // Every vault figure cell carries a transport label (or says it runs no server).
    const cells = lines.slice(2).map((l) => l.split('|').map((c) => c.trim())[3]!); // ['', metric, plain, vault classic, …]
    for (const c of cells) expect(c).toMatch(/\[(classic|no server)\]$/);
    const ctx = contextLine(f);
    expect(ctx).toContain('load average at start 0.50 0.25 0.13, at end 1.50 1.00 0.75');
    expect(ctx).toContain('ceiling (1 core, AES-256-XTS decrypt, 1 MiB buffers, native addon) 2000 MiB/s');
    expect(ctx).toContain('vault io_uring: unavailable (FUSE over io_uring is not available in this build of vault)');
    expect(contextLine({ ...f, ceilingMiBps: null })).toContain('NOT MEASURED');
  });

  it('flags a mismatched transport loudly in the table and in the target lines', () => {
    const f = figures({}, { 'vault-io_uring': vault('io_uring', { transport: checkTransport('io_uring', 'classic') }) });
    const table = mainTable(f);
    expect(table).toContain('[MISMATCH! asked io_uring, got classic]');
    expect(table).toContain('io_uring MISMATCH!');
    const tl = targetLines(evaluateTargets(f));
    expect(tl.some((l) => l.startsWith('MISMATCH!') && l.includes('io_uring'))).toBe(true);
    expect(tl.filter((l) => l.startsWith('met')).length).toBeGreaterThan(0);
  });

  it('gives the 8-volume rows a ratio against 8 plain loops', () => {
    const row = mainTable(figures()).split('\n').find((l) => l.includes('8 volumes at once: read'))!;
    expect(row).toContain('classic 0.71×'); // 500 / 700
    expect(row).toContain('report (vs plain)');
  });
});

describe('issue 15: the rootless routes against the root route', () => {
  // The root route (vault classic, from vault('classic')): 300 write, 600 read, 20k/20k IOPS, 250/500 ×8.
  const withRoutes = (udisks: Partial<ColumnFigures> = {}, fuse2fs: Partial<ColumnFigures> = {}, o: Partial<BenchFigures> = {}): BenchFigures =>
    figures(o, {
      'vault-udisks': vault('classic', { seqWriteMiBps: 270, seqReadMiBps: 540, randReadIops: 18_000, randWriteIops: 18_000, multiWriteMiBps: 225, multiReadMiBps: 450, ...udisks }),
      'vault-fuse2fs': vault('classic', { seqWriteMiBps: 90, seqReadMiBps: 180, randReadIops: 6_000, randWriteIops: 6_000, multiWriteMiBps: 75, multiReadMiBps: 150, ...fuse2fs }),
    });
  const get = (rs: RouteTargetResult[], id: string, route: 'udisks' | 'fuse2fs'): RouteTargetResult => {
    const r = rs.find((x) => x.id === id && x.route === route);
    if (!r) throw new Error(`no result ${id}/${route}`);
    return r;
  };

  it('judges every workload of each route against vault classic: udisks ≥ 0.9×, fuse2fs ≥ 0.3×, boundaries included', () => {
    const rs = evaluateRouteTargets(withRoutes());
    expect(rs).toHaveLength(12); // 6 workloads × 2 routes
    for (const r of rs) expect(r.verdict, `${r.route} ${r.id}`).toBe('met');
    const seqw = get(rs, 'seq-write', 'udisks');
    expect(seqw).toMatchObject({ value: 270, reference: 300, min: 0.9 });
    expect(seqw.ratio).toBeCloseTo(0.9);
    expect(get(rs, 'multi-read', 'fuse2fs').ratio).toBeCloseTo(0.3);
    // Just under: missed, not rounded up.
    const miss = evaluateRouteTargets(withRoutes({ randReadIops: 17_999 }, { randWriteIops: 5_999 }));
    expect(get(miss, 'rand-read', 'udisks').verdict).toBe('MISSED');
    expect(get(miss, 'rand-write', 'fuse2fs').verdict).toBe('MISSED');
    expect(get(miss, 'rand-write', 'udisks').verdict).toBe('met');
  });

  it('without the root route, or with a route that could not run, nothing is met', () => {
    const f = withRoutes();
    delete f.columns['vault-classic'];
    for (const r of evaluateRouteTargets(f)) expect(r).toMatchObject({ verdict: 'n/a', why: 'no root route figure (vault-classic not run)' });
    const un = evaluateRouteTargets(figures({}, { 'vault-udisks': { available: false, unavailable: 'udisksd is not running' } }));
    expect(un).toHaveLength(6); // fuse2fs not run: no rows for it
    for (const r of un) expect(r).toMatchObject({ route: 'udisks', verdict: 'n/a', why: 'unavailable: udisksd is not running' });
  });

  it('a figure from a volume on another transport than the root route\'s does not count', () => {
    const rs = evaluateRouteTargets(withRoutes({ transport: checkTransport('classic', 'io_uring') }));
    const r = get(rs, 'seq-read', 'udisks');
    expect(r.verdict).toBe('n/a');
    expect(r.why).toMatch(/^MISMATCH!/);
    expect(r.ratio).toBeCloseTo(0.9); // still shown
    // The 8-volume rows are judged by the 8 volumes' transport.
    expect(get(rs, 'multi-read', 'udisks').verdict).toBe('met');
    const root = evaluateRouteTargets({ ...withRoutes(), columns: { ...withRoutes().columns, 'vault-classic': vault('classic', { transport: checkTransport('classic', null) }) } });
    expect(get(root, 'seq-read', 'fuse2fs').why).toMatch(/^root route: UNVERIFIED!/);
  });

  it('prints the route table, the target lines and the routes in the main table and the context line', () => {
    const f = withRoutes({ randWriteIops: 5_000 });
    const rs = evaluateRouteTargets(f);
    const table = routeTable(f, rs);
    const lines = table.split('\n');
    expect(lines[0]!.split('|').map((c) => c.trim()).filter(Boolean)).toEqual([
      'workload', 'root (vault classic)', 'udisks', 'udisks ÷ root', 'target', 'met', 'fuse2fs', 'fuse2fs ÷ root', 'target', 'met',
    ]);
    const rw = lines.find((l) => l.startsWith('| random write 4 KiB QD16, IOPS'))!;
    expect(rw).toContain('5000 [classic]');
    expect(rw).toContain('0.25×');
    expect(rw).toContain('≥ 0.9 × root');
    expect(rw).toContain('MISSED');
    expect(rw).toContain('≥ 0.3 × root');
    expect(lines.find((l) => l.startsWith('| sequential read'))).toMatch(/0\.90× \|.*met \|.*0\.30× \|.*met \|$/);
    const tl = routeTargetLines(rs);
    expect(tl.filter((l) => l.startsWith('MISSED'))).toEqual(['MISSED      udisks   random write 4 KiB QD16, IOPS ≥ 0.9 × root route: 5000 = 0.250× of 20000']);
    expect(tl.filter((l) => l.startsWith('met'))).toHaveLength(11);

    const main = mainTable(f).split('\n');
    expect(main[0]).toContain('vault udisks');
    expect(main[0]).toContain('vault fuse2fs');
    const fill = main.find((l) => l.startsWith('| create 512 MiB'))!.split('|').map((c) => c.trim());
    expect(fill.slice(5, 7)).toEqual(['–', '–']); // the routes make no container of their own for it
    expect(contextLine(f)).toContain('rootless routes (as a user): udisks [classic]; fuse2fs [classic]');
    const un = contextLine(figures({}, { 'vault-fuse2fs': { available: false, unavailable: 'fuse2fs missing' } }));
    expect(un).toContain('fuse2fs: unavailable (fuse2fs missing)');
    expect(routeTable(figures({}, { 'vault-fuse2fs': { available: false, unavailable: 'x' } }))).toContain('unavailable');
  });
});

describe('issue 18: a VeraCrypt volume against a vault container', () => {
  // vault classic (from vault('classic')): 300 MiB/s write, 600 MiB/s read.
  const withVc = (vc: Partial<ColumnFigures> = {}, o: Partial<BenchFigures> = {}): BenchFigures =>
    figures(o, { veracrypt: vault('classic', { seqWriteMiBps: 270, seqReadMiBps: 540, ...vc }) });
  const get = (rs: VeraCryptTargetResult[], id: string): VeraCryptTargetResult => {
    const r = rs.find((x) => x.id === id);
    if (!r) throw new Error(`no result ${id}`);
    return r;
  };

  it('judges sequential read and write against vault classic, ≥ 0.9× met at the boundary and missed just under', () => {
    const rs = evaluateVeraCryptTargets(withVc());
    expect(rs.map((r) => r.id)).toEqual(['seq-read', 'seq-write']);
    expect(get(rs, 'seq-read')).toMatchObject({ value: 540, reference: 600, min: 0.9, verdict: 'met' });
    expect(get(rs, 'seq-write').ratio).toBeCloseTo(0.9);
    const miss = evaluateVeraCryptTargets(withVc({ seqReadMiBps: 539.9 }));
    expect(get(miss, 'seq-read').verdict).toBe('MISSED');
    expect(get(miss, 'seq-write').verdict).toBe('met');
    // Not run: no rows at all; run without its reference: n/a with the reason.
    expect(evaluateVeraCryptTargets(figures())).toEqual([]);
    const f = withVc();
    delete f.columns['vault-classic'];
    for (const r of evaluateVeraCryptTargets(f)) expect(r).toMatchObject({ verdict: 'n/a', why: 'no vault classic figure (vault-classic not run)' });
    const un = evaluateVeraCryptTargets(figures({}, { veracrypt: { available: false, unavailable: 'setup failed' } }));
    for (const r of un) expect(r).toMatchObject({ verdict: 'n/a', why: 'unavailable: setup failed' });
  });

  it('a figure from another transport than vault classic\'s does not count, on either side', () => {
    const mine = get(evaluateVeraCryptTargets(withVc({ transport: checkTransport('classic', 'io_uring') })), 'seq-read');
    expect(mine).toMatchObject({ verdict: 'n/a' });
    expect(mine.why).toMatch(/^MISMATCH!/);
    expect(mine.ratio).toBeCloseTo(0.9);
    const theirs = withVc();
    theirs.columns['vault-classic'] = vault('classic', { transport: checkTransport('classic', null) });
    expect(get(evaluateVeraCryptTargets(theirs), 'seq-write').why).toMatch(/^vault classic: UNVERIFIED!/);
  });

  it('prints its table, target lines, main-table column and context', () => {
    const f = withVc({ seqWriteMiBps: 150 });
    const rs = evaluateVeraCryptTargets(f);
    const lines = veracryptTable(f, rs).split('\n');
    expect(lines[0]!.split('|').map((c) => c.trim()).filter(Boolean)).toEqual(['workload', 'vault classic', 'veracrypt', 'veracrypt ÷ vault', 'target', 'met']);
    const w = lines.find((l) => l.startsWith('| sequential write'))!;
    expect(w).toMatch(/300\.0 \[classic\] \| +150\.0 \[classic\] \| +0\.50× \| ≥ 0\.9 × vault \| MISSED \|$/);
    expect(lines.find((l) => l.startsWith('| sequential read'))).toMatch(/0\.90× \| ≥ 0\.9 × vault \| +met \|$/);
    expect(veracryptTargetLines(rs)).toEqual([
      'met         veracrypt sequential read (cold), MiB/s ≥ 0.9 × vault classic: 540.0 = 0.900× of 600.0',
      'MISSED      veracrypt sequential write, MiB/s ≥ 0.9 × vault classic: 150.0 = 0.500× of 300.0',
    ]);
    const main = mainTable(f).split('\n');
    const header = main[0]!.split('|').map((c) => c.trim());
    const at = header.indexOf('veracrypt');
    expect(at).toBeGreaterThan(header.indexOf('vault io_uring'));
    const cells = (label: string) => main.find((l) => l.startsWith(`| ${label}`))!.split('|').map((c) => c.trim());
    expect(cells('sequential write, MiB/s ')[at]).toBe('150.0 [classic]');
    expect(cells('create 512 MiB')[at]).toBe('–'); // the fill is of a vault container
    expect(contextLine(f)).toContain('| veracrypt [classic] |');
  });
});
