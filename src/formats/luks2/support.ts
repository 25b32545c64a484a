/**
 * What of a valid LUKS2 header vault can use: the data segment, the keyslots and their digest,
 * checked against vault's allowlists. Everything here runs before any key derivation, so an
 * unsupported or hostile parameter is refused without spending a second on it.
 */
import { VaultError } from '../../errors.js';
import { AF_STRIPES, afSplitBytes, LUKS_HASHES, type LuksHash } from '../luks/af.js';
import { decodeBase64 } from '../luks/base64.js';
import { checkLuksKdfBounds, type LuksKdf } from '../luks/kdf.js';
import type { AfKeyslot } from '../luks/keyslot.js';
import type { Luks2Digest, Luks2Keyslot, Luks2Metadata, Luks2Segment } from './metadata.js';
import { quote } from '../luks/quote.js';
import { parseDmCipher, parseDmSpec, withKeyLength, type DmCipher, type DmSpec } from '../luks/dm-cipher.js';

const SALT_LENGTH = 32;
const U64_MAX = (1n << 64n) - 1n;

export interface DataSegment {
  offset: bigint;
  size: bigint | null;
  sectorSize: 512 | 4096;
  ivTweak: bigint;
  /** The data cipher (src/formats/luks/dm-cipher.ts); its key length is the keyslots' key_size. */
  encryption: DmSpec;
}

function unsupported(message: string, hint?: string): VaultError {
  return new VaultError('unsupported-feature', message, hint);
}

/** The single crypt segment, or a clear refusal (requirements, reencryption, cipher, sector size). */
export function dataSegment(m: Luks2Metadata): DataSegment {
  const reqs = m.config.requirements;
  if (reqs.length > 0) {
    const reencrypt = reqs.some((r) => r.includes('reencrypt'));
    throw unsupported(
      reencrypt
        ? `the LUKS2 header has a reencryption in progress (requirement ${reqs.join(', ')}); vault cannot open it`
        : `the LUKS2 header requires ${reqs.map((r) => quote(r)).join(', ')}, which vault does not know`,
      reencrypt ? 'finish or abort the reencryption with cryptsetup first' : undefined,
    );
  }
  if (m.segments.length !== 1)
    throw unsupported(`the LUKS2 header has ${m.segments.length} segments (a reencryption in progress?); vault opens only one`, 'finish the reencryption with cryptsetup first');
  const s: Luks2Segment = m.segments[0]!;
  if (s.crypt === null) throw unsupported(`the LUKS2 data segment has type ${quote(s.type)}; vault opens only "crypt"`);
  const { encryption, sectorSize, integrity, ivTweak } = s.crypt;
  if (encryption === 'cipher_null' || encryption.startsWith('cipher_null-'))
    throw unsupported('the LUKS2 data segment is not encrypted (cipher_null); vault refuses it');
  const spec = parseDmSpec('LUKS2', encryption);
  if (integrity !== null) throw unsupported(`the LUKS2 data segment uses integrity protection (${quote(integrity)}); vault does not support it`);
  if (sectorSize !== 512 && sectorSize !== 4096) throw unsupported(`the LUKS2 sector size ${sectorSize} is not supported; vault opens 512 and 4096`);
  return { offset: s.offset, size: s.size, sectorSize, ivTweak, encryption: spec };
}

/** The digest of keyslot `k` that also covers segment 0 (LUKS2_digest_by_keyslot + for segment). */
function digestFor(m: Luks2Metadata, slotId: number): Luks2Digest | undefined {
  return m.digests.find((d) => d.keyslots.includes(slotId) && d.segments.includes(0));
}

export interface PbkdfDigest {
  hash: LuksHash;
  iterations: number;
  salt: Buffer;
  digest: Buffer;
}

function hashName(h: string | undefined, what: string): LuksHash {
  if (!LUKS_HASHES.includes(h as LuksHash)) throw unsupported(`${what}: hash ${quote(String(h))} is not supported (sha1, sha256, sha512)`);
  return h as LuksHash;
}

