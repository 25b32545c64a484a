/**
 * The header-key derivations VeraCrypt and TrueCrypt use, and the PIM formulas. The header does
 * not say which one made it, so the adapter tries them all, concurrently, and stops the others at
 * the first header that opens: every derivation runs in vault's native code (native/kdf.c) on the
 * libuv threadpool, and reads a cancel flag while it runs (KdfAbort). PBKDF2 is vault's own loop
 * over OpenSSL's or libgcrypt's HMAC, which can also derive any range of output blocks alone;
 * Argon2id is libgcrypt's, run segment by segment.
 *
 * Sources: VeraCrypt Common/Pkcs5.c (get_pkcs5_iteration_count: normal and boot (system) counts,
 * with and without PIM; TrueCrypt mode), Volume/Pkcs5Kdf.cpp (GetAvailableAlgorithms: the order
 * VeraCrypt tries them in), cryptsetup lib/tcrypt/tcrypt.c (table tcrypt_kdf, and TCRYPT_init_hdr,
 * which also gives VeraCrypt 1.26.27's Argon2id parameters and PIM mapping). TrueCrypt's
 * HMAC-SHA-1 (2000 iterations) made only volumes of TrueCrypt before 5.0 (LRW/CBC).
 */
import { nativeAddon } from '../../crypto/native.js';
import type { Prf } from './prf.js';

export type Flavour = 'veracrypt' | 'truecrypt';

/** The hash as native pbkdf2Async names it (node:crypto's names, and libgcrypt's for Streebog). */
export type Digest = 'sha1' | 'sha512' | 'sha256' | 'blake2s256' | 'ripemd160' | 'whirlpool' | 'streebog512';

/** Bytes of each digest: PBKDF2's output block. */
export const DIGEST_BYTES: Readonly<Record<Digest, number>> = {
  sha1: 20, sha512: 64, sha256: 32, blake2s256: 32, ripemd160: 20, whirlpool: 64, streebog512: 64,
};

export type KdfCandidate =
  | { kind: 'pbkdf2'; flavour: Flavour; prf: Prf; label: string; digest: Digest; iterations: number }
  | { kind: 'argon2id'; flavour: Flavour; prf: 'argon2id'; label: string; memoryKiB: number; iterations: number; parallelism: number };

/**
 * Bytes of header key: AES-256-XTS takes the first 64 (key 1, then key 2), and so does any single
 * cipher; a cascade of n ciphers takes 64·n (all primary keys first). VeraCrypt derives 192 for
 * every volume (Crypto.h GetMaxPkcs5OutSize). PBKDF2's output blocks T_i are independent (RFC 8018
 * §5.2: T_i depends only on the password, the salt, i and the count), so the first 64 bytes of a
 * 192-byte derivation are the 64-byte derivation, and each further block costs a whole iteration
 * count: the adapter derives the blocks covering 64 bytes first (firstPassBytes), tries the single
 * ciphers, and only if none opened derives the blocks after them (deriveRest) to try the cascades.
 * Argon2's output depends on its length, so Argon2id always derives all 192.
 */
export const XTS_KEY_BYTES = 64;
export const FULL_HEADER_KEY_BYTES = 192;

/**
 * Stops the derivations it is passed to while they run: the native PBKDF2 loop reads the flag
 * every 1024 iterations (a few ms at most), Argon2id before each segment (a quarter of a pass;
 * libgcrypt's zeroing of the whole memory first cannot be interrupted). A stopped derivation
 * rejects (isCancelled) and leaves no key bytes behind.
 */
export class KdfAbort {
  /** Read by the threadpool threads: a SharedArrayBuffer, which never moves. */
  readonly flag = new Uint8Array(new SharedArrayBuffer(1));
  abort(): void {
    Atomics.store(this.flag, 0, 1);
  }
  get aborted(): boolean {
    return Atomics.load(this.flag, 0) !== 0;
  }
}

export function isCancelled(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ERR_VAULT_CANCELLED';
}

/** VeraCrypt's PBKDF2 iterations for a non-system volume: 500000, or 15000 + 1000·PIM. */
export function pbkdf2Iterations(pim: number): number {
  return pim === 0 ? 500_000 : 15_000 + pim * 1000;
}

/**
 * VeraCrypt's count for a PRF (Pkcs5.c get_pkcs5_iteration_count). System encryption (`boot`):
 * SHA-256, BLAKE2s and Streebog 200000, RIPEMD-160 327661, or 2048·PIM; SHA-512 and Whirlpool as
 * for a normal volume. RIPEMD-160 (VeraCrypt before 1.26) counts 655331 without a PIM.
 */
