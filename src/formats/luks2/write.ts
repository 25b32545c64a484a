/**
 * Writing a LUKS2 header, for one change only: the `size` of a fixed data segment (`vault resize`,
 * spec/interop-luks.md §6.2). Everything else stays as it was: the new JSON is the text of the copy
 * in use with that one value replaced, and both copies are written as cryptsetup's
 * LUKS2_disk_hdr_write() writes them: seqid one above both copies', the binary fields of the copy
 * in use with each copy's own magic, offset and salt, a fresh checksum, the JSON zero-padded.
 *
 * The steps are separate so that the write order is the caller's to keep (and a test's to cut):
 * prepareSegmentResize() reads and checks everything and writes nothing; writeHeaderCopy() writes
 * one copy and syncs it; writeSegmentSize() writes the primary, then the secondary. A crash before
 * or inside a copy's write leaves that copy old or failing its checksum; after it, the copy with
 * the higher seqid wins (in cryptsetup and vault alike): the header opens with the old or the new
 * size.
 */
import { fstatSync, fsyncSync } from 'node:fs';
import { VaultError } from '../../errors.js';
import type { ContainerFile } from '../../volume/container-file.js';
import { writeAllSync } from '../../volume/fd-io.js';
import { parseJson, parseJsonAt } from '../luks/json.js';
import { quote } from '../luks/quote.js';
import { BIN_HEADER_SIZE, jsonText, sealBinaryHeader, type CopyName } from './binary-header.js';
import { LUKS2_SECTION_LIMITS, validateMetadata, type Luks2Metadata, type Luks2Segment } from './metadata.js';
import { chooseLuks2Header, readLuks2Copies } from './read.js';

const U64_MAX = (1n << 64n) - 1n;

/**
 * cryptsetup's persistent activation flags (luks2_json_metadata.c, persistent_flags): they say how
 * dm-crypt maps the segment, not where it ends. Any other config flag is refused.
 */
const KNOWN_CONFIG_FLAGS: readonly string[] = ['allow-discards', 'same-cpu-crypt', 'submit-from-crypt-cpus', 'no-journal', 'no-read-workqueue', 'no-write-workqueue'];

function refuse(message: string, hint?: string): never {
  throw new VaultError('unsupported-feature', `${message}; the container was not changed`, hint);
}

const list = (names: string[]) => names.map((n) => quote(n)).join(', ');

/**
 * The data segment whose size a resize changes, or null when that size is "dynamic" (the file's
 * length is the size: no metadata to write). Refuses what a size change could break: requirements
 * (a reencryption in progress, or features vault does not know), a reencryption keyslot, more than
 * one segment (only the last regular one could change, and more than one means a reencryption or
 * its backup), segment flags, a segment that is not a plain "crypt" one, and, when the header is to
 * be rewritten, config flags that are not cryptsetup's activation flags.
 */
export function resizableSegment(m: Luks2Metadata): Luks2Segment | null {
  const reencryption = 'finish or abort the reencryption with cryptsetup first';
  const reqs = m.config.requirements;
  if (reqs.length > 0) refuse(`the LUKS2 header has requirements (${list(reqs)}), so vault does not resize it`, reqs.some((r) => r.includes('reencrypt')) ? reencryption : undefined);
  if (m.keyslots.some((k) => k.type === 'reencrypt')) refuse('the LUKS2 header has a reencryption keyslot, so vault does not resize it', reencryption);
  if (m.segments.length !== 1)
    refuse(`the LUKS2 header has ${m.segments.length} segments; vault resizes a container with one data segment only (more are a reencryption or its backup)`, reencryption);
  const s = m.segments[0]!;
  if (s.flags.length > 0) refuse(`the LUKS2 data segment has flags (${list(s.flags)}), so vault does not resize it`, reencryption);
  if (s.crypt === null) refuse(`the LUKS2 data segment has type ${quote(s.type)}; vault resizes only "crypt" segments`);
  if (s.crypt.integrity !== null) refuse(`the LUKS2 data segment uses integrity protection (${quote(s.crypt.integrity)}), so vault does not resize it`);
  if (s.size === null) return null;
  const unknown = m.config.flags.filter((f) => !KNOWN_CONFIG_FLAGS.includes(f));
  if (unknown.length > 0) refuse(`the LUKS2 header has config flags vault does not know (${list(unknown)}), so vault does not rewrite it`);
  return s;
}

