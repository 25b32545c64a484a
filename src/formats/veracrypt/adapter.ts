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
import type { ContainerFile } from '../../volume/container-file.js';
import type { FormatAdapter, FormatInfo, UnlockOptions, UnlockSecret, UnlockedVolume } from '../types.js';
import type { VeraCryptInfoJson } from '../info-json.js';
import { DATA_UNIT, SALT_SIZE, bcd, decryptHeader, headerMagic, label, parseHeader, type VcHeader } from './header.js';
import { applies, claims, dataArea, describeSlots, headerSlots, type HeaderSlot } from './slots.js';
import {
  XTS_KEY_BYTES, cascadeWorthDeriving, deriveHeaderKey, describeKdf, describeTried, kdfCandidates, type Flavour, type KdfCandidate,
} from './kdf.js';
import { KEYFILE_MAX_READ, mixKeyfiles } from './keyfiles.js';
import { openWithOtherChain } from './cipher-chains.js';
import { type LegacyWin, legacyApplies, legacyOnly, legacyVolume, tryLegacySlot } from './legacy-unlock.js';
import { AES_XTS, type CipherChain, chainKeyBytes, chainLabel, veracryptName } from '../../crypto/cipher-chain.js';

type Outcome =
  | { ok: true; header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate; chain: CipherChain }
  | ({ ok: true; header?: undefined } & LegacyWin)
  | { ok: false; error: VaultError | null; skipped?: string };

