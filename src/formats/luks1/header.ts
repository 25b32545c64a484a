/**
 * The LUKS1 header (592 bytes, big-endian), from the LUKS1 on-disk format specification 1.2.3 §2
 * and cryptsetup lib/luks1/luks.h, validated like cryptsetup's LUKS_read_phdr() and
 * LUKS_check_keyslots(): signature, version 1, keyslot states, key material inside the header
 * area and not overlapping, 4000 stripes.
 *
 *   off  size  field
 *     0     6  magic            "LUKS\xba\xbe"
 *     6     2  version          1
 *     8    32  cipher-name      "aes"
 *    40    32  cipher-mode      "xts-plain64"
 *    72    32  hash-spec        PBKDF2/AF hash: "sha1", "sha256", "sha512"
 *   104     4  payload-offset   data start, in 512-byte sectors (0 with a detached header)
 *   108     4  key-bytes        volume key length (64 for AES-256-XTS)
 *   112    20  mk-digest        PBKDF2(hash, volume key, mk-digest-salt, mk-digest-iter, 20)
 *   132    32  mk-digest-salt
 *   164     4  mk-digest-iter
 *   168    40  uuid
 *   208  8×48  keyslots: active (0x00AC71F3 enabled / 0x0000DEAD disabled), iterations,
 *              salt[32], key-material-offset (sectors), stripes
 */
import { VaultError } from '../../errors.js';
import { AF_STRIPES, afSplitBytes } from '../luks/af.js';
import { cString, MAGIC_PRIMARY } from '../luks2/binary-header.js';

export const LUKS1_HEADER_SIZE = 592;
const SLOT_ENABLED = 0x00ac71f3;
const SLOT_DISABLED = 0x0000dead;
const KEYSLOTS = 8;

export interface Luks1Keyslot {
  id: number;
  iterations: number;
  salt: Buffer;
  /** Byte offset of the key material. */
  materialOffset: number;
  stripes: number;
}

export interface Luks1Header {
  cipherName: string;
  cipherMode: string;
  hashSpec: string;
  /** Data offset in bytes. */
  payloadOffset: number;
  keyBytes: number;
  mkDigest: Buffer;
  mkDigestSalt: Buffer;
  mkDigestIterations: number;
  uuid: string;
  /** Enabled keyslots only. */
  keyslots: Luks1Keyslot[];
  /** First byte after the last keyslot's key material: the header area. */
  headerEnd: number;
}

function invalid(path: string, why: string): VaultError {
  return new VaultError('headers-damaged', `the LUKS1 header of ${path} is damaged: ${why}`, 'restore a header backup with `cryptsetup luksHeaderRestore`');
}

export function parseLuks1Header(b: Buffer, path: string): Luks1Header {
  if (b.length < LUKS1_HEADER_SIZE) throw new VaultError('truncated', `${path} is too short for a LUKS1 header`);
  if (!b.subarray(0, 6).equals(MAGIC_PRIMARY) || b.readUInt16BE(6) !== 1) throw new VaultError('not-a-container', `${path} is not a LUKS1 container`);
  const keyBytes = b.readUInt32BE(108);
  if (keyBytes === 0 || keyBytes > 512) throw invalid(path, `key length ${keyBytes}`);
  const keyslots: Luks1Keyslot[] = [];
  const areas: Array<[number, number]> = [];
  for (let i = 0; i < KEYSLOTS; i++) {
    const at = 208 + 48 * i;
    const active = b.readUInt32BE(at);
    const materialOffset = b.readUInt32BE(at + 40) * 512;
    const stripes = b.readUInt32BE(at + 44);
    if (active !== SLOT_ENABLED && active !== SLOT_DISABLED) throw invalid(path, `keyslot ${i} has the unknown state 0x${active.toString(16)}`);
    // cryptsetup checks every slot's geometry, enabled or not (LUKS_check_keyslots).
    if (stripes !== AF_STRIPES) throw invalid(path, `keyslot ${i} has ${stripes} AF stripes, not ${AF_STRIPES}`);
    if (materialOffset < LUKS1_HEADER_SIZE) throw invalid(path, `keyslot ${i} key material overlaps the header`);
    areas.push([materialOffset, materialOffset + afSplitBytes(keyBytes, stripes)]);
    if (active === SLOT_ENABLED)
      keyslots.push({ id: i, iterations: b.readUInt32BE(at + 4), salt: Buffer.from(b.subarray(at + 8, at + 40)), materialOffset, stripes });
  }
  for (const [i, [s, e]] of areas.entries())
    for (const [j, [s2, e2]] of areas.entries()) if (i !== j && s < e2 && s2 < e) throw invalid(path, `keyslots ${i} and ${j} overlap`);
  const headerEnd = Math.max(...areas.map(([, e]) => e));
  const payloadOffset = b.readUInt32BE(104) * 512;
  if (payloadOffset !== 0 && payloadOffset < headerEnd) throw invalid(path, `the data offset ${payloadOffset} lies inside the keyslot area`);
  return {
    cipherName: cString(b.subarray(8, 40)),
    cipherMode: cString(b.subarray(40, 72)),
    hashSpec: cString(b.subarray(72, 104)),
    payloadOffset,
    keyBytes,
    mkDigest: Buffer.from(b.subarray(112, 132)),
    mkDigestSalt: Buffer.from(b.subarray(132, 164)),
    mkDigestIterations: b.readUInt32BE(164),
    uuid: cString(b.subarray(168, 208)),
    keyslots,
    headerEnd,
  };
}
