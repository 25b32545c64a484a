/**
 * The header fuzzer's cases and properties (issue 6; test/FUZZING.md explains them). One case:
 * draw a mutation (header-mutations.ts), check the parser on each mutated copy, write the copies
 * into a real container file, and run the full open + unlock path on it. Properties:
 *
 * - nothing but a VaultError with an expected code ever escapes the parser or the unlock path;
 * - nothing hangs: each unlock is raced against a timeout, each case is timed;
 * - key derivation never runs with parameters outside spec §3 (every argon2 call is checked), and
 *   memory stays bounded over the run (sampled RSS and heap);
 * - the parser accepts only canonical bytes (re-serialising reproduces bytes 0–4031 exactly), so
 *   the MAC, computed over the re-serialised header, covers exactly what is on disk;
 * - a header's MAC verifies under a master key iff bytes 0–4063 are exactly a copy its key holder
 *   wrote at that position; an unlock succeeds only with that key holder's secret, and returns a
 *   copy byte-identical to one it wrote (a whole authentic copy of another container unlocks that
 *   container, with its own passphrase: that is not tampering);
 * - with the right secret, a container with one copy untouched and its size unchanged still opens,
 *   unless the other copy is valid and names another container (copies-disagree, spec §6).
 *
 * No vitest here: the unit test and the standalone runner (run.ts) share it.
 */
import { closeSync, copyFileSync, ftruncateSync, openSync } from 'node:fs';
import path from 'node:path';
import { VaultError, type ErrorCode } from '../../src/errors.js';
import { HEADER_SIZE, KDF_BOUNDS, OFF } from '../../src/format/constants.js';
import { headerChecksum, parseHeaderCopy, serializeHeaderBody } from '../../src/format/header.js';
import { containerFileSize } from '../../src/format/layout.js';
import type { Header, KdfParams } from '../../src/format/types.js';
import { argon2Backend, buildKdfInput } from '../../src/crypto/kdf.js';
import { createKeyslot } from '../../src/crypto/keyslot.js';
import { generateMasterKey, verifyHeaderMac } from '../../src/crypto/master-key.js';
import { newHeader, unlockContainer, writeInitialHeaders } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { readAtSync, writeAllSync } from '../../src/volume/fd-io.js';
import { Prng, describeMutation, generateMutation, mutateCopy, targetsOf, type BaseInfo, type Mutation } from './header-mutations.js';

/** The cheapest parameters spec §3 allows: thousands of unlocks per minute. */
export const MIN_KDF = { memoryKiB: KDF_BOUNDS.memoryKiB.min, iterations: 1, parallelism: 1 };
/**
 * Mutations can leave a slot with parameters inside the spec bounds but far costlier than the
 * base's (4 GiB is allowed). The fuzzer declines those derivations (memory × passes above this,
 * in KiB) and counts the case as such: the spec allows the cost, and the AAD binds the parameters,
 * so such a slot cannot unlock anyway.
 */
export const KDF_BUDGET_KIB_PASSES = 64 * 1024;
export const CASE_TIMEOUT_MS = 10_000;

const PARSE_CODES = new Set<ErrorCode>(['truncated', 'not-a-container', 'unsupported-version', 'checksum-mismatch', 'unsupported-feature', 'invalid-field', 'kdf-bounds']);
const UNLOCK_CODES = new Set<ErrorCode>([...PARSE_CODES, 'headers-damaged', 'header-tampered', 'copies-disagree', 'wrong-password', 'no-keyslot']);

export interface Base extends BaseInfo {
  name: string;
  file: string;
  fd: number;
  mk: Buffer;
  /** The KDF input (spec §4.2) that opens each active slot. */
  secrets: Map<number, Buffer>;
}

function fixChecksum(b: Buffer): void {
  headerChecksum(b).copy(b, OFF.checksum);
}

