/**
 * `vault mount`'s side of TPM2 and FIDO2 tokens (issue 19): its token options and PIN source.
 * PINs are read like passphrases (the terminal, or a line of standard input), never from an
 * argument or the environment. `vault enroll --tpm2 / --fido2` is enroll-device.ts: kept apart so
 * that `vault mount` does not load the enrolment code (volume/tokens.ts and its KDF) before it
 * launches the volume server (mount/lifecycle.ts).
 */
import type { Command } from 'commander';
import { VaultError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';
import type { MountOptions } from '../mount/lifecycle.js';
import { readStdinLines } from './passphrase.js';
import { promptPassphrase } from './tty-prompt.js';

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
