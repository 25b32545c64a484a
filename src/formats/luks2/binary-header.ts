/**
 * The LUKS2 binary header (4096 bytes, big-endian), as in cryptsetup lib/luks2/luks2.h and
 * docs/on-disk-format-luks2.pdf §2:
 *
 *   off  size  field
 *     0     6  magic          "LUKS\xba\xbe" (primary) / "SKUL\xba\xbe" (secondary)
 *     6     2  version        2
 *     8     8  hdr_size       binary header + JSON area, one of 16 KiB … 4 MiB (powers of two)
 *    16     8  seqid          incremented on every update; the newer valid copy wins
 *    24    48  label          NUL-terminated
 *    72    32  checksum_alg   NUL-terminated, "sha256"
 *   104    64  salt           per copy
 *   168    40  uuid           NUL-terminated text
 *   208    48  subsystem      NUL-terminated
 *   256     8  hdr_offset     this copy's own offset on the device
 *   264   184  padding
 *   448    64  csum           checksum_alg(binary header with csum zeroed || whole JSON area)
 *   512  3584  padding
 *
 * The JSON area (hdr_size − 4096 bytes) follows. The secondary copy starts at hdr_size.
 */
import { createHash } from 'node:crypto';
import { HASH_SIZE, type LuksHash } from '../luks/af.js';
import { quote } from '../luks/quote.js';
import { LUKS_MAGIC_PRIMARY as MAGIC_PRIMARY, LUKS_MAGIC_SECONDARY as MAGIC_SECONDARY, LUKS2_METADATA_SIZES as METADATA_SIZES } from '../signatures.js';

export const BIN_HEADER_SIZE = 4096;
export {
  LUKS_MAGIC_PRIMARY as MAGIC_PRIMARY,
  LUKS_MAGIC_SECONDARY as MAGIC_SECONDARY,
  LUKS2_METADATA_SIZES as METADATA_SIZES,
} from '../signatures.js';
const HDR_SIZE_MAX = 0x400000;
const SEQID_OFFSET = 16;
const SALT_OFFSET = 104;
const SALT_LENGTH = 64;
const HDR_OFFSET_OFFSET = 256;
const CSUM_OFFSET = 448;
const CSUM_LENGTH = 64;
const CHECKSUM_ALGS: readonly LuksHash[] = ['sha256', 'sha512', 'sha1'];

export type CopyName = 'primary' | 'secondary';

export interface BinaryHeader {
  copy: CopyName;
  offset: number;
  hdrSize: number;
  seqid: bigint;
  label: string;
  subsystem: string;
  checksumAlg: LuksHash;
  uuid: string;
  /** The whole JSON area, hdrSize − 4096 bytes. */
  jsonArea: Buffer;
  /** The 4096 bytes of the binary header as read (the template a rewrite starts from). */
  raw: Buffer;
}

/** Why a copy is unusable, before its JSON is even looked at. */
export interface BinaryFailure {
  reason: string;
  /** The bytes ended early (cryptsetup's HDR_FAIL_IO): a truncated device, not a damaged header. */
  io: boolean;
}

export function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

/**
 * Sanity checks of hdr_disk_sanity_check_pre(), then the checksum (hdr_read_disk()).
 * `read(length, offset)` returns up to `length` bytes, fewer only at the end of the device.
 */
