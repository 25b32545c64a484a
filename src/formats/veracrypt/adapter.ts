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
  FULL_HEADER_KEY_BYTES, KdfAbort, XTS_KEY_BYTES, deriveHeaderKey, deriveRest, describeKdf, describeTried, isCancelled, kdfCandidates,
  type Flavour, type KdfCandidate,
} from './kdf.js';
import { KEYFILE_MAX_READ, mixKeyfiles } from './keyfiles.js';
import { ALGORITHM_NAMES, openWithOtherChain } from './cipher-chains.js';
import { type LegacyWin, legacyApplies, legacyOnly, legacyVolume, tryLegacySlot } from './legacy-unlock.js';
import { AES_XTS, type CipherChain, chainKeyBytes, chainLabel, veracryptName } from '../../crypto/cipher-chain.js';

/** Which algorithms one derivation was tried with: none (it could not run), the single ciphers (its first 64 bytes), or all. */
export type Tried = 'none' | 'single' | 'all';

export type Failure = {
  ok: false;
  slot: HeaderSlot;
  kdf: KdfCandidate;
  /** A header that decrypted but failed a check: the password was right. */
  error: VaultError | null;
  tried: Tried;
  /** Why the derivation (or its second pass) could not run here. */
  skipped?: string;
  /** Stopped because another derivation opened a header. */
  cancelled?: boolean;
};

export type Outcome =
  | { ok: true; header: VcHeader; slot: HeaderSlot; kdf: KdfCandidate; chain: CipherChain }
  | ({ ok: true; header?: undefined } & LegacyWin)
  | Failure;

/** A derivation to run, in rank order; it may leave a follow-up (PBKDF2's second pass). */
interface Unit {
  rank: number;
  run: () => Promise<{ outcome: Outcome; next?: Unit }>;
  /** Wipes what the unit holds when it is not run. */
  drop?: () => void;
}

/**
 * Tries a derived header key on one header: AES-256-XTS, then every other VeraCrypt algorithm the
 * key is long enough for (single ciphers on 64 bytes, the cascades too on 192; with
 * `cascadesOnly`, only those: a first pass tried the rest), then, for TrueCrypt's derivations on
 * the headers TrueCrypt 1.0-4.3 used, the legacy LRW/CBC chains (legacy-unlock.ts: a few block
 * decryptions each). Does not wipe the key.
 */
