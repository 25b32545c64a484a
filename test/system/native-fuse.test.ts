/**
 * The native volume server (native/fuse_server.c, through src/server/native-frontend.ts): FUSE on
 * /dev/fuse from native threads, serving the decrypted data area as `<mountDir>/volume`.
 *
 * What reaches the container is checked by decrypting it independently with node:crypto's
 * aes-256-xts (spec/format.md §8: sector i, IV = LE128(firstTweak + i * tweakStep)). fio's crc32c
 * verification covers many more I/O shapes, on the file and through a loop device.
 *
 * Needs root, /dev/fuse, loop devices and fio; skips loudly without them (and fails
 * instead on CI). The addon itself is required: without it the file fails. After every test nothing may be left: no mount
 * under the temporary directory, no loop device on a file in it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
  writeFileSync,
  fsyncSync,
  promises as fsp,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { nativeAddon } from '../../src/crypto/native.js';
import { fuseAddon, type FuseEnd } from '../../src/server/fuse-addon.js';
import { serveNative, type NativeServer } from '../../src/server/native-frontend.js';
import type { ServerConfig } from '../../src/server/protocol.js';
import { queueLimits } from '../../src/system/capabilities.js';
import { renewLoopDevice, switchDiscardOff } from '../support/discard-off.js';
import { commandExists, requirementsMet } from '../support/requirements.js';
import { fuseUringSupported, setEnableUring, withEnableUring } from '../support/fuse-uring.js';

const ADDON_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release');
const DATA_OFFSET = 1 << 20;
const MiB = 1 << 20;

function missingRequirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
  for (const tool of ['fio', 'losetup', 'blkdiscard', 'fallocate', 'umount', 'mkfs.ext4', 'e2fsck', 'python3']) if (!commandExists(tool)) missing.push(tool);
  return missing;
}

const missing = missingRequirements();
requirementsMet('native-fuse', missing);

/** A random XTS-AES-256 key whose halves differ. */
function makeKey(): Buffer {
  for (;;) {
    const k = randomBytes(64);
    if (!k.subarray(0, 32).equals(k.subarray(32))) return k;
  }
}

/** A real pipe (from the main addon) holding the key, write end closed: returns the read end. */
function keyPipe(bytes: Uint8Array): number {
  const [r, w] = nativeAddon().pipe();
  writeSync(w, bytes);
  closeSync(w);
  return r;
}

function iv128(n: bigint): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(n & 0xffffffffffffffffn, 0);
  iv.writeBigUInt64LE(n >> 64n, 8);
  return iv;
}

/** Decrypts sectors of the container's data area independently with node:crypto (spec §8). */
/** The data area decrypted independently (spec §8); with v.zeroSectors an all-zero stored sector is a zero sector. */
function decryptRange(v: Vol, from = 0, to = v.dataSize): Buffer {
  const ss = v.sectorSize;
  const first = Math.floor(from / ss);
  const last = Math.ceil(to / ss);
  const cipher = Buffer.alloc((last - first) * ss);
  readSync(v.fd, cipher, 0, cipher.length, DATA_OFFSET + first * ss);
  const out = Buffer.alloc(cipher.length);
  for (let i = 0; i < last - first; i++) {
    if (v.zeroSectors && cipher.subarray(i * ss, (i + 1) * ss).every((b) => b === 0)) continue; // out is zeros there
    const d = createDecipheriv('aes-256-xts', v.key, iv128(v.firstTweak + BigInt(first + i) * v.tweakStep));
    Buffer.concat([d.update(cipher.subarray(i * ss, (i + 1) * ss)), d.final()]).copy(out, i * ss);
  }
  return out.subarray(from - first * ss, from - first * ss + (to - from));
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

function loopsOn(prefix: string): string[] {
  const out = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[1]!.startsWith(prefix))
    .map((f) => f[0]!);
}

interface Vol {
  dir: string;
  mnt: string;
  vol: string;
  container: string;
  fd: number;
  key: Buffer;
  sectorSize: number;
  dataSize: number;
  firstTweak: bigint;
  tweakStep: bigint;
  zeroSectors: boolean;
  server: NativeServer;
}

// Every test runs on both transports. The io_uring run switches the kernel's enable_uring on for
// its duration and puts back what it found (test/support/fuse-uring.ts).
const TRANSPORTS = ['classic', 'io_uring'] as const;
if (missing.length === 0 && !fuseUringSupported()) requirementsMet('native-fuse (io_uring transport)', ['a kernel with CONFIG_FUSE_IO_URING']);