async function freshBase(dir: string, name: string, sectorSize: 512 | 4096, dataSize: number, slots: [number, Buffer, KdfParams][]): Promise<Base> {
  const mk = generateMasterKey();
  const header = newHeader({ sectorSize, dataOffset: 1 << 20, dataSize });
  const secrets = new Map<number, Buffer>();
  for (const [i, input, kdf] of slots) {
    header.keyslots[i] = await createKeyslot(input, mk, header.uuid, i, kdf);
    secrets.set(i, input);
  }
  const file = path.join(dir, name);
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, containerFileSize(header));
  writeInitialHeaders(fd, header, mk);
  closeSync(fd);
  return loadBase(file, name, mk, secrets);
}

function loadBase(file: string, name: string, mk: Buffer, secrets: Map<number, Buffer>): Base {
  const fd = openSync(file, 'r+');
  const primary = readAtSync(fd, HEADER_SIZE, 0);
  const h = parseHeaderCopy(primary, 0);
  const fileSize = containerFileSize(h);
  const secondary = readAtSync(fd, HEADER_SIZE, fileSize - HEADER_SIZE);
  return { name, file, fd, mk, secrets, copies: [primary, secondary], fileSize, activeSlots: [...secrets.keys()] };
}

/**
 * The bases: the committed v1 fixtures (copied, never modified in place) and fresh containers with
 * several slots, a keyfile, non-UTF-8 and NUL bytes in a passphrase, and both sector sizes.
 */
export async function makeBases(dir: string, fixtureDir: string): Promise<Base[]> {
  const bases: Base[] = [];
  for (const [f, pw] of [['v1-4096.vol', 'vault fixture v1'], ['v1-512.vol', 'vault fixture v1 (512)']] as const) {
    const file = path.join(dir, f);
    copyFileSync(path.join(fixtureDir, f), file);
    const input = buildKdfInput(Buffer.from(pw));
    const c = openContainer(file, true);
    const r = await unlockContainer(c, input);
    closeContainer(c);
    bases.push(loadBase(file, f, Buffer.from(r.masterKey), new Map([[0, input]])));
  }
  bases.push(
    await freshBase(dir, 'fresh-multi.vol', 4096, 64 * 4096, [
      [0, buildKdfInput(Buffer.from('alpha')), MIN_KDF],
      [3, buildKdfInput(Buffer.from([0xce, 0xb2, 0x00, 0xff, 0xf0, 0x9f, 0x94, 0x91])), { ...MIN_KDF, iterations: 2 }],
      [7, buildKdfInput(Buffer.from('k'), [Buffer.from('a keyfile')]), { ...MIN_KDF, memoryKiB: 1032, parallelism: 2 }],
    ]),
    await freshBase(dir, 'fresh-512.vol', 512, 3 * 512, [[5, buildKdfInput(Buffer.from('five')), MIN_KDF]]),
  );
  return bases;
}

export function closeBases(bases: Base[]): void {
  for (const b of bases) closeSync(b.fd);
}

/** Thrown by the instrumented argon2 when a derivation exceeds the fuzz budget (not a failure). */
class KdfBudgetExceeded extends Error {}

export interface Stats {
  cases: number;
  classes: Map<string, number>;
  derivations: number;
  violations: string[];
  slowestCaseMs: number;
  rssStart: number;
  rssPeak: number;
  heapStart: number;
  heapPeak: number;
}

export interface FuzzContext {
  seed: string;
  bases: Base[];
  stats: Stats;
  /** The case being run, so the argon2 hook can name it. */
  current: string;
}

const count = (s: Stats, k: string) => s.classes.set(k, (s.classes.get(k) ?? 0) + 1);

function violation(ctx: FuzzContext, what: string): void {
  const msg = `property violated at seed=${ctx.seed} ${ctx.current}: ${what}`;
  ctx.stats.violations.push(msg);
}

/**
 * Routes every Argon2 derivation (argon2Backend, src/crypto/kdf.ts) through a check: parameters
 * inside spec §3 (else a violation: the bounds must refuse first), and within the fuzz budget
 * (else the case is declined).
 */
