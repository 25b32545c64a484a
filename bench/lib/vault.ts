/**
 * Driving the vault CLI the way a user does (a separate `node dist/bundle/vault.cjs` process per
 * command, as the installed `vault` runs: entries.ts; passphrase on stdin), plus the in-process
 * Argon2id timing that lets the benchmark separate the KDF from the rest of `vault mount`.
 *
 * Every command runs with VAULT_RUN_DIR pointing at a state directory private to this benchmark
 * run (under /run/vault-bench), and the benchmark dismounts only the volumes it mounted, each by
 * name: never `vault dismount --all`.
 *
 * The FUSE transport is chosen the way a user chooses it: VAULT_FUSE_TRANSPORT in the CLI's
 * environment (src/mount/lifecycle.ts passes it to the server). What the volume really got is read
 * back from `vault list --json` (field `transport`) by the caller.
 *
 * The rootless setups (issue 15) drive the same CLI as an ordinary user (`asUser`: setpriv with a
 * login's environment, rootless.ts): no VAULT_RUN_DIR then, the user's state is where a user's is
 * ($XDG_RUNTIME_DIR/vault), and the route is forced with `--via`.
 *
 * The VeraCrypt setup (issue 18) makes its volume with `vault create --type veracrypt` and the
 * cheap VeraCrypt derivation below, and mounts it naming that derivation (`--type veracrypt --hash
 * --pim`), so that unlocking tries one PBKDF2 instead of every VeraCrypt and TrueCrypt KDF.
 */
import { randomBytes } from 'node:crypto';
import { argon2id } from '../../src/crypto/kdf.js';
import { cliEntry } from './entries.js';
import { nowMs, median } from './log.js';
import { runAs, runOk, describeFailure, StepError, type AsUser, type RunResult } from './proc.js';
import type { Transport } from './report.js';

/** The cheap KDF the tests use (test/e2e/harness.ts FAST_KDF): 8 MiB, 1 pass, 1 lane. */
export const BENCH_KDF = { memoryMiB: 8, iterations: 1, parallelism: 1 } as const;
const KDF_ARGS = [
  '--kdf-memory', String(BENCH_KDF.memoryMiB), '--kdf-iterations', String(BENCH_KDF.iterations),
  '--kdf-parallelism', String(BENCH_KDF.parallelism),
];
const PASSPHRASE = 'vault-bench passphrase\n';

/**
 * The cheap VeraCrypt header derivation (issue 18's setup): PBKDF2-HMAC-SHA-512 with PIM 1, which
 * VeraCrypt counts as 15000 + 1000 × PIM = 16000 iterations (its default is 500000).
 */
export const BENCH_VC_KDF = { hash: 'sha512', pim: 1, iterations: 16_000 } as const;
const VC_KDF_ARGS = ['--hash', BENCH_VC_KDF.hash, '--pim', String(BENCH_VC_KDF.pim)];
/** What `vault mount` needs to open the bench's VeraCrypt volumes with that one derivation. */
export const VC_MOUNT_ARGS: readonly string[] = ['--type', 'veracrypt', ...VC_KDF_ARGS];

/** The options of a `vault mount` beyond container, mount point and transport. */
export interface MountOptions {
  /** --fs-options. */
  fsOptions?: string;
  /** --via: a user's route (udisks picks its own mount point: MP null). */
  via?: 'udisks' | 'fuse';
  /** More arguments, e.g. VC_MOUNT_ARGS. */
  args?: readonly string[];
}

export interface VaultRecord {
  id: string;
  container: string;
  mountpoint: string | null;
  loopDevice: string | null;
  serverPid: number;
  /** The transport its server uses (absent in records of older servers). */
  transport?: string;
  /** root, udisks or fuse (issue 15; absent in older records). */
  route?: string;
  state?: string;
}

