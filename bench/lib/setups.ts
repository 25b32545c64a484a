/**
 * The setups, each brought up on the same underlying filesystem (this run's work directory), each
 * volume the same size, and torn down through the cleanup stack:
 *
 * - plain:          sparse image → loop device (direct I/O, 4096-byte sectors) → ext4 (mkfs -b 4096).
 *                   No encryption, no FUSE.
 * - vault-classic:  `vault create --quick` + `vault mount` with VAULT_FUSE_TRANSPORT=classic
 *                   (FUSE volume server on /dev/fuse → loop (direct I/O) → ext4).
 * - vault-io_uring: the same container creation, mounted with VAULT_FUSE_TRANSPORT=io_uring, the
 *                   fuse module's enable_uring switched on around the mount only (uring.ts).
 * - vault-udisks:   issue 15's udisks route: the same container creation, but by an ordinary user
 *                   (rootless.ts), mounted by that user with `vault mount --via udisks`: the user's
 *                   FUSE server (allow_root) → udisksd's LoopSetup → udisksd's Filesystem.Mount
 *                   (kernel ext4 on /media/<user>/…). Transport classic, as vault-classic's.
 * - vault-fuse2fs:  issue 15's fuse route: the same, mounted with `vault mount --via fuse` on this
 *                   setup's own mount point: fuse2fs (ext4 in user space) on the block file.
 * - veracrypt:      issue 18: a VeraCrypt volume (AES-256-XTS) made by `vault create --type veracrypt
 *                   --quick --fs ext4` with a cheap derivation (PBKDF2-SHA-512, PIM 1), mounted by
 *                   `vault mount` over the classic transport as vault-classic is: the same server,
 *                   loop device (direct I/O) and ext4 path, with VeraCrypt's layout (data area after
 *                   128 KiB of headers, 512-byte data units, so 512-byte loop sectors).
 * - gocryptfs:      Debian's gocryptfs, the file-based FUSE peer, over a cipher directory.
 *
 * The rootless setups' workloads run as the user too (fio through setpriv): a fuse2fs mount is the
 * user's alone (no allow_other), and the udisks one is run the same way so the two compare.
 * Neither route takes mount options, so their ext4 mounts have no noinit_itable: the kernel's
 * lazy inode-table init (16 MiB on 1 GiB) may run in the background during the first workload.
 *
 * plain copies what vault does to its own loop device and filesystem (mkfs -E options, 4096-byte
 * blocks and logical sectors, nosuid,nodev), so the only difference is vault's FUSE and encryption
 * layer. Both mount with noinit_itable: with lazy_itable_init the kernel would otherwise zero inode
 * tables in the background during the measurements, in one setup more than another.
 *
 * Every setup is mounted `mountReps` times (mounted, unmounted, mounted again; the last mount
 * stays for the workloads): the mount time reported is the median wall-clock time. vault's
 * containers use the tests' fast KDF, so its mount time is the time of everything but the KDF.
 */
import { chmodSync, closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CleanupHandle, CleanupStack } from './cleanup.js';
import { median, nowMs, sleep, progress } from './log.js';
import { run, runOk, StepError, type AsUser } from './proc.js';
import { checkTransport, cliReason, COLUMNS, ROUTE_TRANSPORT, VERACRYPT_TRANSPORT, worstTransport, type Column, type RootlessRoute, type Transport, type TransportCheck } from './report.js';
import type { Rootless } from './rootless.js';
import type { ServerRss } from './rss.js';
import { loopDirectIo, mountTable, openWithDirectIo, pidAlive, procStatusBytes, processesMentioning, unmount } from './system.js';
import { readUringParam, URING_PARAM, type UringParam } from './uring.js';
import { resetRequestSize } from '../../src/mount/loop.js';
import { VC_MOUNT_ARGS, BENCH_VC_KDF, type VaultCli, type VaultRecord } from './vault.js';

export const SETUP_NAMES: readonly Column[] = COLUMNS;
export type SetupName = Column;