for (const transport of TRANSPORTS)
describe.skipIf(missing.length > 0 || (transport === 'io_uring' && !fuseUringSupported()))(`native FUSE volume server (${transport} transport)`, () => {
  let root: string;
  let cleanups: (() => void | Promise<void>)[] = [];
  let uringWas: 'Y' | 'N' | undefined;

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'vault-nfuse-'));
    chmodSync(root, 0o700);
    if (transport === 'io_uring') uringWas = setEnableUring('Y');
  });

  afterEach(async () => {
    const errors: unknown[] = [];
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        errors.push(e);
      }
    }
    cleanups = [];
    // Nothing left behind: no mount, no loop device under our directory.
    expect(mountPoints().filter((m) => m.startsWith(root))).toEqual([]);
    expect(loopsOn(root)).toEqual([]);
    if (errors.length > 0) throw errors[0];
  });

  afterAll(() => {
    if (uringWas !== undefined) setEnableUring(uringWas);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function setup(opts: {
    sectorSize: number;
    dataSize: number;
    firstTweak?: bigint;
    tweakStep?: bigint;
    readOnly?: boolean;
    threads?: number;
    directIo?: boolean;
    bufferedWrites?: boolean;
    transport?: 'auto' | 'io_uring' | 'classic';
    /** mount --allow-discards: hole punches reach the container; with zeroSectors, as the vault format. */
    allowDiscards?: boolean;
    /** The container on a host filesystem with 4096-byte O_DIRECT alignment (hostFs4k). */
    host4k?: boolean;
  }): Promise<Vol> {
    const dir = mkdtempSync(path.join(root, 'v-'));
    const mnt = path.join(dir, 'fuse');
    mkdirSync(mnt, { mode: 0o700 });
    const container = path.join(opts.host4k ? hostFs4k(dir) : dir, 'c.vol');
    const init = openSync(container, 'w');
    ftruncateSync(init, DATA_OFFSET + opts.dataSize); // sparse, like a --quick container
    closeSync(init);
    const fd = openSync(container, opts.readOnly ? 'r' : 'r+');
    cleanups.push(() => closeSync(fd));
    const key = makeKey();
    const keyFd = keyPipe(key);
    const firstTweak = opts.firstTweak ?? 0n;
    const tweakStep = opts.tweakStep ?? 1n;
    const config: ServerConfig = {
      volumeId: path.basename(dir),
      containerPath: container,
      fuseDir: mnt,
      readOnly: opts.readOnly ?? false,
      sectorSize: opts.sectorSize,
      dataOffset: DATA_OFFSET,
      dataSize: opts.dataSize,
      firstTweak: firstTweak.toString(),
      tweakStep: tweakStep.toString(),
      transport: opts.transport ?? transport,
      idleSeconds: null,
      ...(opts.allowDiscards ? { allowDiscards: true, zeroSectors: true } : {}),
    };
    let server: NativeServer;
    try {
      server = await serveNative(config, fd, keyFd, {
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        ...(opts.directIo !== undefined ? { directIo: opts.directIo } : {}),
        ...(opts.bufferedWrites !== undefined ? { bufferedWrites: opts.bufferedWrites } : {}),
      });
    } finally {
      closeSync(keyFd);
    }
    cleanups.push(() => server.stop());
    return {
      dir,
      mnt,
      vol: path.join(mnt, 'volume'),
      container,
      fd,
      key,
      sectorSize: opts.sectorSize,
      dataSize: opts.dataSize,
      firstTweak,
      tweakStep,
      zeroSectors: !!opts.allowDiscards,
      server,
    };
  }

  /**
   * An ext4 on a loop device with 4096-byte logical sectors (a 4Kn disk, as far as O_DIRECT
   * alignment goes: statx STATX_DIOALIGN says 4096), mounted in dir; returns its mount point.
   * Undone after the test, after the server that uses it (cleanups run newest first).
   */
  function hostFs4k(dir: string): string {
    const img = path.join(dir, 'host4k.img');
    const fd = openSync(img, 'w');
    ftruncateSync(fd, 256 * MiB);
    closeSync(fd);
    const dev = run('losetup', ['--sector-size', '4096', '--find', '--show', img]).trim();
    cleanups.push(() => {
      spawnSync('losetup', ['-d', dev]);
    });
    run('mkfs.ext4', ['-q', '-b', '4096', dev]);
    const mp = path.join(dir, 'host4k');
    mkdirSync(mp);
    run('mount', [dev, mp]);
    cleanups.push(() => {
      run('umount', [mp]);
    });
    return mp;
  }

  function attachLoop(v: Vol, readOnly = false, sectorSize = 4096): string {
    const args = ['--direct-io=on', '--sector-size', String(sectorSize), '--find', '--show', ...(readOnly ? ['--read-only'] : []), v.vol];
    const dev = run('losetup', args).trim();
    cleanups.push(() => {
      spawnSync('losetup', ['-d', dev]);
    });
    return dev;
  }

  function fio(cwd: string, args: string[]): string {
    return run('fio', ['--output-format=terse', '--terse-version=3', '--verify_state_save=0', ...args], cwd);
  }

  // directIo: reads of 64 KiB and up O_DIRECT, writes and smaller reads through the host page cache
  // (native/fuse_io.c vf_open_direct), unless bufferedWrites is false: then everything O_DIRECT.
  const layouts: { sectorSize: number; firstTweak: bigint; tweakStep: bigint; directIo: boolean; bufferedWrites?: boolean; host4k?: boolean }[] = [
    { sectorSize: 512, firstTweak: 0n, tweakStep: 1n, directIo: true },
    { sectorSize: 4096, firstTweak: 0n, tweakStep: 1n, directIo: true },
    { sectorSize: 4096, firstTweak: 5n, tweakStep: 8n, directIo: true, bufferedWrites: false },
    { sectorSize: 512, firstTweak: 0n, tweakStep: 1n, directIo: false },
    // VeraCrypt's layout (512-byte sectors, first tweak = data offset / 512) on a 4 KiB-sector host:
    // O_DIRECT in 4096-byte units, sectors that share a unit read-modify-written (issue 18).
    { sectorSize: 512, firstTweak: 256n, tweakStep: 1n, directIo: true, host4k: true },
  ];
  for (const l of layouts) {
    it(`random writes at any offset and length read back, and reach the container as spec §8 says (${l.sectorSize}-byte sectors, tweak ${l.firstTweak} + i*${l.tweakStep}${l.directIo ? '' : ', buffered container'}${l.bufferedWrites === false ? ', all O_DIRECT' : ''}${l.host4k ? ', on a 4 KiB-sector host: 4096-byte O_DIRECT units' : ''})`, async () => {
      const v = await setup({ ...l, dataSize: 8 * MiB });
      const st = statSync(v.vol);
      expect(st.size).toBe(v.dataSize);
      expect(st.mode).toBe(0o100600);
      expect(statSync(v.mnt).mode).toBe(0o040700);
      const model = decryptRange(v); // what a sparse container decrypts to
      const fd = openSync(v.vol, 'r+');
      try {
        for (let i = 0; i < 250; i++) {
          const big = i % 25 === 0;
          const len = big ? randomInt(1, 3 * MiB) : randomInt(1, 3 * l.sectorSize);
          const pos = randomInt(0, v.dataSize - len);
          const data = randomBytes(len);
          expect(writeSync(fd, data, 0, len, pos)).toBe(len);
          data.copy(model, pos);
          const rp = randomInt(0, v.dataSize - 1);
          const rl = Math.min(randomInt(1, big ? 2 * MiB : 2 * l.sectorSize), v.dataSize - rp);
          const back = Buffer.alloc(rl);
          expect(readSync(fd, back, 0, rl, rp)).toBe(rl);
          expect(back.equals(model.subarray(rp, rp + rl))).toBe(true);
        }
        // End of the file: short read, then 0; writes at or across the end fail like a full disk.
        const tail = Buffer.alloc(100);
        expect(readSync(fd, tail, 0, 100, v.dataSize - 10)).toBe(10);
        expect(tail.subarray(0, 10).equals(model.subarray(v.dataSize - 10))).toBe(true);
        expect(readSync(fd, tail, 0, 100, v.dataSize)).toBe(0);
        expect(() => writeSync(fd, Buffer.alloc(2), 0, 2, v.dataSize - 1)).toThrow(/EFBIG/);
        expect(() => writeSync(fd, Buffer.alloc(2), 0, 2, v.dataSize)).toThrow(/ENOSPC/);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(v.vol).equals(model)).toBe(true);
      expect(decryptRange(v).equals(model)).toBe(true);
      const s = v.server.stats();
      if (!l.directIo) expect(s.directIo).toBe(false);
      else expect({ directIo: s.directIo, bufferedWrites: s.bufferedWrites }).toEqual({ directIo: true, bufferedWrites: l.bufferedWrites ?? true });
      if (l.host4k) expect({ directIo: s.directIo, ioUnit: s.ioUnit }).toEqual({ directIo: true, ioUnit: 4096 });
      expect(s.writes).toBeGreaterThanOrEqual(250);
      expect(s.reads).toBeGreaterThanOrEqual(250);
      expect(s.errors).toBe(0);
    });
  }

  // 512-byte sectors (VeraCrypt's and LUKS's data unit): the server's libgcrypt XTS must give
  // exactly OpenSSL's aes-256-xts. Encrypted forward here, independently, and compared byte for byte.
  it('512-byte sectors: the container holds node:crypto aes-256-xts of the plaintext (tweak 2^32 - 3 + i*7)', async () => {
    const v = await setup({ sectorSize: 512, dataSize: 2 * MiB, firstTweak: (1n << 32n) - 3n, tweakStep: 7n });
    const plain = randomBytes(v.dataSize);
    const fd = openSync(v.vol, 'r+');
    try {
      // Whole-sector runs that end in a short 4 KiB chunk (5632 = 4096 + 1536), up to 1 MiB runs,
      // and unaligned pieces (read-modify-write of head and tail sectors).
      const lengths = [512, 5632, 1536, 66048, 1000, 777, 300_000, MiB];
      for (let pos = 0, i = 0; pos < v.dataSize; i++) {
        const len = Math.min(lengths[i % lengths.length]!, v.dataSize - pos);
        expect(writeSync(fd, plain, pos, len, pos)).toBe(len);
        pos += len;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const expected = Buffer.alloc(v.dataSize);
    for (let i = 0; i < v.dataSize / 512; i++) {
      const c = createCipheriv('aes-256-xts', v.key, iv128(v.firstTweak + BigInt(i) * v.tweakStep));
      Buffer.concat([c.update(plain.subarray(i * 512, (i + 1) * 512)), c.final()]).copy(expected, i * 512);
    }
    const raw = readFileSync(v.container).subarray(DATA_OFFSET);
    expect(raw.equals(expected)).toBe(true);
    expect(readFileSync(v.vol).equals(plain)).toBe(true);
    expect(v.server.stats().errors).toBe(0);
  });

  for (const shape of [{ sectorSize: 4096 }, { sectorSize: 512, host4k: true }])
  it(`concurrent unaligned writes sharing sectors lose no update (${shape.sectorSize}-byte sectors${shape.host4k ? ' in 4096-byte O_DIRECT units: writes of different sectors of one unit too' : ''})`, async () => {
    const v = await setup({ ...shape, dataSize: 4 * MiB, threads: 8 });
    if (shape.host4k) expect(v.server.stats().ioUnit).toBe(4096);
    const check = (writes: { pos: number; data: Buffer }[]) => {
      const plain = decryptRange(v, 0, 2 * MiB);
      const seen = readFileSync(v.vol).subarray(0, 2 * MiB);
      for (const w of writes) {
        expect(plain.subarray(w.pos, w.pos + w.data.length).equals(w.data)).toBe(true);
        expect(seen.subarray(w.pos, w.pos + w.data.length).equals(w.data)).toBe(true);
      }
    };
    // 64 concurrent writes through the libuv threadpool, each owning 97 bytes, 64 writers sharing
    // two sectors; several rounds.
    const fh = await fsp.open(v.vol, 'r+');
    try {
      for (let round = 0; round < 10; round++) {
        const writes = Array.from({ length: 64 }, (_, k) => ({ pos: k * 97 + 5 + round * 3, data: randomBytes(97) }));
        await Promise.all(writes.map((w) => fh.write(w.data, 0, w.data.length, w.pos)));
        check(writes);
      }
    } finally {
      await fh.close();
    }
    // More parallelism than the threadpool gives: 16 threads x 4 writes released together by a
    // barrier, 61-byte pieces across a sector boundary (RMW of two sectors each).
    for (let round = 0; round < 5; round++) {
      const writes = Array.from({ length: 64 }, (_, k) => ({ pos: 8192 - 2000 + k * 61, data: randomBytes(61) }));
      const barrier = new Int32Array(new SharedArrayBuffer(4));
      const code = `
        const { workerData } = require('node:worker_threads');
        const fs = require('node:fs');
        const fd = fs.openSync(workerData.vol, 'r+');
        Atomics.add(workerData.barrier, 0, 1);
        while (Atomics.load(workerData.barrier, 0) < workerData.n) Atomics.wait(workerData.barrier, 0, Atomics.load(workerData.barrier, 0), 5);
        for (const w of workerData.writes) fs.writeSync(fd, Buffer.from(w.data), 0, w.data.length, w.pos);
        fs.closeSync(fd);
      `;
      await Promise.all(
        Array.from({ length: 16 }, (_, t) => {
          const mine = writes.filter((_, k) => k % 16 === t).map((w) => ({ pos: w.pos, data: new Uint8Array(w.data) }));
          const worker = new Worker(code, { eval: true, workerData: { vol: v.vol, barrier, n: 16, writes: mine } });
          return new Promise<void>((resolve, reject) => {
            worker.on('error', reject);
            worker.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exited ${c}`))));
          });
        }),
      );
      check(writes);
    }
    expect(v.server.stats().errors).toBe(0);
  });

  it('fio --verify=crc32c on the volume file: 4 jobs, unaligned 1k-64k blocks, buffered', async () => {
    const v = await setup({ sectorSize: 512, dataSize: 64 * MiB });
    const cwd = mkdtempSync(path.join(v.dir, 'fio-'));
    for (const rw of ['randwrite', 'write']) {
      fio(cwd, [
        '--name=nfuse',
        `--filename=${v.vol}`,
        `--rw=${rw}`,
        '--bsrange=1k-64k',
        '--bs_unaligned',
        '--numjobs=4',
        '--size=16M',
        '--offset_increment=16M',
        '--ioengine=psync',
        '--direct=0',
        '--verify=crc32c',
        '--do_verify=1',
        '--verify_fatal=1',
        '--group_reporting',
      ]);
    }
    expect(v.server.stats().errors).toBe(0);
  });

  for (const shape of [{ sectorSize: 4096, bs: '4k-1m' }, { sectorSize: 512, bs: '512-1m', host4k: true }])
  it(`fio --verify=crc32c through a loop device (direct I/O, ${shape.sectorSize}-byte sectors${shape.host4k ? ', 4096-byte O_DIRECT units on the host' : ''}): libaio, iodepth 16, ${shape.bs}`, async () => {
    const v = await setup({ ...shape, dataSize: 64 * MiB });
    if (shape.host4k) expect(v.server.stats().ioUnit).toBe(4096);
    const dev = attachLoop(v, false, shape.sectorSize);
    const cwd = mkdtempSync(path.join(v.dir, 'fio-'));
    for (const rw of ['randwrite', 'write']) {
      fio(cwd, [
        '--name=nfuse-loop',
        `--filename=${dev}`,
        `--rw=${rw}`,
        `--bsrange=${shape.bs}`,
        '--ioengine=libaio',
        '--iodepth=16',
        '--direct=1',
        '--size=64M',
        '--verify=crc32c',
        '--do_verify=1',
        '--verify_fatal=1',
      ]);
    }
    expect(v.server.stats().errors).toBe(0);
  });

  /** Fills the whole volume with random bytes through the FUSE file; returns what it wrote. */
  function fillRandom(v: Vol): Buffer {
    const all = randomBytes(v.dataSize);
    const fd = openSync(v.vol, 'r+');
    try {
      writeSync(fd, all, 0, all.length, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return all;
  }

  /**
   * The volume reads back as `all` with `zeroed` and `holes` ranges zero, and decrypts independently
   * to the same. The container holds ciphertext of zeros in `zeroed`: no hole, which would show what
   * is unused; in `holes` (discards allowed) its whole sectors are all-zero bytes, a hole.
   */
  function expectZeroedAsCiphertext(v: Vol, all: Buffer, zeroed: [number, number][], holes: [number, number][] = []): void {
    const expected = Buffer.from(all);
    for (const [a, b] of [...zeroed, ...holes]) expected.fill(0, a, b);
    expect(readFileSync(v.vol).equals(expected)).toBe(true);
    expect(decryptRange(v).equals(expected)).toBe(true);
    const raw = readFileSync(v.container).subarray(DATA_OFFSET);
    const inner = ([a, b]: [number, number]) => raw.subarray(Math.ceil(a / 4096) * 4096, Math.floor(b / 4096) * 4096);
    // A range within partial sectors: the sectors that cover it, ciphertext too.
    const covering = ([a, b]: [number, number]) => raw.subarray(Math.floor(a / 4096) * 4096, Math.ceil(b / 4096) * 4096);
    for (const r of zeroed) {
      const stored = inner(r).length > 0 ? inner(r) : covering(r);
      expect(stored.every((x) => x === 0)).toBe(false);
    }
    for (const r of holes) {
      expect(inner(r).length).toBeGreaterThan(0);
      expect(inner(r).every((x) => x === 0)).toBe(true);
    }
    expect(v.server.stats().errors).toBe(0);
  }

  // FUSE level, on every kernel: fallocate(2) on the block file itself.
  it('fallocate zero-range gives zeros stored as encrypted zeros; a hole punch is refused without allowDiscards', async () => {
    const v = await setup({ sectorSize: 4096, dataSize: 16 * MiB });
    const all = fillRandom(v);
    const zeroed: [number, number][] = [];
    // Unaligned ranges: read-modify-write at the edges.
    run('fallocate', ['--zero-range', '--keep-size', '--offset', '1000001', '--length', '12345', v.vol]);
    zeroed.push([1000001, 1000001 + 12345]);
    run('fallocate', ['--zero-range', '--keep-size', '--offset', String(12 * MiB - 77), '--length', '1500000', v.vol]);
    zeroed.push([12 * MiB - 77, 12 * MiB - 77 + 1500000]);
    const punch = spawnSync('fallocate', ['--punch-hole', '--keep-size', '--offset', String(2 * MiB), '--length', String(3 * MiB), v.vol], { encoding: 'utf8' });
    expect(punch.status).not.toBe(0);
    expect(punch.stderr).toMatch(/not supported|unsupported/i); // EOPNOTSUPP, in fallocate(1)'s words
    // Preallocation changes nothing; other modes are refused.
    run('fallocate', ['--offset', '0', '--length', String(v.dataSize), v.vol]);
    expect(spawnSync('fallocate', ['--collapse-range', '--offset', '0', '--length', '65536', v.vol]).status).not.toBe(0);
    expectZeroedAsCiphertext(v, all, zeroed);
  });

  for (const shape of [{ sectorSize: 4096 }, { sectorSize: 512, host4k: true }])
  it(`with allowDiscards a hole punch frees whole sectors of the container (they read as zeros), edges get encrypted zeros (${shape.sectorSize}-byte sectors${shape.host4k ? ', 4096-byte O_DIRECT units: whole units punched' : ''})`, async () => {
    const v = await setup({ ...shape, dataSize: 16 * MiB, allowDiscards: true });
    const all = fillRandom(v);
    const before = statSync(v.container).blocks;
    // 3 MiB + 2 partial sectors: the partial ones are read-modify-written, the rest punched out.
    const off = 2 * MiB - 1000;
    const len = 3 * MiB + 3000;
    run('fallocate', ['--punch-hole', '--keep-size', '--offset', String(off), '--length', String(len), v.vol]);
    const freed = (before - statSync(v.container).blocks) * 512;
    console.log(`[discard] punched ${len} bytes through the FUSE file: the container's allocation fell by ${freed} bytes`);
    expect(freed).toBeGreaterThanOrEqual(3 * MiB);
    expect(freed).toBeLessThanOrEqual(3 * MiB + 8192);
    // The partial sectors: encrypted zeros where zeroed; the whole ones: a hole, read as zeros.
    expectZeroedAsCiphertext(v, all, [[off, 2 * MiB], [5 * MiB, off + len]], [[2 * MiB, 5 * MiB]]);
    // A write into the hole fills it with ciphertext again.
    const fd = openSync(v.vol, 'r+');
    const patch = randomBytes(8192);
    try {
      writeSync(fd, patch, 0, patch.length, 3 * MiB);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    patch.copy(all, 3 * MiB);
    all.fill(0, off, 3 * MiB);
    all.fill(0, 3 * MiB + 8192, off + len);
    expect(readFileSync(v.vol).equals(all)).toBe(true);
    expect(decryptRange(v).equals(all)).toBe(true);
  });

  // Loop level: the kernel decides whether a loop device passes discard and write-zeroes on (some
  // builds offer neither). Each branch asserts what that kernel promises; the run says which it
  // took. The second round turns discard off through sysfs, so both branches run on every machine.
  for (const round of ['as the kernel offers', 'with discard switched off in sysfs'] as const) {
    it(`loop device discard (allowDiscards) and write-zeroes (${round}): zeros where offered, a clean refusal where not`, async () => {
      const v = await setup({ sectorSize: 4096, dataSize: 16 * MiB, allowDiscards: true });
      const all = fillRandom(v);
      const dev = attachLoop(v);
      const zeroed: [number, number][] = [];
      const holes: [number, number][] = [];
      if (round !== 'as the kernel offers') {
        cleanups.unshift(() => renewLoopDevice(dev)); // runs last, after the detach
        switchDiscardOff(dev);
      }
      const limits = queueLimits(dev);
      const discard = spawnSync('blkdiscard', ['--offset', String(2 * MiB), '--length', String(3 * MiB), dev], { encoding: 'utf8' });
      if (limits.discardMaxBytes > 0) {
        console.log(`[capability] ${dev}: discard offered (${limits.discardMaxBytes} bytes): blkdiscard must punch the range out`);
        expect(discard.status, discard.stderr).toBe(0);
        holes.push([2 * MiB, 5 * MiB]);
      } else {
        console.log(`[capability] ${dev}: no discard (discard_max_bytes 0): blkdiscard must be refused and change nothing`);
        expect(discard.status).not.toBe(0);
        expect(discard.stderr).toMatch(/not supported/i);
      }
      // BLKZEROOUT always zeroes: as REQ_OP_WRITE_ZEROES (a zero-range fallocate on our file) where
      // the queue takes it, otherwise the kernel writes zero pages.
      console.log(
        `[capability] ${dev}: write-zeroes ${limits.writeZeroesMaxBytes > 0 ? `offered (${limits.writeZeroesMaxBytes} bytes)` : 'not offered: the kernel writes zero pages'}`,
      );
      run('blkdiscard', ['--zeroout', '--offset', String(8 * MiB + 4096), '--length', String(40960), dev]);
      zeroed.push([8 * MiB + 4096, 8 * MiB + 4096 + 40960]);
      expectZeroedAsCiphertext(v, all, zeroed, holes);
      // Either way the loop device still carries a filesystem that mounts, keeps a file and checks clean.
      run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard', dev]);
      const mnt = mkdtempSync(path.join(v.dir, 'ext4-'));
      run('mount', ['-o', 'nodiscard', dev, mnt]);
      const file = randomBytes(MiB);
      try {
        writeFileSync(path.join(mnt, 'f'), file);
      } finally {
        run('umount', [mnt]);
      }
      run('mount', ['-o', 'ro', dev, mnt]);
      try {
        expect(readFileSync(path.join(mnt, 'f')).equals(file)).toBe(true);
      } finally {
        run('umount', [mnt]);
      }
      run('e2fsck', ['-fn', dev]); // throws unless it exits 0: clean
    });
  }

  it('grows online only by whole 4096-byte units where the container is O_DIRECT in such units (512-byte sectors, 4 KiB-sector host)', async () => {
    const v = await setup({ sectorSize: 512, dataSize: 4 * MiB, host4k: true });
    ftruncateSync(v.fd, DATA_OFFSET + 5 * MiB); // the container grew under the server, as vault resize does
    expect(() => v.server.grow(4 * MiB + 512)).toThrow(/multiple of the container's direct-I\/O alignment/);
    expect(statSync(v.vol).size).toBe(4 * MiB);
    v.server.grow(4 * MiB + 4096);
    expect(statSync(v.vol).size).toBe(4 * MiB + 4096);
    const last = randomBytes(700);
    const fd = openSync(v.vol, 'r+');
    try {
      expect(writeSync(fd, last, 0, last.length, 4 * MiB + 4096 - 700)).toBe(700);
    } finally {
      closeSync(fd);
    }
    expect(decryptRange(v, 4 * MiB + 4096 - 700, 4 * MiB + 4096).equals(last)).toBe(true);
    expect(v.server.stats().errors).toBe(0);
  });

  it('a read-only session serves reads and refuses writes with EROFS', async () => {
    const v = await setup({ sectorSize: 512, dataSize: 1 * MiB, readOnly: true });
    expect(statSync(v.vol).mode).toBe(0o100400);
    expect(readFileSync(v.vol).equals(decryptRange(v))).toBe(true);
    expect(() => openSync(v.vol, 'r+')).toThrow(/EROFS/);
    expect(() => openSync(v.vol, 'w')).toThrow(/EROFS/);
    expect(spawnSync('fallocate', ['--punch-hole', '--keep-size', '--offset', '0', '--length', '4096', v.vol]).status).not.toBe(0);
    // A read-only loop device on top works too.
    const dev = attachLoop(v, true);
    const head = Buffer.alloc(4096);
    const lfd = openSync(dev, 'r');
    try {
      expect(readSync(lfd, head, 0, 4096, 0)).toBe(4096);
    } finally {
      closeSync(lfd);
    }
    expect(head.equals(decryptRange(v, 0, 4096))).toBe(true);
  });

  it(`serves on the ${transport} transport, and stats() says so and why`, async () => {
    const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB });
    expect(v.server.stats().transport).toBe(transport);
    expect(v.server.stats().transportNote).toMatch(new RegExp(`^${transport}: asked for`));
  });

  if (transport === 'io_uring') {
    // What 'auto' picks (and what a forced choice does) as root switches enable_uring.
    it("'auto' serves classic while enable_uring is N, and says why", async () => {
      await withEnableUring('N', async () => {
        const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB, transport: 'auto' });
        expect(v.server.stats().transport).toBe('classic');
        expect(v.server.stats().transportNote).toMatch(/enable_uring is N/);
        const fd = openSync(v.vol, 'r+');
        writeSync(fd, Buffer.from('classic'), 0, 7, 4096);
        closeSync(fd);
      });
    });
    it("'auto' serves io_uring while enable_uring is Y", async () => {
      await withEnableUring('Y', async () => {
        const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB, transport: 'auto' });
        expect(v.server.stats().transport).toBe('io_uring');
        expect(v.server.stats().transportNote).toMatch(/^io_uring: enable_uring is Y/);
      });
    });
    it("'classic' stays classic while enable_uring is Y", async () => {
      await withEnableUring('Y', async () => {
        const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB, transport: 'classic' });
        expect(v.server.stats().transport).toBe('classic');
      });
    });
    it('a forced io_uring while enable_uring is N fails with ERR_VAULT_URING_UNAVAILABLE, says how to switch it on, mounts nothing', async () => {
      await withEnableUring('N', async () => {
        const e = await setup({ sectorSize: 4096, dataSize: 1 * MiB, transport: 'io_uring' }).then(
          () => null,
          (err: unknown) => err as Error & { code?: string; cause?: { code?: string } },
        );
        expect(e?.code).toBe('missing-component');
        expect(e?.cause?.code).toBe('ERR_VAULT_URING_UNAVAILABLE');
        expect(e?.message).toMatch(/enable_uring is N/);
        expect(e?.message).toContain('vault uring enable');
        expect(mountPoints().filter((m) => m.startsWith(root))).toEqual([]);
      });
    });
  }

  it('stop() with I/O in flight (fio: reads, writes and fsyncs at depth 16) returns promptly; wait() says stopped', async () => {
    const v = await setup({ sectorSize: 4096, dataSize: 64 * MiB });
    const fio = spawn('fio', ['--name=busy', `--filename=${v.vol}`, '--rw=randrw', '--bsrange=4k-1m', '--direct=1', '--ioengine=libaio',
      '--iodepth=16', '--numjobs=2', '--fsync=4', '--time_based', '--runtime=60', '--size=64m'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => fio.on('close', (code) => resolve(code)));
    try {
      const until = Date.now() + 20_000;
      while (v.server.stats().writes < 50 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(v.server.stats().writes).toBeGreaterThanOrEqual(50);
      const t0 = Date.now();
      await v.server.stop();
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await v.server.done).toEqual({ reason: 'stopped' });
      expect(mountPoints()).not.toContain(v.mnt);
      // fio sees the volume go (I/O errors) and ends long before its 60 s.
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 20_000))]);
      expect(code).not.toBe('still running');
    } finally {
      fio.kill('SIGKILL');
    }
  });

  it('stop() unmounts, joins and is idempotent; wait() then says stopped', async () => {
    const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB });
    expect(mountPoints()).toContain(v.mnt);
    // A descriptor still open on `volume` keeps the connection alive past the unmount: stop() must
    // not wait for it.
    const held = openSync(v.vol, 'r+');
    writeSync(held, Buffer.from('x'));
    const t0 = Date.now();
    await v.server.stop();
    try {
      closeSync(held);
    } catch {
      // ENOTCONN: the connection is gone
    }
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(mountPoints()).not.toContain(v.mnt);
    expect(await v.server.done).toEqual({ reason: 'stopped' });
    await v.server.stop();
    expect(v.server.stats().writes).toBe(1);
  });

  it('stop() with a loop device still attached aborts the connection instead of hanging', async () => {
    const v = await setup({ sectorSize: 4096, dataSize: 1 * MiB });
    const dev = attachLoop(v);
    await v.server.stop();
    expect(mountPoints()).not.toContain(v.mnt);
    expect(await v.server.done).toEqual({ reason: 'stopped' });
    const r = spawnSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0); // the volume is gone: I/O errors, not stale plaintext
  });

  it('umount -l from outside ends the session: wait() resolves "unmounted"', async () => {
    const v = await setup({ sectorSize: 512, dataSize: 1 * MiB });
    run('umount', ['-l', v.mnt]);
    const end = await Promise.race([
      v.server.done,
      new Promise<FuseEnd>((_, reject) => setTimeout(() => reject(new Error('wait() did not resolve')), 10_000)),
    ]);
    expect(end).toEqual({ reason: 'unmounted' });
    expect(mountPoints()).not.toContain(v.mnt);
    await v.server.stop(); // still fine afterwards
  });

  it('process.exit() or an uncaught exception while serving leaves no mount behind', () => {
    for (const ending of ['process.exit(3)', "throw new Error('boom')"]) {
      const dir = mkdtempSync(path.join(root, 'exit-'));
      const mnt = path.join(dir, 'fuse');
      mkdirSync(mnt, { mode: 0o700 });
      const code = `
        const fs = require('node:fs');
        const crypto = require('node:crypto');
        const native = require(${JSON.stringify(path.join(ADDON_DIR, 'vault_native.node'))});
        const fuse = native;
        const fd = fs.openSync(${JSON.stringify(path.join(dir, 'c.vol'))}, 'w+');
        fs.ftruncateSync(fd, ${DATA_OFFSET + MiB});
        const [r, w] = native.pipe();
        fs.writeSync(w, crypto.randomBytes(64));
        fs.closeSync(w);
        const s = fuse.serve({ mountDir: ${JSON.stringify(mnt)}, containerFd: fd, keyFd: r, dataOffset: ${DATA_OFFSET},
          dataSize: ${MiB}, sectorSize: 4096, firstTweak: 0n, tweakStep: 1n, readOnly: false, transport: '${transport}' });
        fs.writeSync(1, fs.readdirSync(${JSON.stringify(mnt)}).join(',') + '\\n');
        ${ending};
      `;
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
      expect(r.stdout.trim()).toBe('volume');
      expect(r.status).not.toBe(0);
      expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
    }
  });

  describe('serve() refuses bad input and leaves nothing mounted', () => {
    function tryServe(over: Record<string, unknown>, key: Uint8Array = makeKey()) {
      const dir = mkdtempSync(path.join(root, 'bad-'));
      const mnt = path.join(dir, 'fuse');
      mkdirSync(mnt, { mode: 0o700 });
      const container = path.join(dir, 'c.vol');
      const init = openSync(container, 'w');
      ftruncateSync(init, DATA_OFFSET + MiB);
      closeSync(init);
      const fd = openSync(container, 'r+');
      const keyFd = keyPipe(key);
      try {
        const s = fuseAddon().serve({
          mountDir: mnt,
          containerFd: fd,
          keyFd,
          dataOffset: DATA_OFFSET,
          dataSize: MiB,
          sectorSize: 4096,
          firstTweak: 0n,
          tweakStep: 1n,
          readOnly: false,
          transport,
          ...over,
        } as never);
        fuseAddon().stop(s);
        return null;
      } catch (e) {
        return e as NodeJS.ErrnoException;
      } finally {
        closeSync(keyFd);
        closeSync(fd);
        expect(mountPoints().filter((m) => m.startsWith(dir))).toEqual([]);
      }
    }

    it('equal key halves', () => {
      const k = randomBytes(32);
      expect(tryServe({}, Buffer.concat([k, k]))?.code).toBe('ERR_VAULT_XTS_EQUAL_HALVES');
    });
    it('cipher chains (issue 18): an unknown one is refused; a cascade reads its 64 bytes per cipher and checks each pair', () => {
      expect(tryServe({ cipher: 'des' })?.code).toBe('ERR_OUT_OF_RANGE');
      expect(tryServe({ cipher: 'serpent-twofish' }, randomBytes(64))?.code).toBe('ERR_VAULT_KEY_SHORT_READ');
      const k = randomBytes(32);
      expect(tryServe({ cipher: 'serpent-twofish' }, Buffer.concat([randomBytes(32), k, randomBytes(32), k]))?.code).toBe('ERR_VAULT_XTS_EQUAL_HALVES');
      expect(tryServe({ cipher: 'serpent-twofish' }, randomBytes(128))).toBeNull();
    });
    it('a key pipe that ends early', () => {
      expect(tryServe({}, randomBytes(40))?.code).toBe('ERR_VAULT_KEY_SHORT_READ');
    });
    it('a missing mount point', () => {
      expect(tryServe({ mountDir: path.join(root, 'nope', 'nope') })?.code).toBe('ENOENT');
    });
    it('bad geometry', () => {
      expect(tryServe({ sectorSize: 1000 })?.code).toBe('ERR_OUT_OF_RANGE');
      expect(tryServe({ dataSize: MiB + 512 })?.code).toBe('ERR_OUT_OF_RANGE');
      expect(tryServe({ dataSize: 2 * MiB })?.code).toBe('ERR_VAULT_CONTAINER_SHORT');
      expect(tryServe({ firstTweak: (1n << 64n) - 2n })?.code).toBe('ERR_OUT_OF_RANGE');
    });
    it('a container that is neither a regular file nor a block device, or a block device shorter than the data area (issue 13)', () => {
      const dev = openSync('/dev/null', 'r+');
      try {
        expect(tryServe({ containerFd: dev })?.code).toBe('EINVAL');
      } finally {
        closeSync(dev);
      }
      // A block device's st_size is 0: the server must ask the device (BLKGETSIZE64), as the CLI does.
      const backing = path.join(mkdtempSync(path.join(root, 'blk-')), 'small');
      const init = openSync(backing, 'w');
      ftruncateSync(init, DATA_OFFSET + MiB / 2);
      closeSync(init);
      const loop = spawnSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' });
      expect(loop.status, loop.stderr).toBe(0);
      const blk = openSync(loop.stdout.trim(), 'r+');
      try {
        expect(tryServe({ containerFd: blk })?.code).toBe('ERR_VAULT_CONTAINER_SHORT');
        expect(tryServe({ containerFd: blk, dataSize: MiB / 2 })).toBeNull();
      } finally {
        closeSync(blk);
        spawnSync('losetup', ['-d', loop.stdout.trim()]);
      }
    });
  });
});
