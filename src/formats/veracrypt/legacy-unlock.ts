/**
 * The adapter's side of TrueCrypt's legacy modes (TrueCrypt 1.0-4.3, LRW and CBC): which header
 * positions and derivations may hold one, trying a derived header key on them, and the unlocked
 * volume (key area, data area, info) of the header that opened. Rules: spec/interop.md §2.9.
 */
import { VaultError } from '../../errors.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { AES_XTS } from '../../crypto/cipher-chain.js';
import type { ContainerFile } from '../../volume/container-file.js';
import type { FormatInfo, UnlockOptions, UnlockedVolume } from '../types.js';
import type { VeraCryptInfoJson } from '../info-json.js';
import type { HeaderSlot } from './slots.js';
import { describeKdf, type KdfCandidate } from './kdf.js';
import { type LegacyHeader, legacyChainLabel, legacyDataArea, tryLegacyHeader } from './legacy-modes.js';

/** The longest legacy chain's key: 32 bytes of mode keys and 120 of cipher keys (spec §2.9). */
const LEGACY_HEADER_KEY_BYTES = 152;

/**
 * Legacy modes are tried only with TrueCrypt's derivations, without a PIM (it is ruled out before:
 * kdfCandidates gives no TrueCrypt candidate with one), on the normal header at 0 and the hidden
 * one at file size − 1536, never on system encryption or backup headers (TrueCrypt 4 had neither).
 */
export function legacyApplies(slot: HeaderSlot, k: KdfCandidate): boolean {
  if (k.flavour !== 'truecrypt' || k.kind !== 'pbkdf2' || slot.system || slot.copy !== 'primary') return false;
  return (slot.kind === 'normal' && slot.at === 0) || slot.legacy === true;
}

/** Only legacy volumes use PBKDF2-HMAC-SHA-1: no XTS header is worth trying with it. */
export function legacyOnly(k: KdfCandidate): boolean {
  return k.prf === 'sha1';
}

/** Tries the legacy chains with a derived header key (at least 152 bytes); null when none opens. */
export function tryLegacySlot(slot: HeaderSlot, key: Buffer): LegacyHeader | null {
  if (key.length < LEGACY_HEADER_KEY_BYTES) return null;
  const handle = KeyHandle.fromBytes(key.subarray(0, LEGACY_HEADER_KEY_BYTES));
  try {
    return tryLegacyHeader(slot.raw, handle);
  } finally {
    handle.dispose();
  }
}

export interface LegacyWin {
  legacy: LegacyHeader;
  slot: HeaderSlot;
  kdf: KdfCandidate;
}

/** The weaknesses `vault info` and `mount` warn about (spec/interop.md §2.9). */
export function legacyWarning(h: LegacyHeader): string {
  const label = legacyChainLabel(h.chain);
  const narrow = h.chain.ciphers.some((c) => c === 'blowfish' || c === 'cast5' || c === 'des3_ede');
  const mode = h.chain.mode === 'lrw'
    ? 'LRW is unsafe when the volume stores its own tweak key (a swap or hibernation file kept on it)'
    : 'CBC is malleable (a flipped ciphertext bit flips the next plaintext block undetected) and, when a sector is rewritten, shows up to which block it stayed the same';
  return `this is a TrueCrypt ${h.version === 1 ? '1.x-3.x' : '4.x'} volume in a legacy mode, ${label}, which TrueCrypt 5.0 abandoned: ${mode}` +
    `${narrow ? '; its 64-bit-block cipher wears out after about 32 GiB written under one key' : ''}. Copy the data into a new (XTS) volume`;
}

/**
 * The unlocked volume of a legacy header: the key is the chain's part of the 256-byte master key
 * area (mode seeds, then the ciphers' keys); `legacy` names the chain and IV numbering that the
 * data path must use instead of `cipher` (which the XTS server would apply: mount refuses it).
 */
export function legacyVolume(win: LegacyWin, o: UnlockOptions, c: ContainerFile): UnlockedVolume {
  const h = win.legacy;
  try {
    const hidden = win.slot.legacy === true;
    const area = legacyArea(c, h, hidden);
    // Whole sectors only: the archive's normal volumes end with a partial sector of nothing.
    const dataSize = Number(area.length - (area.length % 512n));
    const dataOffset = Number(area.offset);
    return {
      format: 'truecrypt',
      key: KeyHandle.fromBytes(h.keys.slice(0, h.chain.keyBytes)),
      cipher: AES_XTS,
      legacy: { chain: h.chain.name, label: legacyChainLabel(h.chain), mode: h.chain.mode, firstIvSector: area.firstIvSector },
      sectorSize: 512,
      dataOffset,
      dataSize,
      firstTweak: area.firstIvSector,
      tweakStep: 1n,
      uuid: null,
      warnings: [legacyWarning(h)],
      info: describeLegacy(win, o, dataOffset, dataSize, area.firstIvSector),
    };
  } finally {
    h.decrypted.fill(0);
  }
}

/** The data area, or an error naming the header's impossible hidden-volume size. */
function legacyArea(c: ContainerFile, h: LegacyHeader, hidden: boolean): ReturnType<typeof legacyDataArea> {
  try {
    return legacyDataArea(BigInt(c.size), h, hidden);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new VaultError('invalid-field', `the TrueCrypt hidden-volume header of ${c.path} describes an impossible volume: hidden size ${h.hiddenVolumeSize} in a ${c.size}-byte file`, 'the header or the file is damaged (a truncated copy?)');
  }
}

const MODE_JSON = { lrw: 'lrw', cbc: 'cbc', 'cbc-outer': 'outer-cbc' } as const;

function describeLegacy(win: LegacyWin, o: UnlockOptions, dataOffset: number, dataSize: number, firstIv: bigint): FormatInfo {
  const h = win.legacy;
  const mode = h.chain.mode === 'cbc' && h.chain.ciphers.length > 1 ? 'inner-cbc' : MODE_JSON[h.chain.mode];
  const required = `${h.requiredProgramVersion >> 8}.${(h.requiredProgramVersion & 0xff).toString(16).padStart(2, '0')}`;
  const kind = win.slot.legacy ? 'hidden' : 'normal';
  const json: VeraCryptInfoJson = {
    format: 'truecrypt',
    uuid: null,
    volumeType: kind,
    header: { copy: 'primary', version: h.version, requiredProgramVersion: required },
    kdf: { type: 'pbkdf2', hash: win.kdf.kind === 'pbkdf2' ? win.kdf.digest : 'sha512', iterations: win.kdf.iterations },
    pim: o.pim ?? 0,
    cipher: h.chain.name,
    algorithm: legacyChainLabel(h.chain).replace(/ \(.*\)$/, ''),
    mode,
    sectorSize: 512,
    dataOffset,
    dataSize,
    firstDataUnit: Number(firstIv),
  };
  const iv = h.chain.mode === 'lrw' ? `LRW sector index from ${firstIv}` : `CBC IV sector numbers from ${firstIv}`;
  return {
    format: 'truecrypt',
    fields: [
      ['format', `TrueCrypt (before 5.0), header version ${h.version} (needs version ${required})`],
      ['volume', `${kind}, opened with the header at byte ${win.slot.at}`],
      ['kdf', describeKdf(win.kdf)],
      ['cipher', `${legacyChainLabel(h.chain)}: legacy mode ${mode} (chain ${h.chain.name}), 512-byte sectors, ${iv}`],
      ['data', `offset ${dataOffset}, size ${dataSize}`],
    ],
    json,
  };
}
