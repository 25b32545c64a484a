/**
 * End-to-end harness: runs the built `vault` binary for real (FUSE, loop devices, mkfs, mount) and
 * checks that nothing of ours is left behind after each test.
 *
 * These tests need root and /dev/fuse. Where those are truly missing they skip, loudly; on CI
 * (CI=true) a missing requirement fails the suite instead, because there they must run.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fuseUringSupported, setEnableUring } from '../support/fuse-uring.js';
import { isServerCmdline } from '../support/user-leftovers.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/src/cli/main.js');
/** The installed `vault` (package.json "bin"): the bundled CLI with its code cache (scripts/bundle.mjs). */
export const BUNDLED_CLI = path.join(ROOT, 'dist/bundle/vault.cjs');
/**
 * Where the volumes under test keep their state. A run may set VAULT_RUN_DIR and VAULT_E2E_TAG to
 * isolate itself from other runs on the same machine (parallel development worktrees): it then
 * judges only its own run directory and temp dirs as leftovers.
 */
export const RUN_DIR = process.env.VAULT_RUN_DIR ?? '/run/vault';
const TAG = process.env.VAULT_E2E_TAG ?? '';
// A tagged run's temp dirs must not start with the untagged prefix, or an untagged run would judge
// them (and force-clean them) as its own leftovers.
export const TMP_PREFIX = TAG ? `/tmp/vault-e2e.${TAG}-` : '/tmp/vault-e2e-';
/** The default mount base is shared by every run; only an untagged run judges it. */
const CHECK_MEDIA = TAG === '';

/** Cheap KDF for tests, through the documented flags (spec bounds allow 1 MiB, 1 pass). */
export const FAST_KDF = ['--kdf-memory', '8', '--kdf-iterations', '1', '--kdf-parallelism', '1'];

export function missingRequirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
  if (!existsSync(CLI)) missing.push(`${CLI} (run npm run build)`);
  return missing;
}

/** Whether e2e tests can run here; on CI a missing requirement is an error, not a skip. */
export function e2eAvailable(suite: string): boolean {
  const missing = missingRequirements();
  if (missing.length === 0) return true;
  const msg = `\n!!!!! ${suite}: END-TO-END TESTS SKIPPED: missing ${missing.join(', ')} !!!!!\n`;
  if (process.env.CI) throw new Error(msg);
  console.warn(msg);
  return false;
}

/**
 * The volume server's transports: FUSE over io_uring and classic /dev/fuse. Each has its own way
 * of moving requests and replies, so the mount suites run on both (io_uring where the kernel has
 * it at all; elsewhere those suites are left out, loudly). vault is run with VAULT_FUSE_TRANSPORT
 * set to the transport under test, so a server that cannot have it fails instead of falling back.
 *
 * The kernel's switch for FUSE over io_uring (enable_uring) is machine-wide and off by default:
 * useTransport('io_uring') switches it on and remembers what it found; useTransport('classic')
 * puts that back. forEachTransport's io_uring suite does so in its afterAll, so a run leaves the
 * switch as it found it.
 */
const URING = fuseUringSupported();
if (!URING) console.warn('\n!!!!! e2e: the io_uring transport is not tested: this kernel has no FUSE over io_uring !!!!!\n');
export const TRANSPORTS: readonly Transport[] = URING ? ['classic', 'io_uring'] : ['classic'];
export type Transport = 'classic' | 'io_uring';
let transport: Transport = 'classic';
let uringWas: 'Y' | 'N' | undefined;
export function useTransport(t: Transport): void {
  transport = t;
  if (t === 'io_uring' && uringWas === undefined) uringWas = setEnableUring('Y');
  if (t !== 'io_uring' && uringWas !== undefined) {
    setEnableUring(uringWas);
    uringWas = undefined;
  }
}
/** The transport vault is run with (what `vault list --json` must show). */
export function currentTransport(): Transport {
  return transport;
}

export interface VaultResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `vault ARGS` with `input` on stdin (never a TTY) and returns its exit status and output.
 *  `cli`: which of the CLI's scripts (CLI, or BUNDLED_CLI as installed). */
export function vault(args: string[], input: string | Buffer = '', env: Record<string, string> = {}, cli = CLI): VaultResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [cli, ...args], {
    input,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, VAULT_FUSE_TRANSPORT: transport, ...env },
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, asynchronously (for concurrent invocations). */
export function vaultAsync(args: string[], input = ''): Promise<VaultResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VAULT_FUSE_TRANSPORT: transport } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status: status ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Runs any program asynchronously (so tests can do other things meanwhile); its output, both streams, in order. */
export function execAsync(cmd: string, args: string[], timeoutMs = 300_000): Promise<{ status: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status: status ?? -1, out });
    });
  });
}

/** The pid of the volume server behind a mount point, from `vault list --json`. */
export function serverPidOf(mountpoint: string): number {
  const list = JSON.parse(ok(vault(['list', '--json'])).stdout) as { mountpoint: string; serverPid: number }[];
  const v = list.find((x) => x.mountpoint === mountpoint);
  if (!v) throw new Error(`${mountpoint} is not in vault list`);
  return v.serverPid;
}

