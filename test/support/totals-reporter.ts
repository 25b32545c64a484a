/**
 * Prints the suite's totals as the last line, `N passed, N failed, N skipped`, so that CI (and a
 * reader) can tell a run that executed no test from a green one.
 */
import type { Reporter, TestModule } from 'vitest/node';
import { machineCapabilities } from '../../src/system/capabilities.js';

/** Which kernel capabilities this run had, so a reader sees which branches the tests took. */
function capabilityLine(): string {
  try {
    const list = machineCapabilities().map((c) => `${c.name} ${c.available === null ? 'unknown' : c.available ? 'yes' : 'no'}`);
    return `machine: ${list.join(', ')}`;
  } catch (e) {
    return `machine: capabilities unknown (${(e as Error).message})`;
  }
}

export default class TotalsReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed to load (syntax error, failing beforeAll) has no passing tests: count it.
      if (m.state() === 'failed' && ![...m.children.allTests()].some((t) => t.result().state === 'failed')) failed++;
    }
    process.stdout.write(`\n${capabilityLine()}\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
