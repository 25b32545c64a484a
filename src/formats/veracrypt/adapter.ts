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
  BACKUP_HIDDEN_FROM_END, BACKUP_NORMAL_FROM_END, DATA_UNIT, HEADER_SIZE, HIDDEN_HEADER_OFFSET, SALT_SIZE,
  bcd, decryptHeader, headerMagic, label, parseHeader, type HeaderKind, type VcHeader,
} from './header.js';
import { XTS_KEY_BYTES, cascadeWorthDeriving, deriveHeaderKey, describeKdf, kdfCandidates, type KdfCandidate } from './kdf.js';
import { KEYFILE_MAX_READ, mixKeyfiles } from './keyfiles.js';
import { unsupportedCipher } from './cipher-probe.js';

/** The smallest file VeraCrypt makes holds four 64 KiB header areas, two at each end. */
const MIN_VOLUME_FILE = 4 * 65536 + DATA_UNIT;

interface HeaderSlot {
  kind: HeaderKind;
  copy: 'primary' | 'backup';
  raw: Buffer;
}

type Outcome =
  | { ok: true; header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }
  | { ok: false; error: VaultError | null; skipped?: string };

/**
 * Could this file be a VeraCrypt/TrueCrypt volume? VeraCrypt fills the hidden-header area with
 * random bytes on every volume, so 512 zero bytes there (vault's zero padding) rule it out.
 */
function claims(c: ContainerFile): boolean {
  if (c.size < MIN_VOLUME_FILE) return false;
  return !readAtSync(c.fd, HEADER_SIZE, HIDDEN_HEADER_OFFSET).every((b) => b === 0);
}

