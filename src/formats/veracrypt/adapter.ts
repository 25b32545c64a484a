/**
 * VeraCrypt and TrueCrypt volumes: unlock by trying every supported KDF on the candidate headers
 * at once, and yield the data area with VeraCrypt's own offsets and tweaks, so that what vault
 * writes stays readable by VeraCrypt.
 *
 * Their headers are indistinguishable from random bytes, so this adapter never claims a file by
 * magic: the registry falls back to it (src/formats/index.ts).
 */
import { availableParallelism } from 'node:os';
import { VaultError, isVaultError } from '../../errors.js';
import { secretCopy } from '../../crypto/wipe.js';
import { KeyHandle } from '../../crypto/key-handle.js';
import { readAtSync } from '../../volume/fd-io.js';
import type { ContainerFile } from '../../volume/container-file.js';
import type { FormatAdapter, FormatInfo, UnlockOptions, UnlockSecret, UnlockedVolume } from '../types.js';
import type { VeraCryptInfoJson } from '../info-json.js';
import {
  BACKUP_HIDDEN_FROM_END, BACKUP_NORMAL_FROM_END, DATA_UNIT, HEADER_SIZE, HIDDEN_HEADER_OFFSET, LEGACY_HIDDEN_FROM_END, SALT_SIZE,
  SYSTEM_HEADER_OFFSET, bcd, decryptHeader, headerMagic, label, parseHeader, type HeaderKind, type VcHeader,
} from './header.js';
import {
  XTS_KEY_BYTES, cascadeWorthDeriving, deriveHeaderKey, describeKdf, describeTried, kdfCandidates, type Flavour, type KdfCandidate,
} from './kdf.js';
import { KEYFILE_MAX_READ, mixKeyfiles } from './keyfiles.js';
import { unsupportedCipher } from './cipher-probe.js';

/** The smallest file VeraCrypt (and TrueCrypt 6, 7) makes holds four 64 KiB header areas, two at each end. */
const MIN_VOLUME_FILE = 4 * 65536 + DATA_UNIT;
/** TrueCrypt 5.x (header version 3) wrote just the header before the data: a header and one unit. */
const MIN_LEGACY_FILE = HEADER_SIZE + DATA_UNIT;

interface HeaderSlot {
  kind: HeaderKind;
  copy: 'primary' | 'backup';
  /** Byte offset of the header in the file. */
  at: number;
  /** TrueCrypt 5.x's hidden-volume header near the end: only TrueCrypt's derivations apply. */
  legacy?: boolean;
  /** The boot-track header of system encryption (`--system`). */
  system?: boolean;
  raw: Buffer;
}

type Outcome =
  | { ok: true; header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }
  | { ok: false; error: VaultError | null; skipped?: string };

/**
 * Could this file be a VeraCrypt/TrueCrypt volume? VeraCrypt fills the hidden-header area with
 * random bytes on every volume, so 512 zero bytes there (vault's zero padding) rule it out. A
 * file too small for that (TrueCrypt 5.x made volumes of a header and the data) is claimed when
 * its first 512 bytes look random, as a salt and an encrypted header do.
 */
function claims(c: ContainerFile): boolean {
  if (c.size >= MIN_VOLUME_FILE) return !readAtSync(c.fd, HEADER_SIZE, HIDDEN_HEADER_OFFSET).every((b) => b === 0);
  return c.size >= MIN_LEGACY_FILE && looksRandom(readAtSync(c.fd, HEADER_SIZE, 0));
}

/**
 * 512 random bytes hold about 221 distinct values (σ ≈ 5); text, zeros and structured data far
 * fewer. The threshold is 20 σ below, so a real header is never refused.
 */
export function looksRandom(b: Buffer): boolean {
  return new Set(b).size >= 120;
}

/**
 * The headers to try: the normal and hidden ones at the start (and TrueCrypt 5.x's hidden one near
 * the end), `--hidden` only the hidden ones, `--use-backup-header` the copies at the end,
 * `--system` the boot-track header. Headers that would lie outside the file are left out.
 */
