import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './test/support/totals-reporter.ts'],
    projects: [
      {
        // Unit tests touch no machine-wide state (no mounts, loop devices or /run/vault): their
        // files run in parallel, first.
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], fileParallelism: true, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        // End-to-end and system tests share loop devices, /run/vault, mount points and the kernel's
        // switches: their files run one at a time, after the unit tests.
        extends: true,
        test: { name: 'system', include: ['test/e2e/**/*.test.ts', 'test/system/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
