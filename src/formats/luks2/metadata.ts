/**
 * LUKS2 JSON metadata: validated the way cryptsetup's LUKS2_hdr_validate() does
 * (lib/luks2/luks2_json_metadata.c, luks2_keyslot.c, luks2_keyslot_luks2.c), into typed values.
 *
 * This decides only whether the metadata is well formed, as cryptsetup would: a header that passes
 * here may still use things vault does not support (ciphers, KDFs, reencryption); those are refused
 * at unlock with their own message, and `vault info` can still show them.
 *
 * Sizes and offsets are decimal strings in the JSON so that they can hold any u64; they stay bigint.
 */
import type { JsonValue, JsonType } from '../luks/json.js';
import { BIN_HEADER_SIZE, METADATA_SIZES } from './binary-header.js';
import { quote } from '../luks/quote.js';

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = (1n << 32n) - 1n;
const MAX_KEYSLOTS_SIZE = 0x8000000n; // 128 MiB (LUKS2_MAX_KEYSLOTS_SIZE)

/**
 * How many entries each section may hold. The JSON area (up to 4 MiB) has room for tens of
 * thousands of tiny entries, and every later step (overlap checks, digest lookups, one KDF per
 * keyslot) grows with their number: 48 000 keyslots took 27 s per header copy before any passphrase
 * was asked. cryptsetup never makes more than LUKS2_KEYSLOTS_MAX (32) keyslots or LUKS2_TOKENS_MAX
 * (32) tokens, and a reencryption uses at most 3 segments and 2 digests, so 32 of each leaves room.
 * Checked on the member count, before any entry is looked at.
 */
export const LUKS2_LIMITS = { keyslot: 32, token: 32, segment: 32, digest: 32 } as const;

/** The same limits by section name, for the JSON reader to stop at the first entry too many. */
export const LUKS2_SECTION_LIMITS = Object.fromEntries(Object.entries(LUKS2_LIMITS).map(([k, v]) => [`${k}s`, v]));

export interface Luks2Kdf {
  type: string;
  /** pbkdf2 */
  hash?: string;
  iterations?: bigint;
  /** argon2i / argon2id */
  time?: bigint;
  memory?: bigint;
  cpus?: bigint;
  salt: string;
}

export interface Luks2Keyslot {
  id: number;
  type: string;
  keySize: number;
  /** 0 ignore, 1 normal (also when absent), 2 prefer. */
  priority: number;
  area: { type: string; offset: bigint; size: bigint; encryption: string | null; keySize: number | null };
  /** Present for type "luks2". */
  kdf: Luks2Kdf | null;
  af: { type: string; hash: string; stripes: bigint } | null;
}

export interface Luks2Segment {
  id: number;
  type: string;
  offset: bigint;
  /** null = "dynamic": up to the end of the device. */
  size: bigint | null;
  flags: string[];
  /** Present for type "crypt". */
  crypt: { ivTweak: bigint; encryption: string; sectorSize: number; integrity: string | null } | null;
}

export interface Luks2Digest {
  id: number;
  type: string;
  keyslots: number[];
  segments: number[];
  /**
   * The pbkdf2 members, each null when missing or of the wrong type: cryptsetup checks them only
   * when it uses the digest, so a header is not invalid for them; vault refuses them at unlock.
   */
  hash: string | null;
  iterations: bigint | null;
  salt: string | null;
  digest: string | null;
}

export interface Luks2Metadata {
  keyslots: Luks2Keyslot[];
  segments: Luks2Segment[];
  digests: Luks2Digest[];
  tokenCount: number;
  /** The tokens, with all their members: a token's type says what the others mean (src/token/systemd-fido2.ts). */
  tokens: Luks2Token[];
  config: { jsonSize: bigint; keyslotsSize: bigint; flags: string[]; requirements: string[] };
}

export interface Luks2Token {
  id: number;
  type: string;
  keyslots: number[];
  members: Map<string, JsonValue>;
}

/** Thrown with the rule that failed; the reader turns it into a VaultError naming the copy. */
export class MetadataError extends Error {}

function fail(msg: string): never {
  throw new MetadataError(msg);
}

type Obj = Map<string, JsonValue>;

function typed<T extends JsonType>(v: JsonValue | undefined, t: T, what: string): Extract<JsonValue, { t: T }> {
  if (v === undefined) fail(`${what} is missing`);
  if (v.t !== t) fail(`${what} is not of type ${t}`);
  return v as Extract<JsonValue, { t: T }>;
}
const obj = (o: Obj, key: string, what: string): Obj => typed(o.get(key), 'object', `${what} "${key}"`).v;
const str = (o: Obj, key: string, what: string): string => typed(o.get(key), 'string', `${what} "${key}"`).v;
const int = (o: Obj, key: string, what: string): bigint => typed(o.get(key), 'int', `${what} "${key}"`).v;
const arr = (o: Obj, key: string, what: string): JsonValue[] => typed(o.get(key), 'array', `${what} "${key}"`).v;

