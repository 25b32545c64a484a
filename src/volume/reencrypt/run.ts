/**
 * Re-encryption of a whole container, offline (spec §13): start (flag the header, staged keys),
 * the segment loop with its journal, resume after any interruption, and the final header.
 * The order of writes is the spec's; each step is durable (fdatasync) before the next begins.
 */
import { fdatasync as fdatasyncCb, fdatasyncSync } from 'node:fs';
import { promisify } from 'node:util';
import { VaultError } from '../../errors.js';
import type { SectorSize } from '../../format/constants.js';
import type { Header } from '../../format/types.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { secretCopy, wipe } from '../../crypto/wipe.js';
import { writeHeaderUpdate, type UnlockResult } from '../container.js';
import type { ContainerFile } from '../container-file.js';
import { readAtSync, readFully, writeAllSync, writeFully } from '../fd-io.js';
import { MAX_SEGMENT, RECORD_OFFSETS, RECORD_SIZE, UNIT_SIZE, encodeRecord, hashAt, journalKey, latestRecord, unitHash, type JournalRecord } from './journal.js';
import { finalHeader, newMasterKey, openEverySlot, stagedHeader, wipeKeks } from './staged.js';
import { isHole, reencryptSegment, reencryptStored, unitHashesAsync, zeroUnits, type Sides } from './transform.js';

const fdatasync = promisify(fdatasyncCb);

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Segment size in bytes: a multiple of 4096, at most 16 MiB (the default). Smaller only for fixtures. */
  segmentSize?: number;
}

interface Run {
  c: ContainerFile;
  header: Header; // the flagged header as written
  sides: Sides;
  journalKey: Buffer;
  newKey: Uint8Array; // raw, for the final header's MAC; wiped at the end
}

/**
 * Zeroes both record blocks (before the flag is set, and after it is cleared). Writing them whole
 * also allocates them in a sparse file, so a full disk fails here, before anything has changed:
 * later writes only overwrite allocated bytes, since holes are never written (spec §13.4).
 */
function clearJournal(c: ContainerFile): void {
  writeAllSync(c.fd, Buffer.alloc(2 * RECORD_SIZE), RECORD_OFFSETS[0]);
  fdatasyncSync(c.fd);
}

function prepare(c: ContainerFile, header: Header, oldKey: Uint8Array, newKey: Uint8Array): Run {
  const r = header.reencrypt!;
  return {
    c,
    header,
    journalKey: journalKey(oldKey, newKey, header.uuid),
    newKey: secretCopy(newKey),
    sides: {
      oldKey: KeyHandle.fromBytes(secretCopy(oldKey)),
      newKey: KeyHandle.fromBytes(secretCopy(newKey)),
      oldSectorSize: header.sectorSize,
      newSectorSize: r.newSectorSize,
    },
  };
}

function dispose(run: Run): void {
  run.sides.oldKey.dispose();
  run.sides.newKey.dispose();
  wipe(run.journalKey, run.newKey);
}

/**
 * Starts a re-encryption of an unlocked, unflagged `header` (the newest valid copy): every active
 * slot is opened with its input, the journal is cleared, the flagged header written, then every
 * segment rewritten and the final header written. Returns the final header.
 */
export async function startReencryption(c: ContainerFile, header: Header, inputs: Map<number, Buffer>, newSectorSize: SectorSize, o: RunOptions = {}): Promise<Header> {
  if (header.reencrypt) throw new VaultError('internal', 'already flagged');
  if (header.dataSize % newSectorSize !== 0)
    throw new VaultError('usage', `the data area (${header.dataSize} bytes) is not a multiple of ${newSectorSize}-byte sectors`, 'keep the current sector size');
  const opened = await openEverySlot(header, inputs);
  const newKey = newMasterKey(opened.masterKey);
  let run: Run;
  try {
    const flagged = stagedHeader(header, opened.keks, newKey, newSectorSize);
    clearJournal(c);
    const written = writeHeaderUpdate(c, flagged, opened.masterKey, header.copy);
    run = prepare(c, written, opened.masterKey, newKey);
  } finally {
    wipeKeks(opened.keks);
    wipe(opened.masterKey, newKey);
  }
  try {
    await loop(run, 0, 1n, 0, o);
    return finish(run);
  } finally {
    dispose(run);
  }
}

/** Resumes an interrupted run from an unlock of its flagged header (`u.newMasterKey` set). */
export async function resumeReencryption(c: ContainerFile, u: UnlockResult, o: RunOptions = {}): Promise<Header> {
  if (!u.header.reencrypt || !u.newMasterKey) throw new VaultError('internal', 'not a flagged header');
  const run = prepare(c, u.header, u.masterKey, u.newMasterKey);
  try {
    const blocks = RECORD_OFFSETS.map((at) => readAtSync(c.fd, RECORD_SIZE, at)) as [Buffer, Buffer];
    const latest = latestRecord(blocks, run.journalKey, u.header.dataSize);
    // No valid record: legitimate only before the first record was complete, when no data has been
    // written and the second block is still zero (spec §13.5). With both blocks written but neither
    // valid, the journal was damaged from outside: starting over would encrypt done segments twice.
    if (!latest && blocks.every((b) => b.some((x) => x !== 0)))
      throw new VaultError('journal-damaged', 'both re-encryption journal records are damaged: vault cannot tell which sectors are already re-encrypted, and resuming would destroy data', 'do not resume; restore the container from a backup (the plaintext is partly under the old key, partly under the new one)');
    if (!latest) await loop(run, 0, 1n, 0, o);
    else {
      await repairSegment(run, latest.record);
      await loop(run, latest.record.offset + latest.record.length, latest.record.sequence + 1n, latest.block === 0 ? 1 : 0, o);
    }
    return finish(run);
  } finally {
    dispose(run);
  }
}