function smallInt(v: bigint | undefined, what: string): number {
  // Bounds proper are checked by checkLuksKdfBounds; this only keeps the value a safe integer.
  if (v === undefined || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new VaultError('kdf-bounds', `${what} is out of range`);
  return Number(v);
}

function pbkdf2Digest(d: Luks2Digest, what: string): PbkdfDigest {
  if (d.type !== 'pbkdf2') throw unsupported(`${what} has type ${quote(d.type)}; vault checks only "pbkdf2" digests`);
  const salt = d.salt === null ? null : decodeBase64(d.salt);
  const digest = d.digest === null ? null : decodeBase64(d.digest);
  if (!salt || salt.length === 0 || salt.length > 64) throw new VaultError('invalid-field', `${what}: missing or bad salt`);
  if (!digest || digest.length < 16 || digest.length > 64) throw new VaultError('invalid-field', `${what}: missing or bad digest value`);
  if (d.iterations === null) throw new VaultError('invalid-field', `${what}: missing iteration count`);
  const r: PbkdfDigest = { hash: hashName(d.hash ?? undefined, what), iterations: smallInt(d.iterations, `${what} iterations`), salt, digest };
  checkLuksKdfBounds({ type: 'pbkdf2', hash: r.hash, iterations: r.iterations, salt }, what);
  return r;
}

export interface UsableKeyslot {
  id: number;
  priority: number;
  slot: AfKeyslot;
  digest: PbkdfDigest;
  /** The data segment's cipher with this keyslot's volume key length. */
  segmentCipher: DmCipher;
}

/** Checks one luks2 keyslot fully (KDF bounds included); throws what makes it unusable. */
export function usableKeyslot(m: Luks2Metadata, k: Luks2Keyslot, segment: DmSpec): UsableKeyslot {
  const what = `keyslot ${k.id}`;
  if (k.type !== 'luks2' || k.kdf === null || k.af === null) throw unsupported(`${what} has type ${quote(k.type)}, which vault cannot open`);
  const segmentCipher = withKeyLength(segment, k.keySize);
  const d = digestFor(m, k.id);
  if (!d) throw unsupported(`${what} does not unlock the data segment`);
  const digest = pbkdf2Digest(d, `digest ${d.id}`);
  if (k.af.stripes !== BigInt(AF_STRIPES)) throw unsupported(`${what} has ${k.af.stripes} AF stripes; LUKS uses ${AF_STRIPES}`);
  const afHash = hashName(k.af.hash, `${what} AF`);
  if (k.area.encryption === null || k.area.keySize === null) throw unsupported(`${what} area has no cipher (type ${quote(k.area.type)}); vault opens "raw" areas`);
  const area = parseDmCipher('LUKS2', k.area.encryption, k.area.keySize);
  if (k.area.size < BigInt(afSplitBytes(k.keySize))) throw new VaultError('invalid-field', `${what} area is smaller than its key material`);
  const kdfType = k.kdf.type;
  if (kdfType !== 'pbkdf2' && kdfType !== 'argon2i' && kdfType !== 'argon2id')
    throw unsupported(`${what} uses the KDF ${quote(kdfType)}, which vault does not support`);
  const salt = decodeBase64(k.kdf.salt);
  if (!salt || salt.length !== SALT_LENGTH) throw new VaultError('invalid-field', `${what}: the KDF salt is not ${SALT_LENGTH} bytes of base64`);
  let kdf: LuksKdf;
  if (kdfType === 'pbkdf2') {
    kdf = { type: 'pbkdf2', hash: hashName(k.kdf.hash, `${what} PBKDF2`), iterations: smallInt(k.kdf.iterations, `${what} iterations`), salt };
  } else {
    kdf = {
      type: kdfType,
      time: smallInt(k.kdf.time, `${what} Argon2 time`),
      memoryKiB: smallInt(k.kdf.memory, `${what} Argon2 memory`),
      cpus: smallInt(k.kdf.cpus, `${what} Argon2 threads`),
      salt,
    };
  }
  checkLuksKdfBounds(kdf, what);
  const areaOffset = k.area.offset;
  if (areaOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw new VaultError('invalid-field', `${what} area offset is out of range`);
  return { id: k.id, priority: k.priority, slot: { name: what, kdf, areaOffset: Number(areaOffset), keyLength: k.keySize, afHash, area }, digest, segmentCipher };
}

/**
 * The keyslots to try, in cryptsetup's order: priority 2 (prefer) before 1 (normal), by id; 0
 * (ignore) only when named with `only`. Unusable keyslots are skipped with a warning, unless
 * nothing usable is left, or the one named is unusable: then its reason is the error.
 */
export function keyslotsToTry(m: Luks2Metadata, only: number | undefined, warnings: string[]): UsableKeyslot[] {
  const segment = dataSegment(m).encryption;
  if (only !== undefined) {
    const k = m.keyslots.find((s) => s.id === only);
    if (!k) throw new VaultError('no-keyslot', `keyslot ${only} is not active`);
    return [usableKeyslot(m, k, segment)];
  }
  const candidates = m.keyslots.filter((k) => k.priority > 0 && k.type === 'luks2').sort((a, b) => b.priority - a.priority || a.id - b.id);
  if (candidates.length === 0) throw new VaultError('no-keyslot', 'the LUKS2 header has no keyslot to try');
  const usable: UsableKeyslot[] = [];
  let firstError: unknown = null;
  for (const k of candidates) {
    try {
      usable.push(usableKeyslot(m, k, segment));
    } catch (e) {
      if (!(e instanceof VaultError)) throw e;
      firstError ??= e;
      warnings.push(`skipped ${e.message}`);
    }
  }
  if (usable.length === 0) throw firstError;
  return usable;
}

/** Tweak of the last 512-byte unit must stay below 2^64 (the XTS tweak is a u64 sector number). */
export function checkTweakRange(ivTweak: bigint, dataSize: bigint): void {
  if (ivTweak + dataSize / 512n - 1n > U64_MAX) throw unsupported('the LUKS2 iv_tweak leaves no room for the data size in a 64-bit sector number');
}