/** The headers to try: `--hidden` only the hidden one, `--use-backup-header` the copies at the end. */
function headerSlots(c: ContainerFile, o: UnlockOptions): HeaderSlot[] {
  if (c.size < MIN_VOLUME_FILE) throw new VaultError('not-a-container', `${c.path} is too small to be a VeraCrypt or TrueCrypt volume`);
  const at = (kind: HeaderKind, copy: 'primary' | 'backup', offset: number): HeaderSlot => ({ kind, copy, raw: readAtSync(c.fd, HEADER_SIZE, offset) });
  const slots = o.useBackupHeader
    ? [at('normal', 'backup', c.size - BACKUP_NORMAL_FROM_END), at('hidden', 'backup', c.size - BACKUP_HIDDEN_FROM_END)]
    : [at('normal', 'primary', 0), at('hidden', 'primary', HIDDEN_HEADER_OFFSET)];
  return o.hidden ? slots.filter((s) => s.kind === 'hidden') : slots;
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
      return { ok: true, header: parseHeader(plain, slot.kind), slot, kdf };
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

function noHeaderOpened(c: ContainerFile, outcomes: Outcome[], o: UnlockOptions): VaultError {
  // A header that decrypted but failed a check means the password was right: say what is wrong.
  const telling = outcomes.find((r): r is { ok: false; error: VaultError } => !r.ok && r.error !== null);
  if (telling) return telling.error;
  const where = o.useBackupHeader ? 'backup headers' : o.hidden ? 'hidden-volume header' : 'headers';
  const skipped = [...new Set(outcomes.flatMap((r) => (!r.ok && r.skipped ? [r.skipped] : [])))];
  return new VaultError(
    'wrong-password',
    `no ${where} of ${c.path} opened: wrong password, PIM or keyfiles, or not a VeraCrypt/TrueCrypt volume vault supports (AES-256-XTS only; another cipher is named instead when the password is right)`,
    skipped.length
      ? `these key derivations could not run here: ${skipped.join('; ')}`
      : 'check the password, --pim and --keyfile; an unrecognised file is tried as VeraCrypt/TrueCrypt, whose headers carry no signature',
  );
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume> {
  if (o.slot !== undefined) throw new VaultError('usage', 'VeraCrypt/TrueCrypt volumes have no keyslots (--slot)');
  if (o.headerFile) throw new VaultError('usage', '--header (a detached header) applies to LUKS containers, not VeraCrypt/TrueCrypt');
  if (secret.passphrase.length === 0 && secret.keyfiles.length === 0) throw new VaultError('usage', 'the password is empty', 'give a password, keyfiles, or both');
  const slots = headerSlots(c, o);
  const password = mixKeyfiles(secret.passphrase, secret.keyfiles);
  let outcomes: Outcome[];
  try {
    const kdfs = kdfCandidates(o.pim ?? 0);
    // Cheap, common derivations first, each for both headers before the next KDF.
    const attempts = kdfs.flatMap((k) => slots.map((s) => () => attempt(s, k, secretCopy(password), false)));
    outcomes = await firstDecisive(attempts, availableParallelism());
    if (!outcomes[0]?.ok && !outcomes.some((r) => !r.ok && r.error)) {
      // Nothing opened: only now pay for the 192-byte PBKDF2 keys that name a cascade (kdf.ts).
      const again = kdfs.filter(cascadeWorthDeriving).flatMap((k) => slots.map((s) => () => attempt(s, k, secretCopy(password), true)));
      outcomes = [...(await firstDecisive(again, availableParallelism())), ...outcomes];
    }
  } finally {
    password.fill(0);
  }
  const win = outcomes[0];
  if (!win?.ok) throw noHeaderOpened(c, outcomes, o);
  return volumeFrom(win, o);
}

function volumeFrom(win: { header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }, o: UnlockOptions): UnlockedVolume {
  const h = win.header;
  const warnings: string[] = [];
  if (win.slot.copy === 'backup') warnings.push(`opened with the ${win.slot.kind} volume's backup header`);
  if (win.slot.kind === 'normal' && !o.readOnly && !o.protectHidden)
    warnings.push('writing to an outer volume can overwrite a hidden volume inside it: if it holds one, mount it with --protect-hidden (or --read-only)');
  return {
    format: h.format,
    key: KeyHandle.fromBytes(h.masterKey), // wipes h.masterKey
    sectorSize: DATA_UNIT,
    dataOffset: h.encryptedAreaStart,
    dataSize: h.volumeSize,
    // VeraCrypt's data unit number is the byte offset in the container / 512 (Core/Volume.cpp
    // ReadSectors; cryptsetup TCRYPT_get_iv_offset for XTS), so the first tweak is not 0.
    firstTweak: BigInt(h.encryptedAreaStart / DATA_UNIT),
    tweakStep: 1n,
    uuid: null,
    warnings,
    info: describe(win, o),
  };
}

function describe(win: { header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate }, o: UnlockOptions): FormatInfo {
  const h = win.header;
  const json: VeraCryptInfoJson = {
    format: h.format,
    uuid: null,
    volumeType: win.slot.kind,
    header: { copy: win.slot.copy, version: h.version, requiredProgramVersion: bcd(h.requiredProgramVersion) },
    kdf: win.kdf.kind === 'pbkdf2'
      ? { type: 'pbkdf2', hash: win.kdf.digest, iterations: win.kdf.iterations }
      : { type: 'argon2id', memoryKiB: win.kdf.memoryKiB, iterations: win.kdf.iterations, parallelism: win.kdf.parallelism },
    pim: o.pim ?? 0,
    cipher: 'aes-256-xts',
    sectorSize: h.sectorSize,
    dataOffset: h.encryptedAreaStart,
    dataSize: h.volumeSize,
    firstDataUnit: h.encryptedAreaStart / DATA_UNIT,
  };
  return {
    format: h.format,
    fields: [
      ['format', `${label(h.format)}, header version ${h.version} (needs version ${json.header.requiredProgramVersion})`],
      ['volume', `${win.slot.kind}, opened with the ${win.slot.copy} header`],
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
  unlock,
};