export function veracryptIterations(prf: Exclude<Prf, 'argon2id'>, pim: number, boot: boolean): number {
  if (prf === 'sha512' || prf === 'whirlpool') return pbkdf2Iterations(pim);
  if (boot) return pim === 0 ? (prf === 'ripemd160' ? 327_661 : 200_000) : pim * 2048;
  return pim === 0 && prf === 'ripemd160' ? 655_331 : pbkdf2Iterations(pim);
}

/** VeraCrypt ≥ 1.26.27 Argon2id: PIM 0 means 12; up to 31, memory grows; above, passes grow at 1 GiB. */
export function argon2Params(pim: number): { memoryKiB: number; iterations: number; parallelism: number } {
  const p = pim === 0 ? 12 : pim;
  if (p <= 31) return { memoryKiB: 1024 * (64 + (p - 1) * 32), iterations: Math.floor((p - 1) / 3) + 3, parallelism: 1 };
  return { memoryKiB: 1024 * 1024, iterations: p - 18, parallelism: 1 };
}

const DIGEST: Record<Exclude<Prf, 'argon2id'>, Digest> = {
  sha512: 'sha512', whirlpool: 'whirlpool', sha256: 'sha256', blake2s: 'blake2s256', streebog: 'streebog512', ripemd160: 'ripemd160', sha1: 'sha1',
};
const LABEL: Record<Prf, string> = {
  sha512: 'PBKDF2-HMAC-SHA-512', whirlpool: 'PBKDF2-HMAC-Whirlpool', sha256: 'PBKDF2-HMAC-SHA-256', blake2s: 'PBKDF2-HMAC-BLAKE2s-256',
  streebog: 'PBKDF2-HMAC-Streebog-512', argon2id: 'Argon2id', ripemd160: 'PBKDF2-HMAC-RIPEMD-160', sha1: 'PBKDF2-HMAC-SHA-1',
};

function pbkdf2Candidate(flavour: Flavour, prf: Exclude<Prf, 'argon2id'>, iterations: number): KdfCandidate {
  return { kind: 'pbkdf2', flavour, prf, label: LABEL[prf], digest: DIGEST[prf], iterations };
}

export interface KdfSelection {
  /** VeraCrypt PIM; other than 0 it rules TrueCrypt out (TrueCrypt had none). */
  pim?: number;
  /** System encryption: the boot counts (and no Argon2id, which VeraCrypt's boot loader lacks). */
  system?: boolean;
  /** Only this PRF (`--hash`). */
  prf?: Prf;
  /** Only this program's derivations (`--type truecrypt`). */
  flavour?: Flavour;
}

/**
 * Every derivation to try, in the order VeraCrypt tries them on Linux and macOS (Volume/Pkcs5Kdf.cpp,
 * GetAvailableAlgorithms: SHA-512, SHA-256, BLAKE2s, Whirlpool, Streebog, Argon2id), then
 * RIPEMD-160 (VeraCrypt before 1.26), with TrueCrypt's cheap counts (RIPEMD-160 2000, or 1000 for
 * system; SHA-512 and Whirlpool 1000) right after VeraCrypt's default SHA-512. The adapter runs
 * them in this order within each pass (adapter.ts derivationPlan).
 */
export function kdfCandidates(s: KdfSelection = {}): KdfCandidate[] {
  const pim = s.pim ?? 0;
  const boot = s.system === true;
  const vc = (prf: Exclude<Prf, 'argon2id'>) => pbkdf2Candidate('veracrypt', prf, veracryptIterations(prf, pim, boot));
  const a = argon2Params(pim);
  const tc: KdfCandidate[] = pim !== 0 ? [] : [
    pbkdf2Candidate('truecrypt', 'sha512', 1000),
    pbkdf2Candidate('truecrypt', 'ripemd160', boot ? 1000 : 2000),
    pbkdf2Candidate('truecrypt', 'whirlpool', 1000),
    // TrueCrypt before 5.0 only (LRW/CBC volumes, spec/interop.md §2.9); no boot loader used it.
    ...(boot ? [] : [pbkdf2Candidate('truecrypt', 'sha1', 2000)]),
  ];
  const all: KdfCandidate[] = [
    vc('sha512'),
    ...tc,
    vc('sha256'),
    vc('blake2s'),
    vc('whirlpool'),
    vc('streebog'),
    ...(boot ? [] : [{ kind: 'argon2id', flavour: 'veracrypt', prf: 'argon2id', label: LABEL.argon2id, ...a } as const]),
    vc('ripemd160'),
  ];
  return all.filter((k) => (s.prf === undefined || k.prf === s.prf) && (s.flavour === undefined || k.flavour === s.flavour));
}