/**
 * The segment of the newest record (spec §13.5): a unit with the recorded hash is new; one whose
 * re-encryption has it is old, and is rewritten; any other was changed outside vault.
 */
async function repairSegment(run: Run, rec: JournalRecord): Promise<void> {
  const cur = Buffer.alloc(rec.length);
  await readFully(run.c.fd, cur, run.header.dataOffset + rec.offset);
  const neu = await reencryptSegment(cur, rec.offset, run.sides);
  for (let i = 0, at = 0; at < rec.length; i++, at += UNIT_SIZE) {
    if (unitHash(cur.subarray(at, at + UNIT_SIZE)).equals(hashAt(rec.newHashes, i))) cur.copy(neu, at, at, Math.min(at + UNIT_SIZE, rec.length));
    else if (!unitHash(neu.subarray(at, at + UNIT_SIZE)).equals(hashAt(rec.newHashes, i))) throw damaged(rec.offset + at, 'it is neither the old nor the new ciphertext');
  }
  await writeUnits(run.c.fd, neu, run.header.dataOffset + rec.offset);
  fdatasyncSync(run.c.fd);
}

/**
 * Writes `buf` at `position` except its all-zero units: those are holes, before and after (a new
 * unit is all-zero only where the old one was), so writing them would only fill the holes.
 */
async function writeUnits(fd: number, buf: Buffer, position: number): Promise<void> {
  const holes = zeroUnits(buf, UNIT_SIZE);
  let start = -1;
  for (let i = 0, at = 0; at < buf.length; i++, at += UNIT_SIZE) {
    const hole = holes[i] === 1;
    if (!hole && start < 0) start = at;
    if (hole && start >= 0) {
      await writeFully(fd, buf.subarray(start, at), position + start);
      start = -1;
    }
  }
  if (start >= 0) await writeFully(fd, buf.subarray(start), position + start);
}

function damaged(at: number, why: string): VaultError {
  return new VaultError('io', `re-encryption cannot continue: the 4096 bytes at data offset ${at} were changed outside vault (${why})`, 'restore the container from a backup; nothing more was written');
}

/** One segment read and re-encrypted in memory (in place), with its units' hashes, not yet written. */
interface Prepared {
  pos: number;
  neu: Buffer;
  hole: boolean;
  newHashes: Buffer;
}

/** Two segments are in flight at most (one written, the next prepared): their buffers are reused. */
async function prepareSegment(run: Run, pos: number, len: number, buf: Buffer): Promise<Prepared> {
  const seg = buf.subarray(0, len);
  await readFully(run.c.fd, seg, run.header.dataOffset + pos);
  const hole = isHole(seg);
  if (hole) return { pos, neu: seg, hole, newHashes: Buffer.alloc(0) };
  await reencryptStored(seg, pos, run.sides);
  return { pos, neu: seg, hole, newHashes: await unitHashesAsync(seg) };
}

/**
 * Segment by segment: record (synced), then the new ciphertext (synced); holes are skipped. The
 * next segment is read and re-encrypted in memory while the current one is written: only the
 * writes are ordered, and nothing of segment k+1 is written before segment k is durable.
 */
async function loop(run: Run, from: number, seq: bigint, block: 0 | 1, o: RunOptions): Promise<void> {
  const { c, header } = run;
  const total = header.dataSize;
  const size = o.segmentSize ?? MAX_SEGMENT;
  if (size <= 0 || size > MAX_SEGMENT || size % UNIT_SIZE !== 0) throw new VaultError('internal', `bad segment size ${size}`);
  const len = Math.min(size, total);
  const pairs = [Buffer.allocUnsafe(len), Buffer.allocUnsafe(len)];
  let turn = 0;
  const start = (pos: number): Promise<Prepared> | null => {
    if (pos >= total) return null;
    const p = prepareSegment(run, pos, Math.min(size, total - pos), pairs[turn++ % 2]!);
    p.catch(() => {}); // awaited below; a failure then is the loop's
    return p;
  };
  let next = start(from);
  while (next) {
    const cur = await next;
    if (o.signal?.aborted) throw new VaultError('interrupted', 'interrupted; run `vault reencrypt --resume` to finish', 'the container opens only after the re-encryption finishes');
    const end = cur.pos + cur.neu.length;
    next = start(end);
    if (!cur.hole) {
      const record = encodeRecord({ sequence: seq, offset: cur.pos, length: cur.neu.length, newHashes: cur.newHashes }, run.journalKey);
      writeAllSync(c.fd, record, RECORD_OFFSETS[block]);
      await fdatasync(c.fd);
      await writeUnits(c.fd, cur.neu, header.dataOffset + cur.pos);
      await fdatasync(c.fd);
      seq++;
      block = block === 0 ? 1 : 0;
    }
    o.onProgress?.(end, total);
  }
}

/** Every sector is new: the final header under the new key (spec §6 order), then the journal cleared. */
function finish(run: Run): Header {
  const done = writeHeaderUpdate(run.c, finalHeader(run.header), run.newKey, run.header.copy);
  clearJournal(run.c);
  return done;
}
