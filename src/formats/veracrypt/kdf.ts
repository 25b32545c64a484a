/**
 * The header-key derivations VeraCrypt and TrueCrypt use, and the PIM formulas. The header does
 * not say which one made it, so the adapter tries them all (concurrently: PBKDF2 runs on the libuv
 * threadpool, through node:crypto for the hashes OpenSSL has and through libgcrypt for Whirlpool
 * and Streebog (native/kdf_gcrypt.c); Argon2id in the argon2 package's native worker).
 *
 * Sources: VeraCrypt Common/Pkcs5.c (get_pkcs5_iteration_count: normal and boot (system) counts,
 * with and without PIM; TrueCrypt mode), cryptsetup lib/tcrypt/tcrypt.c (table tcrypt_kdf, and
 * TCRYPT_init_hdr, which also gives VeraCrypt 1.26.27's Argon2id parameters and PIM mapping).
 * TrueCrypt's HMAC-SHA-1 (2000 iterations) made only volumes of TrueCrypt before 5.0 (LRW/CBC).
 */
import { pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { argon2id } from '../../crypto/kdf.js';
import { nativeAddon } from '../../crypto/native.js';
import type { Prf } from './prf.js';

const pbkdf2Async = promisify(pbkdf2);

export type Flavour = 'veracrypt' | 'truecrypt';

/** The hash as node:crypto names it, or as native pbkdf2Async does for the libgcrypt-only ones. */
export type Digest = 'sha1' | 'sha512' | 'sha256' | 'blake2s256' | 'ripemd160' | 'whirlpool' | 'streebog512';

export type KdfCandidate =
  | { kind: 'pbkdf2'; flavour: Flavour; prf: Prf; label: string; digest: Digest; iterations: number }
  | { kind: 'argon2id'; flavour: Flavour; prf: 'argon2id'; label: string; memoryKiB: number; iterations: number; parallelism: number };

/** Hashes node:crypto (Node's OpenSSL, default provider) lacks: derived through libgcrypt. */
const GCRYPT_ONLY: ReadonlySet<Digest> = new Set(['whirlpool', 'streebog512']);

/**
 * Bytes of header key: AES-256-XTS takes the first 64 (key 1, then key 2), and so does any single
 * cipher. VeraCrypt derives 192 (Crypto.h GetMaxPkcs5OutSize: a three-cipher cascade's primary and
 * secondary keys). PBKDF2's output blocks are independent, so its first 64 bytes are the same
 * either way and each further block costs a full iteration count: vault derives 64 first and the
 * full 192 only to name a cascade (cascadeWorthDeriving). Argon2's output depends on its length,
 * so Argon2id always derives all 192.
 */
export const XTS_KEY_BYTES = 64;
export const FULL_HEADER_KEY_BYTES = 192;

/**
 * Whether a wrong-looking PBKDF2 candidate is worth re-deriving at 192 bytes to recognise a
 * cascade. That costs 3 (SHA-512) to 10 (RIPEMD-160) full iteration counts; measured at the
 * default 500000 iterations on one core: SHA-512 1.1 s, SHA-256 0.8 s, BLAKE2s 2.3 s,
 * RIPEMD-160 (655331) 5 s, per header tried, on every wrong password. So: VeraCrypt's default PRF
 * SHA-512 and SHA-256 always, the slow ones only at low counts (a small PIM, TrueCrypt's counts).
 */
export function cascadeWorthDeriving(k: KdfCandidate): boolean {
  if (k.kind !== 'pbkdf2') return false; // Argon2id already derived all 192 bytes
  return k.digest === 'sha512' || k.digest === 'sha256' || k.iterations <= 100_000;
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
 * Every derivation to try. VeraCrypt's own order (its PRF ids: SHA-512, Whirlpool, SHA-256,
 * BLAKE2s, Streebog, then Argon2id; RIPEMD-160 last, dropped in VeraCrypt 1.26), with TrueCrypt's
 * cheap counts (RIPEMD-160 2000, or 1000 for system; SHA-512 and Whirlpool 1000) right after
 * VeraCrypt's default SHA-512: the threadpool starts them in this order.
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
    vc('whirlpool'),
    vc('sha256'),
    vc('blake2s'),
    vc('streebog'),
    ...(boot ? [] : [{ kind: 'argon2id', flavour: 'veracrypt', prf: 'argon2id', label: LABEL.argon2id, ...a } as const]),
    vc('ripemd160'),
  ];
  return all.filter((k) => (s.prf === undefined || k.prf === s.prf) && (s.flavour === undefined || k.flavour === s.flavour));
}

/**
 * The header key for one candidate: PBKDF2 gives 64 bytes, or 192 with `full`; Argon2id always
 * gives 192 (see FULL_HEADER_KEY_BYTES). The caller wipes it.
 */
export async function deriveHeaderKey(k: KdfCandidate, password: Buffer, salt: Buffer, full = false): Promise<Buffer> {
  if (k.kind === 'argon2id') return argon2id(password, salt, k, FULL_HEADER_KEY_BYTES);
  const length = full ? FULL_HEADER_KEY_BYTES : XTS_KEY_BYTES;
  if (!GCRYPT_ONLY.has(k.digest)) return pbkdf2Async(password, salt, k.iterations, length, k.digest);
  return pbkdf2Gcrypt(k.digest, password, salt, k.iterations, length);
}

/** PBKDF2-HMAC through libgcrypt, on the libuv threadpool; the result is wiped if it fails. */
export async function pbkdf2Gcrypt(digest: Digest, password: Buffer, salt: Buffer, iterations: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  try {
    await nativeAddon().pbkdf2Async(digest, password, salt, iterations, out);
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
