/**
 * The header-key derivations VeraCrypt and TrueCrypt use, and the PIM formulas. The header does
 * not say which one made it, so the adapter tries them all (concurrently: PBKDF2 runs on the libuv
 * threadpool through node:crypto, Argon2id in the argon2 package's native worker).
 *
 * Sources: cryptsetup lib/tcrypt/tcrypt.c (table tcrypt_kdf and TCRYPT_init_hdr, which also gives
 * VeraCrypt 1.26.27's Argon2id parameters and PIM mapping) and VeraCrypt Common/Pkcs5.c
 * (get_pkcs5_iteration_count). Not supported: Whirlpool and Streebog (no implementation in
 * node:crypto) and the boot-loader (system encryption) counts.
 */
import { pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { argon2id } from '../../crypto/kdf.js';

const pbkdf2Async = promisify(pbkdf2);

export type Flavour = 'veracrypt' | 'truecrypt';

export type KdfCandidate =
  | { kind: 'pbkdf2'; flavour: Flavour; label: string; digest: string; iterations: number }
  | { kind: 'argon2id'; flavour: Flavour; label: string; memoryKiB: number; iterations: number; parallelism: number };

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

/** VeraCrypt ≥ 1.26.27 Argon2id: PIM 0 means 12; up to 31, memory grows; above, passes grow at 1 GiB. */
export function argon2Params(pim: number): { memoryKiB: number; iterations: number; parallelism: number } {
  const p = pim === 0 ? 12 : pim;
  if (p <= 31) return { memoryKiB: 1024 * (64 + (p - 1) * 32), iterations: Math.floor((p - 1) / 3) + 3, parallelism: 1 };
  return { memoryKiB: 1024 * 1024, iterations: p - 18, parallelism: 1 };
}

/**
 * Every derivation to try, cheapest and most common first (the threadpool runs them in this
 * order). With a PIM other than 0 only VeraCrypt's derivations apply: TrueCrypt had no PIM.
 */
export function kdfCandidates(pim = 0): KdfCandidate[] {
  const it = pbkdf2Iterations(pim);
  const a = argon2Params(pim);
  const vc: KdfCandidate[] = [
    { kind: 'pbkdf2', flavour: 'veracrypt', label: 'PBKDF2-HMAC-SHA-512', digest: 'sha512', iterations: it },
    { kind: 'pbkdf2', flavour: 'veracrypt', label: 'PBKDF2-HMAC-SHA-256', digest: 'sha256', iterations: it },
    { kind: 'pbkdf2', flavour: 'veracrypt', label: 'PBKDF2-HMAC-BLAKE2s-256', digest: 'blake2s256', iterations: it },
    { kind: 'argon2id', flavour: 'veracrypt', label: 'Argon2id', ...a },
    // VeraCrypt before 1.26 only; its count is not the SHA one (Pkcs5.c: 655331, or 15000 + 1000·PIM).
    { kind: 'pbkdf2', flavour: 'veracrypt', label: 'PBKDF2-HMAC-RIPEMD-160', digest: 'ripemd160', iterations: pim === 0 ? 655_331 : it },
  ];
  if (pim !== 0) return vc;
  const tc: KdfCandidate[] = [
    { kind: 'pbkdf2', flavour: 'truecrypt', label: 'PBKDF2-HMAC-SHA-512', digest: 'sha512', iterations: 1000 },
    { kind: 'pbkdf2', flavour: 'truecrypt', label: 'PBKDF2-HMAC-RIPEMD-160', digest: 'ripemd160', iterations: 2000 },
  ];
  return [vc[0]!, ...tc, ...vc.slice(1)];
}

/**
 * The header key for one candidate: PBKDF2 gives 64 bytes, or 192 with `full`; Argon2id always
 * gives 192 (see FULL_HEADER_KEY_BYTES). The caller wipes it.
 */
export async function deriveHeaderKey(k: KdfCandidate, password: Buffer, salt: Buffer, full = false): Promise<Buffer> {
  if (k.kind === 'pbkdf2') return pbkdf2Async(password, salt, k.iterations, full ? FULL_HEADER_KEY_BYTES : XTS_KEY_BYTES, k.digest);
  return argon2id(password, salt, k, FULL_HEADER_KEY_BYTES);
}

/** One line for `vault info`. */
export function describeKdf(k: KdfCandidate): string {
  return k.kind === 'pbkdf2'
    ? `${k.label}, ${k.iterations} iterations`
    : `Argon2id, ${k.memoryKiB / 1024} MiB, ${k.iterations} passes, ${k.parallelism} lane${k.parallelism === 1 ? '' : 's'}`;
}
