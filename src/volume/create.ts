/**
 * Writing a new container: header with a fresh master key, then the data area filled with
 * encryptions of zeros (or left sparse with --quick). Everything is written to a temporary file
 * beside the target, which is renamed to the target only when complete, so an interrupted create
 * never leaves a half-made container at the target path.
 *
 * The target's directory may belong to another user (issue 13), who can rename, replace and
 * symlink entries in it at any moment. So it is opened once (O_DIRECTORY|O_NOFOLLOW) and every
 * step works on that descriptor and on the temporary file's own descriptor: the file is made with
 * O_EXCL, kept open for everything that writes it (fill, mkfs), never opened again by name, and
 * renamed without replacing anything unless --force. Names in the directory are only compared
 * against that descriptor's inode, and only entries proven to be ours are ever removed.
 */
import { closeSync, existsSync, fdatasync, statfsSync, constants as fsc, fstatSync, fsyncSync, ftruncateSync, readdirSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { VaultError } from '../errors.js';
import type { SectorSize } from '../format/constants.js';
import { containerFileSize, geometryForSize } from '../format/layout.js';
import type { Header, KdfParams } from '../format/types.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { createKeyslot } from '../crypto/keyslot.js';
import { generateMasterKey } from '../crypto/master-key.js';
import { xtsEncryptAsync } from '../crypto/xts.js';
import type { CipherChain } from '../crypto/cipher-chain.js';
import { NO_FOLLOW, openAt, openDir, renameAt, sameFile, statAt, unlinkAt, type DirHandle } from '../system/fs-at.js';
import { newHeader, writeInitialHeaders } from './container.js';
import { writeFully } from './fd-io.js';

const fdatasyncAsync = promisify(fdatasync);
const FILL_CHUNK = 4 * 1024 * 1024;
/** How much of a fill is written between the background flushes (fillWithEncryptedZeros). */
const FLUSH_EVERY = 32 * 1024 * 1024;

/** The target of a create: its directory, opened once, and its name in it. */
export interface Target {
  dir: DirHandle;
  name: string;
}

export function openTarget(target: string): Target {
  try {
    return { dir: openDir(path.dirname(target)), name: path.basename(target) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new VaultError('unsafe', `${path.dirname(target)} became a symbolic link while vault opened it`);
    throw new VaultError(code === 'ENOENT' ? 'usage' : 'io', `cannot open the directory ${path.dirname(target)}: ${code}`);
  }
}

/**
 * Refuses a filled create that cannot fit before anything is written: the free space of the target's
 * filesystem (statfs of the directory held open, as an ordinary user sees it: f_bavail) against the
 * bytes the container takes. A quick container is sparse and takes space as it is written: not
 * checked; nor is a filesystem that reports no size (ramfs): its writes tell (createError).
 */
export function ensureRoomFor(t: Target, bytes: number): void {
  let free: number;
  try {
    const st = statfsSync(`/proc/self/fd/${t.dir.fd}`);
    if (st.blocks === 0) return; // no size to go by (ramfs reports 0 of everything and grows)
    free = st.bavail * st.bsize;
  } catch {
    return; // no answer (an unusual filesystem): the writes will tell (createError)
  }
  if (free < bytes) throw noSpaceError(t, bytes, free);
}

function noSpaceError(t: Target, bytes: number, free?: number): VaultError {
  const mib = (n: number) => `${Math.floor(n / 2 ** 20)} MiB`;
  const why = free === undefined ? `the filesystem filled up while vault wrote the ${mib(bytes)} container` : `it takes ${mib(bytes)} and the filesystem has ${mib(free)} free`;
  return new VaultError(
    'io',
    `no space left for the container in ${t.dir.path}: ${why}; nothing was created`,
    'free space there, choose a smaller --size, or add --quick (a sparse container that takes space as it is written)',
  );
}

/** A create's failure as the user should read it: ENOSPC from a write or sync says what ran out. */
export function createError(t: Target, bytes: number, e: unknown): unknown {
  return (e as NodeJS.ErrnoException).code === 'ENOSPC' ? noSpaceError(t, bytes) : e;
}

export interface NewContainer {
  /** The temporary file's name in the target directory, and its open descriptor (the caller closes it). */
  tmpName: string;
  fd: number;
  header: Header;
  /** Caller owns it: dispose when done. */
  key: KeyHandle;
}

/**
 * The temporary name used while a container is being made: hidden, beside the target, and naming
 * the pid of the process making it, so that a later create can tell a partial file whose maker was
 * killed (kill -9 cannot be caught, so nobody else removes it) from one still being written.
 */
export function partialName(name: string): string {
  return `${partialPrefix(name)}${process.pid}-${randomBytes(4).toString('hex')}`;
}

function partialPrefix(name: string): string {
  return `.${name}.vault-partial-`;
}

/**
 * Whether an entry is a partial file this user's vault made: a regular file (not a symlink,
 * directory or device), owned by our uid, mode 0600, with one link. Anyone can plant the name;
 * nobody else can make such a file, and unlinking a name never touches another file.
 */
function isOwnPartial(st: Stats | null): boolean {
  return !!st && st.isFile() && st.uid === (process.geteuid?.() ?? 0) && (st.mode & 0o7777) === 0o600 && st.nlink === 1;
}

/**
 * Removes the partial files an interrupted create of the target left behind: those whose maker no
 * longer exists. (A reused pid keeps a stale file in place, which is the safe way to be wrong.)
 * Returns the names removed.
 */
export function removeStalePartials(t: Target): string[] {
  const prefix = partialPrefix(t.name);
  let names: string[];
  try {
    names = readdirSync(`/proc/self/fd/${t.dir.fd}`); // the directory we opened, not the path again
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length));
    if (!m || existsSync(`/proc/${m[1]}`) || !isOwnPartial(statAt(t.dir.fd, name))) continue;
    try {
      unlinkAt(t.dir.fd, name);
      removed.push(path.join(t.dir.path, name));
    } catch {
      // gone, or swapped for a directory: not ours to remove
    }
  }
  return removed;
}

