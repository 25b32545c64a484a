/**
 * Issue 14's targets, issue 15's (the rootless routes against the root route), and the tables that
 * show them. Pure: figures in, verdicts and text out, no I/O (test/unit/bench-report.test.ts
 * checks it).
 *
 * Columns: plain (loop on a plain file), vault over each FUSE transport (classic /dev/fuse and
 * io_uring), gocryptfs. Every vault figure is printed with the transport the volume really got
 * (`vault list --json`): a volume that was asked for io_uring and got classic is shown as
 * MISMATCH!, one whose transport could not be read as UNVERIFIED!, and neither counts as met.
 * A setup that could not run (io_uring on a kernel or build without it) is "unavailable" with the
 * reason, never a crash and never a silent gap. A target that is missed is printed as MISSED.
 *
 * Issue 15's columns, vault-udisks and vault-fuse2fs, are volumes an ordinary user mounted through
 * each route (udisksd's loop device and kernel ext4; fuse2fs on the block file), served on the same
 * transport as the root route they are compared with (vault-classic): every workload's figure ÷
 * the root route's, against 0.9 (udisks) and 0.3 (fuse2fs).
 *
 * Issue 18's column, veracrypt, is a VeraCrypt volume vault made and mounted as root over the
 * classic transport, the same path as vault-classic's; its sequential read and write are judged
 * against vault-classic's in report-veracrypt.ts, with judgeAgainst below, as the routes are.
 */

export const VAULT_TRANSPORTS = ['classic', 'io_uring'] as const;
export type Transport = (typeof VAULT_TRANSPORTS)[number];
export const COLUMNS = ['plain', 'vault-classic', 'vault-io_uring', 'vault-udisks', 'vault-fuse2fs', 'veracrypt', 'gocryptfs'] as const;
export type Column = (typeof COLUMNS)[number];
export type VaultColumn = `vault-${Transport}`;

export const vaultColumn = (t: Transport): VaultColumn => `vault-${t}`;

/** Issue 15's routes for an ordinary user, each a column of its own. */
export const ROOTLESS_ROUTES = ['udisks', 'fuse2fs'] as const;
export type RootlessRoute = (typeof ROOTLESS_ROUTES)[number];
export type RouteColumn = `vault-${RootlessRoute}`;
export const routeColumn = (r: RootlessRoute): RouteColumn => `vault-${r}`;
/** The root route the rootless ones are judged against, and the transport all three use. */
export const ROOT_ROUTE_COLUMN: VaultColumn = 'vault-classic';
export const ROUTE_TRANSPORT: Transport = 'classic';
/** Issue 18's VeraCrypt volume is served as the root route's is: the same transport. */
export const VERACRYPT_TRANSPORT: Transport = 'classic';
/** Issue 15: "the udisks route ≥ 0.9× the root route on every workload; the fuse2fs route ≥ 0.3×." */
export const ROUTE_MIN: Record<RootlessRoute, number> = { udisks: 0.9, fuse2fs: 0.3 };

export interface TransportCheck {
  requested: Transport;
  /** What `vault list --json` said (field `transport`); null when it said nothing. */
  reported: string | null;
  status: 'verified' | 'MISMATCH!' | 'UNVERIFIED!';
}

/** Compares the transport asked for with the one the volume record reports. */
export function checkTransport(requested: Transport, reported: unknown): TransportCheck {
  if (typeof reported !== 'string' || reported === '') return { requested, reported: null, status: 'UNVERIFIED!' };
  return { requested, reported, status: reported === requested ? 'verified' : 'MISMATCH!' };
}

/**
 * The CLI's own words from a failed command's description (describeFailure in proc.ts):
 * "`…` failed (exit code 7): vault: FUSE mount failed: … | hint: see …" → "FUSE mount failed: … (exit code 7)".
 */
export function cliReason(message: string): string {
  const m = /failed \(([^)]*)\): (?:vault: )?(.*?)(?: \| hint:.*)?$/s.exec(message);
  return m ? `${m[2]!.trim()} (${m[1]})` : message;
}

