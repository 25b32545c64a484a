/**
 * The metadata workload: create, stat and delete N small files in one directory, reported as
 * files per second per phase. Written here instead of with fio's filecreate/filestat engines so
 * that each phase can end at a clear durability point and start from a defined cache state:
 *
 * - create: open(O_CREAT)+write 4 KiB+close for every file, then syncfs, so the rate includes
 *   getting the new inodes, directory blocks and data to the container, not just into the cache;
 * - stat:   caches dropped first, so every stat has to fetch its inode through the setup's stack
 *   (for vault: ext4 → loop → FUSE → decryption); a warm stat would only measure the dentry cache;
 * - delete: unlink every file, then syncfs.
 *
 * Node's synchronous calls keep per-file overhead equal across setups; the loop yields every few
 * hundred files so Ctrl-C is noticed promptly.
 */
import { mkdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nowMs } from './log.js';
import { checkInterrupted } from './proc.js';

export const META_FILE_BYTES = 4096;
const YIELD_EVERY = 250;

export interface MetaPhase {
  files: number;
  seconds: number;
  filesPerS: number;
}

export interface MetaResult {
  fileBytes: number;
  create: MetaPhase;
  stat: MetaPhase;
  delete: MetaPhase;
}

export interface MetaHooks {
  /** Makes the phase's changes durable on this setup's storage. */
  syncfs(): Promise<void>;
  /** Drops page, dentry and inode caches (not timed). */
  dropCaches(): Promise<void>;
}

const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function phase(n: number, each: (i: number) => void, end?: () => Promise<void>): Promise<MetaPhase> {
  const t0 = nowMs();
  for (let i = 0; i < n; i++) {
    each(i);
    if (i % YIELD_EVERY === YIELD_EVERY - 1) {
      await yieldNow();
      checkInterrupted();
    }
  }
  if (end) await end();
  const seconds = (nowMs() - t0) / 1000;
  return { files: n, seconds, filesPerS: n / seconds };
}

export async function metadataWorkload(dir: string, files: number, hooks: MetaHooks): Promise<MetaResult> {
  mkdirSync(dir, { recursive: true });
  const name = (i: number): string => path.join(dir, `f${i.toString().padStart(6, '0')}`);
  // Non-zero content, so no layer can treat the files as holes.
  const content = Buffer.alloc(META_FILE_BYTES, 0x5a);
  try {
    const create = await phase(files, (i) => writeFileSync(name(i), content), () => hooks.syncfs());
    await hooks.dropCaches();
    const stat = await phase(files, (i) => {
      if (statSync(name(i)).size !== META_FILE_BYTES) throw new Error(`${name(i)} has the wrong size`);
    });
    const del = await phase(files, (i) => unlinkSync(name(i)), () => hooks.syncfs());
    return { fileBytes: META_FILE_BYTES, create, stat, delete: del };
  } finally {
    // After a failure or an interrupt the directory may still hold files; they live on the setup's
    // own volume, which is torn down anyway, but an empty mount unmounts faster.
    rmSync(dir, { recursive: true, force: true });
  }
}
