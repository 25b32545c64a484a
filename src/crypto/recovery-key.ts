/**
 * Recovery keys (spec/format.md §14.2): 32 random bytes shown once as 64 modhex characters in 8
 * groups of 8 (systemd-cryptenroll's alphabet and shape), accepted wherever a passphrase is asked.
 */
import { randomBytes } from 'node:crypto';
import { TOKEN_SECRET_SIZE } from '../format/constants.js';

const MODHEX = 'cbdefghijklnrtuv';

/** A new recovery key: its secret (the caller wipes it) and the text to show once. */
export function newRecoveryKey(): { secret: Buffer; text: string } {
  const secret = randomBytes(TOKEN_SECRET_SIZE);
  let hex = '';
  for (const b of secret) hex += MODHEX[b >> 4]! + MODHEX[b & 15]!;
  return { secret, text: hex.match(/.{8}/g)!.join('-') };
}

/**
 * The secret of typed input that is a recovery key (64 modhex characters once spaces and '-' are
 * removed, any case), or null. The caller wipes both.
 */
export function parseRecoveryKey(input: Uint8Array): Buffer | null {
  if (input.length < 64 || input.length > 128) return null;
  const digits: number[] = [];
  for (const c of input) {
    if (c === 0x20 || c === 0x2d) continue;
    const d = MODHEX.indexOf(String.fromCharCode(c | 0x20));
    if (d < 0 || c >= 0x80) return null;
    digits.push(d);
  }
  if (digits.length !== 2 * TOKEN_SECRET_SIZE) return null;
  const out = Buffer.alloc(TOKEN_SECRET_SIZE);
  for (let i = 0; i < TOKEN_SECRET_SIZE; i++) out[i] = (digits[2 * i]! << 4) | digits[2 * i + 1]!;
  digits.fill(0);
  return out;
}
