/**
 * Issue 18 ("Speed"): "In a mounted VeraCrypt volume, sequential read and write for AES are within
 * 10% of a vault container's, in the same bench run." The veracrypt column (a VeraCrypt volume
 * vault made and mounted as root, classic transport) against vault-classic (a vault container on
 * the same transport): its sequential read and sequential write each ≥ 0.9 × vault-classic's.
 * Pure, like report.ts (test/unit/bench-report.test.ts checks it).
 */
import {
  col, columnTitle, fmtNumber, judgeAgainst, judgedVerdictText, ratioText, renderTable, ROUTE_WORKLOADS, transportLabel, VERACRYPT_TRANSPORT,
  checkFor, type BenchFigures, type Column, type Judged,
} from './report.js';

/** The vault container a VeraCrypt volume is judged against: the same transport, the same path. */
export const VERACRYPT_REFERENCE: Column = 'vault-classic';
/** "within 10%": at least 0.9 × the vault container's figure. */
export const VERACRYPT_MIN = 0.9;
/** The workloads the issue names (labels as in the main table). */
export const VERACRYPT_WORKLOADS = ROUTE_WORKLOADS.filter((w) => w.id === 'seq-read' || w.id === 'seq-write');

export interface VeraCryptTargetResult extends Judged {
  /** seq-read or seq-write. */
  id: string;
  workload: string;
  min: number;
}

/** Each workload: veracrypt ÷ vault-classic ≥ 0.9; nothing when the veracrypt column was not run. */
export function evaluateVeraCryptTargets(f: BenchFigures): VeraCryptTargetResult[] {
  if (!f.columns.veracrypt) return [];
  return VERACRYPT_WORKLOADS.map((w) => ({
    id: w.id,
    workload: w.label,
    min: VERACRYPT_MIN,
    ...judgeAgainst(f, 'veracrypt', { column: VERACRYPT_REFERENCE, name: columnTitle(VERACRYPT_REFERENCE) }, w.key, VERACRYPT_MIN, VERACRYPT_TRANSPORT),
  }));
}

/** Issue 18's table: per workload the vault container's figure, the VeraCrypt volume's, the ratio, target, verdict. */
export function veracryptTable(f: BenchFigures, results: VeraCryptTargetResult[] = evaluateVeraCryptTargets(f)): string {
  const header = ['workload', columnTitle(VERACRYPT_REFERENCE), 'veracrypt', 'veracrypt ÷ vault', 'target', 'met'];
  const rows = VERACRYPT_WORKLOADS.map((w) => {
    const cell = (c: Column): string => {
      const figures = f.columns[c];
      const v = col(f, c, w.key);
      if (!figures) return 'not run';
      if (!figures.available) return 'unavailable';
      return v === null ? 'n/a' : `${fmtNumber(v)} ${transportLabel(VERACRYPT_TRANSPORT, checkFor(figures, w.key))}`;
    };
    const r = results.find((x) => x.id === w.id);
    return [
      w.label,
      cell(VERACRYPT_REFERENCE),
      cell('veracrypt'),
      ratioText(r?.ratio ?? null),
      `≥ ${VERACRYPT_MIN} × vault`,
      r ? judgedVerdictText(r) : 'n/a',
    ];
  });
  return renderTable(header, rows);
}

/** Each target on its own line (MISSED greps as the others do). */
export function veracryptTargetLines(results: VeraCryptTargetResult[]): string[] {
  return results.map((r) => {
    const fig = r.value === null ? 'n/a' : fmtNumber(r.value);
    const ratio = r.ratio === null ? '' : ` = ${r.ratio.toFixed(3)}× of ${r.reference === null ? '?' : fmtNumber(r.reference)}`;
    return `${judgedVerdictText(r).padEnd(11)} veracrypt ${r.workload} ≥ ${r.min} × ${columnTitle(VERACRYPT_REFERENCE)}: ${fig}${ratio}${r.why ? ` (${r.why})` : ''}`;
  });
}