function headerSlots(c: ContainerFile, o: UnlockOptions): HeaderSlot[] {
  const at = (kind: HeaderKind, copy: 'primary' | 'backup', offset: number, extra: Partial<HeaderSlot> = {}): HeaderSlot[] =>
    offset >= 0 && offset + HEADER_SIZE <= c.size ? [{ kind, copy, at: offset, ...extra, raw: readAtSync(c.fd, HEADER_SIZE, offset) }] : [];
  if (o.system) {
    if (o.hidden || o.useBackupHeader) throw new VaultError('usage', '--system opens the boot-track header only: --hidden and --use-backup-header do not apply');
    const s = at('normal', 'primary', SYSTEM_HEADER_OFFSET, { system: true });
    if (!s.length) throw new VaultError('not-a-container', `${c.path} is too small to hold a system-encryption header (at byte ${SYSTEM_HEADER_OFFSET} of the drive)`, 'give the whole drive or its image, not a partition');
    return s;
  }
  if (c.size < MIN_LEGACY_FILE)
    throw new VaultError('not-a-container', `${c.path} is too small (${c.size} bytes) to be a VeraCrypt or TrueCrypt volume: it needs at least a ${HEADER_SIZE}-byte header and one ${DATA_UNIT}-byte sector`);
  const slots = o.useBackupHeader
    ? [...at('normal', 'backup', c.size - BACKUP_NORMAL_FROM_END), ...at('hidden', 'backup', c.size - BACKUP_HIDDEN_FROM_END)]
    : [
        ...at('normal', 'primary', 0),
        ...at('hidden', 'primary', HIDDEN_HEADER_OFFSET),
        ...at('hidden', 'primary', c.size - LEGACY_HIDDEN_FROM_END, { legacy: true }),
      ];
  if (o.useBackupHeader && slots.length === 0)
    throw new VaultError('not-a-container', `${c.path} is too small to hold backup headers (TrueCrypt before 6.0 wrote none)`, 'open it without --use-backup-header');
  return o.hidden ? slots.filter((s) => s.kind === 'hidden') : slots;
}

/** Which derivations a header position can have been made with. */
function applies(slot: HeaderSlot, k: KdfCandidate): boolean {
  return !slot.legacy || k.flavour === 'truecrypt';
}

/**
 * Derives one header key and tries it: AES-256-XTS, then, if that fails, every other VeraCrypt
 * algorithm the key is long enough for, to name it (`full`: derive the 192 bytes cascades need).
 * Owns (and wipes) its copy of the password.
 */
async function attempt(slot: HeaderSlot, kdf: KdfCandidate, password: Buffer, full: boolean): Promise<Outcome> {
  let key: Buffer;
  try {
    key = await deriveHeaderKey(kdf, password, slot.raw.subarray(0, SALT_SIZE), full);
  } catch (e) {
    // A digest this OpenSSL lacks, or memory Argon2id could not get: that derivation is not tried.
    return { ok: false, error: null, skipped: `${kdf.label} (${(e as Error).message})` };
  } finally {
    password.fill(0);
  }
  let plain: Buffer | null = null;
  try {
    try {
      plain = decryptHeader(slot.raw, key.subarray(0, XTS_KEY_BYTES));
    } catch {
      return { ok: false, error: null }; // e.g. a derived key with equal halves, which XTS refuses
    }
    if (!headerMagic(plain)) {
      const other = unsupportedCipher(slot.raw, key);
      if (!other) return { ok: false, error: null };
      return {
        ok: false,
        error: new VaultError(
          'unsupported-feature',
          `the ${slot.kind} volume is encrypted with ${other}, which vault does not support (AES-256-XTS only)`,
          'the password is right; open it with VeraCrypt, or copy its files to an AES volume',
        ),
      };
    }
    try {
      return { ok: true, header: parseHeader(plain, slot.kind, slot.system), slot, kdf };
    } catch (e) {
      if (!isVaultError(e)) throw e;
      return { ok: false, error: e };
    }
  } finally {
    key.fill(0);
    plain?.fill(0);
  }
}

/**
 * Runs the attempts `width` at a time (one per core: more only queue on the threadpool and, for
 * Argon2id, hold hundreds of MiB each) in the given order, and stops starting new ones once one
 * is decisive: a success, or a header that decrypted but failed a check (the password was right,
 * so no other derivation will do better). Returns that outcome first, then the other failures.
 * Waits for attempts already running, so nothing derived outlives the call unwiped.
 */
async function firstDecisive(attempts: Array<() => Promise<Outcome>>, width: number): Promise<Outcome[]> {
  const failures: Outcome[] = [];
  let decisive: Outcome | null = null;
  let next = 0;
  const worker = async () => {
    while (decisive === null && next < attempts.length) {
      const r = await attempts[next++]!();
      if (decisive === null && (r.ok || r.error)) decisive = r;
      else if (r.ok) r.header.masterKey.fill(0); // a second header opened at once: keep the first
      else failures.push(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, width) }, worker));
  return decisive ? [decisive, ...failures] : failures;
}