/** Members cryptsetup reads only when it uses them: null when missing or of another type. */
const optStr = (o: Obj, key: string): string | null => {
  const v = o.get(key);
  return v?.t === 'string' ? v.v : null;
};
const optInt = (o: Obj, key: string): bigint | null => {
  const v = o.get(key);
  return v?.t === 'int' ? v.v : null;
};

function u32(o: Obj, key: string, what: string): number {
  const v = int(o, key, what);
  if (v < 0n || v > U32_MAX) fail(`${what} "${key}" ${v} is not a u32`);
  return Number(v);
}

/** A decimal string holding a u64: digits only (no sign, no space), no overflow (json_str_to_uint64). */
function u64String(s: string, what: string): bigint {
  if (!/^[0-9]+$/.test(s)) fail(`${what} ${quote(s)} is not a decimal number`);
  const v = BigInt(s);
  if (v > U64_MAX) fail(`${what} ${s.slice(0, 30)} overflows 64 bits`);
  return v;
}
const u64 = (o: Obj, key: string, what: string): bigint => u64String(str(o, key, what), `${what} "${key}"`);

/** Object keys of keyslots, segments, digests, tokens are decimal numbers. */
function numberedEntries(o: Obj, what: string): [number, Obj][] {
  return [...o].map(([k, v]) => {
    if (!/^[0-9]{1,9}$/.test(k)) fail(`${what} key ${quote(k)} is not a number`);
    return [Number(k), typed(v, 'object', `${what} ${k}`).v];
  });
}

function stringArray(v: JsonValue[], what: string): string[] {
  return v.map((e) => typed(e, 'string', `${what} element`).v);
}

/**
 * An array of references ("0", "1") to members of `target`. Never longer than the section it
 * points into may be (a longer one must repeat itself), so that lookups in it stay cheap.
 */
function references(o: Obj, key: string, what: string, target: Obj, targetName: keyof typeof LUKS2_LIMITS): number[] {
  const refs = arr(o, key, what);
  if (refs.length > LUKS2_LIMITS[targetName]) fail(`${what} "${key}": ${refs.length} ${targetName}s, more than the ${LUKS2_LIMITS[targetName]} allowed`);
  return stringArray(refs, `${what} "${key}"`).map((ref) => {
    if (!target.has(ref) || target.get(ref)!.t !== 'object') fail(`${what} references missing ${targetName} ${quote(ref)}`);
    return Number(ref);
  });
}

interface Interval {
  offset: bigint;
  length: bigint;
}

/** Validates the whole metadata object. `jsonAreaSize` is hdr_size − 4096 from the binary header. */
export function validateMetadata(root: JsonValue, jsonAreaSize: number): Luks2Metadata {
  const top = typed(root, 'object', 'the JSON metadata').v;
  for (const s of ['keyslots', 'tokens', 'segments', 'digests', 'config']) obj(top, s, 'section');
  // Counts first: everything after this grows with them.
  for (const [what, max] of Object.entries(LUKS2_LIMITS)) {
    const n = obj(top, `${what}s`, 'section').size;
    if (n > max) fail(`${what}s: ${n}, more than the ${max} allowed`);
  }
  const keyslotsObj = obj(top, 'keyslots', 'section');
  const segmentsObj = obj(top, 'segments', 'section');

  // tokens (hdr_validate_tokens): type string, keyslots referencing existing keyslots.
  const tokens: Luks2Token[] = numberedEntries(obj(top, 'tokens', 'section'), 'token').map(([id, t]) => ({
    id,
    type: str(t, 'type', `token ${id}`),
    keyslots: references(t, 'keyslots', `token ${id}`, keyslotsObj, 'keyslot'),
    members: t,
  }));

  // digests (hdr_validate_digests)
  const digests: Luks2Digest[] = numberedEntries(obj(top, 'digests', 'section'), 'digest').map(([id, d]) => ({
    id,
    type: str(d, 'type', `digest ${id}`),
    keyslots: references(d, 'keyslots', `digest ${id}`, keyslotsObj, 'keyslot'),
    segments: references(d, 'segments', `digest ${id}`, segmentsObj, 'segment'),
    hash: optStr(d, 'hash'),
    iterations: optInt(d, 'iterations'),
    salt: optStr(d, 'salt'),
    digest: optStr(d, 'digest'),
  }));

  const segments = validateSegments(segmentsObj, digests);
  const keyslots = numberedEntries(keyslotsObj, 'keyslot').map(([id, k]) => validateKeyslot(id, k, digests));
  const config = validateConfig(obj(top, 'config', 'section'), segments);

  // keyslot areas (hdr_validate_areas): inside the keyslots area, after both metadata copies, disjoint.
  const metadataSize = config.jsonSize + BigInt(BIN_HEADER_SIZE);
  const areasEnd = 2n * metadataSize + config.keyslotsSize;
  const areas = keyslots.map((k) => ({ offset: k.area.offset, length: k.area.size }));
  for (const [i, a] of areas.entries()) {
    if (a.offset < 2n * metadataSize) fail(`keyslot ${keyslots[i]!.id} area at ${a.offset} lies inside the metadata`);
    if (a.length === 0n) fail(`keyslot ${keyslots[i]!.id} area is empty`);
    if (a.offset + a.length > areasEnd) fail(`keyslot ${keyslots[i]!.id} area ends beyond the keyslots area (${areasEnd})`);
  }
  checkDisjoint(areas, (i, j) => `keyslot areas ${keyslots[i]!.id} and ${keyslots[j]!.id} overlap`);

  // json size (hdr_validate_json_size)
  if (config.jsonSize !== BigInt(jsonAreaSize)) fail(`config json_size ${config.jsonSize} differs from the binary header's ${jsonAreaSize}`);

  return { keyslots, segments, digests, tokenCount: tokens.length, tokens, config };
}

