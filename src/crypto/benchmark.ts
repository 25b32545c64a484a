/**
 * What `vault benchmark` measures: XTS throughput of the native data path (the same code the
 * volume server runs), each direction, for AES and for each of VeraCrypt's algorithms beside
 * libgcrypt's own XTS through the same chain, and Argon2id time per memory size.
 */
import { randomBytes } from 'node:crypto';
import { KeyHandle } from './key-handle.js';
import { generateMasterKey } from './master-key.js';
import { xtsDecrypt, xtsEncrypt } from './xts.js';
import { type CipherChain, chainKeyBytes } from './cipher-chain.js';
import { libgcryptHas, libgcryptXts } from './cipher-probes.js';
import { timeArgon2 } from './calibrate.js';

export type XtsDirection = 'encrypt' | 'decrypt';

/** Bytes per second of `once` over a `size`-byte buffer (given the bytes done so far), on one thread, over ~`ms`. */
function throughput(key: KeyHandle, ms: number, once: (buf: Buffer, done: number) => void, size = 1 << 20): number {
  const buf = randomBytes(size);
  try {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      once(buf, bytes);
      bytes += buf.length;
    }
    return bytes / ((performance.now() - t0) / 1000);
  } finally {
    buf.fill(0);
    key.dispose();
  }
}

/**
 * Bytes per second of in-place XTS on one thread, over ~`ms` of work in calls of `callBytes`
 * (1 MiB unless given) (AES unless `cipher`).
 */
export function xtsThroughput(direction: XtsDirection, sectorSize: number, ms = 400, cipher?: CipherChain, callBytes = 1 << 20): number {
  const key = KeyHandle.fromBytes(cipher ? randomBytes(chainKeyBytes(cipher)) : generateMasterKey());
  const run = direction === 'encrypt' ? xtsEncrypt : xtsDecrypt;
  return throughput(key, ms, (buf, done) => run(key, buf, { sectorSize, firstTweak: BigInt(done / sectorSize), ...(cipher ? { cipher } : {}) }), callBytes);
}

/**
 * The reference for a chain: libgcrypt's own XTS, every cipher libgcrypt's (AES included), one
 * libgcrypt call per `unit`-byte data unit, one full pass per cipher in the chain's order
 * (decryption in reverse), in calls of `callBytes`, on one thread: the work vault's engine does,
 * on libgcrypt alone. Chains with Kuznyechik have none (libgcrypt 1.10 lacks the cipher).
 */
export function libgcryptXtsThroughput(direction: XtsDirection, chain: CipherChain, unit = 512, ms = 400, callBytes = 1 << 20): number {
  const key = KeyHandle.fromBytes(randomBytes(chainKeyBytes(chain)));
  return throughput(key, ms, (buf) => libgcryptXts(chain, key, buf, unit, direction), callBytes);
}

/** One row of the cipher table: vault's engine and libgcrypt's reference, each direction, in bytes per second. */
export interface ChainFigures {
  encrypt: number;
  decrypt: number;
  /** null: libgcrypt lacks one of the chain's ciphers (Kuznyechik). */
  libgcryptEncrypt: number | null;
  libgcryptDecrypt: number | null;
}

/**
 * `chain` at 512-byte data units, each direction, vault against libgcrypt in alternating rounds of
 * ~`ms` each (who goes first alternates too), the best of each kept, so that other load on the
 * machine favours neither side; 256 KiB per call, so that a slow cascade's round does not overrun
 * `ms` by a whole call. A chain without a reference is measured in one round.
 */
export function chainFigures(chain: CipherChain, ms: number, rounds: number): ChainFigures {
  const CALL = 256 << 10;
  const ref = libgcryptHas(chain);
  const best: ChainFigures = { encrypt: 0, decrypt: 0, libgcryptEncrypt: ref ? 0 : null, libgcryptDecrypt: ref ? 0 : null };
  for (let round = 0; round < (ref ? rounds : 1); round++) {
    for (const direction of ['encrypt', 'decrypt'] as const) {
      const mine = () => (best[direction] = Math.max(best[direction], xtsThroughput(direction, 512, ms, chain, CALL)));
      if (!ref) {
        mine();
        continue;
      }
      const field = direction === 'encrypt' ? 'libgcryptEncrypt' : 'libgcryptDecrypt';
      const theirs = () => (best[field] = Math.max(best[field] ?? 0, libgcryptXtsThroughput(direction, chain, 512, ms, CALL)));
      if (round % 2 === 0) {
        mine();
        theirs();
      } else {
        theirs();
        mine();
      }
    }
  }
  return best;
}

export async function argon2Time(memoryKiB: number, iterations: number, parallelism: number): Promise<number> {
  return timeArgon2({ memoryKiB, iterations, parallelism });
}
