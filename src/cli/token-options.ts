/**
 * The command-line side of TPM2 and FIDO2 tokens (issue 19): `vault mount`'s token options and PIN
 * source, and `vault enroll --tpm2 / --fido2`. PINs are read like passphrases (the terminal, or a
 * line of standard input), never from an argument or the environment.
 */
import type { Command } from 'commander';
import { VaultError } from '../errors.js';
import { TOKEN_SECRET_SIZE } from '../format/constants.js';
import { TPM2_PCR_COUNT } from '../token/tpm2.js';
import { wipe } from '../crypto/wipe.js';
import type { MountOptions } from '../mount/lifecycle.js';
import { enrollToken, planEnrolment } from '../volume/tokens.js';
import { readStdinLines } from './passphrase.js';
import { promptPassphrase } from './tty-prompt.js';
import type { Unlocked } from './unlock.js';
import { randomBytes } from 'node:crypto';

export interface MountTokenCli {
  tokens: boolean; // commander's --no-tokens
  tokenOnly?: boolean;
  tokenPinStdin?: boolean;
  passwordStdin?: boolean;
  tpm2Device?: string;
  fido2Device?: string;
}

export function addMountTokenOptions(cmd: Command): Command {
  return cmd
    .option('--no-tokens', "do not try the container's tokens (vault: TPM2, FIDO2; LUKS2: systemd-tpm2, systemd-fido2); ask for the passphrase")
    .option('--token-only', 'unlock only with a token (vault: TPM2, FIDO2; LUKS2: systemd-tpm2, systemd-fido2), never a passphrase; exit 3 when none unlocks')
    .option('--token-pin-stdin', "read a token's PIN from standard input (one line), instead of the terminal")
    .option('--tpm2-device <tcti>', 'the TPM, as a tpm2-tss TCTI (e.g. swtpm:host=localhost,port=2321); default: tpm2-tss searches /dev/tpmrm0, then a simulator')
    .option('--fido2-device <device>', 'the FIDO2 security key: a /dev/hidraw path or unix:<socket>; default: the first one found');
}

const PIN_NAMES = { tpm2: 'TPM2 PIN', fido2: 'security key PIN' } as const;

/** What mountVolume needs to try tokens: which, where, and a PIN source (stdin once, or the terminal). */
export function mountTokens(o: MountTokenCli, note: (m: string) => void): NonNullable<MountOptions['tokens']> {
  if (o.tokenOnly && !o.tokens) throw new VaultError('usage', '--token-only and --no-tokens contradict each other');
  if (o.tokenPinStdin && o.passwordStdin) throw new VaultError('usage', '--token-pin-stdin and --password-stdin both read standard input: give one');
  let stdinPin: Buffer | null | undefined;
  const pin = async (kind: 'tpm2' | 'fido2'): Promise<Buffer | null> => {
    if (o.tokenPinStdin) {
      stdinPin ??= readStdinLines(1)[0]!;
      return Buffer.from(stdinPin);
    }
    if (o.passwordStdin) return null; // stdin holds the passphrase; no terminal prompt in a script
    try {
      return promptPassphrase(`${PIN_NAMES[kind]}: `);
    } catch {
      return null; // no terminal
    }
  };
  return {
    use: !o.tokens ? 'never' : o.tokenOnly ? 'only' : 'auto',
    ...(o.tpm2Device !== undefined ? { tpm2Device: o.tpm2Device } : {}),
    ...(o.fido2Device !== undefined ? { fido2Device: o.fido2Device } : {}),
    pin,
    note,
    dispose: () => {
      if (stdinPin) wipe(stdinPin);
    },
  };
}

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
