/**
 * `vault enroll`: recovery keys, TPM2 and FIDO2 token keyslots, and `--wipe-slot` (spec/format.md
 * §14), as systemd-cryptenroll does for LUKS2. Every change needs an existing secret (passphrase,
 * keyfile or recovery key) and is one header update.
 */
import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { KEYSLOT_COUNT } from '../../format/constants.js';
import { newRecoveryKey } from '../../crypto/recovery-key.js';
import { wipe } from '../../crypto/wipe.js';
import { enrollToken, wipeSlots, type WipeTarget } from '../../volume/tokens.js';
import { info } from '../output.js';
import { gatherKdfInput, kdfInputFrom, readPassphrases } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { unlockOpened, withVaultContainer, type Unlocked } from '../unlock.js';
import { addEnrollDeviceOptions, enrollDevice, parsePcrs, type EnrollDeviceCli } from '../enroll-device.js';

interface EnrollOptions extends EnrollDeviceCli {
  recoveryKey?: boolean;
  wipeSlot?: string;
  passwordStdin?: boolean;
  keyfile?: string[];
}

export function parseWipeTarget(v: string): WipeTarget {
  if (v === 'tpm2' || v === 'fido2' || v === 'recovery') return v;
  if (/^\d+$/.test(v) && Number(v) < KEYSLOT_COUNT) return Number(v);
  throw new VaultError('usage', `--wipe-slot takes a keyslot number (0 to ${KEYSLOT_COUNT - 1}), tpm2, fido2 or recovery; got "${v}"`);
}

type Action = 'recovery' | 'tpm2' | 'fido2' | 'wipe';

/** Exactly one thing to do per run, as with systemd-cryptenroll. */
function action(o: EnrollOptions): Action {
  const chosen = [o.recoveryKey && 'recovery', o.tpm2 && 'tpm2', o.fido2 && 'fido2', o.wipeSlot !== undefined && 'wipe'].filter(Boolean) as Action[];
  if (chosen.length !== 1) throw new VaultError('usage', 'give exactly one of --recovery-key, --tpm2, --fido2 or --wipe-slot');
  const a = chosen[0]!;
  const stray = [
    a !== 'tpm2' && (o.tpm2Device !== undefined || o.tpm2Pcrs !== undefined || o.tpm2Pin) && '--tpm2-*',
    a !== 'fido2' && (o.fido2Device !== undefined || o.fido2Uv || o.fido2Pin) && '--fido2-*',
  ].filter(Boolean);
  if (stray.length) throw new VaultError('usage', `${stray.join(' and ')} options apply only with ${stray.map((s) => String(s).slice(0, -2)).join(' and ')}`);
  if (a === 'tpm2') parsePcrs(o.tpm2Pcrs); // a bad list is refused before the passphrase is asked
  return a;
}

/** The existing secret's KDF input and, with --password-stdin and a PIN to set, the PIN's line. */
function existingSecret(o: EnrollOptions, wantsPin: boolean): { input: Buffer; pin?: Buffer } {
  const prompt = 'Current passphrase (or recovery key): ';
  if (!(o.passwordStdin && wantsPin)) return { input: gatherKdfInput(o, prompt) };
  const [pw, pin] = readPassphrases(o, [prompt, 'PIN: ']);
  try {
    return { input: kdfInputFrom(pw!, o.keyfile), pin: pin! };
  } finally {
    wipe(pw!);
  }
}

async function enrollRecoveryKey(x: Unlocked): Promise<void> {
  const key = newRecoveryKey();
  try {
    const r = await enrollToken(x.c, x.u, key.secret, { type: 'recovery' });
    // The key alone on stdout (a script captures it); the words around it on stderr.
    process.stderr.write(`vault: added a recovery key in keyslot ${r.slot}; it is shown once, below: write it down or keep it somewhere safe\n`);
    process.stdout.write(`${key.text}\n`);
  } finally {
    wipe(key.secret);
  }
}

export function registerEnroll(program: Command): void {
  const cmd = program
    .command('enroll <container>')
    .description('add a recovery key, a TPM2 or a FIDO2 token keyslot, or wipe keyslots and their tokens; needs an existing passphrase, keyfile or recovery key')
    .option('--recovery-key', 'add a keyslot for a random recovery key, printed once (accepted wherever a passphrase is asked)')
    .option('--wipe-slot <which>', 'remove keyslots: a number, or every tpm2, fido2 or recovery slot; refused if nothing would be left to open the container');
  addEnrollDeviceOptions(cmd);
  withSecretOptions(cmd).action(async (container: string, o: EnrollOptions) => {
    const what = action(o);
    const target = what === 'wipe' ? parseWipeTarget(o.wipeSlot!) : undefined;
    await withVaultContainer(container, 'vault enroll', false, async (c) => {
      const { input, pin } = existingSecret(o, (what === 'tpm2' && !!o.tpm2Pin) || (what === 'fido2' && !!o.fido2Pin));
      try {
        const x = await unlockOpened(c, input);
        try {
          if (target !== undefined) {
            const removed = wipeSlots(x.c, x.u, target);
            info(`removed keyslot${removed.length > 1 ? 's' : ''} ${removed.join(', ')}`);
          } else if (what === 'recovery') await enrollRecoveryKey(x);
          else info(`added a ${what.toUpperCase()} token in keyslot ${(await enrollDevice(what as 'tpm2' | 'fido2', x, o, pin)).slot}`);
        } finally {
          x.close();
        }
      } finally {
        wipe(input, ...(pin ? [pin] : []));
      }
    });
  });
}
