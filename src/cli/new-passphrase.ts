/**
 * Choosing a new passphrase (create, passwd, keyslot add). On a terminal: typed twice; a mismatch
 * says so and asks again (3 tries, as cryptsetup does); a weak passphrase is explained and needs one
 * more "yes". From --password-stdin: a weak one gets the same explanation on stderr, and is used.
 * An empty passphrase is checked later, as before: refused unless keyfiles come with it.
 */
import { VaultError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';
import { warn } from './output.js';
import { estimateStrength, STRONG_SCORE, weaknessText } from './strength.js';
import { askOnTty } from './terminal.js';
import { promptPassphrase, sayOnTty } from './tty-prompt.js';

const TRIES = 3;

/**
 * The weakness of `passphrase`, or null when it is strong enough or keyfiles protect it too. The
 * bytes are in the child's pipe before the first await: the caller may wipe them once this returns.
 */
async function weakness(passphrase: Buffer, withKeyfiles: boolean): Promise<string | null> {
  if (withKeyfiles || passphrase.length === 0) return null;
  const s = await estimateStrength(passphrase);
  return s.score < STRONG_SCORE ? weaknessText(s) : null;
}

/**
 * --password-stdin: starts the estimate of a new passphrase (it runs while the command derives keys
 * and writes; the caller may wipe the passphrase at once) and returns what prints its warning, if
 * any, when the command is done. Never asks; never fails the command.
 */
export function weaknessWarning(passphrase: Buffer, withKeyfiles: boolean): () => Promise<void> {
  // weakness() never throws at once (an async function): any failure ends up in this catch.
  const pending = weakness(passphrase, withKeyfiles).catch((e: unknown) => `could not estimate the new passphrase's strength: ${(e as Error).message}`);
  return async () => {
    const w = await pending;
    if (w) warn(w);
  };
}

/** Asks for a new passphrase on the terminal, twice, with retries and the strength check. */
export async function askNewPassphrase(question: string, withKeyfiles: boolean): Promise<Buffer> {
  for (let mismatches = 0; ; ) {
    const pw = promptPassphrase(question);
    let again: Buffer | null = null;
    try {
      again = promptPassphrase('Repeat passphrase: ');
      if (!pw.equals(again)) {
        if (++mismatches >= TRIES) throw new VaultError('usage', 'the passphrases do not match', 'type the same passphrase twice');
        sayOnTty('Passphrases do not match.\n');
        wipe(pw);
        continue;
      }
      const w = await weakness(pw, withKeyfiles);
      if (w && !(await useAnyway(w))) {
        wipe(pw);
        continue;
      }
      return pw;
    } catch (e) {
      wipe(pw);
      throw e;
    } finally {
      wipe(again);
    }
  }
}

async function useAnyway(weaknessLine: string): Promise<boolean> {
  sayOnTty(`Warning: ${weaknessLine}\n`);
  const { default: confirm } = await import('@inquirer/confirm'); // loaded only to ask: keeps start-up short
  return askOnTty((context) => confirm({ message: 'Use it anyway?', default: false }, context));
}
