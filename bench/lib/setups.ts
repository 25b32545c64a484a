/**
 * The three setups, each brought up on the same underlying filesystem (this run's work directory)
 * and torn down through the cleanup stack:
 *
 * - plain:     sparse ext4 image → loop device with direct I/O → ext4. No encryption: the ceiling.
 * - vault:     `vault create --quick` + `vault mount` (FUSE volume server → loop (direct I/O) → ext4).
 * - gocryptfs: Debian's gocryptfs, the file-based FUSE peer, over a cipher directory.
 *
 * plain copies what vault does to its own loop device and filesystem (mkfs -E options, 4096-byte
 * logical blocks, nosuid,nodev), so the only difference between the two is vault's FUSE and
 * encryption layer. Both mount with noinit_itable: with lazy_itable_init the kernel would otherwise
 * zero inode tables in the background during the measurements, in one setup more than another.
 */
import { chmodSync, closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CleanupStack } from './cleanup.js';
import { nowMs, sleep, progress } from './log.js';
import { run, runOk, StepError } from './proc.js';
import { loopDirectIo, pidAlive, procStatusBytes, processesMentioning, syncFs, unmount } from './system.js';
import type { VaultCli } from './vault.js';

export const SETUP_NAMES = ['plain', 'vault', 'gocryptfs'] as const;
export type SetupName = (typeof SETUP_NAMES)[number];

/**
 * The mkfs.ext4 extended options vault uses for a new container (makeFilesystem with `fresh` in
 * src/mount/filesystem.ts), copied for plain so both start from the same layout: a lazily
 * initialised journal leaves the same holes in plain's sparse image as in vault's sparse container.
 */
const EXT4_MKFS_E = 'nodiscard,lazy_itable_init=1,lazy_journal_init=1';
const EXT4_MOUNT_EXTRA = 'noinit_itable';

export interface SetupContext {
  workDir: string;
  volumeBytes: number;
  cleanup: CleanupStack;
  vault: VaultCli;
  /** Experiment: switch the vault loop device's direct I/O off after mounting. */
  vaultLoopDio: 'on' | 'off';
  /** Argon2id time of the benchmark KDF, to subtract from vault's mount time. */
  kdfMs: number | null;
}

export interface MountedSetup {
  name: SetupName;
  mountpoint: string;
  createMs: number;
  createLabel: string;
  /** Mount time without any KDF (vault: computed, see mountLabel). */
  mountMs: number;
  mountLabel: string;
  /** vault only: `vault mount` end to end, KDF included. */
  mountEndToEndMs?: number;
  info: Record<string, unknown>;
  notes: string[];
  /** Makes everything written so far durable on the setup's storage. */
  syncfs(): Promise<void>;
  /** Peak RSS of the user-space server (VmHWM), or null when the data path is all in the kernel. */
  peakRssBytes(): number | null;
  peakRssLabel: string;
  teardown(): Promise<void>;
}

function prepareDirs(ctx: SetupContext, name: SetupName): { dir: string; mp: string } {
  const dir = path.join(ctx.workDir, name);
  const mp = path.join(dir, 'mnt');
  mkdirSync(mp, { recursive: true });
  return { dir, mp: realpathSync(mp) };
}

async function plainUp(ctx: SetupContext): Promise<MountedSetup> {
  const { dir, mp } = prepareDirs(ctx, 'plain');
  const img = path.join(dir, 'plain.img');
  const t0 = nowMs();
  // Sparse, like a `vault create --quick` container.
  const fd = openSync(img, 'w', 0o600);
  try {
    ftruncateSync(fd, ctx.volumeBytes);
  } finally {
    closeSync(fd);
  }
  await runOk('mkfs.ext4', ['-q', '-F', '-E', EXT4_MKFS_E, img], { timeoutMs: 30 * 60_000 });
  const createMs = nowMs() - t0;

  const t1 = nowMs();
  const dev = (await runOk('losetup', ['--find', '--show', '--direct-io=on', '--sector-size', '4096', img])).stdout.trim();
  const detach = ctx.cleanup.push(`losetup -d ${dev}`, async () => {
    await runOk('losetup', ['-d', dev], { cleanup: true });
  });
  await runOk('mount', ['-t', 'ext4', '-o', `nosuid,nodev,${EXT4_MOUNT_EXTRA}`, dev, mp]);
  const umount = ctx.cleanup.push(`umount ${mp}`, () => unmount(mp));
  const mountMs = nowMs() - t1;

  const dio = loopDirectIo(dev);
  const notes: string[] = [];
  if (dio !== true) notes.push(`plain: the kernel did not grant direct I/O on ${dev}`);
  return {
    name: 'plain',
    mountpoint: mp,
    createMs,
    createLabel: 'truncate + mkfs.ext4',
    mountMs,
    mountLabel: 'losetup + mount',
    info: { image: img, loopDevice: dev, loopDirectIo: dio },
    notes,
    syncfs: () => syncFs(mp),
    peakRssBytes: () => null,
    peakRssLabel: 'kernel only',
    teardown: async () => {
      await umount.run();
      await detach.run();
    },
  };
}

