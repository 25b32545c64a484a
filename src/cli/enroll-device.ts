/**
 * `vault enroll --tpm2 / --fido2` on the command line (issue 19): its options, the PCR list, the
 * new PIN (asked twice, or the second line of standard input), and the enrolment itself. PINs are
 * read like passphrases, never from an argument or the environment.
 */
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { VaultError } from '../errors.js';
import { TOKEN_SECRET_SIZE } from '../format/constants.js';
import { TPM2_PCR_COUNT } from '../token/tpm2.js';
import { wipe } from '../crypto/wipe.js';
import { enrollToken, planEnrolment } from '../volume/tokens.js';
import { promptPassphrase } from './tty-prompt.js';
import type { Unlocked } from './unlock.js';

export interface EnrollDeviceCli {
  tpm2?: boolean;
  tpm2Device?: string;
  tpm2Pcrs?: string;
  tpm2Pin?: boolean;
  fido2?: boolean;
  fido2Device?: string;
  fido2Uv?: boolean;
  fido2Pin?: boolean;
  passwordStdin?: boolean;
}

export function addEnrollDeviceOptions(cmd: Command): Command {
  return cmd
    .option('--tpm2', 'add a keyslot whose secret the TPM seals under a PCR policy')
    .option('--tpm2-device <tcti>', 'the TPM, as a tpm2-tss TCTI; default: tpm2-tss searches /dev/tpmrm0, then a simulator')
    .option('--tpm2-pcrs <pcrs>', "PCRs of the sha256 bank the secret is bound to, '+' or ',' between them (default: 7, the Secure Boot state); '' for none")
    .option('--tpm2-pin', 'also require a PIN (asked twice; with --password-stdin the second line)')
    .option('--fido2', "add a keyslot whose secret is a FIDO2 security key's hmac-secret")
    .option('--fido2-device <device>', 'the security key: a /dev/hidraw path or unix:<socket>; default: the first one found')
    .option('--fido2-uv', 'require user verification (the key checks a PIN or fingerprint itself)')
    .option('--fido2-pin', "require the security key's PIN (asked; with --password-stdin the second line)");
}

/** "7+11", "7,11" or "" (none) into PCR numbers of the sha256 bank; absent: 7 (the Secure Boot state). */
export function parsePcrs(v: string | undefined): number[] {
  if (v === undefined) return [7];
  if (v.trim() === '') return [];
  return v.split(/[+,]/).map((p) => {
    if (!/^\s*\d{1,2}\s*$/.test(p) || Number(p) >= TPM2_PCR_COUNT)
      throw new VaultError('usage', `--tpm2-pcrs: "${p}" is not a PCR number`, `give numbers 0 to ${TPM2_PCR_COUNT - 1} joined by '+', e.g. 7+11`);
    return Number(p);
  });
}

/** A PIN for enrolment: the second line of stdin, or asked twice on the terminal. */
function newPin(o: EnrollDeviceCli, stdinPin: Buffer | undefined, what: string): Buffer {
  if (o.passwordStdin) {
    if (!stdinPin || stdinPin.length === 0) throw new VaultError('usage', `${what}: give the PIN on the second line of standard input`);
    return Buffer.from(stdinPin);
  }
  const a = promptPassphrase(`New ${what}: `);
  const b = promptPassphrase(`New ${what} again: `);
  try {
    if (a.length === 0 || !a.equals(b)) throw new VaultError('usage', `the two ${what}s differ or are empty`);
    return Buffer.from(a);
  } finally {
    wipe(a, b);
  }
}

/** `vault enroll --tpm2 / --fido2`: the device gives (or seals) a secret, which opens a new keyslot with its token. */
export async function enrollDevice(kind: 'tpm2' | 'fido2', x: Unlocked, o: EnrollDeviceCli, stdinPin: Buffer | undefined): Promise<{ slot: number }> {
  if (kind === 'tpm2') {
    const pcrs = parsePcrs(o.tpm2Pcrs);
    const { tpm2Seal } = await import('../token/tpm2.js');
    const pin = o.tpm2Pin ? newPin(o, stdinPin, 'TPM2 PIN') : undefined;
    const secret = randomBytes(TOKEN_SECRET_SIZE);
    try {
      const sealed = await tpm2Seal(secret, { tcti: o.tpm2Device ?? null, pcrs, ...(pin ? { pin } : {}) });
      return await enrollToken(x.c, x.u, secret, { type: 'tpm2', ...sealed });
    } finally {
      wipe(secret, ...(pin ? [pin] : []));
    }
  }
  const { fido2Enroll } = await import('../token/fido2.js');
  // Refuse a full header before the key is asked for a touch.
  planEnrolment(x.u.header, { type: 'fido2', up: true, uv: !!o.fido2Uv, pin: !!o.fido2Pin, rpId: 'io.vault', credentialId: Buffer.alloc(255), salt: Buffer.alloc(32) });
  const pin = o.fido2Pin ? (o.passwordStdin ? newPin(o, stdinPin, 'security key PIN') : promptPassphrase('Security key PIN: ')) : undefined;
  let secret: Buffer | undefined;
  try {
    const e = await fido2Enroll({ ...(o.fido2Device !== undefined ? { device: o.fido2Device } : {}), uv: !!o.fido2Uv, ...(pin ? { pin } : {}) });
    secret = e.secret;
    return await enrollToken(x.c, x.u, e.secret, { type: 'fido2', up: true, uv: e.uv, pin: e.pin, rpId: e.rpId, credentialId: e.credentialId, salt: e.salt });
  } finally {
    wipe(...(secret ? [secret] : []), ...(pin ? [pin] : []));
  }
}