export function instrumentArgon2(ctx: FuzzContext): () => void {
  const real = argon2Backend.derive;
  argon2Backend.derive = (variant, password, salt, p, out, secret, ad) => {
    const b = KDF_BOUNDS;
    if (p.memoryKiB < b.memoryKiB.min || p.memoryKiB > b.memoryKiB.max || p.iterations < b.iterations.min || p.iterations > b.iterations.max ||
      p.parallelism < b.parallelism.min || p.parallelism > b.parallelism.max)
      violation(ctx, `argon2 called with out-of-bounds parameters m=${p.memoryKiB} t=${p.iterations} p=${p.parallelism}`);
    if (p.memoryKiB * p.iterations > KDF_BUDGET_KIB_PASSES) return Promise.reject(new KdfBudgetExceeded());
    ctx.stats.derivations++;
    return real.call(argon2Backend, variant, password, salt, p, out, secret, ad);
  };
  return () => {
    argon2Backend.derive = real;
  };
}

export function newStats(): Stats {
  const m = process.memoryUsage();
  return { cases: 0, classes: new Map(), derivations: 0, violations: [], slowestCaseMs: 0, rssStart: m.rss, rssPeak: m.rss, heapStart: m.heapUsed, heapPeak: m.heapUsed };
}

/** The secret a case tries: usually a right one, sometimes a near miss or another container's. */
function chooseSecret(rng: Prng, base: Base, m: Mutation, bases: Base[]): { input: Buffer; label: string } {
  if ((m.kind === 'foreign-slot' || m.kind === 'foreign-copy') && rng.chance(0.5)) {
    const donor = bases[m.donor]!;
    const slot = m.kind === 'foreign-slot' && donor.secrets.has(m.slot) ? m.slot : rng.pick(donor.activeSlots);
    return { input: donor.secrets.get(slot)!, label: `base ${m.donor}'s secret for slot ${slot}` };
  }
  const slot = rng.pick(base.activeSlots);
  const right = base.secrets.get(slot)!;
  if (rng.chance(0.85)) return { input: right, label: `the right secret for slot ${slot}` };
  const how = rng.int(3);
  const near = how === 0 ? Buffer.from(right.map((x, i) => (i === right.length - 1 ? x ^ 1 : x))) : how === 1 ? Buffer.concat([right, Buffer.from([0x20])]) : right.subarray(0, right.length - 1);
  return { input: near.length ? near : Buffer.from([0]), label: `a near miss of slot ${slot}'s secret` };
}

