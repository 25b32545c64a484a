/**
 * The command line of `npm run xfstests` (test/RELIABILITY.md, section "xfstests"):
 *
 *   XFSTESTS_DIR=/path/to/built/xfstests npm run xfstests -- [--shard 1/8] [--transport classic|io_uring]
 *     [--route root|udisks] [--group quick | --tests generic/001,ext4/002] [--budget-min 30] [--size 8G]
 *     [--plain-only | --vault-only] [--concurrent] [--no-discards] [--out DIR]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export type Side = 'vault' | 'plain';

export interface Options {
  xfstestsDir: string;
  transport: 'classic' | 'io_uring';
  /** udisks: the volumes are an ordinary user's, their loop devices set up by udisksd (no discards there). */
  route: 'root' | 'udisks';
  shard: { index: number; count: number };
  group: string;
  tests: string[] | null;
  budgetMin: number;
  size: string;
  sides: Side[];
  concurrent: boolean;
  discards: boolean;
  sectorSize: number;
  out: string | null;
}

export const USAGE =
  'usage: npm run xfstests -- [--shard I/N] [--transport classic|io_uring] [--route root|udisks] [--group quick | --tests a,b] ' +
  '[--budget-min 30] [--size 8G] [--sector-size 4096] [--plain-only | --vault-only] [--concurrent] [--no-discards] [--out DIR]';

function fail(message: string): never {
  throw new Error(`${message}\n${USAGE}`);
}

/** XFSTESTS_DIR must name a built xfstests tree: its `check` script and the compiled ltp/fsx. */
export function xfstestsDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['XFSTESTS_DIR'];
  const how = 'build xfstests outside this repository as its own README says (install its packages, `make`), then set XFSTESTS_DIR to that tree';
  if (!dir) throw new Error(`XFSTESTS_DIR is not set: ${how}`);
  for (const f of ['check', 'ltp/fsx', 'ltp/fsstress'])
    if (!existsSync(path.join(dir, f))) throw new Error(`XFSTESTS_DIR=${dir} has no ${f}, so it is not a built xfstests tree: ${how}`);
  return path.resolve(dir);
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Options {
  const o: Options = {
    xfstestsDir: '',
    transport: 'classic',
    route: 'root',
    shard: { index: 1, count: 1 },
    group: 'quick',
    tests: null,
    budgetMin: 30,
    size: '8G',
    sides: ['vault', 'plain'],
    concurrent: false,
    discards: true,
    sectorSize: 4096,
    out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const value = (): string => argv[++i] ?? fail(`${k} needs a value`);
    if (k === '--transport') {
      const v = value();
      if (v !== 'classic' && v !== 'io_uring') fail(`--transport ${v}: use classic or io_uring`);
      o.transport = v;
    } else if (k === '--route') {
      const v = value();
      if (v !== 'root' && v !== 'udisks') fail(`--route ${v}: use root or udisks`);
      o.route = v;
    } else if (k === '--shard') {
      const m = /^(\d+)\/(\d+)$/.exec(value());
      if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) fail('--shard takes I/N with 1 <= I <= N');
      o.shard = { index: Number(m[1]), count: Number(m[2]) };
    } else if (k === '--group') o.group = value();
    else if (k === '--tests') {
      o.tests = value().split(',').filter(Boolean);
      const bad = o.tests.filter((t) => !/^(generic|ext4)\/\d+$/.test(t));
      if (bad.length || !o.tests.length) fail(`--tests takes names like generic/001,ext4/002 (not ${bad.join(',') || 'an empty list'})`);
    }
    else if (k === '--budget-min') {
      o.budgetMin = Number(value());
      if (!(o.budgetMin > 0)) fail('--budget-min takes a positive number of minutes');
    } else if (k === '--size') {
      o.size = value();
      if (!/^\d+[MG]$/.test(o.size)) fail('--size takes a size like 8G or 4096M');
    } else if (k === '--sector-size') {
      o.sectorSize = Number(value());
      if (o.sectorSize !== 512 && o.sectorSize !== 4096) fail('--sector-size must be 512 or 4096');
    } else if (k === '--plain-only') o.sides = ['plain'];
    else if (k === '--vault-only') o.sides = ['vault'];
    else if (k === '--concurrent') o.concurrent = true;
    else if (k === '--no-discards') o.discards = false;
    else if (k === '--out') o.out = value();
    else fail(`unknown argument ${k}`);
  }
  // vault refuses --allow-discards through udisks (README, TRIM): that route runs without, and the
  // plain side too, so that both offer the same device.
  if (o.route === 'udisks') o.discards = false;
  o.xfstestsDir = xfstestsDirFromEnv(env);
  return o;
}