/** validate_intervals(): no interval may start inside another (a zero length never matches). */
function checkDisjoint(ix: Interval[], message: (i: number, j: number) => string): void {
  for (let i = 0; i < ix.length; i++)
    for (let j = 0; j < ix.length; j++)
      if (i !== j && ix[i]!.offset >= ix[j]!.offset && ix[i]!.offset < ix[j]!.offset + ix[j]!.length) fail(message(i, j));
}

function validateSegments(segmentsObj: Obj, digests: Luks2Digest[]): Luks2Segment[] {
  const entries = numberedEntries(segmentsObj, 'segment');
  if (entries.length === 0) fail('there is no segment');
  const segments = entries.map(([id, s]): Luks2Segment => {
    const what = `segment ${id}`;
    const type = str(s, 'type', what);
    const offset = u64(s, 'offset', what);
    const sizeText = str(s, 'size', what);
    const size = sizeText === 'dynamic' ? null : u64String(sizeText, `${what} size`);
    if (size === 0n) fail(`${what} has size 0`);
    if (offset % 512n !== 0n || (size ?? 0n) % 512n !== 0n) fail(`${what} offset or size is not a multiple of 512`);
    const flags = s.has('flags') ? stringArray(arr(s, 'flags', what), `${what} flags`) : [];
    let crypt: Luks2Segment['crypt'] = null;
    if (type === 'crypt') {
      const ivTweak = u64(s, 'iv_tweak', what);
      const encryption = str(s, 'encryption', what);
      const sectorSize = u32(s, 'sector_size', what);
      let integrity: string | null = null;
      if (s.has('integrity')) {
        const i = obj(s, 'integrity', what);
        integrity = str(i, 'type', `${what} integrity`);
        str(i, 'journal_encryption', `${what} integrity`);
        str(i, 'journal_integrity', `${what} integrity`);
      }
      if (sectorSize === 0 || sectorSize % 512 !== 0) fail(`${what} sector_size ${sectorSize} is not a positive multiple of 512`);
      if ((size ?? 0n) % BigInt(sectorSize) !== 0n) fail(`${what} size is not a multiple of its sector size`);
      if (!digests.some((d) => d.segments.includes(id))) fail(`${what} has no digest`);
      crypt = { ivTweak, encryption, sectorSize, integrity };
    }
    return { id, type, offset, size, flags, crypt };
  });
  segments.sort((a, b) => a.id - b.id);
  // Regular segments first, then backup segments (reencryption); ids without gaps.
  const isBackup = (s: Luks2Segment) => s.flags.some((f) => f.startsWith('backup-'));
  const firstBackup = segments.findIndex(isBackup);
  const regular = firstBackup < 0 ? segments.length : firstBackup;
  if (regular === 0) fail('there is no regular segment');
  segments.forEach((s, i) => {
    if (s.id !== i) fail(`segment ids have a gap at ${i}`);
    if (i >= regular && !isBackup(s)) fail(`regular segment ${i} follows a backup segment`);
  });
  const ix = segments.slice(0, regular).map((s) => ({ offset: s.offset, length: s.size ?? U64_MAX + 1n }));
  ix.forEach((x, i) => {
    if (x.length > U64_MAX && i !== regular - 1) fail('only the last regular segment may have a dynamic size');
  });
  checkDisjoint(ix, (i, j) => `segments ${i} and ${j} overlap`);
  return segments;
}

