/**
 * Reading a LUKS2 header the way cryptsetup's LUKS2_disk_hdr_read() does, without its repair
 * (vault writes a LUKS2 header only to change a fixed segment's size, write.ts):
 *   1. the primary copy at offset 0: binary checks, checksum, then JSON validation;
 *   2. the secondary copy at the primary's hdr_size, or, when the primary's binary header is
 *      unusable (so its hdr_size cannot be trusted), at each known offset 16 KiB … 4 MiB in turn;
 *   3. of two valid copies the one with the higher seqid wins (the primary on a tie);
 *   4. the header and keyslot areas must fit on the device.
 * The one boundary where untrusted header bytes become typed values.
 */
import { VaultError } from '../../errors.js';
import { readAtSync } from '../../volume/fd-io.js';
import { JsonLimitError, JsonSyntaxError, parseJson } from '../luks/json.js';
import { jsonText, METADATA_SIZES, readBinaryHeader, type BinaryHeader, type CopyName } from './binary-header.js';
import { LUKS2_SECTION_LIMITS, MetadataError, validateMetadata, type Luks2Metadata } from './metadata.js';

export interface Luks2Header {
  bin: BinaryHeader;
  metadata: Luks2Metadata;
  /** Findings about the other copy (damaged, older), to show the user. */
  warnings: string[];
}

/** One copy as read: valid, or why not. */
export type CopyState =
  | { ok: true; bin: BinaryHeader; metadata: Luks2Metadata }
  /** binary: the binary header itself failed (cryptsetup's HDR_FAIL / HDR_FAIL_IO). */
  | { ok: false; binary: boolean; io: boolean; reason: string; hdrSize?: number };

export interface Luks2Copies {
  primary: CopyState;
  secondary: CopyState;
}

function readCopy(fd: number, offset: number, copy: CopyName): CopyState {
  const bin = readBinaryHeader((length, at) => readAtSync(fd, length, at), offset, copy);
  if (!('jsonArea' in bin)) return { ok: false, binary: true, io: bin.io, reason: bin.reason };
  const invalid = (why: string): CopyState => ({ ok: false, binary: false, io: false, reason: `${copy} header: ${why}`, hdrSize: bin.hdrSize });
  const text = jsonText(bin.jsonArea);
  if (typeof text === 'string') return invalid(text);
  try {
    return { ok: true, bin, metadata: validateMetadata(parseJson(text, LUKS2_SECTION_LIMITS), bin.hdrSize - 4096) };
  } catch (e) {
    if (e instanceof JsonSyntaxError) return invalid(`malformed JSON: ${e.message}`);
    if (e instanceof MetadataError || e instanceof JsonLimitError) return invalid(`invalid metadata: ${e.message}`);
    throw e;
  }
}

/** Both copies on `fd`, each checked on its own (steps 1 and 2). */
export function readLuks2Copies(fd: number): Luks2Copies {
  const primary = readCopy(fd, 0, 'primary');
  let secondary: CopyState;
  if (primary.ok || !primary.binary) {
    secondary = readCopy(fd, primary.ok ? primary.bin.hdrSize : primary.hdrSize!, 'secondary');
  } else {
    secondary = { ok: false, binary: true, io: false, reason: 'secondary header: not found at any known offset' };
    for (const offset of METADATA_SIZES) {
      const s = readCopy(fd, offset, 'secondary');
      if (s.ok || !s.binary) {
        secondary = s;
        break;
      }
    }
  }
  return { primary, secondary };
}

/** The header of the copies read (steps 3 and 4) on a device of `size` bytes. */
export function chooseLuks2Header(copies: Luks2Copies, size: number, path: string): Luks2Header {
  const chosen = choose(copies.primary, copies.secondary, path);
  const areasEnd = 2n * (chosen.metadata.config.jsonSize + 4096n) + chosen.metadata.config.keyslotsSize;
  if (areasEnd > BigInt(size))
    throw new VaultError('truncated', `${path} is truncated: its LUKS2 header and keyslot areas need ${areasEnd} bytes, it has ${size}`);
  return chosen;
}

/** Reads and validates the header on `fd` (the container, or a detached header file) of `size` bytes. */
export function readLuks2Header(fd: number, size: number, path: string): Luks2Header {
  return chooseLuks2Header(readLuks2Copies(fd), size, path);
}

function choose(primary: CopyState, secondary: CopyState, path: string): Luks2Header {
  if (primary.ok && secondary.ok) {
    if (primary.bin.seqid >= secondary.bin.seqid) {
      const warnings = primary.bin.seqid > secondary.bin.seqid ? ['the secondary LUKS2 header is older than the primary'] : [];
      return { bin: primary.bin, metadata: primary.metadata, warnings };
    }
    return { bin: secondary.bin, metadata: secondary.metadata, warnings: ['the primary LUKS2 header is older than the secondary'] };
  }
  if (primary.ok) return { bin: primary.bin, metadata: primary.metadata, warnings: [(secondary as { reason: string }).reason] };
  if (secondary.ok) return { bin: secondary.bin, metadata: secondary.metadata, warnings: [primary.reason] };
  const s = secondary as Extract<CopyState, { ok: false }>;
  if (primary.binary && primary.reason.endsWith('no LUKS2 signature') && s.binary)
    throw new VaultError('not-a-container', `${path} is not a LUKS2 container (no valid LUKS2 header found)`);
  if (primary.io && s.io) throw new VaultError('truncated', `${path} is truncated: it ends inside the LUKS2 header`);
  throw new VaultError(
    'headers-damaged',
    `both LUKS2 headers of ${path} are unusable (${primary.reason}; ${s.reason})`,
    'restore a header backup with `cryptsetup luksHeaderRestore`',
  );
}