/** Merges the checks of several volumes of one setup: any mismatch wins, then any unverified. */
export function worstTransport(checks: readonly TransportCheck[]): TransportCheck | null {
  if (checks.length === 0) return null;
  return checks.find((c) => c.status === 'MISMATCH!') ?? checks.find((c) => c.status === 'UNVERIFIED!') ?? checks[0]!;
}

/** The figures of one column. Throughputs in MiB/s (create fill in MB/s, as dd prints), times in ms. */
export interface ColumnFigures {
  /** False: the setup could not run at all (then `unavailable` says why). */
  available: boolean;
  unavailable?: string;
  /** A step failed part-way; the figures measured before it are kept. */
  error?: string;
  transport?: TransportCheck | null;
  seqWriteMiBps?: number;
  seqReadMiBps?: number;
  randReadIops?: number;
  randWriteIops?: number;
  /** Median wall-clock mount time (plain: losetup + mount; vault: `vault mount`, fast KDF). */
  mountMs?: number;
  mountSamplesMs?: number[];
  /** Peak VmHWM of the user-space server(s) of this column through the whole bench. */
  peakRssMB?: number;
  /** 8 volumes of this setup mounted at once, loaded at once: aggregate MiB/s. */
  multiWriteMiBps?: number;
  multiReadMiBps?: number;
  multiTransport?: TransportCheck | null;
  /** plain: dd conv=fsync of 512 MiB; vault: `vault create --fs none` of 512 MiB with a full random fill. MB/s. */
  createFillMBps?: number;
}

export interface BenchFigures {
  columns: Partial<Record<Column, ColumnFigures>>;
  /** One core, AES-256-XTS decryption of 1 MiB buffers through the native addon, MiB/s. */
  ceilingMiBps: number | null;
  /** 1, 5, 15-minute load averages. */
  loadStart: number[];
  loadEnd: number[];
  /** Highest VmHWM of any vault server this run started, whole bench (MB). */
  peakRssAllMB: number | null;
}

export type Verdict = 'met' | 'MISSED' | 'n/a';

export interface TargetResult {
  id: string;
  /** The target as the issue states it. */
  target: string;
  transport: Transport;
  value: number | null;
  reference: number | null;
  /** value ÷ reference (null for absolute targets). */
  ratio: number | null;
  verdict: Verdict;
  /** Why n/a, or the transport warning (MISMATCH!/UNVERIFIED!) that keeps a figure from counting. */
  why?: string;
}

export const RSS_LIMIT_MB = 100;
export const MOUNT_LIMIT_MS = 200;

type Key = 'seqWriteMiBps' | 'seqReadMiBps' | 'randReadIops' | 'randWriteIops' | 'mountMs' | 'peakRssMB' | 'multiWriteMiBps' | 'multiReadMiBps' | 'createFillMBps';

interface TargetDef {
  id: string;
  target: string;
  key: Key;
  /** The reference figure (null: none could be formed), or an absolute limit. */
  ref: (f: BenchFigures) => { value: number | null; why?: string };
  /** Relative: ratio ≥ min. Absolute: value < or ≤ the limit. */
  kind: { relative: number } | { below: number } | { atMost: number };
  /** Whether the transport matters for this figure (create with --fs none runs no server). */
  perTransport: boolean;
}

/** A column's figure, or null when the column did not run, could not, or has no finite figure. */
export const col = (f: BenchFigures, c: Column, k: Key): number | null => {
  const v = f.columns[c];
  return v && v.available && typeof v[k] === 'number' && Number.isFinite(v[k]) ? (v[k] as number) : null;
};

