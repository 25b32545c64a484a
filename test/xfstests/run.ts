/**
 * `npm run xfstests`: the real xfstests (`./check`, FSTYP=ext4) on vault volumes and, with the same
 * shard, on plain loop devices, then the tests that end differently. test/RELIABILITY.md tells how
 * to build xfstests (outside this repository) and what the runs found.
 *
 * Each side gets its own directory under --out (default /var/tmp/vault-xfstests-<time>): its
 * local.config, check.log, xfstests' results/ and summary.json stay there; the images and
 * containers are removed, and only the loop devices, volumes and mounts this run made are undone.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CleanupStack, installSignalHandlers } from '../../bench/lib/cleanup.js';
import { progress } from '../../bench/lib/log.js';
import { Rootless } from '../../bench/lib/rootless.js';
import { isMountPoint, unmount } from '../../bench/lib/system.js';
import { VaultCli } from '../../bench/lib/vault.js';
import { groupTests, runCheck, shardOf, type ShardResult } from './check.js';
import { compare, counts, formatComparison } from './compare.js';
import { deviceSectorSize, logicalSectorSize, plainDevices, vaultDevices, type Devices } from './devices.js';
import { parseOptions, type Options, type Side } from './options.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

async function runSide(side: Side, o: Options, out: string, tests: string[], rootless?: Rootless): Promise<ShardResult> {
  const dir = path.join(out, side);
  mkdirSync(dir, { recursive: true });
  const cleanup = new CleanupStack();
  cleanup.push(`remove the images in ${dir}`, async () => {
    for (const f of ['plain-test.img', 'plain-scratch.img', 'vault-test.vol', 'vault-scratch.vol']) rmSync(path.join(dir, f), { force: true });
  });
  try {
    let d: Devices;
    if (side === 'vault') {
      const cli = new VaultCli(CLI, process.env['VAULT_RUN_DIR'] ?? '/run/vault-xfstests');
      d = await vaultDevices(cli, dir, o, cleanup, rootless);
      const ss = await logicalSectorSize(d.testDev);
      if (ss !== deviceSectorSize(o)) throw new Error(`${d.testDev} has ${ss}-byte sectors, not the ${deviceSectorSize(o)} the plain side gets`);
    } else d = await plainDevices(dir, o, cleanup);
    // check may be stopped with a filesystem still mounted: unmount ours before the devices go.
    cleanup.push('unmount TEST_DIR and SCRATCH_MNT', async () => {
      for (const mp of [path.join(dir, 'test'), path.join(dir, 'scratch')]) while (isMountPoint(mp)) await unmount(mp);
    });
    progress(`[${side}] TEST_DEV=${d.testDev} SCRATCH_DEV=${d.scratchDev}: ${d.detail}; ${tests.length} tests`);
    const r = await runCheck(o.xfstestsDir, d, dir, tests, o.budgetMin);
    writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(r, null, 2) + '\n');
    progress(`[${side}] ${JSON.stringify(counts(r))} in ${r.seconds} s${r.budgetHit ? ' (budget spent)' : ''}`);
    return r;
  } finally {
    const failed = await cleanup.runAll();
    if (failed.length) progress(`[${side}] cleanup left: ${failed.join('; ')}`);
  }
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  installSignalHandlers();
  const all = o.tests ?? groupTests(o.xfstestsDir, o.group);
  const tests = o.tests ?? shardOf(all, o.shard.index, o.shard.count);
  const out = path.resolve(o.out ?? `/var/tmp/vault-xfstests-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(out, { recursive: true });
  progress(`${o.tests ? 'explicit tests' : `group ${o.group}, shard ${o.shard.index}/${o.shard.count}`}: ${tests.length} tests; output in ${out}`);
  writeFileSync(path.join(out, 'tests.txt'), tests.join('\n') + '\n');

  // The udisks route: a user, dbus-daemon, polkitd, udisksd and the setup-rootless files, undone at the end.
  const top = new CleanupStack();
  const results: Partial<Record<Side, ShardResult>> = {};
  try {
    let rootless: Rootless | undefined;
    if (o.route === 'udisks' && o.sides.includes('vault')) {
      const work = path.join(out, 'rootless');
      mkdirSync(work, { recursive: true });
      rootless = await Rootless.start(top, CLI, work);
      for (const n of rootless.notes) progress(n);
    }
    const one = async (s: Side) => void (results[s] = await runSide(s, o, out, tests, rootless));
    if (o.concurrent) await Promise.all(o.sides.map(one));
    else for (const s of o.sides) await one(s);
  } finally {
    const failed = await top.runAll();
    if (failed.length) progress(`cleanup left: ${failed.join('; ')}`);
  }

  for (const s of o.sides) console.log(`${s}: ${JSON.stringify(counts(results[s]!))} in ${results[s]!.seconds} s — ${results[s]!.detail}`);
  if (results.vault && results.plain) {
    const c = compare(results.vault, results.plain);
    writeFileSync(path.join(out, 'comparison.json'), JSON.stringify(c, null, 2) + '\n');
    console.log(formatComparison(c, results.vault));
    return c.failOnlyVault.length ? 1 : 0;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`xfstests: ${e.message}`);
    process.exit(2);
  },
);
