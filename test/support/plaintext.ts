/**
 * The SHA-256 of a vault container's decrypted data area, computed from spec/format.md §8 alone with
 * node:crypto (no project code): sector i is AES-256-XTS with tweak i; a stored sector of all-zero
 * bytes reads as zeros. Tests compare it before and after operations that rewrite the data area.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function plaintextSha256(file: string, masterKeyHex: string, sectorSize: number, dataOffset = 1 << 20): string {
  const bytes = readFileSync(file);
  const key = Buffer.from(masterKeyHex.trim(), 'hex');
  const end = bytes.length - 4096;
  const zero = Buffer.alloc(sectorSize);
  const hash = createHash('sha256');
  for (let at = dataOffset, i = 0; at < end; at += sectorSize, i++) {
    const c = bytes.subarray(at, at + sectorSize);
    if (c.equals(zero)) {
      hash.update(zero);
      continue;
    }
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(BigInt(i));
    const d = createDecipheriv('aes-256-xts', key, iv);
    hash.update(d.update(c));
    hash.update(d.final());
  }
  return hash.digest('hex');
}