/** vault's mkfs.ext4 extended options for a new container (makeFilesystem, `fresh`), copied for plain. */
const EXT4_MKFS_E = 'nodiscard,lazy_itable_init=1,lazy_journal_init=1';
const EXT4_MOUNT_EXTRA = 'noinit_itable';

export interface SetupContext {
  workDir: string;
  cleanup: CleanupStack;
  vault: VaultCli;
  uring: UringParam;
  rss: ServerRss;
  /** The rootless setups' user, daemons and machine setup (null: not started, see rootlessError). */
  rootless: Rootless | null;
  /** Why the rootless setups cannot run, when starting them failed. */
  rootlessError?: string;
}

export interface MountedSetup {
  name: SetupName;
  mountpoint: string;
  createMs: number;
  mountSamplesMs: number[];
  mountLabel: string;
  /** vault: the transport the volume reported, checked against the one asked for. */
  transport: TransportCheck | null;
  info: Record<string, unknown>;
  notes: string[];
  /** The user whose mount this is (rootless routes): the workloads run as them. */
  asUser?: AsUser;
  /** Peak RSS of the user-space server (VmHWM, bytes), or null when there is none. */
  peakRssBytes(): number | null;
  teardown(): Promise<void>;
}

/** A setup that cannot run here (io_uring where the kernel or this build lacks it). */
export class Unavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Unavailable';
  }
}

/** The transport a root-mounted vault volume of this setup is asked for; null when none is. */
export const transportOf = (name: SetupName): Transport | null =>
  name === 'vault-classic' ? 'classic' : name === 'vault-io_uring' ? 'io_uring' : name === 'veracrypt' ? VERACRYPT_TRANSPORT : null;

/** The container format of a setup that vault mounts as root: its own, or VeraCrypt (issue 18). */
export const formatOf = (name: SetupName): 'vault' | 'veracrypt' => (name === 'veracrypt' ? 'veracrypt' : 'vault');

/** The rootless route of a setup (issue 15), or null for the root-run setups. */
export const routeOf = (name: SetupName): RootlessRoute | null => (name === 'vault-udisks' ? 'udisks' : name === 'vault-fuse2fs' ? 'fuse2fs' : null);

/** Whether a setup runs a vault volume server (either way: root's transports or a user's route). */
export const isVault = (name: SetupName): boolean => transportOf(name) !== null || routeOf(name) !== null;

const VIA: Record<RootlessRoute, 'udisks' | 'fuse'> = { udisks: 'udisks', fuse2fs: 'fuse' };

function prepareDirs(parent: string, name: string): { dir: string; mp: string } {
  const dir = path.join(parent, name);
  const mp = path.join(dir, 'mnt');
  mkdirSync(mp, { recursive: true });
  return { dir, mp: realpathSync(mp) };
}

/** Mounts `reps` times (all but the last undone again); returns the wall-clock times. */
async function mountCycles(reps: number, mount: () => Promise<number>, unmountIt: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    samples.push(await mount());
    if (i < reps - 1) await unmountIt();
  }
  return samples;
}