/**
 * Node's own variables that the bench's environment may carry but a user's login shell does not:
 * vault's commands as root run without them, as the rootless setups' commands already do (setpriv
 * --reset-env). NODE_EXTRA_CA_CERTS, which some machines set for every process, makes Node parse a
 * certificate bundle at each start: `node -e ''` took 0.10 s with it and 0.06 s without on
 * 2026-12-07, for a CLI that never opens a TLS connection.
 */
export const NODE_ENV_DROPPED = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'] as const;

export function withoutNodeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  for (const k of NODE_ENV_DROPPED) delete env[k];
  return env;
}

export class VaultCli {
  /** What `node` runs: the bundled CLI of cliPath's checkout (entries.ts). */
  readonly #entry: string;

  constructor(
    readonly cliPath: string,
    /** VAULT_RUN_DIR for root's commands; unused for a user's. */
    readonly runDir: string,
    /** Every command runs as this user, with its own environment (rootless.ts). */
    readonly asUser?: AsUser,
  ) {
    this.#entry = cliEntry(cliPath);
  }

  env(transport?: Transport): NodeJS.ProcessEnv {
    const env = withoutNodeEnv({ ...process.env, VAULT_RUN_DIR: this.runDir });
    delete env['VAULT_FUSE_TRANSPORT'];
    if (transport) env['VAULT_FUSE_TRANSPORT'] = transport;
    return env;
  }