/**
 * Derives one header key and tries it: AES-256-XTS, then, if that fails, every other VeraCrypt
 * algorithm the key is long enough for (`full`: derive the 192 bytes cascades need), then, for
 * TrueCrypt's derivations on the headers TrueCrypt 1.0-4.3 used, the legacy LRW/CBC chains
 * (legacy-unlock.ts: a few block decryptions each). Owns (and wipes) its copy of the password.
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
  let chain: CipherChain = AES_XTS;
  try {
    try {
      plain = legacyOnly(kdf) ? null : decryptHeader(slot.raw, key.subarray(0, XTS_KEY_BYTES));
    } catch {
      plain = null; // e.g. a derived key with equal halves, which XTS refuses
    }
    if (!plain || !headerMagic(plain)) {
      plain?.fill(0);
      const other = legacyOnly(kdf) ? null : openWithOtherChain(slot.raw, key);
      if (!other) {
        const legacy = legacyApplies(slot, kdf) ? tryLegacySlot(slot, key) : null;
        return legacy ? { ok: true, legacy, slot, kdf } : { ok: false, error: null };
      }
      ({ chain, plain } = other);
    }
    try {
      const header = parseHeader(plain, slot.kind, slot.system);
      // The master key area holds 64 bytes per cipher of the chain (parseHeader copies AES's 64).
      header.masterKey.fill(0);
      header.masterKey = secretCopy(plain.subarray(256, 256 + chainKeyBytes(chain)));
      return { ok: true, header, slot, kdf, chain };
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
      else if (r.ok) wipeWin(r); // a second header opened at once: keep the first
      else failures.push(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, width) }, worker));
  return decisive ? [decisive, ...failures] : failures;
}

function wipeWin(r: Outcome & { ok: true }): void {
  if (r.header) r.header.masterKey.fill(0);
  else r.legacy.decrypted.fill(0);
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
  const why = o.pim || tried.keyfiles ? 'a wrong password, PIM or keyfile' : 'a wrong password, or a PIM or keyfiles were needed';
  return new VaultError(
    'wrong-password',
    `no VeraCrypt/TrueCrypt header of ${c.path} opened with ${secret}: ${why}, or it is not a VeraCrypt/TrueCrypt volume vault can open ` +
      `(TrueCrypt 1.0 or later; every VeraCrypt algorithm). Tried ${describeSlots(tried.slots)} with ${describeTried(tried.kdfs)}`,
    [
      skipped.length ? `these key derivations could not run here: ${skipped.join('; ')}` : null,
      o.hidden || o.system ? null : 'a hidden volume opens with its own password (--hidden tries only its header)',
      o.system ? null : 'system encryption keeps its header in the boot track: open the whole drive with --system',
    ].filter((x) => x !== null).join('; '),
  );
}

function cheapToDeriveFull(k: KdfCandidate): boolean {
  return k.kind === 'pbkdf2' && k.iterations <= 20_000;
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions, flavour?: Flavour): Promise<UnlockedVolume> {
  if (o.slot !== undefined) throw new VaultError('usage', 'VeraCrypt/TrueCrypt volumes have no keyslots (--slot)');
  if (o.headerFile) throw new VaultError('usage', '--header (a detached header) applies to LUKS containers, not VeraCrypt/TrueCrypt');
  if (secret.passphrase.length === 0 && secret.keyfiles.length === 0) throw new VaultError('usage', 'the password is empty', 'give a password, keyfiles, or both');
  const slots = headerSlots(c, o);
  const kdfs = kdfCandidates({ pim: o.pim ?? 0, system: o.system === true, ...(o.hash ? { prf: o.hash } : {}), ...(flavour ? { flavour } : {}) });
  if (kdfs.length === 0)
    throw new VaultError('usage', `--hash ${o.hash} with ${[flavour === 'truecrypt' ? 'TrueCrypt' : null, o.pim ? 'a PIM' : null, o.system ? 'system encryption' : null].filter((x) => x !== null).join(' and ')} is not a derivation VeraCrypt or TrueCrypt uses`, 'drop --hash to try every one');
  const password = mixKeyfiles(secret.passphrase, secret.keyfiles);
  let outcomes: Outcome[];
  try {
    // Cheap, common derivations first, each for every header before the next KDF. Cheap counts
    // (TrueCrypt's, a small PIM) derive the 192 bytes of a cascade at once: a few thousand
    // iterations more, instead of waiting for the second pass behind the expensive ones.
    const pairs = kdfs.flatMap((k) => slots.filter((s) => applies(s, k)).map((s) => [s, k] as const));
    // With --hash the one PRF named is derived at full length at once: the user asked for it.
    const full = (k: KdfCandidate) => cheapToDeriveFull(k) || o.hash !== undefined;
    const attempts = pairs.map(([s, k]) => () => attempt(s, k, secretCopy(password), full(k)));
    outcomes = await firstDecisive(attempts, availableParallelism());
    if (!outcomes[0]?.ok && !outcomes.some((r) => !r.ok && r.error)) {
      // Nothing opened: only now pay for the 192-byte PBKDF2 keys that open a cascade (kdf.ts).
      const again = pairs.filter(([, k]) => cascadeWorthDeriving(k) && !full(k)).map(([s, k]) => () => attempt(s, k, secretCopy(password), true));
      outcomes = [...(await firstDecisive(again, availableParallelism())), ...outcomes];
    }
  } finally {
    password.fill(0);
  }
  const win = outcomes[0];
  if (!win?.ok) throw noHeaderOpened(c, outcomes, o, { slots, kdfs, keyfiles: secret.keyfiles.length });
  return win.header ? volumeFrom(win, o, c) : legacyVolume(win, o, c);
}

type Win = { header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate; chain: CipherChain };

function volumeFrom(win: Win, o: UnlockOptions, c: ContainerFile): UnlockedVolume {
  const h = win.header;
  const area = dataArea(h, win.slot, c);
  const warnings: string[] = [];
  if (win.slot.copy === 'backup') warnings.push(`opened with the ${win.slot.kind} volume's backup header`);
  if (win.slot.kind === 'normal' && !win.slot.system && !o.readOnly && !o.protectHidden)
    warnings.push('writing to an outer volume can overwrite a hidden volume inside it: if it holds one, mount it with --protect-hidden (or --read-only)');
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
    cipher: win.chain,
    uuid: null,
    warnings,
    info: describe(win, o, area),
  };
}

function describe(win: Win, o: UnlockOptions, area: { offset: number; size: number }): FormatInfo {
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
    cipher: chainLabel(win.chain),
    algorithm: veracryptName(win.chain),
    mode: 'xts',
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
      ['cipher', `${veracryptName(win.chain)} (${json.cipher}), 512-byte data units from unit ${json.firstDataUnit}; device sector size ${h.sectorSize}`],
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
