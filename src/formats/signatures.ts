/**
 * The signatures that choose a container's adapter (formats/index.ts), kept apart from the adapters
 * so that detection loads only the one it picks: a vault mount then never loads the LUKS and
 * VeraCrypt code (about 30 ms of every `vault mount`, bench/RESULTS.md 2026-12-07). Each adapter's
 * `recognises` and `claims` are these functions.
 */
import { HEADER_SIZE, MAGIC } from '../format/constants.js';
import { readAtSync } from '../volume/fd-io.js';
import type { ContainerFile } from '../volume/container-file.js';

/** LUKS's primary header signature, `LUKS\xba\xbe` (both versions). */
export const LUKS_MAGIC_PRIMARY = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
/** LUKS2's secondary header signature, `SKUL\xba\xbe`. */
export const LUKS_MAGIC_SECONDARY = Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]);
/** LUKS2's allowed hdr_size values, which are also where a secondary copy may sit (LUKS2_HDR2_OFFSETS). */
export const LUKS2_METADATA_SIZES = [0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000] as const;

const isLuks = (b: Buffer, magic: Buffer, version: number) => b.length >= 8 && b.subarray(0, 6).equals(magic) && b.readUInt16BE(6) === version;

export const vaultSignature = {
  recognises: (first: Buffer) => first.subarray(0, MAGIC.length).equals(MAGIC),
  /** The primary copy may be destroyed (that is what the secondary at the end is for). */
  claims: (c: ContainerFile) => c.size >= 2 * HEADER_SIZE && readAtSync(c.fd, MAGIC.length, c.size - HEADER_SIZE).equals(MAGIC),
};

export const luks2Signature = {
  recognises: (first: Buffer) => isLuks(first, LUKS_MAGIC_PRIMARY, 2),
  /** A destroyed primary: the secondary copy's signature at one of its known offsets (cryptsetup scans them too). */
  claims: (c: ContainerFile) => LUKS2_METADATA_SIZES.some((at) => at + 8 <= c.size && isLuks(readAtSync(c.fd, 8, at), LUKS_MAGIC_SECONDARY, 2)),
};

export const luks1Signature = {
  recognises: (first: Buffer) => isLuks(first, LUKS_MAGIC_PRIMARY, 1),
};