  async exec(args: string[], o: { input?: string; cleanup?: boolean; timeoutMs?: number; transport?: Transport } = {}): Promise<RunResult> {
    const opts = {
      timeoutMs: o.timeoutMs ?? 30 * 60_000,
      ...(o.input !== undefined ? { input: o.input } : {}),
      ...(o.cleanup ? { cleanup: true } : {}),
    };
    if (this.asUser)
      return runAs(this.asUser, process.execPath, [this.#entry, ...args], opts, o.transport ? { VAULT_FUSE_TRANSPORT: o.transport } : {});
    return runAs(undefined, process.execPath, [this.#entry, ...args], { ...opts, env: this.env(o.transport) });
  }

  async execOk(args: string[], o: { input?: string; cleanup?: boolean; timeoutMs?: number; transport?: Transport } = {}): Promise<RunResult> {
    const r = await this.exec(args, o);
    if (r.code !== 0) throw new StepError(describeFailure(r));
    return r;
  }

  /**
   * `vault create … --quick --fs ext4` with the cheap KDF; returns its wall time in ms. Its brief
   * internal mount (for mkfs) always uses the classic transport: the containers of every setup
   * are made the same way, and only the mount that is measured differs.
   */
  async create(container: string, sizeBytes: number): Promise<number> {
    const r = await this.execOk(
      ['create', container, '--size', sizeArg(sizeBytes), '--fs', 'ext4', '--quick', '--password-stdin', ...KDF_ARGS],
      { input: PASSPHRASE, transport: 'classic' },
    );
    return r.ms;
  }

  /**
   * `vault create --type veracrypt … --quick --fs ext4` with the cheap VeraCrypt derivation: a
   * file-hosted VeraCrypt volume (AES-256-XTS, 512-byte data units, a sparse data area), its
   * ext4 made through a brief classic-transport mount as for vault's own containers. ms.
   */
  async createVeraCrypt(container: string, sizeBytes: number): Promise<number> {
    const r = await this.execOk(
      ['create', container, '--type', 'veracrypt', '--size', sizeArg(sizeBytes), '--fs', 'ext4', '--quick', '--password-stdin', ...VC_KDF_ARGS],
      { input: PASSPHRASE, transport: 'classic' },
    );
    return r.ms;
  }

  /** `vault create --fs none` with the full random fill (no --quick): no server, no mount. ms. */
  async createFilled(container: string, sizeBytes: number): Promise<number> {
    const r = await this.execOk(['create', container, '--size', sizeArg(sizeBytes), '--fs', 'none', '--password-stdin', ...KDF_ARGS], {
      input: PASSPHRASE,
    });
    return r.ms;
  }

  /**
   * `vault create --fs none --quick` with the cheap KDF: a sparse container with no filesystem, for
   * callers that format the decrypted device themselves (`npm run xfstests`). ms.
   */
  async createBare(container: string, size: string, sectorSize: number): Promise<number> {
    const args = ['create', container, '--size', size, '--fs', 'none', '--quick', '--sector-size', String(sectorSize), '--password-stdin', ...KDF_ARGS];
    return (await this.execOk(args, { input: PASSPHRASE })).ms;
  }

  /** `vault mount C [MP] --password-stdin` with VAULT_FUSE_TRANSPORT set, end to end; ms. */
  async mount(container: string, mountpoint: string | null, transport: Transport, o: MountOptions = {}): Promise<number> {
    const args = ['mount', container, ...(mountpoint !== null ? [mountpoint] : []), '--password-stdin'];
    if (o.fsOptions) args.push('--fs-options', o.fsOptions);
    if (o.via) args.push('--via', o.via);
    args.push(...(o.args ?? []));
    return (await this.execOk(args, { input: PASSPHRASE, transport })).ms;
  }

  /**
   * `vault mount C --no-filesystem`: only the decrypted block device, for a check of the
   * filesystem on it (e2fsck -fn); returns its path. Dismount it by that path.
   */
  async attachRaw(container: string, transport: Transport = 'classic'): Promise<string> {
    const r = await this.execOk(['mount', container, '--no-filesystem', '--password-stdin'], { input: PASSPHRASE, transport });
    return r.stdout.trim().split('\n').pop()!.trim();
  }

  /** Dismounts one volume this run mounted (by mount point or container); ms. */
  async dismount(target: string, force = false): Promise<number> {
    return (await this.execOk(['dismount', target, ...(force ? ['--force'] : [])], { cleanup: true, timeoutMs: 5 * 60_000 })).ms;
  }

  async list(): Promise<VaultRecord[]> {
    const r = await this.execOk(['list', '--json'], { cleanup: true });
    return JSON.parse(r.stdout) as VaultRecord[];
  }
}

/** vault's --size takes binary units; whole MiB are always representable. */
export function sizeArg(bytes: number): string {
  const MiB = 1 << 20;
  if (bytes % (1 << 30) === 0) return `${bytes / (1 << 30)}G`;
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  throw new Error(`size ${bytes} is not a whole number of MiB`);
}

/**
 * The time Argon2id takes with BENCH_KDF on this machine, measured here with vault's own argon2id()
 * (libargon2 in vault's addon, as the CLI runs it), after three warm-up runs: a CLI pays its first
 * run, a few ms more (the threadpool's start, fresh huge pages). The mount figures include the KDF,
 * and the report prints this beside them as context (the CLI prints no timings).
 */
export async function measureArgon2Ms(reps = 9): Promise<{ medianMs: number; samplesMs: number[] }> {
  const salt = randomBytes(32);
  const password = Buffer.from(PASSPHRASE.slice(0, -1));
  const kdf = { memoryKiB: BENCH_KDF.memoryMiB * 1024, iterations: BENCH_KDF.iterations, parallelism: BENCH_KDF.parallelism };
  // Warm-up: module load, the threadpool's first start, CPU frequency ramp.
  for (let i = 0; i < 3; i++) await argon2id(password, salt, kdf, 32);
  const samplesMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = nowMs();
    await argon2id(password, salt, kdf, 32);
    samplesMs.push(nowMs() - t0);
  }
  return { medianMs: median(samplesMs), samplesMs };
}

/** Node's own start-up, which every `vault` command pays: context for small mount times. */
export async function measureNodeStartMs(reps = 5): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) samples.push((await runOk(process.execPath, ['-e', '0'], { env: withoutNodeEnv({ ...process.env }) })).ms);
  return median(samples);
}