export const TARGETS: TargetDef[] = [
  {
    id: 'seq-read',
    target: 'sequential read ≥ 0.7 × min(plain, ceiling)',
    key: 'seqReadMiBps',
    ref: (f) => {
      const plain = col(f, 'plain', 'seqReadMiBps');
      if (plain === null) return { value: null, why: 'no plain figure' };
      if (f.ceilingMiBps === null) return { value: null, why: 'ceiling not measured' };
      return { value: Math.min(plain, f.ceilingMiBps) };
    },
    kind: { relative: 0.7 },
    perTransport: true,
  },
  { id: 'seq-write-plain', target: 'sequential write ≥ 0.8 × plain', key: 'seqWriteMiBps', ref: (f) => refOf(f, 'plain', 'seqWriteMiBps'), kind: { relative: 0.8 }, perTransport: true },
  { id: 'seq-write-gocryptfs', target: 'sequential write ≥ 2 × gocryptfs', key: 'seqWriteMiBps', ref: (f) => refOf(f, 'gocryptfs', 'seqWriteMiBps'), kind: { relative: 2 }, perTransport: true },
  { id: 'rand-read', target: '4 KiB random read ≥ 0.5 × plain', key: 'randReadIops', ref: (f) => refOf(f, 'plain', 'randReadIops'), kind: { relative: 0.5 }, perTransport: true },
  { id: 'rand-write', target: '4 KiB random write ≥ 0.5 × plain', key: 'randWriteIops', ref: (f) => refOf(f, 'plain', 'randWriteIops'), kind: { relative: 0.5 }, perTransport: true },
  { id: 'rss', target: `server peak RSS < ${RSS_LIMIT_MB} MB (whole bench, 8 volumes included)`, key: 'peakRssMB', ref: () => ({ value: RSS_LIMIT_MB }), kind: { below: RSS_LIMIT_MB }, perTransport: true },
  {
    id: 'create-fill',
    target: 'create, full random fill ≥ 0.7 × plain sequential write (dd conv=fsync)',
    key: 'createFillMBps',
    ref: (f) => refOf(f, 'plain', 'createFillMBps'),
    kind: { relative: 0.7 },
    perTransport: false,
  },
  { id: 'mount', target: `mount without KDF ≤ ${MOUNT_LIMIT_MS} ms`, key: 'mountMs', ref: () => ({ value: MOUNT_LIMIT_MS }), kind: { atMost: MOUNT_LIMIT_MS }, perTransport: true },
];

function refOf(f: BenchFigures, c: Column, k: Key): { value: number | null; why?: string } {
  const v = col(f, c, k);
  return v === null ? { value: null, why: `no ${c} figure` } : { value: v };
}

/** Every target, once per vault transport. */
export function evaluateTargets(f: BenchFigures): TargetResult[] {
  const out: TargetResult[] = [];
  for (const def of TARGETS) {
    for (const t of VAULT_TRANSPORTS) {
      const c = f.columns[vaultColumn(t)];
      const ref = def.ref(f);
      const base = { id: def.id, target: def.target, transport: t, reference: ref.value };
      if (!c) {
        out.push({ ...base, value: null, ratio: null, verdict: 'n/a', why: 'not run' });
        continue;
      }
      if (!c.available) {
        out.push({ ...base, value: null, ratio: null, verdict: 'n/a', why: `unavailable: ${c.unavailable ?? 'unknown reason'}` });
        continue;
      }
      const value = col(f, vaultColumn(t), def.key);
      if (value === null) {
        out.push({ ...base, value: null, ratio: null, verdict: 'n/a', why: c.error ? `not measured (${c.error})` : 'not measured' });
        continue;
      }
      let verdict: Verdict;
      let ratio: number | null = null;
      let why: string | undefined;
      if ('relative' in def.kind) {
        if (ref.value === null || ref.value === 0) {
          out.push({ ...base, value, ratio: null, verdict: 'n/a', why: ref.why ?? 'no reference' });
          continue;
        }
        ratio = value / ref.value;
        verdict = ratio >= def.kind.relative ? 'met' : 'MISSED';
      } else if ('below' in def.kind) {
        verdict = value < def.kind.below ? 'met' : 'MISSED';
      } else {
        verdict = value <= def.kind.atMost ? 'met' : 'MISSED';
      }
      // A figure from a volume that did not (verifiably) use this transport is not this transport's.
      const tc = def.key === 'peakRssMB' ? worstTransport([c.transport, c.multiTransport].filter((x): x is TransportCheck => !!x)) : c.transport;
      if (def.perTransport && (!tc || tc.status !== 'verified')) {
        why = tc ? `${tc.status} asked for ${t}, volume reported ${tc.reported ?? 'nothing'}` : 'UNVERIFIED! transport not read';
        verdict = 'n/a';
      }
      out.push({ ...base, value, ratio, verdict, ...(why ? { why } : {}) });
    }
  }
  return out;
}