/** Bytes of the first pass: the whole PBKDF2 blocks that cover a single cipher's 64 bytes. */
export function firstPassBytes(k: KdfCandidate): number {
  if (k.kind === 'argon2id') return FULL_HEADER_KEY_BYTES;
  const block = DIGEST_BYTES[k.digest];
  return Math.ceil(XTS_KEY_BYTES / block) * block;
}

/**
 * The header key for one candidate: PBKDF2's first pass (firstPassBytes: 64 bytes, 80 for the
 * 20-byte digests), or 192 with `full`; Argon2id always gives 192. The caller wipes it.
 */
export async function deriveHeaderKey(k: KdfCandidate, password: Buffer, salt: Buffer, full = false, abort?: KdfAbort): Promise<Buffer> {
  if (k.kind === 'argon2id') return argon2idNative(password, salt, k, FULL_HEADER_KEY_BYTES, abort);
  return pbkdf2Native(k.digest, password, salt, k.iterations, full ? FULL_HEADER_KEY_BYTES : firstPassBytes(k), { abort });
}

/**
 * The whole 192-byte PBKDF2 header key, given its first pass `first` (deriveHeaderKey without
 * `full`): only the blocks after it are derived. The caller wipes both.
 */
export async function deriveRest(k: KdfCandidate & { kind: 'pbkdf2' }, password: Buffer, salt: Buffer, first: Buffer, abort?: KdfAbort): Promise<Buffer> {
  const block = DIGEST_BYTES[k.digest];
  if (first.length % block !== 0 || first.length >= FULL_HEADER_KEY_BYTES) throw new RangeError('deriveRest: the first pass must be whole blocks short of 192 bytes');
  const rest = await pbkdf2Native(k.digest, password, salt, k.iterations, FULL_HEADER_KEY_BYTES - first.length, { firstBlock: first.length / block + 1, abort });
  const key = Buffer.alloc(FULL_HEADER_KEY_BYTES);
  first.copy(key);
  rest.copy(key, first.length);
  rest.fill(0);
  return key;
}

/**
 * PBKDF2-HMAC in native code, on the libuv threadpool: `length` bytes of output starting at block
 * `firstBlock` (1-based, RFC 8018's T_i; so firstBlock 2 of SHA-512 is bytes 64.. of the whole
 * derivation). The result is wiped if it fails or is cancelled.
 */
export async function pbkdf2Native(
  digest: Digest, password: Buffer, salt: Buffer, iterations: number, length: number, o: { firstBlock?: number; abort?: KdfAbort } = {},
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  try {
    await nativeAddon().pbkdf2Async(digest, password, salt, iterations, out, o.firstBlock ?? 1, o.abort?.flag ?? null);
  } catch (e) {
    out.fill(0);
    throw e;
  }
  return out;
}

/** Argon2id (version 0x13) through libgcrypt, stoppable between segments; wiped if it fails. */
export async function argon2idNative(
  password: Buffer, salt: Buffer, p: { memoryKiB: number; iterations: number; parallelism: number }, length: number, abort?: KdfAbort,
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  try {
    await nativeAddon().argon2idAsync(password, salt, p.memoryKiB, p.iterations, p.parallelism, out, abort?.flag ?? null);
  } catch (e) {
    out.fill(0);
    throw e;
  }
  return out;
}

/** One line for `vault info`. */
export function describeKdf(k: KdfCandidate): string {
  return k.kind === 'pbkdf2'
    ? `${k.label}, ${k.iterations} iterations`
    : `Argon2id, ${k.memoryKiB / 1024} MiB, ${k.iterations} passes, ${k.parallelism} lane${k.parallelism === 1 ? '' : 's'}`;
}

/** What was tried, for an error: "PBKDF2-HMAC-SHA-512 (500000 and TrueCrypt's 1000), ...". */
export function describeTried(ks: KdfCandidate[]): string {
  const byLabel = new Map<string, string[]>();
  for (const k of ks) {
    const what = k.kind === 'argon2id' ? `${k.memoryKiB / 1024} MiB, ${k.iterations} passes` : `${k.flavour === 'truecrypt' ? 'TrueCrypt ' : ''}${k.iterations}`;
    byLabel.set(k.label, [...(byLabel.get(k.label) ?? []), what]);
  }
  return [...byLabel].map(([l, w]) => `${l} (${w.join(', ')})`).join(', ');
}
