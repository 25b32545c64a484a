/**
 * A container file on disk: open it, read and choose its header copies, unlock it with a passphrase,
 * and write header updates in the crash-safe order of spec/format.md §6.
 *
 * Nothing here modifies a container unless the copy it unlocked passed every check of spec §7.
 */
import { fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { headerWrite, type HeaderWriteStep } from '../diagnostics.js';
import { parseRecoveryKey } from '../crypto/recovery-key.js';
import { VaultError, isVaultError } from '../errors.js';
import { CIPHERS, DEFAULT_SECTOR_SIZE, FORMAT_VERSION, HEADER_SIZE, KEYSLOT_COUNT } from '../format/constants.js';
import { parseHeaderCopy, serializeHeaderCopy } from '../format/header.js';
import { containerFileSize, secondaryOffset, type Geometry } from '../format/layout.js';
import type { ActiveKeyslot, CopyIndex, Header } from '../format/types.js';
import { deriveKek } from '../crypto/kdf.js';
import { emptyKeyslot, openKeyslot } from '../crypto/keyslot.js';
import { computeHeaderMac, halvesDiffer, verifyHeaderMac } from '../crypto/master-key.js';
import { wipe } from '../crypto/wipe.js';
import { readAtSync, writeAllSync } from './fd-io.js';
import { checkAgreement, copiesDisagree, copyName } from './header-agreement.js';

import type { ContainerFile } from './container-file.js';

/** Result of reading one copy: a validated header, or the reason it is unusable. */
export type CopyRead = { ok: true; header: Header } | { ok: false; error: VaultError; /** a well-formed primary that does not fit the file */ tooLarge?: Header };

export interface HeaderCopies {
  primary: CopyRead;
  secondary: CopyRead;
}

/**
 * Reads and validates both copies (spec §6 "Reading", §7). Never throws for bad bytes.
 *
 * The primary is at offset 0; it must fit the file. The secondary is looked for at the end of the
 * file and, when the primary is valid and places it elsewhere, also at the primary's
 * `data_offset + data_size` (an interrupted resize, or bytes appended to the file). A secondary
 * copy must describe the place it was read from; when both places hold one, the newer is used.
 */
export function readHeaderCopies(c: ContainerFile): HeaderCopies {
  let primary = tryParse(readAtSync(c.fd, HEADER_SIZE, 0), 0);
  if (primary.ok && containerFileSize(primary.header) > c.size)
    primary = { ok: false, tooLarge: primary.header, error: new VaultError('truncated', `primary header describes ${containerFileSize(primary.header)} bytes, more than the file's ${c.size}`) };
  const atEnd = readSecondaryAt(c, c.size - HEADER_SIZE);
  if (!primary.ok) return { primary, secondary: atEnd };
  const expectedAt = secondaryOffset(primary.header);
  if (expectedAt === c.size - HEADER_SIZE) return { primary, secondary: atEnd };
  const atPrimarys = readSecondaryAt(c, expectedAt);
  if (!atEnd.ok) return { primary, secondary: atPrimarys.ok ? atPrimarys : atEnd };
  return { primary, secondary: atPrimarys.ok && atPrimarys.header.sequence >= atEnd.header.sequence ? atPrimarys : atEnd };
}

/** A secondary copy read at `offset`: valid only when its own `data_offset + data_size` is that offset (spec §7 step 6). */
function readSecondaryAt(c: ContainerFile, offset: number): CopyRead {
  const r = tryParse(readAtSync(c.fd, HEADER_SIZE, offset), 1);
  if (r.ok && secondaryOffset(r.header) !== offset)
    return { ok: false, error: new VaultError('invalid-field', `secondary header at offset ${offset} places itself at ${secondaryOffset(r.header)} (data offset + data size)`) };
  return r;
}

function tryParse(bytes: Buffer, copy: CopyIndex): CopyRead {
  try {
    return { ok: true, header: parseHeaderCopy(bytes, copy) };
  } catch (e) {
    if (isVaultError(e)) return { ok: false, error: e };
    throw e;
  }
}

/**
 * The valid copies, newest first (primary first on a tie), plus warnings about the others.
 * Throws when no copy is usable, with the most telling reason. When the user chose one copy
 * (c.headerCopy, spec §6 "Choosing a copy"), that copy alone, and no agreement with the other.
 */
export function candidateHeaders(c: ContainerFile, copies: HeaderCopies): { candidates: Header[]; warnings: string[] } {
  if (c.headerCopy !== undefined) return chosenCopy(c, copies, c.headerCopy);
  const valid = [copies.primary, copies.secondary].filter((r): r is { ok: true; header: Header } => r.ok).map((r) => r.header);
  const warnings: string[] = [];
  for (const r of [copies.primary, copies.secondary]) if (!r.ok) warnings.push(r.error.message);
  if (valid.length === 0) throw noUsableHeader(c, copies);
  valid.sort((a, b) => (a.sequence === b.sequence ? a.copy - b.copy : a.sequence > b.sequence ? -1 : 1));
  const [newest, other] = valid;
  // Spec §6 "Agreement": the uuid is the container's identity, checked before any key derivation.
  if (newest && other && !newest.uuid.equals(other.uuid)) throw copiesDisagree(c, `they name two containers (${formatUuid(newest.uuid)} and ${formatUuid(other.uuid)})`);
  if (newest && other && other.sequence < newest.sequence)
    warnings.push(`${copyName(other)} header is older than the other copy (sequence ${other.sequence} < ${newest.sequence})`);
  return { candidates: valid, warnings };
}

/** The copy the user named, or why it cannot be used; a warning says what the other copy is. */
function chosenCopy(c: ContainerFile, copies: HeaderCopies, which: CopyIndex): { candidates: Header[]; warnings: string[] } {
  const [name, otherName] = which === 0 ? ['primary', 'secondary'] : ['secondary', 'primary'];
  const [chosen, other] = which === 0 ? [copies.primary, copies.secondary] : [copies.secondary, copies.primary];
  if (!chosen.ok)
    throw new VaultError(chosen.error.code, `the ${name} header copy of ${c.path}, which you chose (--header-copy ${name}), cannot be used: ${chosen.error.message}`,
      `choose the other copy (--header-copy ${otherName}), or leave --header-copy out`);
  const state = other.ok ? `valid (sequence ${other.header.sequence}), but neither used nor compared` : `unusable (${other.error.message})`;
  return { candidates: [chosen.header], warnings: [`using the ${name} header copy alone, as asked (--header-copy ${name}); the ${otherName} copy is ${state}`] };
}

/** Neither copy is valid: the one class spec §6 "Reading" names for the pair. */
function noUsableHeader(c: ContainerFile, copies: HeaderCopies): VaultError {
  const errors = [copies.primary, copies.secondary].map((r) => (r.ok ? null : r.error));
  const [p, s] = errors;
  if (p?.code === 'not-a-container' && s?.code === 'not-a-container')
    return new VaultError(
      'not-a-container',
      `${c.path} is not a vault container (neither header copy has a vault signature)`,
      'if it is one whose headers were overwritten, restore a header backup with `vault header restore`',
    );
  const version = errors.find((e) => e?.code === 'unsupported-version');
  if (version) return version;
  if (errors.some((e) => e?.code === 'unsupported-feature'))
    return new VaultError('unsupported-feature', `${c.path} uses a feature this vault does not know (primary: ${p?.message}; secondary: ${s?.message})`, 'upgrade vault to open it; it was not modified');
  const primary = copies.primary;
  if (!primary.ok && primary.tooLarge)
    return new VaultError('truncated', `${c.path} is truncated: the header describes ${containerFileSize(primary.tooLarge)} bytes, the file has ${c.size}`, 'restore the container from a backup copy of the whole file');
  if (p?.code === 'truncated') return new VaultError('truncated', `${c.path} is truncated: ${p.message}`, 'restore the container from a backup copy of the whole file');
  return new VaultError(
    'headers-damaged',
    `both headers of ${c.path} are damaged (primary: ${p?.message ?? 'ok'}; secondary: ${s?.message ?? 'ok'})`,
    'restore a header backup with `vault header restore`',
  );
}

export interface UnlockResult {
  header: Header;
  /** The caller owns this: wrap it into a KeyHandle (which wipes it) or wipe it. */
  masterKey: Uint8Array;
  slot: number;
  warnings: string[];
  /** A header flagged for re-encryption (spec §13): the new master key, from the same slot's staged wrap. */
  newMasterKey?: Uint8Array;
  /** The copies tried before `header` whose MAC failed (already warned about). */
  failedMac?: Header[];
}

/** The error for a container whose re-encryption is unfinished, for every command but those that finish it. */
export function unfinishedReencryption(path: string): VaultError {
  return new VaultError(
    'unsupported-feature',
    `${path} is part-way through a re-encryption`,
    `finish it first: \`vault reencrypt --resume ${path}\` (or mount it read-write, which finishes it)`,
  );
}

/**
 * Unlocks a container with a KDF input (spec §4.2). Tries valid copies newest first and, in each,
 * the active slots in order. A copy whose MAC fails after unlocking is skipped with a warning.
 * Each (salt, parameters) pair is derived at most once, since both copies usually share slots.
 */
export async function unlockContainer(c: ContainerFile, kdfInput: Uint8Array, onlySlot?: SlotChoice, allowReencrypt = false): Promise<UnlockResult> {
  const { candidates, warnings } = candidateHeaders(c, readHeaderCopies(c));
  if (!allowReencrypt && candidates[0]!.reencrypt) throw unfinishedReencryption(c.path);
  const u = await unlockTyped(candidates, warnings, kdfInput, onlySlot);
  try {
    checkAgreement(c, u.header, candidates.filter((h) => h !== u.header && !u.failedMac?.includes(h)), u.masterKey, u.warnings);
  } catch (e) {
    wipe(u.masterKey, u.newMasterKey);
    throw e;
  }
  if (!allowReencrypt && u.header.reencrypt) {
    wipe(u.masterKey);
    throw unfinishedReencryption(c.path);
  }
  return u;
}

/**
 * Which keyslots a KDF input may open (spec §14.5): one named slot (`--slot`, or a token's own), the
 * slots a typed passphrase or keyfile may open (`undefined`: all but TPM2 and FIDO2 token slots), or
 * the recovery-key slots.
 */
export type SlotChoice = number | 'recovery' | undefined;

function slotAllowed(h: Header, i: number, choice: SlotChoice): boolean {
  const token = h.tokens?.find((t) => t.slot === i);
  if (typeof choice === 'number') return i === choice;
  if (choice === 'recovery') return token?.type === 'recovery';
  return token === undefined || token.type === 'recovery';
}

/**
 * A typed secret: a recovery key (spec §14.2) is tried on the recovery slots first, as its 32-byte
 * secret; then, as typed, on the slots `choice` allows.
 */
async function unlockTyped(candidates: Header[], warnings: string[], kdfInput: Uint8Array, choice: SlotChoice): Promise<UnlockResult> {
  const recovery = choice === undefined && candidates.some((h) => h.tokens?.some((t) => t.type === 'recovery')) ? parseRecoveryKey(kdfInput) : null;
  if (recovery) {
    try {
      return await unlockHeaders(candidates, warnings, recovery, 'recovery');
    } catch (e) {
      if (!isVaultError(e, 'wrong-password')) throw e;
    } finally {
      wipe(recovery);
    }
  }
  return unlockHeaders(candidates, warnings, kdfInput, choice);
}

/** As unlockContainer, over header copies already read and validated (newest first): a container's, or a backup's. */
export async function unlockHeaders(candidates: Header[], warnings: string[], kdfInput: Uint8Array, onlySlot?: SlotChoice): Promise<UnlockResult> {
  const keks = new Map<string, Buffer>();
  let tampered: VaultError | null = null;
  let anyActive = false;
  let anyActiveAtAll = false;
  const failedMac: Header[] = [];
  const opened = (header: Header, masterKey: Uint8Array, slot: number, newMasterKey?: Uint8Array): UnlockResult => {
    for (const h of candidates.slice(0, candidates.indexOf(header)))
      if (!failedMac.includes(h))
        warnings.push(`opened with the older ${copyName(header)} header (sequence ${header.sequence}): the newer ${copyName(h)} header (sequence ${h.sequence}) does not accept this secret; a header update was interrupted (or that copy altered), and \`vault header repair\` makes the older copy's keyslots current in both`);
    return { header, masterKey, slot, warnings, failedMac, ...(newMasterKey ? { newMasterKey } : {}) };
  };
  try {
    for (const header of candidates) {
      for (let i = 0; i < KEYSLOT_COUNT; i++) {
        const slot = header.keyslots[i]!;
        if (slot.state === 'active') anyActiveAtAll = true;
        if (slot.state !== 'active' || !slotAllowed(header, i, onlySlot)) continue;
        anyActive = true;
        const kek = await cachedKek(keks, kdfInput, slot);
        const mk = openKeyslot(kek, header.uuid, i, slot);
        if (!mk) continue;
        try {
          verifyHeaderMac(mk, header);
        } catch (e) {
          wipe(mk);
          if (!isVaultError(e, 'header-tampered')) throw e;
          tampered = e;
          failedMac.push(header);
          warnings.push(e.message);
          break; // this copy cannot be trusted; try the other copy
        }
        if (!header.reencrypt) return opened(header, mk, i);
        const newMasterKey = openKeyslot(kek, header.uuid, i, { ...slot, ...header.reencrypt.staged[i]! });
        if (!newMasterKey || !halvesDiffer(newMasterKey)) {
          wipe(mk);
          throw new VaultError('header-tampered', `keyslot ${i} does not open its staged new master key`, 'restore a header backup with `vault header restore`');
        }
        return opened(header, mk, i, newMasterKey);
      }
    }
  } finally {
    for (const k of keks.values()) wipe(k);
  }
  if (tampered) throw new VaultError('header-tampered', tampered.message, 'restore a header backup with `vault header restore`');
  if (!anyActive)
    throw new VaultError(
      'no-keyslot',
      typeof onlySlot === 'number'
        ? `keyslot ${onlySlot} is not active`
        : onlySlot === 'recovery'
          ? 'the container has no recovery key'
          : anyActiveAtAll
            ? 'the container has no keyslot for a passphrase or keyfile (only token slots)'
            : 'the container has no active keyslot',
      onlySlot === undefined && anyActiveAtAll ? 'unlock it with its TPM2 or FIDO2 token, or its recovery key' : undefined,
    );
  throw new VaultError('wrong-password', 'wrong passphrase or keyfile', 'check the passphrase and keyfiles, then try again');
}

async function cachedKek(cache: Map<string, Buffer>, input: Uint8Array, slot: ActiveKeyslot): Promise<Buffer> {
  const id = `${slot.salt.toString('hex')}:${slot.kdf.memoryKiB}:${slot.kdf.iterations}:${slot.kdf.parallelism}`;
  let kek = cache.get(id);
  if (!kek) {
    kek = await deriveKek(input, slot.salt, slot.kdf);
    cache.set(id, kek);
  }
  return kek;
}

/** A fresh header with a random UUID and every slot empty (random filler). */
export function newHeader(g: Geometry): Header {
  return {
    version: FORMAT_VERSION,
    sequence: 1n,
    uuid: uuidV4(),
    cipher: CIPHERS[0],
    sectorSize: g.sectorSize ?? DEFAULT_SECTOR_SIZE,
    dataOffset: g.dataOffset,
    dataSize: g.dataSize,
    copy: 0,
    keyslots: Array.from({ length: KEYSLOT_COUNT }, emptyKeyslot),
    mac: Buffer.alloc(32),
  };
}

function uuidV4(): Buffer {
  const u = randomBytes(16);
  u[6] = (u[6]! & 0x0f) | 0x40;
  u[8] = (u[8]! & 0x3f) | 0x80;
  return u;
}

export function formatUuid(u: Uint8Array): string {
  const h = Buffer.from(u).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Both copies of a header, serialised and MACed. */
export function sealHeaderCopies(header: Header, masterKey: Uint8Array): [Buffer, Buffer] {
  const copies = ([0, 1] as const).map((copy) => {
    const h = { ...header, copy };
    return serializeHeaderCopy(h, computeHeaderMac(masterKey, h));
  });
  return [copies[0]!, copies[1]!];
}

/**
 * Announces header-write step k on the `vault:header:write` diagnostics channel (1 = first copy,
 * 2 = first sync, 3 = second copy, 4 = second sync); the crash tests kill the process there.
 */
function writeStep(step: HeaderWriteStep['step']): void {
  if (headerWrite.hasSubscribers) headerWrite.publish({ step } satisfies HeaderWriteStep);
}

/**
 * Writes a changed header to both copies (spec §6 "Updating"): sequence + 1, the copy that was not
 * unlocked first (or the secondary on a tie), sync, then the other, sync.
 * `unlockedCopy` is the copy the change was based on.
 */
export function writeHeaderUpdate(c: ContainerFile, header: Header, masterKey: Uint8Array, unlockedCopy: CopyIndex): Header {
  if (c.readOnly) throw new VaultError('internal', 'container opened read-only');
  const copies = readHeaderCopies(c);
  const sequences = [copies.primary, copies.secondary].map((r) => (r.ok ? r.header.sequence : 0n));
  const next: Header = { ...header, sequence: (sequences[0]! > sequences[1]! ? sequences[0]! : sequences[1]!) + 1n };
  if (next.sequence <= header.sequence) next.sequence = header.sequence + 1n;
  const [primaryBytes, secondaryBytes] = sealHeaderCopies(next, masterKey);
  const first: CopyIndex = unlockedCopy === 0 ? 1 : 0;
  const order: [CopyIndex, Buffer][] =
    first === 1 ? [[1, secondaryBytes], [0, primaryBytes]] : [[0, primaryBytes], [1, secondaryBytes]];
  for (const [i, [copy, bytes]] of order.entries()) {
    writeStep(i === 0 ? 1 : 3);
    writeAllSync(c.fd, bytes, copy === 0 ? 0 : secondaryOffset(next));
    writeStep(i === 0 ? 2 : 4);
    fsyncSync(c.fd);
  }
  return { ...next, copy: unlockedCopy };
}

/** Writes both copies of a brand-new container's header (no ordering concerns: nothing to preserve). */
export function writeInitialHeaders(fd: number, header: Header, masterKey: Uint8Array): void {
  const [p, s] = sealHeaderCopies(header, masterKey);
  writeAllSync(fd, p, 0);
  writeAllSync(fd, s, secondaryOffset(header));
}

