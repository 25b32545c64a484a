/**
 * LUKS anti-forensic (AF) merge, as in cryptsetup lib/luks1/af.c and the LUKS1 on-disk format
 * specification §2.4: the key material is `stripes` blocks of key length; all but the last are
 * XORed together with a hash "diffusion" after each, and the result XORs the last block into the key.
 *
 * diffuse(d): for each hash-sized chunk j of d (the last one possibly shorter),
 *   chunk_j := H(BE32(j) || chunk_j) truncated to the chunk's length.
 */
import { createHash } from 'node:crypto';
import { wipe } from '../../crypto/wipe.js';

export const AF_STRIPES = 4000;
export type LuksHash = 'sha1' | 'sha256' | 'sha512';
export const LUKS_HASHES: readonly LuksHash[] = ['sha1', 'sha256', 'sha512'];
export const HASH_SIZE: Record<LuksHash, number> = { sha1: 20, sha256: 32, sha512: 64 };

/** Bytes of AF material for a key, rounded up to whole 512-byte sectors as stored on disk. */
export function afSplitBytes(keyLength: number, stripes = AF_STRIPES): number {
  return Math.ceil((keyLength * stripes) / 512) * 512;
}

function diffuse(block: Buffer, hash: LuksHash): void {
  const ds = HASH_SIZE[hash];
  const iv = Buffer.alloc(4);
  for (let j = 0, off = 0; off < block.length; j++, off += ds) {
    const chunk = block.subarray(off, Math.min(off + ds, block.length));
    iv.writeUInt32BE(j);
    const digest = createHash(hash).update(iv).update(chunk).digest();
    chunk.set(digest.subarray(0, chunk.length));
    wipe(digest);
  }
}

/** Merges `material` (at least keyLength × stripes bytes) into a new key buffer; the caller wipes it. */
export function afMerge(material: Uint8Array, keyLength: number, hash: LuksHash, stripes = AF_STRIPES): Buffer {
  if (material.length < keyLength * stripes) throw new RangeError('AF material is shorter than key length × stripes');
  const acc = Buffer.alloc(keyLength);
  for (let i = 0; i < stripes - 1; i++) {
    const stripe = material.subarray(i * keyLength, (i + 1) * keyLength);
    for (let b = 0; b < keyLength; b++) acc[b]! ^= stripe[b]!;
    diffuse(acc, hash);
  }
  const last = material.subarray((stripes - 1) * keyLength, stripes * keyLength);
  for (let b = 0; b < keyLength; b++) acc[b]! ^= last[b]!;
  return acc;
}