// ---- formatting ----

export function renderTable(header: string[], rows: string[][], alignLeft = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number): string => (i < alignLeft ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (cells: string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < alignLeft ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function fmtNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toString() : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export const fmtLoad = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');

/** The label printed beside a vault figure: the transport it really ran on, or the warning. */
export function transportLabel(t: Transport, tc: TransportCheck | null | undefined): string {
  if (!tc) return `[${t} UNVERIFIED!]`;
  if (tc.status === 'verified') return `[${tc.reported}]`;
  if (tc.status === 'MISMATCH!') return `[MISMATCH! asked ${t}, got ${tc.reported}]`;
  return `[${t} UNVERIFIED!]`;
}

interface Row {
  label: string;
  key: Key;
  /** The target this row carries, if any (its id in TARGETS). */
  targetId?: string;
  /** Reference column for the ratio of a row without a target. */
  ratioTo?: Column;
  /** The transport does not matter for this figure. */
  noServer?: boolean;
}

const ROWS: Row[] = [
  { label: 'sequential read (cold), MiB/s', key: 'seqReadMiBps', targetId: 'seq-read' },
  { label: 'sequential write, MiB/s', key: 'seqWriteMiBps', targetId: 'seq-write-plain' },
  { label: 'sequential write, MiB/s (vs gocryptfs)', key: 'seqWriteMiBps', targetId: 'seq-write-gocryptfs' },
  { label: 'random read 4 KiB QD16, IOPS', key: 'randReadIops', targetId: 'rand-read' },
  { label: 'random write 4 KiB QD16, IOPS', key: 'randWriteIops', targetId: 'rand-write' },
  { label: 'server peak RSS, MB', key: 'peakRssMB', targetId: 'rss' },
  { label: '8 volumes at once: write, MiB/s total', key: 'multiWriteMiBps', ratioTo: 'plain' },
  { label: '8 volumes at once: read, MiB/s total', key: 'multiReadMiBps', ratioTo: 'plain' },
  { label: 'create 512 MiB, full fill, MB/s', key: 'createFillMBps', targetId: 'create-fill', noServer: true },
  { label: 'mount without KDF, ms (median)', key: 'mountMs', targetId: 'mount' },
];

function figureCell(f: BenchFigures, c: Column, row: Row): string {
  const v = f.columns[c];
  if (!v) return 'not run';
  if (!v.available) return 'unavailable';
  const x = v[row.key];
  const num = typeof x === 'number' && Number.isFinite(x) ? fmtNumber(x) : 'n/a';
  const t = servedTransport(c);
  if (t === null) return num;
  const own = c === 'vault-classic' || c === 'vault-io_uring';
  // The create fill makes a vault container with no server and no mount: the same for every route.
  if (row.noServer) return own ? `${num} [no server]` : '–';
  const tc = row.key.startsWith('multi') ? v.multiTransport : row.key === 'peakRssMB' ? worstTransport([v.transport, v.multiTransport].filter((y): y is TransportCheck => !!y)) : v.transport;
  return `${num} ${transportLabel(t, tc)}`;
}

const TRANSPORT_SHORT: Record<Transport, string> = { classic: 'classic', io_uring: 'io_uring' };

export function ratioText(r: number | null): string {
  return r === null ? '–' : `${r.toFixed(2)}×`;
}

export function verdictText(r: TargetResult): string {
  if (r.verdict === 'n/a') return r.why?.startsWith('MISMATCH!') ? 'MISMATCH!' : r.why?.startsWith('UNVERIFIED!') ? 'UNVERIFIED!' : r.why?.startsWith('unavailable') ? 'unavailable' : 'n/a';
  return r.verdict;
}

/** The main table: one row per figure, the four columns, then ratio, target and verdict per transport. */
export function mainTable(f: BenchFigures, results: TargetResult[] = evaluateTargets(f)): string {
  const shown = COLUMNS.filter((c) => f.columns[c] !== undefined);
  const header = ['metric', ...shown.map(columnTitle), 'ratio', 'target', 'met'];
  const rows = ROWS.map((row) => {
    const cells = shown.map((c) => figureCell(f, c, row));
    let ratio = '';
    let target = '';
    let met = '';
    const per = (fn: (t: Transport) => string): string =>
      VAULT_TRANSPORTS.filter((t) => f.columns[vaultColumn(t)] !== undefined)
        .map((t) => `${TRANSPORT_SHORT[t]} ${fn(t)}`)
        .join(' · ');
    if (row.targetId) {
      const def = TARGETS.find((d) => d.id === row.targetId)!;
      const rs = results.filter((r) => r.id === row.targetId);
      const byT = (t: Transport): TargetResult | undefined => rs.find((r) => r.transport === t);
      ratio = 'relative' in def.kind ? per((t) => ratioText(byT(t)?.ratio ?? null)) : '–';
      target = targetShort(def, f);
      met = per((t) => {
        const r = byT(t);
        return r ? verdictText(r) : 'n/a';
      });
    } else if (row.ratioTo) {
      const ref = col(f, row.ratioTo, row.key);
      ratio = per((t) => {
        const v = col(f, vaultColumn(t), row.key);
        return ratioText(v !== null && ref !== null && ref !== 0 ? v / ref : null);
      });
      target = `report (vs ${row.ratioTo})`;
      met = '–';
    }
    return [row.label, ...cells, ratio, target, met];
  });
  return renderTable(header, rows);
}

export function columnTitle(c: Column): string {
  return c.startsWith('vault-') ? c.replace('-', ' ') : c;
}

/** The transport a column's vault server is asked for (its figures carry it), or null: not served by vault. */
export function servedTransport(c: Column): Transport | null {
  if (isRouteColumn(c)) return ROUTE_TRANSPORT;
  if (c === 'veracrypt') return VERACRYPT_TRANSPORT;
  return c === 'vault-classic' || c === 'vault-io_uring' ? (c.slice('vault-'.length) as Transport) : null;
}

export function isRouteColumn(c: Column): c is RouteColumn {
  return (ROOTLESS_ROUTES as readonly string[]).some((r) => c === `vault-${r}`);
}

function targetShort(def: TargetDef, f: BenchFigures): string {
  if (def.id === 'seq-read') {
    const ref = def.ref(f).value;
    return `≥ 0.7 × min(plain, ceiling)${ref !== null ? ` = ${fmtNumber(0.7 * ref)}` : ''}`;
  }
  if ('relative' in def.kind) return `≥ ${def.kind.relative} × ${def.id === 'seq-write-gocryptfs' ? 'gocryptfs' : 'plain'}`;
  if ('below' in def.kind) return `< ${def.kind.below}`;
  return `≤ ${def.kind.atMost}`;
}

/** The line printed above and below the table: transports, load at start and end, the ceiling. */
export function contextLine(f: BenchFigures): string {
  const tr = VAULT_TRANSPORTS.filter((t) => f.columns[vaultColumn(t)] !== undefined)
    .map((t) => {
      const c = f.columns[vaultColumn(t)]!;
      return c.available ? `vault ${transportLabel(t, c.transport)}` : `vault ${t}: unavailable (${c.unavailable ?? '?'})`;
    })
    .join('; ');
  const ceiling = f.ceilingMiBps === null ? 'NOT MEASURED' : `${fmtNumber(f.ceilingMiBps)} MiB/s`;
  const routes = ROOTLESS_ROUTES.filter((r) => f.columns[routeColumn(r)] !== undefined)
    .map((r) => {
      const c = f.columns[routeColumn(r)]!;
      return c.available ? `${r} ${transportLabel(ROUTE_TRANSPORT, c.transport)}` : `${r}: unavailable (${c.unavailable ?? '?'})`;
    })
    .join('; ');
  const vc = f.columns.veracrypt;
  const veracrypt = !vc ? '' : ` | veracrypt ${vc.available ? transportLabel(VERACRYPT_TRANSPORT, vc.transport) : `unavailable (${vc.unavailable ?? '?'})`}`;
  return `transports: ${tr || 'no vault setup'}${routes ? ` | rootless routes (as a user): ${routes}` : ''}${veracrypt} | load average at start ${fmtLoad(f.loadStart)}, at end ${fmtLoad(f.loadEnd)} | ceiling (1 core, AES-256-XTS decrypt, 1 MiB buffers, native addon) ${ceiling}`;
}

/** Each target on its own line, for the summary (and for grepping MISSED). */
export function targetLines(results: TargetResult[]): string[] {
  return results.map((r) => {
    const fig = r.value === null ? 'n/a' : fmtNumber(r.value);
    const ratio = r.ratio === null ? '' : ` = ${r.ratio.toFixed(3)}× of ${r.reference === null ? '?' : fmtNumber(r.reference)}`;
    return `${verdictText(r).padEnd(11)} ${r.transport.padEnd(8)} ${r.target}: ${fig}${ratio}${r.why ? ` (${r.why})` : ''}`;
  });
}

// ---- issue 15: the rootless routes against the root route ----

export type RouteKey = 'seqReadMiBps' | 'seqWriteMiBps' | 'randReadIops' | 'randWriteIops' | 'multiWriteMiBps' | 'multiReadMiBps';

/** The workloads, each judged: every I/O figure the bench measures on a mounted volume (labels as in the main table). */
export const ROUTE_WORKLOADS: readonly { id: string; label: string; key: RouteKey }[] = (
  [
    ['seq-read', 'seqReadMiBps'],
    ['seq-write', 'seqWriteMiBps'],
    ['rand-read', 'randReadIops'],
    ['rand-write', 'randWriteIops'],
    ['multi-write', 'multiWriteMiBps'],
    ['multi-read', 'multiReadMiBps'],
  ] as const
).map(([id, key]) => ({ id, key, label: ROWS.find((r) => r.key === key)!.label }));

export interface RouteTargetResult {
  /** The workload (ROUTE_WORKLOADS id). */
  id: string;
  workload: string;
  route: RootlessRoute;
  /** The ratio this route must reach (0.9 udisks, 0.3 fuse2fs). */
  min: number;
  value: number | null;
  /** The root route's figure (vault-classic). */
  reference: number | null;
  ratio: number | null;
  verdict: Verdict;
  why?: string;
}

/** The transport check that covers a figure: the 8-volume phase has its own volumes. */
export const checkFor = (c: ColumnFigures, key: RouteKey): TransportCheck | null | undefined => (key.startsWith('multi') ? c.multiTransport : c.transport);

/** One figure of a column judged against the same figure of a reference column. */
export interface Judged {
  value: number | null;
  reference: number | null;
  ratio: number | null;
  verdict: Verdict;
  why?: string;
}

/**
 * `column`'s figure ÷ `ref.column`'s, met when ≥ min. n/a (with the reason) when either side was
 * not run, could not run, did not measure it, or did not verifiably run on `transport`, the one
 * both are asked for (then the ratio would compare transports, not what the columns differ in).
 * `ref.name` names the reference in the reasons ("root route").
 */
export function judgeAgainst(f: BenchFigures, column: Column, ref: { column: Column; name: string }, key: RouteKey, min: number, transport: Transport): Judged {
  const c = f.columns[column];
  const value = col(f, column, key);
  const reference = col(f, ref.column, key);
  const na = (why: string, ratio: number | null = null): Judged => ({ value, reference, ratio, verdict: 'n/a', why });
  if (!c) return na('not run');
  if (!c.available) return na(`unavailable: ${c.unavailable ?? 'unknown reason'}`);
  if (value === null) return na(c.error ? `not measured (${c.error})` : 'not measured');
  const other = f.columns[ref.column];
  if (reference === null || reference === 0)
    return na(!other ? `no ${ref.name} figure (${ref.column} not run)` : !other.available ? `no ${ref.name} figure (${ref.column} unavailable)` : `no ${ref.name} figure`);
  const ratio = value / reference;
  const mine = checkFor(c, key);
  const theirs = checkFor(other!, key);
  if (!mine || mine.status !== 'verified' || mine.reported !== transport)
    return na(mine ? `${mine.status === 'verified' ? 'MISMATCH!' : mine.status} asked for ${transport}, volume reported ${mine.reported ?? 'nothing'}` : 'UNVERIFIED! transport not read', ratio);
  if (!theirs || theirs.status !== 'verified')
    return na(`${ref.name}: ${theirs ? `${theirs.status} asked for ${transport}, volume reported ${theirs.reported ?? 'nothing'}` : 'UNVERIFIED! transport not read'}`, ratio);
  return { value, reference, ratio, verdict: ratio >= min ? 'met' : 'MISSED' };
}

/** Every workload, once per rootless route that was run: route ÷ root route, met when ≥ ROUTE_MIN. */
export function evaluateRouteTargets(f: BenchFigures): RouteTargetResult[] {
  const out: RouteTargetResult[] = [];
  for (const r of ROOTLESS_ROUTES) {
    if (!f.columns[routeColumn(r)]) continue;
    for (const w of ROUTE_WORKLOADS) {
      const j = judgeAgainst(f, routeColumn(r), { column: ROOT_ROUTE_COLUMN, name: 'root route' }, w.key, ROUTE_MIN[r], ROUTE_TRANSPORT);
      out.push({ id: w.id, workload: w.label, route: r, min: ROUTE_MIN[r], ...j });
    }
  }
  return out;
}

/** met, MISSED, or why a judgement is n/a in one word (the reference's own warning included). */
export function judgedVerdictText(r: Judged): string {
  if (r.verdict !== 'n/a') return r.verdict;
  const why = (r.why ?? '').replace(/^[a-z -]+: (?=MISMATCH!|UNVERIFIED!)/, '');
  return why.startsWith('MISMATCH!') ? 'MISMATCH!' : why.startsWith('UNVERIFIED!') ? 'UNVERIFIED!' : why.startsWith('unavailable') ? 'unavailable' : 'n/a';
}

/**
 * Issue 15's table: per workload the root route's figure, then for each route that ran its figure,
 * route ÷ root, the target and the verdict.
 */
export function routeTable(f: BenchFigures, results: RouteTargetResult[] = evaluateRouteTargets(f)): string {
  const routes = ROOTLESS_ROUTES.filter((r) => f.columns[routeColumn(r)] !== undefined);
  const header = ['workload', `root (${columnTitle(ROOT_ROUTE_COLUMN)})`, ...routes.flatMap((r) => [r, `${r} ÷ root`, 'target', 'met'])];
  const root = f.columns[ROOT_ROUTE_COLUMN];
  const rows = ROUTE_WORKLOADS.map((w) => {
    const ref = col(f, ROOT_ROUTE_COLUMN, w.key);
    const refCell = !root ? 'not run' : !root.available ? 'unavailable' : ref === null ? 'n/a' : fmtNumber(ref);
    const cells = routes.flatMap((r) => {
      const c = f.columns[routeColumn(r)]!;
      const res = results.find((x) => x.route === r && x.id === w.id);
      const v = col(f, routeColumn(r), w.key);
      const fig = !c.available ? 'unavailable' : v === null ? 'n/a' : `${fmtNumber(v)} ${transportLabel(ROUTE_TRANSPORT, checkFor(c, w.key))}`;
      return [fig, ratioText(res?.ratio ?? null), `≥ ${ROUTE_MIN[r]} × root`, res ? judgedVerdictText(res) : 'n/a'];
    });
    return [w.label, refCell, ...cells];
  });
  return renderTable(header, rows);
}

/** Each route target on its own line (MISSED greps as issue 14's do). */
export function routeTargetLines(results: RouteTargetResult[]): string[] {
  return results.map((r) => {
    const fig = r.value === null ? 'n/a' : fmtNumber(r.value);
    const ratio = r.ratio === null ? '' : ` = ${r.ratio.toFixed(3)}× of ${r.reference === null ? '?' : fmtNumber(r.reference)}`;
    return `${judgedVerdictText(r).padEnd(11)} ${r.route.padEnd(8)} ${r.workload} ≥ ${r.min} × root route: ${fig}${ratio}${r.why ? ` (${r.why})` : ''}`;
  });
}