export function readBinaryHeader(read: (length: number, offset: number) => Buffer, offset: number, copy: CopyName): BinaryHeader | BinaryFailure {
  const bin = read(BIN_HEADER_SIZE, offset);
  if (bin.length < BIN_HEADER_SIZE) return { reason: `${copy} header: the device ends inside it`, io: true };
  const fail = (reason: string): BinaryFailure => ({ reason: `${copy} header: ${reason}`, io: false });
  if (!bin.subarray(0, 6).equals(copy === 'primary' ? MAGIC_PRIMARY : MAGIC_SECONDARY)) return fail('no LUKS2 signature');
  const version = bin.readUInt16BE(6);
  if (version !== 2) return fail(`version ${version} is not 2`);
  const hdrOffset = bin.readBigUInt64BE(256);
  if (hdrOffset !== BigInt(offset)) return fail(`it says it is at offset ${hdrOffset}, but it was read at ${offset}`);
  const hdrSize64 = bin.readBigUInt64BE(8);
  if (hdrSize64 < BigInt(METADATA_SIZES[0]) || hdrSize64 > BigInt(HDR_SIZE_MAX)) return fail(`bogus header size ${hdrSize64}`);
  const hdrSize = Number(hdrSize64);
  if (copy === 'secondary' && offset !== hdrSize) return fail(`header size ${hdrSize} does not match its offset ${offset}`);
  const alg = cString(bin.subarray(72, 104)) as LuksHash;
  if (!CHECKSUM_ALGS.includes(alg)) return fail(`unsupported checksum algorithm ${quote(cString(bin.subarray(72, 104)))}`);
  const jsonArea = read(hdrSize - BIN_HEADER_SIZE, offset + BIN_HEADER_SIZE);
  if (jsonArea.length < hdrSize - BIN_HEADER_SIZE) return { reason: `${copy} header: the device ends inside its JSON area`, io: true };
  if (!headerChecksum(alg, bin, jsonArea).equals(bin.subarray(CSUM_OFFSET, CSUM_OFFSET + HASH_SIZE[alg]))) return fail('checksum mismatch');
  return {
    copy,
    offset,
    hdrSize,
    seqid: bin.readBigUInt64BE(16),
    label: cString(bin.subarray(24, 72)),
    subsystem: cString(bin.subarray(208, 256)),
    checksumAlg: alg,
    uuid: cString(bin.subarray(168, 208)),
    jsonArea,
    raw: bin,
  };
}

/** checksum_alg(binary header with its csum field zeroed ‖ the whole JSON area) (hdr_checksum_calculate). */
function headerChecksum(alg: LuksHash, bin: Buffer, jsonArea: Buffer): Buffer {
  const zeroed = Buffer.from(bin);
  zeroed.fill(0, CSUM_OFFSET, CSUM_OFFSET + CSUM_LENGTH);
  return createHash(alg).update(zeroed).update(jsonArea).digest();
}

/**
 * The binary header of copy `own` for a new JSON area, as cryptsetup's hdr_to_disk() and
 * hdr_write_disk() make it: the fields of `chosen` (the copy the metadata came from: version,
 * hdr_size, label, checksum_alg, uuid, subsystem), this copy's own magic, offset and salt, the new
 * seqid, and the checksum over the result with the new area.
 */
export function sealBinaryHeader(chosen: BinaryHeader, own: BinaryHeader, seqid: bigint, jsonArea: Buffer): Buffer {
  if (jsonArea.length !== chosen.hdrSize - BIN_HEADER_SIZE) throw new Error('JSON area of the wrong size');
  const bin = Buffer.from(chosen.raw);
  (own.copy === 'primary' ? MAGIC_PRIMARY : MAGIC_SECONDARY).copy(bin, 0);
  bin.writeBigUInt64BE(seqid, SEQID_OFFSET);
  own.raw.copy(bin, SALT_OFFSET, SALT_OFFSET, SALT_OFFSET + SALT_LENGTH);
  bin.writeBigUInt64BE(BigInt(own.offset), HDR_OFFSET_OFFSET);
  bin.fill(0, CSUM_OFFSET, CSUM_OFFSET + CSUM_LENGTH);
  headerChecksum(chosen.checksumAlg, bin, jsonArea).copy(bin, CSUM_OFFSET);
  return bin;
}

/**
 * The JSON text of an area (validate_json_area()): it must open with '{', hold one JSON object and
 * nothing after it but whitespace and then NUL bytes, at least one (the terminator).
 * Returns the text bytes, or a reason.
 */
export function jsonText(area: Buffer): Buffer | string {
  if (area[0] !== 0x7b) return 'the JSON area does not start with "{"';
  const end = area.indexOf(0);
  if (end < 0) return 'the JSON area has no terminating NUL byte';
  for (let i = end; i < area.length; i++) if (area[i] !== 0) return `non-NUL byte at JSON area offset ${i}, after the JSON text`;
  // Anything but whitespace between the object and the NUL is refused by the JSON parser (json-c
  // also reads trailing whitespace as part of the text, so cryptsetup accepts it too).
  return area.subarray(0, end);
}