/** "the normal and hidden-volume headers at bytes 0, 65536", for an error. */
function describeSlots(slots: HeaderSlot[]): string {
  const kinds = [...new Set(slots.map((s) => (s.system ? 'system-encryption' : s.kind === 'hidden' ? 'hidden-volume' : 'normal')))];
  const copy = slots.some((s) => s.copy === 'backup') ? 'backup ' : '';
  return `the ${copy}${kinds.join(' and ')} header${slots.length === 1 ? '' : 's'} at byte${slots.length === 1 ? '' : 's'} ${slots.map((s) => s.at).join(', ')}`;
}

function noHeaderOpened(c: ContainerFile, outcomes: Outcome[], o: UnlockOptions, tried: { slots: HeaderSlot[]; kdfs: KdfCandidate[]; keyfiles: number }): VaultError {
  // A header that decrypted but failed a check means the password was right: say what is wrong.
  const telling = outcomes.find((r): r is { ok: false; error: VaultError } => !r.ok && r.error !== null);
  if (telling) return telling.error;
  const skipped = [...new Set(outcomes.flatMap((r) => (!r.ok && r.skipped ? [r.skipped] : [])))];
  const secret = [
    'the password',
    tried.keyfiles ? `${tried.keyfiles} keyfile${tried.keyfiles === 1 ? '' : 's'}` : null,
    o.pim ? `PIM ${o.pim}` : 'no PIM',
  ].filter((x) => x !== null).join(', ');
  const why = o.pim || tried.keyfiles ? 'the password, the PIM or a keyfile may be wrong' : 'the password may be wrong, or a PIM or keyfiles were needed';
  return new VaultError(
    'wrong-password',
    `no VeraCrypt/TrueCrypt header of ${c.path} opened with ${secret}: ${why}, or it is not a VeraCrypt/TrueCrypt volume vault can open ` +
      `(AES-256-XTS only; another cipher is named instead when the password is right). Tried ${describeSlots(tried.slots)} with ${describeTried(tried.kdfs)}`,
    [
      skipped.length ? `these key derivations could not run here: ${skipped.join('; ')}` : null,
      o.hidden || o.system ? null : 'a hidden volume opens with its own password (--hidden tries only its header)',
      o.system ? null : 'system encryption keeps its header in the boot track: open the whole drive with --system',
    ].filter((x) => x !== null).join('; '),
  );
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions, flavour?: Flavour): Promise<UnlockedVolume> {
  if (o.slot !== undefined) throw new VaultError('usage', 'VeraCrypt/TrueCrypt volumes have no keyslots (--slot)');
  if (o.headerFile) throw new VaultError('usage', '--header (a detached header) applies to LUKS containers, not VeraCrypt/TrueCrypt');
  if (secret.passphrase.length === 0 && secret.keyfiles.length === 0) throw new VaultError('usage', 'the password is empty', 'give a password, keyfiles, or both');
  if (o.system && !o.readOnly)
    throw new VaultError('usage', 'vault opens VeraCrypt/TrueCrypt system encryption read-only', 'add --read-only (writing could break the boot loader\'s view of the drive)');
  const slots = headerSlots(c, o);
  const kdfs = kdfCandidates({ pim: o.pim ?? 0, system: o.system === true, ...(o.hash ? { prf: o.hash } : {}), ...(flavour ? { flavour } : {}) });
  if (kdfs.length === 0)
    throw new VaultError('usage', `--hash ${o.hash} with ${[flavour === 'truecrypt' ? 'TrueCrypt' : null, o.pim ? 'a PIM' : null, o.system ? 'system encryption' : null].filter((x) => x !== null).join(' and ')} is not a derivation VeraCrypt or TrueCrypt uses`, 'drop --hash to try every one');
  const password = mixKeyfiles(secret.passphrase, secret.keyfiles);
  let outcomes: Outcome[];
  try {
    // Cheap, common derivations first, each for every header before the next KDF.
    const pairs = kdfs.flatMap((k) => slots.filter((s) => applies(s, k)).map((s) => [s, k] as const));
    const attempts = pairs.map(([s, k]) => () => attempt(s, k, secretCopy(password), false));
    outcomes = await firstDecisive(attempts, availableParallelism());
    if (!outcomes[0]?.ok && !outcomes.some((r) => !r.ok && r.error)) {
      // Nothing opened: only now pay for the 192-byte PBKDF2 keys that name a cascade (kdf.ts).
      const again = pairs.filter(([, k]) => cascadeWorthDeriving(k)).map(([s, k]) => () => attempt(s, k, secretCopy(password), true));
      outcomes = [...(await firstDecisive(again, availableParallelism())), ...outcomes];
    }
  } finally {
    password.fill(0);
  }
  const win = outcomes[0];
  if (!win?.ok) throw noHeaderOpened(c, outcomes, o, { slots, kdfs, keyfiles: secret.keyfiles.length });
  return volumeFrom(win, o, c);
}

