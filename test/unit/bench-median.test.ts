/** Issue 14: the bench reports the run of median throughput of its sequential workloads (bench/lib/workloads.ts). */
import { describe, expect, it } from 'vitest';
import { medianRun } from '../../bench/lib/workloads.js';

const run = (mibps: number, tag: string) => ({ bytesPerS: mibps * 2 ** 20, tag });

describe('medianRun', () => {
  it('picks the middle run of three by throughput, whole (its own command and figures), whatever the order', () => {
    const runs = [run(653, 'a'), run(1280, 'b'), run(1249, 'c')];
    expect(medianRun(runs).tag).toBe('c');
    expect(medianRun([runs[1]!, runs[2]!, runs[0]!]).tag).toBe('c');
    expect(runs.map((r) => r.tag)).toEqual(['a', 'b', 'c']); // the samples' order (the notes) is left alone
  });

  it('takes the lower middle of an even count, and the only run of one', () => {
    expect(medianRun([run(4, 'd'), run(1, 'a'), run(3, 'c'), run(2, 'b')]).tag).toBe('b');
    expect(medianRun([run(7, 'x')]).tag).toBe('x');
  });

  it('refuses no runs rather than reporting undefined', () => {
    expect(() => medianRun([])).toThrow(/no runs/);
  });
});