async function vaultUp(ctx: SetupContext): Promise<MountedSetup> {
  const { dir, mp } = prepareDirs(ctx, 'vault');
  const container = path.join(dir, 'vault.vol');
  // Registered before create: create itself mounts the new container briefly to run mkfs.
  ctx.cleanup.push('vault dismount --all --force', () => ctx.vault.dismountAllForce());
  const createMs = await ctx.vault.create(container, ctx.volumeBytes);
  const endToEnd = await ctx.vault.mount(container, mp, EXT4_MOUNT_EXTRA);
  const rec = (await ctx.vault.list()).find((r) => r.mountpoint === mp);
  if (!rec) throw new StepError(`vault list does not show the volume mounted on ${mp}`);
  const dev = rec.loopDevice!;
  const notes: string[] = [];
  const granted = loopDirectIo(dev);
  if (granted !== true) notes.push(`vault: the kernel did not grant direct I/O on ${dev} over the FUSE block file`);
  if (ctx.vaultLoopDio === 'off') {
    // Experiment: the loop device then goes through the page cache of the FUSE block file.
    await runOk('losetup', ['--direct-io=off', dev]);
    if (loopDirectIo(dev) !== false) throw new StepError(`could not switch direct I/O off on ${dev}`);
    notes.push(`vault: loop direct I/O switched OFF for this run (--vault-loop-dio off)`);
  }
  const kdf = ctx.kdfMs;
  // Which data path served this run: results of different engines must not be mixed up.
  const engine = serverEngine(rec.serverPid);
  notes.push(`vault: volume server engine ${engine}`);
  const info: Record<string, unknown> = {
    engine,
    container,
    loopDevice: dev,
    loopDirectIoGranted: granted,
    loopDirectIo: loopDirectIo(dev),
    serverPid: rec.serverPid,
  };
  return {
    name: 'vault',
    mountpoint: mp,
    createMs,
    createLabel: 'vault create --quick (incl. KDF and mkfs)',
    mountMs: kdf === null ? endToEnd : endToEnd - kdf,
    mountLabel: kdf === null ? 'vault mount end to end' : 'vault mount end to end − Argon2id (computed from outside)',
    mountEndToEndMs: endToEnd,
    info,
    notes,
    syncfs: () => syncFs(mp),
    peakRssBytes: () => procStatusBytes(rec.serverPid, 'VmHWM'),
    peakRssLabel: 'volume server VmHWM',
    teardown: async () => {
      info['dismountMs'] = await ctx.vault.dismount(mp);
      if (pidAlive(rec.serverPid)) throw new StepError(`volume server ${rec.serverPid} still runs after dismount`);
    },
  };
}

function serverEngine(pid: number): string {
  // The server's argv names only its volume id (its config comes through a pipe), so ask its log,
  // which is its stdout: "serving … (…, engine native)".
  try {
    const log = readFileSync(readlinkSync(`/proc/${pid}/fd/1`), 'utf8');
    return /serving .*, engine ([\w-]+)\)/.exec(log)?.[1] ?? 'unknown (no "serving" line in its log)';
  } catch {
    return 'unknown';
  }
}

async function gocryptfsUp(ctx: SetupContext): Promise<MountedSetup> {
  const { dir, mp } = prepareDirs(ctx, 'gocryptfs');
  const cipher = path.join(dir, 'cipher');
  const passfile = path.join(dir, 'passfile');
  mkdirSync(cipher);
  writeFileSync(passfile, 'vault-bench passphrase\n', { mode: 0o600 });
  chmodSync(passfile, 0o600);
  const t0 = nowMs();
  // -scryptn 10: the cheap KDF, the counterpart of vault's 8 MiB × 1 Argon2id here.
  await runOk('gocryptfs', ['-init', '-q', '-passfile', passfile, '-scryptn', '10', cipher]);
  const createMs = nowMs() - t0;
  const t1 = nowMs();
  await runOk('gocryptfs', ['-q', '-passfile', passfile, cipher, mp]);
  const mountMs = nowMs() - t1;
  const umount = ctx.cleanup.push(`fusermount -u ${mp}`, async () => {
    const r = await run('fusermount', ['-u', mp], { cleanup: true });
    if (r.code !== 0) await runOk('fusermount', ['-u', '-z', mp], { cleanup: true });
  });
  // The daemon (re-executed with -fg -notifypid) is the process whose memory we report.
  const daemon = processesMentioning(cipher).find((p) => /(^|\/)gocryptfs /.test(p.cmdline) && p.cmdline.includes(mp));
  const notes: string[] = [];
  if (!daemon) notes.push('gocryptfs: daemon process not found; no RSS figure');
  return {
    name: 'gocryptfs',
    mountpoint: mp,
    createMs,
    createLabel: 'gocryptfs -init (scryptn 10)',
    mountMs,
    mountLabel: 'gocryptfs mount end to end (scrypt N=2^10 included, ~1 ms)',
    info: { cipherDir: cipher, daemonPid: daemon?.pid ?? null },
    notes,
    // gocryptfs has no syncfs of its own: flush its dirty FUSE pages, then the cipher directory's fs.
    syncfs: async () => {
      await syncFs(mp);
      await syncFs(cipher);
    },
    peakRssBytes: () => (daemon ? procStatusBytes(daemon.pid, 'VmHWM') : null),
    peakRssLabel: 'gocryptfs daemon VmHWM',
    teardown: async () => {
      await umount.run();
      if (daemon) {
        for (let i = 0; i < 100 && pidAlive(daemon.pid); i++) await sleep(50);
        if (pidAlive(daemon.pid)) progress(`gocryptfs daemon ${daemon.pid} still runs after unmount`);
      }
    },
  };
}

export function bringUp(name: SetupName, ctx: SetupContext): Promise<MountedSetup> {
  switch (name) {
    case 'plain':
      return plainUp(ctx);
    case 'vault':
      return vaultUp(ctx);
    case 'gocryptfs':
      return gocryptfsUp(ctx);
  }
}