/** Parser properties on one mutated copy; returns its outcome class. */
function checkParse(ctx: FuzzContext, buf: Buffer, copy: 0 | 1): string {
  let h: Header;
  try {
    h = parseHeaderCopy(buf, copy);
  } catch (e) {
    if (e instanceof VaultError && PARSE_CODES.has(e.code)) return `parse refused: ${e.code}`;
    violation(ctx, `parser threw ${e instanceof VaultError ? `VaultError ${e.code}` : String(e)}`);
    return 'parse: untyped error';
  }
  let body: Buffer;
  try {
    body = serializeHeaderBody(h);
  } catch (e) {
    violation(ctx, `an accepted header does not re-serialise: ${String(e)}`);
    return 'parse: accepted, not serialisable';
  }
  if (!body.equals(buf.subarray(0, OFF.mac))) violation(ctx, 'the parser accepted a non-canonical encoding (re-serialised bytes differ)');
  if (h.copy !== copy) violation(ctx, `accepted copy index ${h.copy} at position ${copy}`);
  for (const s of h.keyslots) {
    if (s.state !== 'active') continue;
    const k = s.kdf;
    if (k.memoryKiB < KDF_BOUNDS.memoryKiB.min || k.memoryKiB > KDF_BOUNDS.memoryKiB.max || k.iterations < 1 || k.iterations > 64 || k.parallelism < 1 || k.parallelism > 16)
      violation(ctx, `accepted out-of-bounds KDF parameters ${JSON.stringify(k)}`);
  }
  // The MAC verifies under a base's key iff these are exactly the bytes that base wrote here.
  let authentic = false;
  for (const b of ctx.bases) {
    const wrote = b.copies[copy].subarray(0, OFF.checksum).equals(buf.subarray(0, OFF.checksum));
    let macOk = true;
    try {
      verifyHeaderMac(b.mk, h);
    } catch (e) {
      if (!(e instanceof VaultError && e.code === 'header-tampered')) violation(ctx, `MAC check threw ${String(e)}`);
      macOk = false;
    }
    if (macOk !== wrote) violation(ctx, macOk ? `MAC of ${b.name} verified changed header bytes` : `MAC of ${b.name} rejected its own header`);
    authentic ||= wrote;
  }
  return authentic ? 'parse accepted: authentic copy' : 'parse accepted: forged (MAC fails under every key)';
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`unlock did not finish within ${ms} ms (hang)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Runs case `index` of the context's seed; every outcome is counted, every violation recorded. */
export async function runCase(ctx: FuzzContext, index: number): Promise<void> {
  const started = performance.now();
  const rng = new Prng(ctx.seed, index);
  const bi = rng.int(ctx.bases.length);
  const base = ctx.bases[bi]!;
  const m = generateMutation(rng, base, ctx.bases.length, bi);
  const secret = chooseSecret(rng, base, m, ctx.bases);
  ctx.current = `case=${index} base=${base.name}: ${describeMutation(m)}; trying ${secret.label}`;
  const donors = ctx.bases.map((b) => b.copies);
  const stats = ctx.stats;
  count(stats, `mutation ${m.kind}`);

  // 1. the parser, on each mutated copy (truncated and extended buffers included)
  const written: (Buffer | null)[] = [null, null];
  const parserCopies: (0 | 1)[] = m.kind === 'truncate' || m.kind === 'extend' ? [0] : targetsOf(m);
  for (const copy of parserCopies) {
    const buf = mutateCopy(m, base.copies, copy, donors, fixChecksum);
    count(stats, checkParse(ctx, buf, copy));
    if (buf.length === HEADER_SIZE) written[copy] = buf;
  }

  // 2. the full path: the mutated copies (or the file cut or grown) in a real container file
  const secondaryAt = base.fileSize - HEADER_SIZE;
  if (written[0]) writeAllSync(base.fd, written[0], 0);
  if (written[1]) writeAllSync(base.fd, written[1], secondaryAt);
  if (m.kind === 'truncate') ftruncateSync(base.fd, m.fileLength);
  if (m.kind === 'extend') writeAllSync(base.fd, m.extra, base.fileSize);
  const untouched = ([0, 1] as const).some((i) => !written[i] || written[i]!.equals(base.copies[i]));
  const rightSecret = base.activeSlots.some((s) => base.secrets.get(s)!.equals(secret.input));
  try {
    const outcome = await unlockOutcome(ctx, base, secret.input);
    count(stats, outcome.label);
    if (outcome.ok) {
      const { header, masterKey, slot } = outcome.ok;
      const owner = ctx.bases.find((b) => b.mk.equals(masterKey));
      if (!owner) violation(ctx, 'unlocked a master key no base has');
      else {
        const onDisk = Buffer.concat([serializeHeaderBody(header), header.mac]);
        if (!onDisk.equals(owner.copies[header.copy].subarray(0, OFF.checksum))) violation(ctx, `unlocked a ${header.copy === 0 ? 'primary' : 'secondary'} copy that differs from what ${owner.name}'s key holder wrote`);
        if (!owner.secrets.get(slot)?.equals(secret.input)) violation(ctx, `unlocked slot ${slot} of ${owner.name} with a secret that is not its own`);
      }
      if (m.kind === 'truncate') violation(ctx, 'unlocked a truncated container');
    } else if (outcome.label === 'unlock refused: copies-disagree') {
      if (!namesTwoContainers(base, written)) violation(ctx, 'copies-disagree reported although the valid copies name one container');
    } else if (rightSecret && untouched && m.kind !== 'truncate' && outcome.label !== 'unlock declined: in-bounds KDF above the fuzz budget')
      violation(ctx, `the right secret failed (${outcome.label}) although a copy was untouched and the size unchanged`);
  } finally {
    // 3. restore the base for the next case
    if (m.kind === 'truncate' || m.kind === 'extend') ftruncateSync(base.fd, base.fileSize);
    writeAllSync(base.fd, base.copies[0], 0);
    writeAllSync(base.fd, base.copies[1], secondaryAt);
  }
  const ms = performance.now() - started;
  stats.cases++;
  if (ms > stats.slowestCaseMs) stats.slowestCaseMs = ms;
  if ((stats.cases & 255) === 0) sampleMemory(stats);
}

