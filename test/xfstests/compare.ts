/**
 * The vault-versus-plain comparison of one shard: which tests ended differently on the two sides.
 * A test that fails only on vault is the finding this whole run exists for.
 */
import type { Outcome, ShardResult } from './check.js';

export interface Comparison {
  failOnlyVault: string[];
  failOnlyPlain: string[];
  failBoth: string[];
  /** Tests with any other difference (run on one side only, or unfinished on one). */
  otherDifferences: { test: string; vault: Outcome; plain: Outcome }[];
}

export function counts(r: ShardResult): Record<Outcome, number> {
  const c: Record<Outcome, number> = { pass: 0, fail: 0, notrun: 0, unfinished: 0 };
  for (const t of r.tests) c[r.outcomes[t]!]++;
  return c;
}

export function compare(vault: ShardResult, plain: ShardResult): Comparison {
  const c: Comparison = { failOnlyVault: [], failOnlyPlain: [], failBoth: [], otherDifferences: [] };
  for (const t of vault.tests) {
    const v = vault.outcomes[t]!;
    const p = plain.outcomes[t]!;
    if (v === 'fail' && p === 'fail') c.failBoth.push(t);
    else if (v === 'fail' && p !== 'unfinished') c.failOnlyVault.push(t);
    else if (p === 'fail' && v !== 'unfinished') c.failOnlyPlain.push(t);
    else if (v !== p) c.otherDifferences.push({ test: t, vault: v, plain: p });
  }
  return c;
}

export function formatComparison(c: Comparison, vault: ShardResult): string {
  const lines = [
    `fail on both:       ${c.failBoth.join(' ') || '-'}`,
    `fail only on plain: ${c.failOnlyPlain.join(' ') || '-'}`,
    `FAIL ONLY ON VAULT: ${c.failOnlyVault.join(' ') || '-'}`,
    ...c.otherDifferences.map((d) => `differs: ${d.test} vault=${d.vault} plain=${d.plain}`),
  ];
  for (const t of c.failOnlyVault) lines.push(`--- ${t} on vault:\n${(vault.failures[t] ?? '').split('\n').slice(0, 40).join('\n')}`);
  return lines.join('\n');
}
