/**
 * A vault container for the exercisers (issue 20), made and mounted with the real CLI on one route:
 *  - root: `vault create … --fs ext4` and `vault mount C MP` as root (a VaultCli with its own
 *    VAULT_RUN_DIR);
 *  - udisks: the same as an ordinary user, through udisksd and polkit (bench/lib/rootless.ts brings
 *    up the daemons and the user); udisks picks the mount point.
 * fsck() attaches the decrypted block device alone (`vault mount --no-filesystem`, as root) and
 * runs `e2fsck -fn` on it: it must find nothing to fix.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { progress } from '../../bench/lib/log.js';
import { run } from '../../bench/lib/proc.js';
import { fuseOverIoUring, setFuseOverIoUring } from '../../src/system/capabilities.js';
import type { Rootless } from '../../bench/lib/rootless.js';
import type { VaultCli } from '../../bench/lib/vault.js';

export type Route = 'root' | 'udisks';
export type Transport = 'classic' | 'io_uring';

export interface Fsck {
  clean: boolean;
  command: string;
  output: string;
}

export class TortureVolume {
  private mountpoint: string | null = null;

  private constructor(
    readonly route: Route,
    readonly transport: Transport,
    readonly container: string,
    /** Root's CLI (the raw attach for e2fsck, and the root route's own commands). */
    private readonly rootCli: VaultCli,
    /** The user's, on the udisks route. */
    private readonly rootless: Rootless | null,
    /** The root route's mount point. */
    private readonly rootMountpoint: string,
  ) {}

  /** Makes a container of sizeBytes in `dir` (which it may make the user's on the udisks route). */
  static async create(o: { route: Route; transport: Transport; dir: string; sizeBytes: number; rootCli: VaultCli; rootless?: Rootless }): Promise<TortureVolume> {
    const mp = path.join(o.dir, 'mnt');
    mkdirSync(mp, { recursive: true });
    if (o.route === 'udisks') {
      if (!o.rootless) throw new Error('the udisks route needs the rootless stack (Rootless.start)');
      const home = path.join(o.dir, 'user');
      mkdirSync(home, { recursive: true });
      o.rootless.giveToUser(home);
      const container = path.join(home, 'torture.vol');
      await o.rootless.vault.create(container, o.sizeBytes);
      return new TortureVolume('udisks', o.transport, container, o.rootCli, o.rootless, mp);
    }
    const container = path.join(o.dir, 'torture.vol');
    await o.rootCli.create(container, o.sizeBytes);
    return new TortureVolume('root', o.transport, container, o.rootCli, null, mp);
  }

  /**
   * Mounts the container's ext4; returns where. For io_uring it switches the kernel's enable_uring
   * on again if it is off: the switch is machine-wide, and another session's test may have put it
   * back between two mounts of a long run (whoever switched it on first restores it at the end).
   */
  async mount(): Promise<string> {
    if (this.mountpoint) return this.mountpoint;
    if (this.transport === 'io_uring' && fuseOverIoUring() === 'off') {
      progress('enable_uring was switched off (by someone else) since the last mount: switched on again');
      setFuseOverIoUring(true);
    }
    if (this.rootless) {
      await this.rootless.ensureSetup();
      await this.rootless.vault.mount(this.container, null, this.transport, { via: 'udisks' });
      const rec = (await this.rootless.vault.list()).find((r) => r.container === this.container);
      if (!rec?.mountpoint) throw new Error(`${this.container} is not in the user's vault list after mounting it`);
      this.mountpoint = rec.mountpoint;
    } else {
      await this.rootCli.mount(this.container, this.rootMountpoint, this.transport);
      this.mountpoint = this.rootMountpoint;
    }
    return this.mountpoint;
  }

  async dismount(): Promise<void> {
    if (!this.mountpoint) return;
    const mp = this.mountpoint;
    this.mountpoint = null;
    await (this.rootless ? this.rootless.vault : this.rootCli).dismount(mp);
  }

  /** e2fsck -fn on the decrypted device of the dismounted container. */
  async fsck(): Promise<Fsck> {
    await this.dismount();
    const dev = await this.rootCli.attachRaw(this.container);
    try {
      const r = await run('e2fsck', ['-fn', dev], { timeoutMs: 30 * 60_000 });
      return { clean: r.code === 0, command: `e2fsck -fn ${dev}`, output: `${r.stdout}${r.stderr}` };
    } finally {
      await this.rootCli.dismount(dev);
    }
  }
}
