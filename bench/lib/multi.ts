/**
 * Issue 14's "8 volumes mounted and loaded at once": eight volumes of one setup mounted together,
 * then one fio with a job per volume — sequential write (end_fsync) of the same size on each, caches
 * dropped, sequential read of those files — reported as aggregate MiB/s. The same for eight plain
 * loop devices, which is what vault's figure is compared with. The vault servers' memory is
 * sampled throughout (rss.ts), so the peak RSS target covers this phase too. The rootless routes
 * (issue 15) do the same with eight volumes of the bench user's, fio running as that user.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { runFioMulti, type FioMultiResult } from './fio.js';
import { progress } from './log.js';
import { Interrupted } from './proc.js';
import { worstTransport, type TransportCheck } from './report.js';
import { plainVolume, routeOf, routeVolume, vaultVolume, transportOf, type MountedSetup, type SetupContext, type SetupName } from './setups.js';
import { dropCaches } from './system.js';

export interface MultiResult {
  name: SetupName;
  volumes: number;
  write?: FioMultiResult;
  read?: FioMultiResult;
  transport: TransportCheck | null;
  error?: string;
}

const MiB = 1 << 20;

export async function multiVolume(
  name: SetupName,
  ctx: SetupContext,
  o: { volumes: number; volumeBytes: number; bytesEach: number },
): Promise<MultiResult> {
  const parent = path.join(ctx.workDir, `multi-${name}`);
  mkdirSync(parent, { recursive: true });
  const up: MountedSetup[] = [];
  const result: MultiResult = { name, volumes: o.volumes, transport: null };
  const t = transportOf(name);
  const route = routeOf(name);
  try {
    progress(`${name} ×${o.volumes}: creating and mounting ${o.volumes} volumes of ${o.volumeBytes / MiB} MiB`);
    for (let i = 0; i < o.volumes; i++) {
      const label = `v${i}`;
      up.push(
        route !== null
          ? await routeVolume(ctx, parent, label, route, o.volumeBytes, 1)
          : t === null
            ? await plainVolume(ctx, parent, label, o.volumeBytes, 1)
            : await vaultVolume(ctx, parent, label, name, o.volumeBytes, 1),
      );
    }
    if (t !== null || route !== null) result.transport = worstTransport(up.map((s) => s.transport).filter((x): x is TransportCheck => !!x)) ?? null;
    const files = up.map((s) => path.join(s.mountpoint, 'fio.dat'));
    const asUser = up[0]?.asUser ? { asUser: up[0].asUser } : {};
    await dropCaches();
    progress(`${name} ×${o.volumes}: sequential write ${o.bytesEach / MiB} MiB on each, all at once (bs 1M, end_fsync)`);
    result.write = await runFioMulti({ rw: 'write', bs: '1M', sizeBytes: o.bytesEach, ioengine: 'psync', endFsync: true, ...asUser }, files);
    progress(`${name} ×${o.volumes}:   ${(result.write.bytesPerS / MiB).toFixed(1)} MiB/s total`);
    await dropCaches();
    progress(`${name} ×${o.volumes}: sequential read of those files, all at once (caches dropped)`);
    result.read = await runFioMulti({ rw: 'read', bs: '1M', sizeBytes: o.bytesEach, ioengine: 'psync', ...asUser }, files);
    progress(`${name} ×${o.volumes}:   ${(result.read.bytesPerS / MiB).toFixed(1)} MiB/s total`);
  } catch (e) {
    if (e instanceof Interrupted) throw e;
    result.error = (e as Error).message;
    progress(`${name} ×${o.volumes}: FAILED: ${result.error}`);
  } finally {
    progress(`${name} ×${o.volumes}: tearing down`);
    for (const s of up.reverse()) {
      try {
        await s.teardown();
      } catch (e) {
        result.error ??= `teardown: ${(e as Error).message}`;
      }
    }
  }
  return result;
}
