// XTS-AES-256 throughput of vault's crypto paths, beside OpenSSL's own figure.
//
//   npm run bench:crypto                      (builds, then runs dist/bench/crypto.js)
//   node dist/bench/crypto.js [--json] [--seconds N]
//
// Each cell encrypts (or decrypts) a 64 MiB buffer in place, 1 MiB per call, round and round for
// --seconds (default 3). "native async" keeps UV_THREADPOOL_SIZE (default 4) calls in flight, so
// it uses every core; the other native rows and `openssl speed` are single-threaded. GB/s is
// 10^9 bytes per second, the unit `openssl speed` reports (in 1000s of bytes).
//
// `openssl speed -evp aes-256-xts` encrypts one buffer over and over with the same tweak; vault
// has to start a new tweak for every sector. The addon runs libgcrypt's XTS (native/cipher_engine.c),
// whose per-sector IV change is cheap; OpenSSL 3.0's costs a noticeable share at small sectors.
import { spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import os from 'node:os';
import { KeyHandle } from '../src/crypto/key-handle.js';
import { nativeAddon } from '../src/crypto/native.js';
import type { XtsParams } from '../src/crypto/xts.js';
import { xtsDecrypt, xtsEncrypt, xtsEncryptAsync } from '../src/crypto/xts.js';

const MiB = 1 << 20;
const BUFFER_SIZE = 64 * MiB;
const BATCH = 1 * MiB;
const SECTOR_SIZES = [512, 4096] as const;
const TARGET_RATIO = 0.7;

type PathId = 'native-sync-encrypt' | 'native-sync-decrypt' | 'native-async-encrypt' | 'node-crypto-encrypt';
const PATH_LABELS: Record<PathId, string> = {
  'native-sync-encrypt': 'native sync, encrypt',
  'native-sync-decrypt': 'native sync, decrypt',
  'native-async-encrypt': 'native async (threadpool), encrypt',
  'node-crypto-encrypt': 'node:crypto, one sector per call (for comparison)',
};

interface Cell {
  path: PathId;
  sectorSize: number;
  gbps: number | null;
  bytes: number;
  seconds: number;
  note?: string;
}

interface OpensslCell {
  sectorSize: number;
  gbps: number | null;
  note?: string;
}

function parseArgs(): { json: boolean; seconds: number } {
  const argv = process.argv.slice(2);
  let json = false;
  let seconds = 3;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--seconds') seconds = Number(argv[++i]);
    else if (a?.startsWith('--seconds=')) seconds = Number(a.slice('--seconds='.length));
    else if (a === '--help' || a === '-h') {
      console.log('usage: node dist/bench/crypto.js [--json] [--seconds N]');
      process.exit(0);
    } else {
      console.error(`unknown argument: ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isFinite(seconds) || seconds <= 0) {
    console.error('--seconds must be a positive number');
    process.exit(2);
  }
  return { json, seconds };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

function params(sectorSize: number, offset: number): XtsParams {
  return { sectorSize, firstTweak: BigInt(offset / sectorSize) };
}

function measureSync(
  path: PathId,
  buf: Buffer,
  sectorSize: number,
  seconds: number,
  op: (batch: Buffer, p: XtsParams) => void,
): Cell {
  // Warm-up: one pass over a few batches (page faults, JIT, first-use OpenSSL setup).
  for (let off = 0; off < 8 * BATCH; off += BATCH) op(buf.subarray(off, off + BATCH), params(sectorSize, off));
  let bytes = 0;
  let off = 0;
  const start = now();
  let elapsed = 0;
  do {
    op(buf.subarray(off, off + BATCH), params(sectorSize, off));
    bytes += BATCH;
    off = (off + BATCH) % BUFFER_SIZE;
    elapsed = now() - start;
  } while (elapsed < seconds);
  return { path, sectorSize, gbps: bytes / elapsed / 1e9, bytes, seconds: elapsed };
}

async function measureAsync(key: KeyHandle, buf: Buffer, sectorSize: number, seconds: number, inFlight: number): Promise<Cell> {
  let bytes = 0;
  let next = 0;
  const start = now();
  const deadline = start + seconds;
  // Each lane has one call in flight; lanes never share a batch (inFlight * 1 MiB < 64 MiB).
  const lane = async (): Promise<void> => {
    while (now() < deadline) {
      const off = next;
      next = (next + BATCH) % BUFFER_SIZE;
      await xtsEncryptAsync(key, buf.subarray(off, off + BATCH), params(sectorSize, off));
      bytes += BATCH;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = now() - start;
  return { path: 'native-async-encrypt', sectorSize, gbps: bytes / elapsed / 1e9, bytes, seconds: elapsed };
}

function opensslVersion(): string | null {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** `openssl speed -evp aes-256-xts -bytes N`: its table line reads "AES-256-XTS  3652461.90k". */
function opensslSpeed(sectorSize: number, seconds: number): OpensslCell {
  const secs = String(Math.max(1, Math.round(seconds)));
  const r = spawnSync('openssl', ['speed', '-evp', 'aes-256-xts', '-bytes', String(sectorSize), '-seconds', secs], {
    encoding: 'utf8',
  });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return { sectorSize, gbps: null, note: 'openssl not found (apt-get install openssl)' };
  }
  if (r.status !== 0) return { sectorSize, gbps: null, note: `openssl speed failed: ${(r.stderr || String(r.error)).trim()}` };
  const m = /^aes-256-xts\s+([\d.]+)k\s*$/im.exec(r.stdout);
  if (m === null) return { sectorSize, gbps: null, note: `cannot parse openssl speed output: ${r.stdout.trim()}` };
  return { sectorSize, gbps: (Number(m[1]) * 1000) / 1e9 };
}

/** node:crypto's aes-256-xts, one cipher object per sector: what vault would cost without its addon. */
function nodeCryptoXts(key: Buffer, buf: Buffer, p: XtsParams): void {
  const iv = Buffer.alloc(16);
  let tweak = p.firstTweak;
  for (let off = 0; off < buf.length; off += p.sectorSize, tweak += p.tweakStep ?? 1n) {
    iv.writeBigUInt64LE(tweak, 0);
    const sector = buf.subarray(off, off + p.sectorSize);
    createCipheriv('aes-256-xts', key, iv).update(sector).copy(sector);
  }
}

function fmtGbps(v: number | null): string {
  return v === null ? 'n/a' : v.toFixed(2);
}

function fmtRatio(a: number | null, b: number | null): string {
  return a === null || b === null ? 'n/a' : `${Math.round((a / b) * 100)}%`;
}

async function main(): Promise<void> {
  const { json, seconds } = parseArgs();
  const inFlight = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
  let nativeNote: string | undefined;
  try {
    nativeAddon();
  } catch (err) {
    nativeNote = (err as Error).message;
  }
  const haveNative = nativeNote === undefined;
  const log = (s: string): void => {
    if (!json) process.stderr.write(s);
  };

  let keyBytes = randomBytes(64);
  while (keyBytes.subarray(0, 32).equals(keyBytes.subarray(32))) keyBytes = randomBytes(64);
  const nodeKey = Buffer.from(keyBytes); // for the node:crypto row only; fromBytes wipes keyBytes
  const key = KeyHandle.fromBytes(keyBytes);
  const buf = randomBytes(BUFFER_SIZE);

  const cells: Cell[] = [];
  const openssl: OpensslCell[] = [];
  for (const sectorSize of SECTOR_SIZES) {
    log(`sector ${sectorSize}: openssl speed... `);
    openssl.push(opensslSpeed(sectorSize, seconds));
    if (haveNative) {
      log('native sync... ');
      cells.push(measureSync('native-sync-encrypt', buf, sectorSize, seconds, (b, p) => xtsEncrypt(key, b, p)));
      cells.push(measureSync('native-sync-decrypt', buf, sectorSize, seconds, (b, p) => xtsDecrypt(key, b, p)));
      log('native async... ');
      cells.push(await measureAsync(key, buf, sectorSize, seconds, inFlight));
    } else {
      for (const path of ['native-sync-encrypt', 'native-sync-decrypt', 'native-async-encrypt'] as const) {
        cells.push({ path, sectorSize, gbps: null, bytes: 0, seconds: 0, note: nativeNote! });
      }
    }
    log('node:crypto...\n');
    cells.push(measureSync('node-crypto-encrypt', buf, sectorSize, seconds, (b, p) => nodeCryptoXts(nodeKey, b, p)));
  }
  key.dispose();
  nodeKey.fill(0);

  const gbps = (path: PathId, s: number): number | null => cells.find((c) => c.path === path && c.sectorSize === s)?.gbps ?? null;
  const ossl = (s: number): number | null => openssl.find((c) => c.sectorSize === s)?.gbps ?? null;
  const ratios = SECTOR_SIZES.map((s) => ({
    sectorSize: s,
    nativeSyncVsOpenssl: gbps('native-sync-encrypt', s) !== null && ossl(s) !== null ? gbps('native-sync-encrypt', s)! / ossl(s)! : null,
    nativeAsyncVsOpenssl: gbps('native-async-encrypt', s) !== null && ossl(s) !== null ? gbps('native-async-encrypt', s)! / ossl(s)! : null,
  }));
  const environment = {
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    opensslCli: opensslVersion(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    threadpool: inFlight,
    bufferBytes: BUFFER_SIZE,
    batchBytes: BATCH,
    secondsPerCell: seconds,
  };

  if (json) {
    console.log(JSON.stringify({ environment, results: cells, openssl, ratios, target: TARGET_RATIO }, null, 2));
    return;
  }

  const rows: [string, ...string[]][] = [
    ['path', ...SECTOR_SIZES.map((s) => `${s} B sectors`)],
    ...(Object.keys(PATH_LABELS) as PathId[]).map(
      (p) => [PATH_LABELS[p], ...SECTOR_SIZES.map((s) => fmtGbps(gbps(p, s)))] as [string, ...string[]],
    ),
    ['openssl speed -evp aes-256-xts', ...SECTOR_SIZES.map((s) => fmtGbps(ossl(s)))],
    ['native sync / openssl', ...SECTOR_SIZES.map((s) => fmtRatio(gbps('native-sync-encrypt', s), ossl(s)))],
    ['native async / openssl', ...SECTOR_SIZES.map((s) => fmtRatio(gbps('native-async-encrypt', s), ossl(s)))],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w = Math.max(...rows.flatMap((r) => r.slice(1).map((c) => c.length)));
  console.log(
    `XTS-AES-256 throughput, GB/s (10^9 bytes/s), in place, ${BUFFER_SIZE / MiB} MiB buffer in ${BATCH / MiB} MiB calls, ~${seconds} s per cell`,
  );
  console.log(
    `node ${environment.node} (OpenSSL ${environment.nodeOpenssl}), openssl CLI: ${environment.opensslCli ?? 'not found'}, ` +
      `${environment.cpu} x${environment.cores}, async: ${inFlight} calls in flight`,
  );
  console.log('');
  rows.forEach((r, i) => {
    console.log(`${r[0].padEnd(w0)}  ${r.slice(1).map((c) => c.padStart(w)).join('  ')}`);
    if (i === 0 || i === 4 || i === 5) console.log('-'.repeat(w0 + (w + 2) * SECTOR_SIZES.length));
  });
  for (const c of cells) if (c.note !== undefined) console.log(`note: ${PATH_LABELS[c.path]}, ${c.sectorSize} B: ${c.note}`);
  for (const c of openssl) if (c.note !== undefined) console.log(`note: openssl, ${c.sectorSize} B: ${c.note}`);
  const verdicts = ratios.map((r) =>
    r.nativeSyncVsOpenssl === null
      ? `${r.sectorSize} B: n/a`
      : `${r.sectorSize} B: ${Math.round(r.nativeSyncVsOpenssl * 100)}% ${r.nativeSyncVsOpenssl >= TARGET_RATIO ? 'ok' : 'BELOW target'}`,
  );
  console.log(`\ntarget: native sync >= ${TARGET_RATIO * 100}% of openssl speed (single thread vs single thread): ${verdicts.join(', ')}`);
}

await main();