export async function plainVolume(ctx: SetupContext, parent: string, label: string, volumeBytes: number, reps: number): Promise<MountedSetup> {
  const { dir, mp } = prepareDirs(parent, label);
  const img = path.join(dir, 'plain.img');
  const t0 = nowMs();
  // Sparse, like a `vault create --quick` container.
  const fd = openSync(img, 'w', 0o600);
  try {
    ftruncateSync(fd, volumeBytes);
  } finally {
    closeSync(fd);
  }
  await runOk('mkfs.ext4', ['-q', '-F', '-b', '4096', '-E', EXT4_MKFS_E, img], { timeoutMs: 30 * 60_000 });
  const createMs = nowMs() - t0;

  let handles: { umount: { run(): Promise<void> }; detach: { run(): Promise<void> } } | null = null;
  let dev = '';
  const mount = async (): Promise<number> => {
    const t1 = nowMs();
    dev = (await runOk('losetup', ['--find', '--show', '--direct-io=on', '--sector-size', '4096', img])).stdout.trim();
    const d = dev;
    resetRequestSize(d); // as vault's attachLoop does: no request size left by an earlier user
    const detach = ctx.cleanup.push(`losetup -d ${d}`, async () => {
      await runOk('losetup', ['-d', d], { cleanup: true });
    });
    await runOk('mount', ['-t', 'ext4', '-o', `nosuid,nodev,${EXT4_MOUNT_EXTRA}`, d, mp]);
    const umount = ctx.cleanup.push(`umount ${mp}`, () => unmount(mp));
    handles = { umount, detach };
    return nowMs() - t1;
  };
  const down = async (): Promise<void> => {
    if (!handles) return;
    const h: { umount: { run(): Promise<void> }; detach: { run(): Promise<void> } } = handles;
    handles = null;
    await h.umount.run();
    await h.detach.run();
  };
  const mountSamplesMs = await mountCycles(reps, mount, down);
  const dio = loopDirectIo(dev);
  const notes: string[] = [];
  if (dio !== true) notes.push(`${label}: the kernel did not grant direct I/O on ${dev}`);
  return {
    name: 'plain',
    mountpoint: mp,
    createMs,
    mountSamplesMs,
    mountLabel: 'losetup + mount',
    transport: null,
    info: { image: img, loopDevice: dev, loopDirectIo: dio },
    notes,
    peakRssBytes: () => null,
    teardown: down,
  };
}

/** A mounted vault volume: the cleanup entry that dismounts it, and its server. */
interface Served {
  handle: CleanupHandle;
  serverPid: number;
}

/** Just after a vault mount: its server is this setup's (RSS), and its transport is checked and kept. */
function noteServer(ctx: SetupContext, name: SetupName, label: string, requested: Transport, rec: VaultRecord, checks: TransportCheck[]): void {
  ctx.rss.tag(rec.serverPid, name);
  const check = checkTransport(requested, rec.transport);
  checks.push(check);
  if (check.status !== 'verified')
    progress(`${label}: ${check.status} asked for transport ${requested}, vault list --json reports ${check.reported ?? 'no transport'}`);
}

/** Dismounts a vault volume through its cleanup entry and waits for its server to exit. */
async function stopServed(ctx: SetupContext, m: Served): Promise<void> {
  ctx.rss.readNow(m.serverPid);
  await m.handle.run();
  for (let i = 0; i < 100 && pidAlive(m.serverPid); i++) await sleep(20);
  if (pidAlive(m.serverPid)) throw new StepError(`volume server ${m.serverPid} still runs after dismount`);
}

/**
 * mountCycles for a vault volume: `mount` mounts it and returns its time and what it started; all
 * but the last mount are dismounted again (waiting for the server to exit). `down` undoes the last.
 */
async function servedCycles<S extends Served>(ctx: SetupContext, reps: number, mount: () => Promise<[number, S]>) {
  let mounted: S | null = null;
  const down = async (): Promise<void> => {
    if (!mounted) return;
    const m: S = mounted;
    mounted = null;
    await stopServed(ctx, m);
  };
  const samples = await mountCycles(
    reps,
    async () => {
      const [ms, served] = await mount();
      mounted = served;
      return ms;
    },
    down,
  );
  return { samples, last: mounted as S | null, down };
}

/** Why io_uring cannot be tried at all on this kernel, or null. */
export function uringPrecondition(): string | null {
  return readUringParam() === null ? `this kernel's fuse module has no io_uring support (${URING_PARAM} is missing)` : null;
}