export interface SegmentResize {
  segment: number;
  offset: bigint;
  oldSize: bigint;
  newSize: bigint;
  /** The seqid both copies get: one above the higher of the two. */
  seqid: bigint;
  /** Each copy whole (binary header, then the JSON area), and where it goes. */
  copies: Record<CopyName, { offset: number; bytes: Buffer }>;
}

/**
 * Both header copies of `c` with the fixed data segment's size set to `newSize` bytes. Reads and
 * checks, writes nothing: refuses what reading the header refuses, a damaged copy (vault does not
 * repair: cryptsetup does), what resizableSegment() refuses, and JSON that no longer fits its area.
 */
export function prepareSegmentResize(c: ContainerFile, newSize: bigint): SegmentResize {
  const copies = readLuks2Copies(c.fd);
  const header = chooseLuks2Header(copies, c.size, c.path);
  const { primary, secondary } = copies;
  const damaged: (reason: string) => never = (reason) =>
    refuse(`${reason}: vault rewrites LUKS2 metadata only when both copies are valid`, `repair it with \`cryptsetup repair ${c.path}\`, then run vault resize again`);
  if (!primary.ok) damaged(primary.reason);
  if (!secondary.ok) damaged(secondary.reason);
  const seg = resizableSegment(header.metadata);
  if (seg === null || seg.size === null) throw new VaultError('internal', 'the LUKS2 data segment is dynamic: it has no size to rewrite');
  if (newSize <= 0n || newSize % BigInt(seg.crypt!.sectorSize) !== 0n || seg.offset + newSize > U64_MAX)
    throw new VaultError('internal', `${newSize} is not a size for the LUKS2 data segment`);

  const { text, span } = parseJsonAt(jsonText(header.bin.jsonArea) as Buffer, LUKS2_SECTION_LIMITS, ['segments', String(seg.id), 'size']);
  if (span === null) refuse(`the LUKS2 JSON does not name segment ${seg.id} as "${seg.id}", so vault does not rewrite it`);
  const json = Buffer.from(`${text.slice(0, span.start)}"${newSize}"${text.slice(span.end)}`, 'utf8');
  const areaSize = header.bin.hdrSize - BIN_HEADER_SIZE;
  if (json.length >= areaSize) refuse(`the LUKS2 metadata with the new size takes ${json.length} bytes, more than its JSON area holds (${areaSize - 1} and a NUL byte)`);
  const area = Buffer.alloc(areaSize);
  json.copy(area);
  // What is written must read back as valid metadata with the new size (a check of this module).
  if (validateMetadata(parseJson(json, LUKS2_SECTION_LIMITS), areaSize).segments[seg.id]?.size !== newSize)
    throw new VaultError('internal', 'the rewritten LUKS2 metadata does not read back with the new size');

  const top = primary.bin.seqid > secondary.bin.seqid ? primary.bin.seqid : secondary.bin.seqid;
  if (top >= U64_MAX) refuse('the LUKS2 header seqid is at its maximum');
  const seqid = top + 1n;
  const sealed = (own: typeof primary.bin) => ({ offset: own.offset, bytes: Buffer.concat([sealBinaryHeader(header.bin, own, seqid, area), area]) });
  return { segment: seg.id, offset: seg.offset, oldSize: seg.size, newSize, seqid, copies: { primary: sealed(primary.bin), secondary: sealed(secondary.bin) } };
}

/** Writes one prepared copy and syncs it: a crash later finds it whole. */
export function writeHeaderCopy(c: ContainerFile, r: SegmentResize, which: CopyName): void {
  const { offset, bytes } = r.copies[which];
  writeAllSync(c.fd, bytes, offset);
  fsyncSync(c.fd);
}

/**
 * Writes the new size: the primary copy, synced, then the secondary, synced (cryptsetup's order).
 * The file must already hold the whole new segment, so that no state of the header claims data
 * beyond its end.
 */
export function writeSegmentSize(c: ContainerFile, r: SegmentResize): void {
  const st = fstatSync(c.fd);
  if (st.isFile() && BigInt(st.size) < r.offset + r.newSize)
    throw new VaultError('internal', `the container (${st.size} bytes) is shorter than the new LUKS2 data segment's end (${r.offset + r.newSize})`);
  writeHeaderCopy(c, r, 'primary');
  writeHeaderCopy(c, r, 'secondary');
}
