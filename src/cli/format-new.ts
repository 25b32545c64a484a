/**
 * Making the filesystem of a container being created (vault's and VeraCrypt's create), through the
 * normal mount path: mkfs writes only through the encryption, and only into the file the create
 * made (its descriptor, never its name).
 */
import path from 'node:path';
import type { UnlockedVolume } from '../formats/types.js';
import { dismountVolume } from '../mount/dismount.js';
import { makeFilesystem, type FsType } from '../mount/filesystem.js';
import { lockContainer, mountUnlocked } from '../mount/lifecycle.js';
import type { RouteChoice } from '../mount/route.js';
import { containerFromFd } from '../volume/container-file.js';
import type { NewContainer, Target } from '../volume/create.js';
import { warn } from './output.js';
import { invokingUser } from './owner.js';

export async function formatThroughMount(t: Target, made: Pick<NewContainer, 'fd' | 'tmpName'>, volume: UnlockedVolume, fs: FsType, signal: AbortSignal, route: RouteChoice) {
  const c = containerFromFd(made.fd, path.join(t.dir.path, made.tmpName), false);
  lockContainer(c);
  const record = await mountUnlocked(c, volume, { readOnly: false, noFilesystem: true, warn, signal, transient: true, route });
  try {
    const owner = invokingUser() ?? selfUnlessRoot();
    makeFilesystem(record.loopDevice ?? record.blockFile, fs, { fresh: true, ...(owner ? { ownerUid: owner.uid, ownerGid: owner.gid } : {}) });
  } finally {
    await dismountVolume(record, true);
  }
}

/** An ordinary user owns the root of the filesystem they create (mkfs.ext4 -E root_owner). */
function selfUnlessRoot(): { uid: number; gid: number } | undefined {
  const uid = process.geteuid?.() ?? 0;
  return uid === 0 ? undefined : { uid, gid: process.getegid?.() ?? 0 };
}