/** A volume vault mounts as root: vault-classic, vault-io_uring, or the VeraCrypt one (issue 18). */
export async function vaultVolume(
  ctx: SetupContext,
  parent: string,
  label: string,
  name: SetupName,
  volumeBytes: number,
  reps: number,
): Promise<MountedSetup> {
  const transport = transportOf(name);
  if (transport === null) throw new Error(`${name} is not a setup vault mounts as root`);
  const veracrypt = formatOf(name) === 'veracrypt';
  if (transport === 'io_uring') {
    const why = uringPrecondition();
    if (why) throw new Unavailable(why);
  }
  const { dir, mp } = prepareDirs(parent, label);
  const container = path.join(dir, veracrypt ? 'veracrypt.vol' : 'vault.vol');
  const createMs = veracrypt ? await ctx.vault.createVeraCrypt(container, volumeBytes) : await ctx.vault.create(container, volumeBytes);
  const checks: TransportCheck[] = [];
  let first = true;
  const mount = async (): Promise<[number, Served]> => {
    let ms: number;
    const doMount = () => ctx.vault.mount(container, mp, transport, { fsOptions: EXT4_MOUNT_EXTRA, ...(veracrypt ? { args: VC_MOUNT_ARGS } : {}) });
    try {
      ms = transport === 'io_uring' ? await ctx.uring.around(doMount) : await doMount();
    } catch (e) {
      // The first io_uring mount failing is the transport being unavailable (kernel, build), not
      // a benchmark failure: the report says so with the reason and goes on with the rest.
      if (first && transport === 'io_uring' && e instanceof StepError) throw new Unavailable(cliReason(e.message));
      throw e;
    }
    first = false;
    // Registered at once, so a failure below still dismounts it. By name: never --all.
    const handle = ctx.cleanup.push(`vault dismount ${mp}`, async () => {
      await ctx.vault.dismount(mp, true);
    });
    const rec = (await ctx.vault.list()).find((r) => r.mountpoint === mp);
    if (!rec) throw new StepError(`vault list does not show the volume mounted on ${mp}`);
    noteServer(ctx, name, label, transport, rec, checks);
    return [ms, { handle, serverPid: rec.serverPid }];
  };
  const { samples: mountSamplesMs, last, down } = await servedCycles(ctx, reps, mount);
  const serverPid = last?.serverPid ?? null;
  const rec = (await ctx.vault.list()).find((r) => r.mountpoint === mp);
  const dev = rec?.loopDevice ?? null;
  const notes: string[] = [];
  const granted = dev ? loopDirectIo(dev) : null;
  if (granted !== true) notes.push(`${label}: the kernel did not grant direct I/O on ${dev} over the FUSE block file`);
  const lbs = dev ? loopFacts(dev).logicalBlockSize : null;
  // The server reopens the container O_DIRECT only where the host's alignment allows its sectors
  // and data offset: a VeraCrypt volume's 512-byte ones may not be allowed where a vault one's are.
  const containerDio = serverPid === null ? null : openWithDirectIo(serverPid, realpathSync(container));
  if (containerDio !== true) notes.push(`${label}: the volume server does not have the container open with O_DIRECT (${containerDio === null ? 'not seen' : 'buffered'})`);
  // What sets a VeraCrypt volume's path apart from a vault container's (4096): said beside its figures.
  if (veracrypt) notes.push(`${label}: ${dev ?? 'no loop device'}: direct I/O ${granted ? 'on' : 'off'}, ${lbs ?? '?'}-byte logical sectors; container O_DIRECT ${containerDio ? 'on' : 'off'}`);
  const transportCheck = worstTransport(checks);
  const kdf = veracrypt
    ? `--type veracrypt --hash ${BENCH_VC_KDF.hash} --pim ${BENCH_VC_KDF.pim} (PBKDF2-HMAC-SHA-512, ${BENCH_VC_KDF.iterations} iterations)`
    : 'fast KDF (8 MiB × 1 × 1)';
  return {
    name,
    mountpoint: mp,
    createMs,
    mountSamplesMs,
    mountLabel: `vault mount, VAULT_FUSE_TRANSPORT=${transport}, ${kdf}, wall clock`,
    transport: transportCheck,
    info: {
      container, format: formatOf(name), loopDevice: dev, loopDirectIo: granted, loopLogicalBlockSize: lbs, containerDirectIo: containerDio,
      serverPid, transportsReported: checks.map((c) => c.reported),
    },
    notes,
    peakRssBytes: () => (serverPid === null ? null : procStatusBytes(serverPid, 'VmHWM')),
    teardown: down,
  };
}