/** Unlinks the temporary name if it still names our file (else someone renamed it; leave theirs alone). */
export function removePartial(t: Target, made: Pick<NewContainer, 'tmpName' | 'fd'>): void {
  try {
    const st = statAt(t.dir.fd, made.tmpName);
    if (st && sameFile(st, fstatSync(made.fd))) unlinkAt(t.dir.fd, made.tmpName);
  } catch {
    // best effort: an entry we cannot examine is not removed
  }
}

export async function writeNewContainer(
  t: Target,
  o: {
    size: number;
    sectorSize: SectorSize;
    kdf: KdfParams;
    kdfInput: Uint8Array;
    quick: boolean;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<NewContainer> {
  const geometry = geometryForSize(o.size, o.sectorSize);
  const header = newHeader(geometry);
  if (!o.quick) ensureRoomFor(t, containerFileSize(header));
  const mk = generateMasterKey();
  const tmpName = partialName(t.name);
  let fd = -1;
  try {
    header.keyslots[0] = await createKeyslot(o.kdfInput, mk, header.uuid, 0, o.kdf);
    fd = openAt(t.dir.fd, tmpName, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | NO_FOLLOW, 0o600);
    ftruncateSync(fd, containerFileSize(header)); // sparse until written
    writeInitialHeaders(fd, header, mk);
    const key = KeyHandle.fromBytes(mk); // wipes mk
    try {
      if (!o.quick) await fillWithEncryptedZeros(fd, header, key, { from: 0, to: header.dataSize, signal: o.signal, onProgress: o.onProgress });
      fsyncSync(fd);
    } catch (e) {
      key.dispose();
      throw e;
    }
    return { tmpName, fd, header, key };
  } catch (e) {
    mk.fill(0);
    if (fd >= 0) {
      removePartial(t, { tmpName, fd });
      closeSync(fd);
    }
    throw createError(t, containerFileSize(header), e);
  }
}

/** The data area being filled: vault's (tweak = sector index), or a foreign format's tweak rule. */
export interface FillGeometry {
  dataOffset: number;
  sectorSize: number;
  firstTweak?: bigint;
  tweakStep?: bigint;
  /** A VeraCrypt algorithm other than AES (the key is then chainKeyBytes(chain) long). */
  chain?: CipherChain;
}

/** Where fillWithEncryptedZeros writes: data-area bytes [from, to), sector-aligned. */
export interface FillRange {
  from: number;
  to: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/**
 * Encrypts zero sectors into data-area bytes [from, to) (create: the whole area; resize: the new
 * part), two chunks in flight (encrypt one, write the other). Progress counts from `from`.
 *
 * Every FLUSH_EVERY bytes an fdatasync starts in the background (one at a time), so the disk
 * writes while the fill goes on instead of all at the caller's final fsync: a 512 MiB create
 * measured 0.92-1.12 s against 1.06-1.16 s without, 2 GiB 3.67 s against 4.43 s; a later sweep
 * of 512 MiB creates put every interval, and none, inside one another's noise (bench/RESULTS.md,
 * 2026-12-07). Its failure fails the fill. The caller still syncs at the end.
 */
export async function fillWithEncryptedZeros(fd: number, h: FillGeometry, key: KeyHandle, r: FillRange): Promise<void> {
  const step = h.tweakStep ?? 1n;
  let pendingWrite: Promise<unknown> = Promise.resolve();
  let flushing: Promise<void> | null = null;
  let flushError: unknown = null;
  let unflushed = 0;
  const buffers = [Buffer.alloc(FILL_CHUNK), Buffer.alloc(FILL_CHUNK)];
  const total = r.to - r.from;
  let n = 0;
  try {
    for (let done = r.from; done < r.to; done += FILL_CHUNK, n++) {
      if (r.signal?.aborted) throw new VaultError('interrupted', 'interrupted');
      const len = Math.min(FILL_CHUNK, r.to - done);
      const buf = buffers[n % 2]!.subarray(0, len);
      buf.fill(0);
      await xtsEncryptAsync(key, buf, { sectorSize: h.sectorSize, firstTweak: (h.firstTweak ?? 0n) + BigInt(done / h.sectorSize) * step, tweakStep: step, ...(h.chain ? { cipher: h.chain } : {}) });
      await pendingWrite; // the other buffer's write must finish before that buffer is reused
      pendingWrite = writeFully(fd, buf, h.dataOffset + done);
      // Handled now (and awaited below): a write failing (ENOSPC) while the next chunk is being
      // encrypted must not be an unhandled rejection, which ends the process before any cleanup.
      pendingWrite.catch(() => undefined);
      unflushed += len;
      if (unflushed >= FLUSH_EVERY && !flushing) {
        unflushed = 0;
        flushing = pendingWrite
          .then(() => fdatasyncAsync(fd))
          .catch((e: unknown) => void (flushError ??= e))
          .finally(() => (flushing = null));
      }
      if (flushError) throw flushError;
      r.onProgress?.(done + len - r.from, total);
    }
  } finally {
    await pendingWrite.catch(() => undefined); // a failed write is not left running behind the caller
    await flushing; // nor a flush (it never rejects: flushError has its failure)
  }
  await pendingWrite;
  if (flushError) throw flushError;
}

/**
 * Moves the finished container into place and makes the rename durable. The temporary name must
 * still be our file before the rename, and the target must be our file after it; without `force`
 * the rename never replaces an entry (RENAME_NOREPLACE), whatever appeared there meanwhile.
 */
export function finishContainer(t: Target, made: Pick<NewContainer, 'tmpName' | 'fd'>, force: boolean): void {
  const ours = fstatSync(made.fd);
  const isOurs = (name: string) => {
    const st = statAt(t.dir.fd, name);
    return !!st && sameFile(st, ours);
  };
  const target = path.join(t.dir.path, t.name);
  if (!isOurs(made.tmpName))
    throw new VaultError('unsafe', `the temporary file beside ${target} was replaced while vault wrote it; nothing was created`, 'make sure no other user can write that directory');
  try {
    renameAt(t.dir.fd, made.tmpName, t.name, !force);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new VaultError('exists', `${target} appeared while vault created it`, 'use --force to overwrite it');
    throw e;
  }
  if (!isOurs(t.name))
    throw new VaultError('unsafe', `${target} was replaced right after vault created it; it is not the new container`, 'make sure no other user can write that directory');
  fsyncSync(t.dir.fd);
}