/**
 * Whether the copies on disk are both valid and carry different uuids: spec §6 "Agreement" then
 * refuses the container before any key derivation, even with one copy untouched (the only
 * exception to availability; a mutation cannot make an authentic copy disagree, the MAC forbids it).
 */
function namesTwoContainers(base: Base, written: (Buffer | null)[]): boolean {
  try {
    const [p, s] = ([0, 1] as const).map((i) => parseHeaderCopy(written[i] ?? base.copies[i], i));
    return !p!.uuid.equals(s!.uuid);
  } catch {
    return false;
  }
}

export function sampleMemory(stats: Stats): void {
  const m = process.memoryUsage();
  stats.rssPeak = Math.max(stats.rssPeak, m.rss);
  stats.heapPeak = Math.max(stats.heapPeak, m.heapUsed);
}

type UnlockOutcome = { label: string; ok?: { header: Header; masterKey: Buffer; slot: number } };

async function unlockOutcome(ctx: FuzzContext, base: Base, input: Buffer): Promise<UnlockOutcome> {
  let c;
  try {
    c = openContainer(base.file, true);
  } catch (e) {
    if (e instanceof VaultError && UNLOCK_CODES.has(e.code)) return { label: `open refused: ${e.code}` };
    violation(ctx, `open threw ${String(e)}`);
    return { label: 'open: untyped error' };
  }
  try {
    // unlockContainer never keeps the input; pass a copy so the bases' secrets survive any wipe
    const r = await withTimeout(unlockContainer(c, Buffer.from(input)), CASE_TIMEOUT_MS);
    const masterKey = Buffer.from(r.masterKey);
    r.masterKey.fill(0);
    return { label: `unlocked ${r.header.copy === 0 ? 'primary' : 'secondary'}`, ok: { header: r.header, masterKey, slot: r.slot } };
  } catch (e) {
    if (e instanceof KdfBudgetExceeded) return { label: 'unlock declined: in-bounds KDF above the fuzz budget' };
    if (e instanceof VaultError && UNLOCK_CODES.has(e.code)) return { label: `unlock refused: ${e.code}` };
    violation(ctx, `unlock threw ${e instanceof VaultError ? `VaultError ${e.code}: ${e.message}` : String(e)}`);
    return { label: 'unlock: untyped error' };
  } finally {
    closeContainer(c);
  }
}

export interface FuzzRun {
  seed: string;
  from: number;
  cases: number;
  /** Called as each case starts (the runner's watchdog watches it). */
  onCase?: (index: number) => void;
  onProgress?: (done: number, stats: Stats) => void;
}

/** Runs cases [from, from + cases) of a seed over the given bases. */
export async function runFuzz(bases: Base[], o: FuzzRun): Promise<Stats> {
  const ctx: FuzzContext = { seed: o.seed, bases, stats: newStats(), current: '' };
  const restore = instrumentArgon2(ctx);
  try {
    for (let i = o.from; i < o.from + o.cases; i++) {
      o.onCase?.(i);
      await runCase(ctx, i);
      if (o.onProgress && (i - o.from + 1) % 1000 === 0) o.onProgress(i - o.from + 1, ctx.stats);
    }
  } finally {
    restore();
  }
  sampleMemory(ctx.stats);
  return ctx.stats;
}
