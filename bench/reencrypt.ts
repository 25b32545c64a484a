// `vault reencrypt` throughput beside a plain `dd` copy of a file of the same size, in the same run.
//
//   npm run bench:reencrypt -- --mib N --reps R [--dir D]
//   node dist/bench/reencrypt.js --mib 256 --reps 3
//
// Makes one full-fill (--no-quick) container of N MiB in D (default: the system temp dir), so
// every sector is real work, with a minimal KDF. Each rep times `dd if=<container> of=<copy> bs=1M
// conv=fsync` (read the whole file, write and sync a copy: the same bytes in and out) and then
// `vault reencrypt` of the container, the whole CLI run (its KDF, about 10 ms, included). MB/s is
// 10^6 bytes of container file per second. Prints each rep, the medians and their ratio (issue 17's
// target: reencrypt ≥ 0.5× dd).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const KDF = ['--kdf-memory', '8', '--kdf-iterations', '1', '--kdf-parallelism', '1'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function run(cmd: string, args: string[], input = ''): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function main(): void {
  const mib = Number(arg('mib', '256'));
  const reps = Number(arg('reps', '3'));
  if (!Number.isInteger(mib) || mib < 4 || !Number.isInteger(reps) || reps < 1) throw new Error('--mib (≥ 4) and --reps (≥ 1) take whole numbers');
  const dir = mkdtempSync(path.join(arg('dir', os.tmpdir()), 'vault-bench-reencrypt-'));
  try {
    const vol = path.join(dir, 'bench.vol');
    const copy = path.join(dir, 'copy');
    run(process.execPath, [CLI, 'create', vol, '--size', `${mib}M`, '--fs', 'none', '--no-quick', '--password-stdin', ...KDF], 'pw\n');
    const bytes = statSync(vol).size;
    console.log(`container: ${vol}, ${bytes} bytes; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
    const dd: number[] = [];
    const re: number[] = [];
    for (let i = 0; i < reps; i++) {
      rmSync(copy, { force: true });
      dd.push(bytes / 1e6 / run('dd', [`if=${vol}`, `of=${copy}`, 'bs=1M', 'conv=fsync', 'status=none']));
      rmSync(copy, { force: true });
      re.push(bytes / 1e6 / run(process.execPath, [CLI, 'reencrypt', vol, '--password-stdin'], 'pw\n'));
      console.log(`rep ${i + 1}: dd ${dd[i]!.toFixed(0)} MB/s, vault reencrypt ${re[i]!.toFixed(0)} MB/s`);
    }
    const ratio = median(re) / median(dd);
    console.log(`median: dd ${median(dd).toFixed(0)} MB/s, vault reencrypt ${median(re).toFixed(0)} MB/s, ratio ${ratio.toFixed(2)} (target ≥ 0.5)`);
    if (ratio < 0.5) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