export function ok(r: VaultResult, what = 'vault'): VaultResult {
  expect(r.status, `${what} failed: ${r.stderr}`).toBe(0);
  return r;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(`${TMP_PREFIX}${prefix}-`);
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * What of ours exists on the machine right now: mounts, loop devices, volume servers and state of
 * the default run directory (/run/vault), the default mount base and the tests' temp dirs. Volumes
 * of other run directories (a benchmark's VAULT_RUN_DIR) are not ours to judge.
 */
export function leftovers(): string[] {
  const ours = (p: string) => p.startsWith(RUN_DIR + '/') || (CHECK_MEDIA && p.startsWith('/media/vault/')) || p.startsWith(TMP_PREFIX);
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const mp = (f[4] ?? '').replace(/\\040/g, ' ');
    const fstype = f[f.indexOf('-') + 1] ?? '';
    if (ours(mp)) found.push(`mount ${mp} (${fstype})`);
  }
  const loops = spawnSync('losetup', ['-a'], { encoding: 'utf8' }).stdout;
  // "(/volume)": a vault block file whose FUSE mount is gone (detached), its loop device left over.
  for (const l of loops.split('\n')) if (l.includes(`(${RUN_DIR}/`) || l.includes(`(${TMP_PREFIX}`) || (CHECK_MEDIA && l.endsWith(' (/volume)'))) found.push(`loop ${l}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      // A server's argv names only its volume id, so tell ours by its log (fd 1), which lies in its
      // run directory; it stays open, even deleted, for as long as the server lives.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (isServerCmdline(cmd) && readlinkSync(`/proc/${pid}/fd/1`).startsWith(`${RUN_DIR}/`)) found.push(`server process ${pid}`);
    } catch {
      // exited while we looked
    }
  }
  // locks/ holds the header-lock files (src/volume/header-lock.ts): empty files, kept on purpose.
  if (existsSync(RUN_DIR)) for (const d of readdirSync(RUN_DIR)) if (d !== 'locks') found.push(`state ${RUN_DIR}/${d}`);
  return found;
}

export function expectClean(): void {
  expect(leftovers()).toEqual([]);
}

/** Last resort after a failed test, so one failure does not cascade into every later test. */
export function forceCleanup(): void {
  spawnSync(process.execPath, [CLI, 'dismount', '--all', '--force'], { encoding: 'utf8', timeout: 60_000 });
  // What a failed test mounted itself (a canary tmpfs, a fixture) under this run's temp dirs,
  // deepest first, so one failure does not fail every later test as a leftover.
  const mine = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((mp) => mp.startsWith(TMP_PREFIX))
    .reverse();
  for (const mp of mine) spawnSync('umount', ['-l', mp]);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The hooks every end-to-end file needs: whether it can run here, a temp dir, a check after each
 * test that nothing of ours was left behind (cleaning up so one failure does not cascade), and
 * removal of the temp dir at the end.
 */
export function e2eSuite(name: string): { readonly run: boolean; readonly dir: string; newDir(suffix: string): void } {
  const run = e2eAvailable(`${name}.test.ts`);
  let dir = '';
  beforeAll(() => {
    if (run) dir = tempDir(name);
  });
  afterEach(() => {
    if (!run) return;
    const left = leftovers();
    if (left.length) forceCleanup();
    expect(left, 'a test left these behind').toEqual([]);
  });
  afterAll(() => {
    if (run) removeDir(dir);
  });
  return {
    run,
    get dir() {
      return dir;
    },
    /** A fresh temp dir, e.g. per transport, since suites reuse container names. */
    newDir(suffix: string) {
      removeDir(dir);
      dir = tempDir(`${name}-${suffix}`);
    },
  };
}

/**
 * Whether a test that does not depend on how the server talks to the kernel (exit codes, prompts,
 * dismount bookkeeping, filesystem types, idle timers) is declared for transport `t`: on the first
 * transport only in the default suite (CI's 20 minutes), on every one with VAULT_EVERY_TRANSPORT=1
 * (`npm run test:long`). Tests of the data path and of the server's ending run on every transport.
 */
export function transportIndependent(t: Transport): boolean {
  return process.env.VAULT_EVERY_TRANSPORT === '1' || t === TRANSPORTS[0];
}

/** `it` when `cond` holds; otherwise a test that is not declared at all (not a skipped one). */
export function declareIf(cond: boolean): (name: string, fn: () => unknown, timeout?: number) => void {
  return cond ? (name, fn, timeout) => it(name, fn, timeout) : () => undefined;
}

/** Declares `body`'s tests once per transport (those `which` takes), each with its own temp dir. */
export function forEachTransport(suite: ReturnType<typeof e2eSuite>, body: (t: Transport) => void, which: (t: Transport) => boolean = () => true): void {
  for (const t of TRANSPORTS.filter(which)) {
    describe(`${t} transport`, () => {
      beforeAll(() => {
        if (!suite.run) return;
        useTransport(t);
        suite.newDir(t); // the suites reuse container names
      });
      afterAll(() => {
        if (suite.run) useTransport('classic'); // puts enable_uring back
      });
      body(t);
    });
  }
}
