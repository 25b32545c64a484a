import type { Command } from 'commander';
import { argon2Time, chainFigures, xtsThroughput, type XtsDirection } from '../../crypto/benchmark.js';
import { chainLabel, veracryptName } from '../../crypto/cipher-chain.js';
import { CHAINS } from '../../formats/veracrypt/cipher-chains.js';
import { calibrateKdf, DEFAULT_PARALLELISM } from '../../crypto/calibrate.js';
import { info, isTerminal } from '../output.js';
import { intOption, MAX_MEMORY_MIB } from '../kdf-options.js';

const MEMORY_MIB = [64, 128, 256, 512, 1024];

/** What `vault benchmark --json` prints: part of the CLI contract (CLI_ABI.md, spec/benchmark.schema.json). */
export interface BenchmarkJson {
  /** XTS-AES-256 on one thread, each direction at 512- and 4096-byte sectors. */
  xts: Array<{ direction: XtsDirection; sectorSize: 512 | 4096; bytesPerSecond: number }>;
  /**
   * Each of VeraCrypt's algorithms through vault's engine: XTS encryption (and decryption) on one
   * thread at 512-byte data units, beside libgcrypt's own XTS through the same chain (every cipher
   * libgcrypt's, one call per 512-byte unit, one pass per cipher); null where libgcrypt lacks a
   * cipher of the chain (Kuznyechik).
   */
  veracrypt: Array<{
    algorithm: string;
    cipher: string;
    bytesPerSecond: number;
    decryptBytesPerSecond: number;
    libgcryptBytesPerSecond: number | null;
    libgcryptDecryptBytesPerSecond: number | null;
  }>;
  /** Argon2id at 3 iterations and the default lanes, for each memory size. */
  argon2: Array<{ memoryMiB: number; iterations: number; parallelism: number; ms: number }>;
  /** The KDF `vault create` would choose on this machine, and about how long an unlock takes. */
  createWouldUse: { memoryMiB: number; iterations: number; parallelism: number; expectedUnlockMs: number };
}
const DIRECTIONS: XtsDirection[] = ['encrypt', 'decrypt'];

export function registerBenchmark(program: Command): void {
  program
    .command('benchmark')
    .description('measure XTS throughput and Argon2id cost on this machine, and show what create would choose')
    .option('--json', 'print JSON for scripts')
    .option('--kdf-memory <MiB>', `time Argon2id at this memory only (default: ${MEMORY_MIB.join(', ')} MiB)`, (v: string) => intOption('--kdf-memory', v, 1, MAX_MEMORY_MIB))
    .action(async (o: { json?: boolean; kdfMemory?: number }) => {
      const step = (what: string) => {
        if (isTerminal() && !o.json) process.stderr.write(`\rmeasuring ${what}…`.padEnd(60));
      };
      const xts: BenchmarkJson['xts'] = [];
      for (const direction of DIRECTIONS)
        for (const sectorSize of [512, 4096] as const) {
          step(`XTS ${direction} ${sectorSize}`);
          xts.push({ direction, sectorSize, bytesPerSecond: Math.round(xtsThroughput(direction, sectorSize)) });
        }
      const veracrypt: BenchmarkJson['veracrypt'] = [];
      for (const chain of CHAINS) {
        step(`XTS ${veracryptName(chain)}`);
        // Against libgcrypt: two alternating rounds of 40 ms per figure, the best kept (chainFigures).
        // Short rounds: the 15 rows cost ~4 s, ~1 s more than with the three references before (bench/ciphers.ts
        // measures longer, for RESULTS.md).
        const f = chainFigures(chain, 40, 2);
        const round = (n: number | null) => (n === null ? null : Math.round(n));
        veracrypt.push({
          algorithm: veracryptName(chain),
          cipher: chainLabel(chain),
          bytesPerSecond: Math.round(f.encrypt),
          decryptBytesPerSecond: Math.round(f.decrypt),
          libgcryptBytesPerSecond: round(f.libgcryptEncrypt),
          libgcryptDecryptBytesPerSecond: round(f.libgcryptDecrypt),
        });
      }
      const argon2: BenchmarkJson['argon2'] = [];
      for (const m of o.kdfMemory !== undefined ? [o.kdfMemory] : MEMORY_MIB) {
        step(`Argon2id ${m} MiB`);
        argon2.push({ memoryMiB: m, iterations: 3, parallelism: DEFAULT_PARALLELISM, ms: Math.round(await argon2Time(m * 1024, 3, DEFAULT_PARALLELISM)) });
      }
      step('calibration');
      const cal = await calibrateKdf();
      if (isTerminal() && !o.json) process.stderr.write('\r'.padEnd(61) + '\r');
      const result: BenchmarkJson = {
        xts,
        veracrypt,
        argon2,
        createWouldUse: { memoryMiB: cal.kdf.memoryKiB / 1024, iterations: cal.kdf.iterations, parallelism: cal.kdf.parallelism, expectedUnlockMs: Math.round(cal.expectedMs) },
      };
      if (o.json) {
        process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      info('XTS-AES-256 (GB/s, one thread)        512 B sectors   4096 B sectors');
      for (const direction of DIRECTIONS) {
        const row = xts.filter((x) => x.direction === direction).map((x) => (x.bytesPerSecond / 1e9).toFixed(2).padStart(15));
        info(`  ${direction.padEnd(36)}${row.join(' ')}`);
      }
      info('VeraCrypt algorithms, XTS (MB/s, one thread, 512 B units): vault, and libgcrypt through the same chain');
      info(`  ${''.padEnd(28)}${'encrypt'.padStart(8)}${'libgcrypt'.padStart(11)}${'ratio'.padStart(7)}${'decrypt'.padStart(10)}${'libgcrypt'.padStart(11)}${'ratio'.padStart(7)}`);
      const mb = (n: number) => (n / 1e6).toFixed(0);
      const vs = (mine: number, theirs: number | null) => (theirs === null ? '' : `${mb(theirs).padStart(11)}${`${(mine / theirs).toFixed(2)}x`.padStart(7)}`);
      for (const v of veracrypt) {
        const enc = `${mb(v.bytesPerSecond).padStart(8)}${vs(v.bytesPerSecond, v.libgcryptBytesPerSecond)}`;
        if (v.libgcryptBytesPerSecond === null) {
          info(`  ${v.algorithm.padEnd(28)}${enc}${''.padStart(18)}${mb(v.decryptBytesPerSecond).padStart(10)}   no reference available (libgcrypt has no Kuznyechik)`);
        } else {
          info(`  ${v.algorithm.padEnd(28)}${enc}${mb(v.decryptBytesPerSecond).padStart(10)}${vs(v.decryptBytesPerSecond, v.libgcryptDecryptBytesPerSecond)}`);
        }
      }
      info(`Argon2id, 3 iterations, ${DEFAULT_PARALLELISM} lanes:`);
      for (const a of argon2) info(`  ${String(a.memoryMiB).padStart(5)} MiB   ${String(a.ms).padStart(6)} ms`);
      const c = result.createWouldUse;
      info(`vault create would use: Argon2id ${c.memoryMiB} MiB, ${c.iterations} iterations, ${c.parallelism} lanes (about ${c.expectedUnlockMs} ms per unlock)`);
    });
}
