/**
 * Issue 17, resize crash safety: `vault resize` killed with SIGKILL at a random moment of a grow
 * (filled) and of a shrink. Afterwards the container opens with its old or its new data size (the
 * header copies of spec/format.md §12), e2fsck -fn finds nothing, and data.bin is intact.
 *
 * Only the vault process is killed, as a crash of vault itself: a resize2fs or e2fsck it started
 * runs to its end (it is a process of its own), and is waited for before the check; the transient
 * mount it leaves is cleared by the next `vault list`, as after an interrupted create.
 *
 * VAULT_RESIZE_CRASH_ROUNDS rounds (default 1: one grow and one shrink); `npm run test:long` runs 100.
 * VAULT_RESIZE_CRASH_SEED replays a failing run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../support/rng.js';
import { CLI, e2eSuite, ok, vault } from './harness.js';
import { PW, copyOf, expectHealthy, makeTemplate, mib } from './resize-support.js';

const ROUNDS = Number(process.env.VAULT_RESIZE_CRASH_ROUNDS ?? 1);
const SEED = Number(process.env.VAULT_RESIZE_CRASH_SEED ?? Date.now() % 1_000_000);
const suite = e2eSuite('resize-crash');
let template = '';
let dataSha = '';

/** The tools a process is running right now (resize2fs, e2fsck…): its children but the volume server (node), which stays. */
function toolsOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`))
      out.push(...readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    // exited
  }
  return out.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'node';
    } catch {
      return false;
    }
  });
}

/** Runs `vault resize` and kills it with SIGKILL after `ms`; then waits for the tools it had started. */
async function killResizeAfter(args: string[], ms: number): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'resize', ...args, '--password-stdin'], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.end(PW);
  const exited = new Promise((r) => child.on('close', r));
  await new Promise((r) => setTimeout(r, ms));
  const orphans = toolsOf(child.pid!);
  child.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 600 && orphans.some((p) => existsSync(`/proc/${p}`)); i++) await new Promise((r) => setTimeout(r, 50));
}

function dataSizeOf(file: string): number {
  return (JSON.parse(ok(vault(['info', file, '--json'])).stdout) as { dataSize: number }).dataSize;
}

async function crashRound(op: 'grow' | 'shrink', round: number, random: () => number): Promise<void> {
  const file = copyOf(template, suite.dir, `${op}-${round}.vol`);
  const before = dataSizeOf(file);
  const [size, after, window] = op === 'grow' ? ['160M', mib(160) - mib(1) - 4096, 2200] : ['40M', mib(40) - mib(1) - 4096, 1600];
  const ms = Math.floor(random() * window);
  await killResizeAfter([file, '--size', size], ms);
  ok(vault(['list'])); // clears the transient mount a killed resize leaves
  const where = `${op} killed after ${ms} ms (seed ${SEED}, round ${round})`;
  expect([before, after], where).toContain(dataSizeOf(file));
  expectHealthy(file, suite.dir, dataSha);
}

describe.runIf(suite.run)('vault resize killed with -9', () => {
  beforeAll(() => {
    ({ file: template, sha: dataSha } = makeTemplate(suite.dir, 8));
  });

  it(`opens with the old or the new size, e2fsck clean, data intact (${ROUNDS} rounds, seed ${SEED})`, async () => {
    const random = rng(SEED);
    for (let round = 0; round < ROUNDS; round++) {
      await crashRound('grow', round, random);
      await crashRound('shrink', round, random);
    }
  }, 60_000 + ROUNDS * 40_000);
});