/** What the kernel made of a loop device: direct I/O, logical sector size. */
export function loopFacts(device: string): { directIo: boolean | null; logicalBlockSize: number | null } {
  const n = device.replace(/^\/dev\//, '');
  let lbs: number | null = null;
  try {
    lbs = Number(readFileSync(`/sys/block/${n}/queue/logical_block_size`, 'utf8').trim());
  } catch {
    lbs = null;
  }
  return { directIo: loopDirectIo(device), logicalBlockSize: lbs };
}

/**
 * A volume of the bench user's, made and mounted by them through a rootless route (issue 15). The
 * container is in this setup's dir (the user's, 0700) on the same filesystem as every other
 * setup's; mount and dismount are the user's `vault mount --via …` and `vault dismount`.
 */
export async function routeVolume(
  ctx: SetupContext,
  parent: string,
  label: string,
  route: RootlessRoute,
  volumeBytes: number,
  reps: number,
): Promise<MountedSetup> {
  const name: SetupName = route === 'udisks' ? 'vault-udisks' : 'vault-fuse2fs';
  const rl = ctx.rootless;
  if (!rl) throw new Unavailable(`the rootless routes' daemons and user could not be set up: ${ctx.rootlessError ?? 'not started'}`);
  const { dir, mp } = prepareDirs(parent, label);
  rl.giveToUser(dir, mp);
  const container = path.join(dir, 'vault.vol');
  const createMs = await rl.vault.create(container, volumeBytes);
  const checks: TransportCheck[] = [];
  const mount = async (): Promise<[number, Served & { mountpoint: string; loopDevice: string | null }]> => {
    await rl.ensureSetup(); // other sessions' tests toggle the same machine-wide settings
    // udisks picks /media/<user>/…; fuse2fs mounts where it is told (this setup's dir).
    const ms = await rl.vault.mount(container, route === 'fuse2fs' ? mp : null, ROUTE_TRANSPORT, { via: VIA[route] });
    const rec = (await rl.vault.list()).find((r) => r.container === container);
    // Registered at once, so a failure below still dismounts it: the user's volume, by its container.
    const handle = ctx.cleanup.push(`vault dismount ${rec?.mountpoint ?? container} (as ${rl.user.name})`, async () => {
      await rl.vault.dismount(rec?.mountpoint ?? container, true);
    });
    if (!rec || !rec.mountpoint) throw new StepError(`${rl.user.name}'s vault list does not show ${container} mounted`);
    if (rec.route !== VIA[route]) throw new StepError(`asked for --via ${VIA[route]}, the volume reports route ${rec.route ?? 'none'}`);
    noteServer(ctx, name, label, ROUTE_TRANSPORT, rec, checks);
    return [ms, { handle, serverPid: rec.serverPid, mountpoint: rec.mountpoint, loopDevice: rec.loopDevice }];
  };
  const { samples: mountSamplesMs, last, down } = await servedCycles(ctx, reps, mount);
  if (!last) throw new StepError(`${container} is not mounted after the mount cycles`);
  const notes: string[] = [];
  const info: Record<string, unknown> = { container, user: rl.user.name, route: VIA[route], serverPid: last.serverPid, mountpoint: last.mountpoint };
  const entry = mountTable().find((e) => e.mountpoint === last.mountpoint);
  info['fsType'] = entry?.fstype ?? null;
  info['mountSource'] = entry?.source ?? null;
  if (last.loopDevice) {
    const facts = loopFacts(last.loopDevice);
    Object.assign(info, { loopDevice: last.loopDevice, loopDirectIo: facts.directIo, loopLogicalBlockSize: facts.logicalBlockSize });
    notes.push(`${label}: udisks's ${last.loopDevice}: direct I/O ${facts.directIo ? 'on' : 'off'}, ${facts.logicalBlockSize ?? '?'}-byte logical sectors`);
  }
  const transportCheck = worstTransport(checks);
  return {
    name,
    mountpoint: last.mountpoint,
    createMs,
    mountSamplesMs,
    mountLabel: `vault mount --via ${VIA[route]} as ${rl.user.name}, VAULT_FUSE_TRANSPORT=${ROUTE_TRANSPORT}, fast KDF (8 MiB × 1 × 1), wall clock (setpriv included)`,
    transport: transportCheck,
    info: { ...info, transportsReported: checks.map((c) => c.reported) },
    notes,
    asUser: rl.user,
    peakRssBytes: () => procStatusBytes(last.serverPid, 'VmHWM'),
    teardown: down,
  };
}

async function gocryptfsUp(ctx: SetupContext, reps: number): Promise<MountedSetup> {
  const { dir, mp } = prepareDirs(ctx.workDir, 'gocryptfs');
  const cipher = path.join(dir, 'cipher');
  const passfile = path.join(dir, 'passfile');
  mkdirSync(cipher);
  writeFileSync(passfile, 'vault-bench passphrase\n', { mode: 0o600 });
  chmodSync(passfile, 0o600);
  const t0 = nowMs();
  // -scryptn 10: the cheap KDF, the counterpart of vault's 8 MiB × 1 Argon2id here.
  await runOk('gocryptfs', ['-init', '-q', '-passfile', passfile, '-scryptn', '10', cipher]);
  const createMs = nowMs() - t0;
  let handle: { run(): Promise<void> } | null = null;
  let daemon: { pid: number } | undefined;
  const mount = async (): Promise<number> => {
    const t1 = nowMs();
    await runOk('gocryptfs', ['-q', '-passfile', passfile, cipher, mp]);
    const ms = nowMs() - t1;
    handle = ctx.cleanup.push(`fusermount -u ${mp}`, async () => {
      const r = await run('fusermount', ['-u', mp], { cleanup: true });
      if (r.code !== 0) await runOk('fusermount', ['-u', '-z', mp], { cleanup: true });
    });
    // The daemon (re-executed with -fg -notifypid) is the process whose memory we report.
    daemon = processesMentioning(cipher).find((p) => /(^|\/)gocryptfs /.test(p.cmdline) && p.cmdline.includes(mp));
    return ms;
  };
  const down = async (): Promise<void> => {
    if (!handle) return;
    const h: { run(): Promise<void> } = handle;
    handle = null;
    await h.run();
    const d = daemon;
    if (d) {
      for (let i = 0; i < 100 && pidAlive(d.pid); i++) await sleep(50);
      if (pidAlive(d.pid)) progress(`gocryptfs daemon ${d.pid} still runs after unmount`);
    }
  };
  const mountSamplesMs = await mountCycles(reps, mount, down);
  const notes: string[] = [];
  const d = daemon as { pid: number } | undefined;
  if (!d) notes.push('gocryptfs: daemon process not found; no RSS figure');
  return {
    name: 'gocryptfs',
    mountpoint: mp,
    createMs,
    mountSamplesMs,
    mountLabel: 'gocryptfs mount end to end (scrypt N=2^10 included, ~1 ms)',
    transport: null,
    info: { cipherDir: cipher, daemonPid: d?.pid ?? null },
    notes,
    peakRssBytes: () => (d ? procStatusBytes(d.pid, 'VmHWM') : null),
    teardown: down,
  };
}

export function bringUp(name: SetupName, ctx: SetupContext, volumeBytes: number, reps: number): Promise<MountedSetup> {
  switch (name) {
    case 'plain':
      return plainVolume(ctx, ctx.workDir, 'plain', volumeBytes, reps);
    case 'vault-classic':
    case 'vault-io_uring':
    case 'veracrypt':
      return vaultVolume(ctx, ctx.workDir, name, name, volumeBytes, reps);
    case 'vault-udisks':
      return routeVolume(ctx, ctx.workDir, name, 'udisks', volumeBytes, reps);
    case 'vault-fuse2fs':
      return routeVolume(ctx, ctx.workDir, name, 'fuse2fs', volumeBytes, reps);
    case 'gocryptfs':
      return gocryptfsUp(ctx, reps);
  }
}

export const medianMs = (xs: number[]): number | undefined => (xs.length ? median(xs) : undefined);