function tryKey(slot: HeaderSlot, kdf: KdfCandidate, key: Buffer, cascadesOnly: boolean): Outcome {
  const tried: Tried = key.length >= FULL_HEADER_KEY_BYTES ? 'all' : 'single';
  const fail = (error: VaultError | null): Failure => ({ ok: false, slot, kdf, error, tried });
  let plain: Buffer | null = null;
  let chain: CipherChain = AES_XTS;
  try {
    try {
      plain = legacyOnly(kdf) || cascadesOnly ? null : decryptHeader(slot.raw, key.subarray(0, XTS_KEY_BYTES));
    } catch {
      plain = null; // e.g. a derived key with equal halves, which XTS refuses
    }
    if (!plain || !headerMagic(plain)) {
      plain?.fill(0);
      const other = legacyOnly(kdf) ? null : openWithOtherChain(slot.raw, key, cascadesOnly);
      if (!other) {
        const legacy = !cascadesOnly && legacyApplies(slot, kdf) ? tryLegacySlot(slot, key) : null;
        return legacy ? { ok: true, legacy, slot, kdf } : fail(null);
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
      return fail(e);
    }
  } finally {
    plain?.fill(0);
  }
}

/** A derivation that did not finish: stopped (another one opened a header), or unable to run here. */
function notDerived(slot: HeaderSlot, kdf: KdfCandidate, e: unknown, tried: Tried, what: string): Failure {
  if (isCancelled(e)) return { ok: false, slot, kdf, error: null, tried, cancelled: true };
  // A digest missing, or memory Argon2id could not get: that derivation (or its rest) is not tried.
  return { ok: false, slot, kdf, error: null, tried, skipped: `${what} (${(e as Error).message})` };
}

/**
 * One header with one derivation: the blocks covering 64 bytes (or all 192 with `full`: TrueCrypt's
 * cheap counts; Argon2id always), tried with the single ciphers (and the cascades when 192). When nothing opens
 * and 192 bytes were not derived, leaves the second pass (`rank2`) holding those first bytes: it
 * derives only the blocks after them (kdf.ts deriveRest) and tries the cascades. Owns (and wipes)
 * its copies of the password.
 */
function firstPass(slot: HeaderSlot, kdf: KdfCandidate, password: Buffer, full: boolean, abort: KdfAbort, rank: number, rank2: number): Unit {
  const pw = secretCopy(password);
  return {
    rank,
    drop: () => pw.fill(0),
    run: async () => {
      let key: Buffer;
      try {
        key = await deriveHeaderKey(kdf, pw, slot.raw.subarray(0, SALT_SIZE), full, abort);
      } catch (e) {
        pw.fill(0);
        return { outcome: notDerived(slot, kdf, e, 'none', kdf.label) };
      }
      let keep = false;
      try {
        const outcome = tryKey(slot, kdf, key, false);
        if (outcome.ok || outcome.error || outcome.tried === 'all' || kdf.kind !== 'pbkdf2') return { outcome };
        keep = true;
        return { outcome, next: secondPass(slot, kdf, pw, key, abort, rank2) };
      } finally {
        if (!keep) {
          key.fill(0);
          pw.fill(0);
        }
      }
    },
  };
}

function secondPass(slot: HeaderSlot, kdf: KdfCandidate & { kind: 'pbkdf2' }, pw: Buffer, first: Buffer, abort: KdfAbort, rank: number): Unit {
  const drop = () => {
    pw.fill(0);
    first.fill(0);
  };
  return {
    rank,
    drop,
    run: async () => {
      let key: Buffer;
      try {
        key = await deriveRest(kdf, pw, slot.raw.subarray(0, SALT_SIZE), first, abort);
      } catch (e) {
        return { outcome: notDerived(slot, kdf, e, 'single', `${kdf.label} beyond its first ${first.length} bytes, for the cascades`) };
      } finally {
        drop();
      }
      try {
        return { outcome: tryKey(slot, kdf, key, true) };
      } finally {
        key.fill(0);
      }
    },
  };
}

/**
 * Runs the units `width` at a time (one per core: more only queue on the threadpool and, for
 * Argon2id, hold hundreds of MiB each), lowest rank first, follow-ups included, and at the first
 * decisive outcome stops: a success, or a header that decrypted but failed a check (the password
 * was right, so no other derivation will do better). Then the derivations still running are
 * cancelled (`abort`) and awaited, so nothing derived outlives the call unwiped, and the units not
 * started are dropped. Returns the decisive outcome first, then the failures.
 */
function firstDecisive(units: Unit[], width: number, abort: KdfAbort): Promise<Outcome[]> {
  const queue = [...units];
  const failures: Outcome[] = [];
  let decisive: Outcome | null = null;
  let thrown: { e: unknown } | null = null;
  let running = 0;
  return new Promise((resolve, reject) => {
    const settle = () => {
      for (const u of queue.splice(0)) u.drop?.();
      if (!thrown) return resolve(decisive ? [decisive, ...failures] : failures);
      if (decisive?.ok) wipeWin(decisive);
      reject(thrown.e);
    };
    const pump = () => {
      while (decisive === null && thrown === null && running < Math.max(1, width) && queue.length > 0) {
        const at = queue.reduce((best, u, i) => (u.rank < queue[best]!.rank ? i : best), 0);
        const [unit] = queue.splice(at, 1);
        running++;
        unit!.run()
          .then(({ outcome, next }) => {
            if (next) queue.push(next);
            if (decisive === null && thrown === null && (outcome.ok || outcome.error)) {
              decisive = outcome;
              abort.abort();
            } else if (outcome.ok) wipeWin(outcome); // a second header opened at once: keep the first
            else failures.push(outcome);
          })
          .catch((e: unknown) => {
            thrown ??= { e };
            abort.abort();
          })
          .finally(() => {
            running--;
            pump();
            if (running === 0) settle();
          });
      }
    };
    pump();
    if (running === 0) settle();
  });
}

function wipeWin(r: Outcome & { ok: true }): void {
  if (r.header) r.header.masterKey.fill(0);
  else r.legacy.decrypted.fill(0);
}

const ORDER: Record<Tried, number> = { none: 0, single: 1, all: 2 };

/**
 * Which algorithms were tried under which derivations, from the outcomes: every VeraCrypt
 * algorithm under each (but SHA-1, which only TrueCrypt before 5.0 used, with its own chains),
 * except where a derivation or its cascade blocks could not run here, and TrueCrypt 1.0-4.3's
 * LRW/CBC chains under TrueCrypt's derivations on the headers where they apply.
 */
export function describeAlgorithmsTried(pairs: ReadonlyArray<readonly [HeaderSlot, KdfCandidate]>, outcomes: Outcome[]): string {
  const best = new Map<HeaderSlot, Map<KdfCandidate, Tried>>();
  for (const r of outcomes) {
    if (r.ok) continue;
    const of = best.get(r.slot) ?? new Map<KdfCandidate, Tried>();
    best.set(r.slot, of);
    if (ORDER[r.tried] > ORDER[of.get(r.kdf) ?? 'none']) of.set(r.kdf, r.tried);
  }
  const got = (s: HeaderSlot, k: KdfCandidate) => best.get(s)?.get(k) ?? 'none';
  // Per derivation, the least any header got: "only the single ciphers under X" if one header missed the cascades.
  const least = new Map<KdfCandidate, Tried>();
  for (const [s, k] of pairs) {
    const before = least.get(k);
    if (before === undefined || ORDER[got(s, k)] < ORDER[before]) least.set(k, got(s, k));
  }
  const kdfs = [...least.keys()];
  const legacyOnlyKdfs = kdfs.filter(legacyOnly);
  const cascades = ALGORITHM_NAMES.filter((n) => n.includes('-')).length;
  const every = `every VeraCrypt encryption algorithm (${ALGORITHM_NAMES.filter((n) => !n.includes('-')).join(', ')} and the ${cascades} cascades)`;
  const single = kdfs.filter((k) => !legacyOnly(k) && least.get(k) === 'single');
  const none = kdfs.filter((k) => least.get(k) === 'none');
  const except = [
    single.length ? `only the single ciphers under ${describeTried(single)}` : null,
    none.length ? `nothing under ${describeTried(none)}` : null,
  ].filter((x) => x !== null);
  const legacyAt = [...new Set(pairs.filter(([s, k]) => legacyApplies(s, k) && got(s, k) === 'all').map(([s]) => s.at))];
  return [
    kdfs.length > legacyOnlyKdfs.length
      ? `under ${kdfs.length - legacyOnlyKdfs.length === 1 ? 'it' : 'each'}${legacyOnlyKdfs.length ? ` but ${describeTried(legacyOnlyKdfs)}` : ''}, ${every}${except.length ? `, except ${except.join(' and ')} (could not run here)` : ''}`
      : null,
    legacyAt.length ? `under TrueCrypt's, also the LRW and CBC chains of TrueCrypt 1.0-4.3 (on the header${legacyAt.length === 1 ? '' : 's'} at byte${legacyAt.length === 1 ? '' : 's'} ${legacyAt.join(', ')})` : null,
  ].filter((x) => x !== null).join('; ');
}

export function noHeaderOpened(c: ContainerFile, outcomes: Outcome[], o: UnlockOptions, tried: { slots: HeaderSlot[]; kdfs: KdfCandidate[]; pairs: ReadonlyArray<readonly [HeaderSlot, KdfCandidate]>; keyfiles: number }): VaultError {
  // A header that decrypted but failed a check means the password was right: say what is wrong.
  const telling = outcomes.find((r): r is Failure & { error: VaultError } => !r.ok && r.error !== null);
  if (telling) return telling.error;
  const skipped = [...new Set(outcomes.flatMap((r) => (!r.ok && r.skipped ? [r.skipped] : [])))];
  const secret = [
    'the password',
    tried.keyfiles ? `${tried.keyfiles} keyfile${tried.keyfiles === 1 ? '' : 's'}` : null,
    o.pim ? `PIM ${o.pim}` : 'no PIM',
  ].filter((x) => x !== null).join(', ');
  const why = [
    o.pim || tried.keyfiles ? 'a wrong password, PIM or keyfile' : 'a wrong password, or a PIM or keyfiles were needed',
    // Not everything was tried: the password may be right, under what could not run here.
    skipped.length ? 'or a derivation that could not run here (see the hint)' : null,
    'or it is not a VeraCrypt/TrueCrypt volume vault can open',
  ].filter((x) => x !== null).join(', ');
  return new VaultError(
    'wrong-password',
    `no VeraCrypt/TrueCrypt header of ${c.path} opened with ${secret}: ${why}. ` +
      `Tried ${describeSlots(tried.slots)} with ${describeTried(tried.kdfs)}; ${describeAlgorithmsTried(tried.pairs, outcomes)}`,
    [
      skipped.length ? `these key derivations could not run here: ${skipped.join('; ')}` : null,
      o.hidden || o.system ? null : 'a hidden volume opens with its own password (--hidden tries only its header)',
      o.system ? null : 'system encryption keeps its header in the boot track: open the whole drive with --system',
    ].filter((x) => x !== null).join('; '),
  );
}

/**
 * When each derivation runs, as bands (lower first; within a band, kdfCandidates' order, each for
 * every header before the next KDF), and whether its cascade blocks come in a second pass:
 *   0. VeraCrypt's default, PBKDF2-HMAC-SHA-512: its first 64 bytes;
 *   1. TrueCrypt's cheap counts (1000-2000 iterations), all 192 bytes at once (the legacy chains
 *      need 152 of them);
 *   2. SHA-512's cascade blocks: a cascade at VeraCrypt's defaults then opens after three SHA-512
 *      blocks, not after every other derivation, at the cost of two SHA-512 blocks per header for
 *      volumes of the other PRFs;
 *   3. every other derivation in VeraCrypt's order (SHA-256, BLAKE2s, Whirlpool, Streebog,
 *      Argon2id, then RIPEMD-160): the first 64 bytes (Argon2id: all 192, its output depends on
 *      its length);
 *   4. their cascade blocks, in the same order.
 * So every PRF is tried in VeraCrypt's order in each pass, and every algorithm under every
 * derivation before a wrong password is reported.
 */
export function derivationPlan(k: KdfCandidate): { first: number; second: number | null } {
  if (k.flavour === 'truecrypt') return { first: 1, second: null };
  if (k.kind === 'argon2id') return { first: 3, second: null };
  if (k.prf === 'sha512') return { first: 0, second: 2 };
  return { first: 3, second: 4 };
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
  const pairs = kdfs.flatMap((k) => slots.filter((s) => applies(s, k)).map((s) => [s, k] as const));
  let outcomes: Outcome[];
  try {
    const abort = new KdfAbort();
    const units = pairs.map(([s, k], i) => {
      const plan = derivationPlan(k);
      const within = i / pairs.length;
      return firstPass(s, k, password, plan.second === null, abort, plan.first + within, (plan.second ?? 0) + within);
    });
    outcomes = await firstDecisive(units, availableParallelism(), abort);
  } finally {
    password.fill(0);
  }
  const win = outcomes[0];
  if (!win?.ok) throw noHeaderOpened(c, outcomes, o, { slots, kdfs, pairs, keyfiles: secret.keyfiles.length });
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
