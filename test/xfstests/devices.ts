/**
 * The two block devices xfstests needs (TEST_DEV, SCRATCH_DEV), either on vault volumes or on plain
 * loop devices over sparse files, made the same way apart from that: same size, same logical sector
 * size, TEST_DEV formatted by the same `mkfs.ext4`. Everything made is registered on the cleanup
 * stack the moment it exists, and only that is undone.
 *
 * Vault side: `vault create --fs none --quick` (sparse container, the tests' cheap KDF), then
 * `vault mount --no-filesystem`, which attaches the loop device and mounts nothing; the device is
 * read back from `vault list --json`, with the transport its server really got. On the udisks route
 * an ordinary user (bench/lib/rootless.ts) does both, with `--via udisks`: the user's server,
 * mounted through fusermount3, and a loop device udisksd set up from the user's fd; root runs only
 * mkfs and xfstests on it, as an administrator would.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CleanupStack } from '../../bench/lib/cleanup.js';
import { runOk } from '../../bench/lib/proc.js';
import { UringParam } from '../../bench/lib/uring.js';
import type { Rootless } from '../../bench/lib/rootless.js';
import { renewLoopDevice, switchDiscardOff } from '../support/discard-off.js';
import type { VaultCli } from '../../bench/lib/vault.js';
import type { Options, Side } from './options.js';

export interface Devices {
  side: Side;
  testDev: string;
  scratchDev: string;
  /** What the report says about how the devices were made. */
  detail: string;
}

async function attachPlain(image: string, size: string, sectorSize: number, discards: boolean, cleanup: CleanupStack): Promise<string> {
  writeFileSync(image, '');
  await runOk('truncate', ['-s', size, image]);
  const dev = (await runOk('losetup', ['-f', '--show', '--sector-size', String(sectorSize), image])).stdout.trim();
  cleanup.push(`losetup -d ${dev}${discards ? '' : ', then renew it'}`, async () => {
    await runOk('losetup', ['-d', dev], { cleanup: true });
    // discard_max_bytes 0 outlives the detach and cannot be undone: the next user of loopN would
    // get a device without discard (test/support/discard-off.ts). A fresh device forgets it.
    if (!discards) renewLoopDevice(dev);
  });
  if (!discards) switchDiscardOff(dev);
  return dev;
}

/**
 * The logical sector size of the vault side's devices, which the plain side copies: vault's own
 * loop device takes the volume's sector size; udisksd's LoopSetup has no such option, so its loop
 * devices have 512-byte sectors over any volume (the server then reads and rewrites whole sectors).
 */
export function deviceSectorSize(o: Options): number {
  return o.route === 'udisks' ? 512 : o.sectorSize;
}

/**
 * Whether the kernel calls a device rotational. A loop device over a FUSE file (vault's) is not; one
 * over a file on this machine's virtio disk is. ext4's block allocator places files differently on
 * the two, which tests of allocation placement see (generic/223 fails its stripe alignment on any
 * non-rotational device here, plain or not): the plain side copies the vault side's value, so that
 * only the data path differs.
 */
export function rotational(dev: string): boolean {
  return readFileSync(`/sys/block/${path.basename(dev)}/queue/rotational`, 'utf8').trim() === '1';
}

/** The vault side's loop devices are not rotational (checked there); the plain side is made the same. */
export const VAULT_ROTATIONAL = false;

function setRotational(dev: string, on: boolean): void {
  writeFileSync(`/sys/block/${path.basename(dev)}/queue/rotational`, on ? '1' : '0');
  if (rotational(dev) !== on) throw new Error(`${dev} stays ${on ? 'non-' : ''}rotational after writing queue/rotational`);
}

export async function plainDevices(dir: string, o: Options, cleanup: CleanupStack): Promise<Devices> {
  const sectorSize = deviceSectorSize(o);
  // Without discards on the vault side (the udisks route), none on the plain side either.
  const testDev = await attachPlain(path.join(dir, 'plain-test.img'), o.size, sectorSize, o.discards, cleanup);
  const scratchDev = await attachPlain(path.join(dir, 'plain-scratch.img'), o.size, sectorSize, o.discards, cleanup);
  for (const d of [testDev, scratchDev]) setRotational(d, VAULT_ROTATIONAL);
  await runOk('mkfs.ext4', ['-F', '-q', testDev]);
  return { side: 'plain', testDev, scratchDev, detail: `loop devices over sparse files, ${o.size}, ${sectorSize}-byte sectors, ${o.discards ? 'discards on' : 'discards off'}, ${VAULT_ROTATIONAL ? '' : 'non-'}rotational` };
}

async function vaultVolume(cli: VaultCli, container: string, o: Options, cleanup: CleanupStack, rootless?: Rootless): Promise<string> {
  await cli.createBare(container, o.size, o.sectorSize);
  const args = ['--no-filesystem', ...(o.discards ? ['--allow-discards'] : []), ...(rootless ? ['--via', 'udisks'] : [])];
  const mount = async () => {
    await rootless?.ensureSetup();
    return cli.mount(container, null, o.transport, { args });
  };
  if (o.transport === 'io_uring') await new UringParam(cleanup).around(mount);
  else await mount();
  cleanup.push(`vault dismount ${container}`, async () => void (await cli.dismount(container, true)));
  const rec = (await cli.list()).find((v) => v.container === container);
  if (!rec?.loopDevice) throw new Error(`vault list --json shows no loop device for ${container}`);
  if (rec.transport !== o.transport) throw new Error(`${container} got the ${rec.transport} transport, not ${o.transport}`);
  if (rec.route !== o.route) throw new Error(`${container} went the ${rec.route} route, not ${o.route}`);
  if (rotational(rec.loopDevice) !== VAULT_ROTATIONAL)
    throw new Error(`${rec.loopDevice} is ${VAULT_ROTATIONAL ? 'non-' : ''}rotational, unlike the plain side this run makes (VAULT_ROTATIONAL in test/xfstests/devices.ts)`);
  return rec.loopDevice;
}

/** Root's CLI, or on the udisks route the rootless user's (the containers then in a dir of theirs). */
export async function vaultDevices(cli: VaultCli, dir: string, o: Options, cleanup: CleanupStack, rootless?: Rootless): Promise<Devices> {
  let home = dir;
  if (o.route === 'udisks') {
    if (!rootless) throw new Error('the udisks route needs the rootless stack (Rootless.start)');
    home = path.join(dir, 'user');
    mkdirSync(home, { recursive: true });
    rootless.giveToUser(home);
    cleanup.push(`remove ${home}`, async () => rmSync(home, { recursive: true, force: true }));
    cli = rootless.vault;
  }
  const testDev = await vaultVolume(cli, path.join(home, 'vault-test.vol'), o, cleanup, rootless);
  const scratchDev = await vaultVolume(cli, path.join(home, 'vault-scratch.vol'), o, cleanup, rootless);
  await runOk('mkfs.ext4', ['-F', '-q', testDev]);
  const discards = o.discards ? 'with --allow-discards' : 'without discards';
  return { side: 'vault', testDev, scratchDev, detail: `vault volumes (${o.size}, ${o.sectorSize}-byte sectors, ${o.transport} transport, ${o.route} route, ${discards})` };
}

/** The logical sector size of a block device, so the plain side can match the vault side. */
export async function logicalSectorSize(dev: string): Promise<number> {
  return Number((await runOk('blockdev', ['--getss', dev])).stdout.trim());
}
