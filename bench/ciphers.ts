// Each of VeraCrypt's algorithms in vault's native engine against libgcrypt's own XTS through the
// same chain (issue 18's speed target: vault ≥ 0.8× libgcrypt, measured in the same run).
//
//   npm run bench:ciphers                        (builds, then runs dist/bench/ciphers.js)
//   node dist/bench/ciphers.js [--json] [--ms N] [--rounds N]
//
// The same measurement as `vault benchmark` (src/crypto/benchmark.ts chainFigures: one thread,
// 512-byte data units, 256 KiB per call, vault and libgcrypt alternating, best of the rounds), with
// longer rounds (default 3 rounds of 300 ms per figure, ~1 min in all; `vault benchmark` takes 2
// of 40 ms so that the test suite's `benchmark --json` stays short). For the single ciphers it
// also gives libgcrypt at its best: one XTS call per 1 MiB, i.e. a single data unit (no per-unit
// tweak set-up), the reference figure `vault benchmark` showed before.
import os from 'node:os';
import { chainFigures, libgcryptXtsThroughput } from '../src/crypto/benchmark.js';
import { libgcryptHas } from '../src/crypto/cipher-probes.js';
import { veracryptName } from '../src/crypto/cipher-chain.js';
import { CHAINS } from '../src/formats/veracrypt/cipher-chains.js';

const TARGET = 0.8;

function parseArgs(): { json: boolean; ms: number; rounds: number } {
  const argv = process.argv.slice(2);
  const o = { json: false, ms: 300, rounds: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--ms') o.ms = Number(argv[++i]);
    else if (a === '--rounds') o.rounds = Number(argv[++i]);
    else {
      console.error(a === '--help' || a === '-h' ? 'usage: node dist/bench/ciphers.js [--json] [--ms N] [--rounds N]' : `unknown argument: ${a}`);
      process.exit(a === '--help' || a === '-h' ? 0 : 2);
    }
  }
  if (!(o.ms > 0) || !Number.isInteger(o.rounds) || o.rounds < 1) {
    console.error('--ms must be positive and --rounds a positive integer');
    process.exit(2);
  }
  return o;
}

const { json, ms, rounds } = parseArgs();
const started = new Date().toISOString();
const load0 = os.loadavg()[0]!;
const rows = CHAINS.map((chain) => {
  if (!json) process.stderr.write(`\rmeasuring ${veracryptName(chain)}…`.padEnd(50));
  const f = chainFigures(chain, ms, rounds);
  let oneUnit: number | null = null;
  if (chain.length === 1 && libgcryptHas(chain))
    for (let r = 0; r < rounds; r++) oneUnit = Math.max(oneUnit ?? 0, libgcryptXtsThroughput('encrypt', chain, 1 << 20, ms));
  const ratio = (a: number, b: number | null) => (b === null ? null : a / b);
  return {
    algorithm: veracryptName(chain),
    ...f,
    encryptRatio: ratio(f.encrypt, f.libgcryptEncrypt),
    decryptRatio: ratio(f.decrypt, f.libgcryptDecrypt),
    libgcryptEncryptOneUnit: oneUnit,
  };
});
if (!json) process.stderr.write('\r'.padEnd(51) + '\r');
const environment = { started, loadAverageBefore: load0, loadAverageAfter: os.loadavg()[0]!, cpu: os.cpus()[0]?.model ?? '?', cores: os.cpus().length, ms, rounds };
const misses = rows.flatMap((r) => [
  ...(r.encryptRatio !== null && r.encryptRatio < TARGET ? [`${r.algorithm} encrypt ${r.encryptRatio.toFixed(2)}`] : []),
  ...(r.decryptRatio !== null && r.decryptRatio < TARGET ? [`${r.algorithm} decrypt ${r.decryptRatio.toFixed(2)}`] : []),
]);
if (json) {
  console.log(JSON.stringify({ environment, target: TARGET, rows, misses }, null, 2));
} else {
  const mb = (n: number | null) => (n === null ? '—' : (n / 1e6).toFixed(0));
  const x = (n: number | null) => (n === null ? '—' : n.toFixed(2));
  console.log(`${started}, load average ${load0.toFixed(2)} → ${environment.loadAverageAfter.toFixed(2)}, ${rounds} rounds of ${ms} ms, MB/s, one thread, 512-byte units`);
  console.log('| algorithm | encrypt | libgcrypt | ratio | decrypt | libgcrypt | ratio | libgcrypt enc., one 1 MiB unit |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const none = r.libgcryptEncrypt === null;
    console.log(
      `| ${r.algorithm} | ${mb(r.encrypt)} | ${none ? 'no reference available' : mb(r.libgcryptEncrypt)} | ${x(r.encryptRatio)} | ${mb(r.decrypt)} | ${none ? 'no reference available' : mb(r.libgcryptDecrypt)} | ${x(r.decryptRatio)} | ${mb(r.libgcryptEncryptOneUnit)} |`,
    );
  }
  console.log(misses.length === 0 ? `every ratio ≥ ${TARGET}` : `below ${TARGET}: ${misses.join(', ')}`);
}