function validateKeyslot(id: number, k: Obj, digests: Luks2Digest[]): Luks2Keyslot {
  const what = `keyslot ${id}`;
  const type = str(k, 'type', what);
  const keySize = u32(k, 'key_size', what);
  // The area (hdr_validate_areas) is required of every keyslot type.
  const a = obj(k, 'area', what);
  const area = {
    type: str(a, 'type', `${what} area`),
    offset: u64(a, 'offset', `${what} area`),
    size: u64(a, 'size', `${what} area`),
    encryption: null as string | null,
    keySize: null as number | null,
  };
  // cryptsetup does not validate "priority" (LUKS2_keyslot_priority_get reads it as an int and
  // tries only 2 and 1); anything but the integers 1 and 2 therefore means "never tried unasked".
  const p = k.get('priority');
  const priority = p === undefined ? 1 : p.t === 'int' && (p.v === 1n || p.v === 2n) ? Number(p.v) : 0;
  if (type !== 'luks2') return { id, type, keySize, priority, area, kdf: null, af: null };

  // luks2_keyslot_validate()
  const kdfObj = obj(k, 'kdf', what);
  const afObj = obj(k, 'af', what);
  const kdfType = str(kdfObj, 'type', `${what} kdf`);
  let kdf: Luks2Kdf;
  // Members beyond the type's set are dropped, as cryptsetup's luks2_keyslot_repair() does for
  // the leftovers early 2.0 releases wrote when a keyslot changed KDF type.
  if (kdfType === 'pbkdf2') {
    kdf = { type: kdfType, hash: str(kdfObj, 'hash', `${what} kdf`), iterations: int(kdfObj, 'iterations', `${what} kdf`), salt: str(kdfObj, 'salt', `${what} kdf`) };
  } else if (kdfType === 'argon2i' || kdfType === 'argon2id') {
    kdf = {
      type: kdfType,
      time: int(kdfObj, 'time', `${what} kdf`),
      memory: int(kdfObj, 'memory', `${what} kdf`),
      cpus: int(kdfObj, 'cpus', `${what} kdf`),
      salt: str(kdfObj, 'salt', `${what} kdf`),
    };
  } else {
    kdf = { type: kdfType, salt: '' };
  }
  const afType = str(afObj, 'type', `${what} af`);
  if (afType !== 'luks1') fail(`${what} af type ${quote(afType)} is not "luks1"`);
  const af = { type: afType, hash: str(afObj, 'hash', `${what} af`), stripes: int(afObj, 'stripes', `${what} af`) };
  if (area.type !== 'raw') fail(`${what} area type ${quote(area.type)} is not "raw"`);
  area.encryption = str(a, 'encryption', `${what} area`);
  area.keySize = u32(a, 'key_size', `${what} area`);
  // LUKS2_keyslots_validate(): a luks2 keyslot belongs to exactly one digest.
  const count = digests.filter((d) => d.keyslots.includes(id)).length;
  if (count !== 1) fail(`${what} is assigned to ${count} digests, not exactly 1`);
  return { id, type, keySize, priority, area, kdf, af };
}

function validateConfig(c: Obj, segments: Luks2Segment[]): Luks2Metadata['config'] {
  const jsonSize = u64(c, 'json_size', 'config');
  const keyslotsSize = u64(c, 'keyslots_size', 'config');
  const metadataSize = jsonSize + BigInt(BIN_HEADER_SIZE);
  if (!METADATA_SIZES.some((m) => BigInt(m) === metadataSize)) fail(`unsupported metadata size ${metadataSize}`);
  if (keyslotsSize % 4096n !== 0n || keyslotsSize > MAX_KEYSLOTS_SIZE) fail(`unsupported keyslots_size ${keyslotsSize}`);
  // The keyslots area must fit between both metadata copies and the first data segment
  // (a segment at offset 0 means a detached header).
  const firstData = segments.reduce((m, s) => (s.offset < m ? s.offset : m), U64_MAX);
  if (firstData !== 0n && (firstData < keyslotsSize || firstData - keyslotsSize < 2n * metadataSize))
    fail(`keyslots_size ${keyslotsSize} does not fit before the data offset ${firstData}`);
  const flags = c.has('flags') ? stringArray(arr(c, 'flags', 'config'), 'config flags') : [];
  let requirements: string[] = [];
  if (c.has('requirements')) {
    const r = obj(c, 'requirements', 'config');
    if (r.has('mandatory')) requirements = stringArray(arr(r, 'mandatory', 'config requirements'), 'config requirements mandatory');
  }
  return { jsonSize, keyslotsSize, flags, requirements };
}