/**
 * Where the data is. Normally the header says (its encrypted-area start and volume size); the
 * tweak of a data unit is its byte offset in the container / 512 (VeraCrypt Core/Volume.cpp,
 * cryptsetup TCRYPT_get_iv_offset for XTS). TrueCrypt 5.x's hidden volume sits right before its
 * header near the end of the file (cryptsetup TCRYPT_get_data_offset). A system-encryption header
 * gives the encrypted partition's (or, for whole-drive encryption, area's) offset in the drive.
 */
function dataArea(h: VcHeader, slot: HeaderSlot, c: ContainerFile): { offset: number; size: number } {
  if (slot.legacy) return { offset: c.size - h.hiddenVolumeSize - LEGACY_HIDDEN_FROM_END, size: h.hiddenVolumeSize };
  return { offset: h.encryptedAreaStart, size: h.volumeSize };
}

function volumeFrom(win: { header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }, o: UnlockOptions, c: ContainerFile): UnlockedVolume {
  const h = win.header;
  const area = dataArea(h, win.slot, c);
  const warnings: string[] = [];
  if (win.slot.copy === 'backup') warnings.push(`opened with the ${win.slot.kind} volume's backup header`);
  if (win.slot.kind === 'normal' && !win.slot.system && !o.readOnly)
    warnings.push('writing to an outer volume can overwrite a hidden volume inside it: vault has no hidden-volume protection (mount --read-only to be safe)');
  return {
    format: h.format,
    key: KeyHandle.fromBytes(h.masterKey), // wipes h.masterKey
    sectorSize: DATA_UNIT,
    dataOffset: area.offset,
    dataSize: area.size,
    // VeraCrypt's data unit number is the byte offset in the container / 512 (Core/Volume.cpp
    // ReadSectors; cryptsetup TCRYPT_get_iv_offset for XTS), so the first tweak is not 0.
    firstTweak: BigInt(area.offset / DATA_UNIT),
    tweakStep: 1n,
    uuid: null,
    warnings,
    info: describe(win, o, area),
  };
}

function describe(win: { header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }, o: UnlockOptions, area: { offset: number; size: number }): FormatInfo {
  const h = win.header;
  const json: VeraCryptInfoJson = {
    format: h.format,
    uuid: null,
    volumeType: win.slot.system ? 'system' : win.slot.kind,
    header: { copy: win.slot.copy, version: h.version, requiredProgramVersion: bcd(h.requiredProgramVersion) },
    kdf: win.kdf.kind === 'pbkdf2'
      ? { type: 'pbkdf2', hash: win.kdf.digest, iterations: win.kdf.iterations }
      : { type: 'argon2id', memoryKiB: win.kdf.memoryKiB, iterations: win.kdf.iterations, parallelism: win.kdf.parallelism },
    pim: o.pim ?? 0,
    cipher: 'aes-256-xts',
    sectorSize: h.sectorSize,
    dataOffset: area.offset,
    dataSize: area.size,
    firstDataUnit: area.offset / DATA_UNIT,
  };
  return {
    format: h.format,
    fields: [
      ['format', `${label(h.format)}, header version ${h.version} (needs version ${json.header.requiredProgramVersion})`],
      ['volume', `${win.slot.system ? 'system encryption' : win.slot.kind}, opened with the ${win.slot.copy} header at byte ${win.slot.at}`],
      ['kdf', describeKdf(win.kdf)],
      ['pim', json.pim === 0 ? '0 (default)' : String(json.pim)],
      ['cipher', `aes-256-xts, 512-byte data units from unit ${json.firstDataUnit}; device sector size ${h.sectorSize}`],
      ['data', `offset ${json.dataOffset}, size ${json.dataSize}`],
    ],
    json,
  };
}

export const veracryptAdapter: FormatAdapter = {
  name: 'veracrypt',
  recognises: () => false,
  claims,
  keyfilePolicy: { maxBytes: KEYFILE_MAX_READ, prefix: true },
  unlock: (c, secret, o) => unlock(c, secret, o),
};

/** `--type truecrypt`: the same volumes, tried with TrueCrypt's derivations only (no PIM, cheap counts). */
export const truecryptAdapter: FormatAdapter = {
  ...veracryptAdapter,
  name: 'truecrypt',
  unlock: (c, secret, o) => {
    if (o.pim) throw new VaultError('usage', 'TrueCrypt volumes have no PIM', 'drop --pim, or use --type veracrypt');
    return unlock(c, secret, o, 'truecrypt');
  },
};
