/**
 * Gathers what unlocks a volume: the passphrase (prompt or --password-stdin) and keyfiles, turned
 * into the KDF input of spec §4.2. All pieces are wiped once combined.
 */
import { closeSync } from 'node:fs';
import { VaultError } from '../errors.js';
import { MAX_KEYFILE_SIZE, buildKdfInput } from '../crypto/kdf.js';
import { wipe } from '../crypto/wipe.js';
import type { KeyfilePolicy, UnlockSecret } from '../formats/types.js';
import { openRegularFile, readHead } from '../system/safe-open.js';
import { readStdinLines } from './passphrase.js';
import { promptPassphrase } from './tty-prompt.js';

export interface SecretOptions {
  passwordStdin?: boolean;
  keyfile?: string[];
}

export function readKeyfile(file: string): Buffer {
  return readKeyfileWith(file, { maxBytes: MAX_KEYFILE_SIZE, prefix: false });
}

/**
 * Reads a keyfile the way a format uses it: the whole file up to `maxBytes`, or (`prefix`, as
 * VeraCrypt does) only its first `maxBytes` bytes of a file of any size. Empty files are refused.
 */
export function readKeyfileWith(file: string, policy: KeyfilePolicy): Buffer {
  const { fd, size } = openRegularFile(file, 'keyfile');
  try {
    if (size === 0 || (size > policy.maxBytes && !policy.prefix))
      throw new VaultError('usage', `keyfile ${file} is ${size} bytes; a keyfile must be 1 byte to ${sizeText(policy.maxBytes)}`);
    return readHead(fd, Math.min(size, policy.maxBytes));
  } finally {
    closeSync(fd);
  }
}

function sizeText(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
}

/** Reads `count` existing passphrases: from stdin (one per line) or from the terminal. */
export function readPassphrases(o: SecretOptions, prompts: string[]): Buffer[] {
  if (o.passwordStdin) return readStdinLines(prompts.length);
  const out: Buffer[] = [];
  try {
    for (const q of prompts) out.push(promptPassphrase(q));
    return out;
  } catch (e) {
    wipe(...out);
    throw e;
  }
}

/** The new-passphrase prompts and strength check, loaded by the commands that set one (not by mount). */
const newPassphrase = () => import('./new-passphrase.js');

/** What prints the strength warning of a new passphrase from stdin once the command is done. */
export type WarnWeak = () => Promise<void>;
const nothingToSay: WarnWeak = async () => {};

/** A new passphrase: one line of stdin (estimated meanwhile), or asked twice on the terminal. */
async function readNewPassphrase(o: SecretOptions, question: string, withKeyfiles: boolean): Promise<{ pw: Buffer; warnWeak: WarnWeak }> {
  const { askNewPassphrase, weaknessWarning } = await newPassphrase();
  if (!o.passwordStdin) return { pw: await askNewPassphrase(question, withKeyfiles), warnWeak: nothingToSay };
  const [pw] = readStdinLines(1);
  return { pw: pw!, warnWeak: weaknessWarning(pw!, withKeyfiles) };
}

/** The KDF input for one secret: passphrase (possibly empty when keyfiles are given) plus keyfiles. */
export function kdfInputFrom(passphrase: Buffer, keyfilePaths: readonly string[] = []): Buffer {
  const keyfiles: Buffer[] = [];
  try {
    // Read inside the try: a keyfile that fails must not leave the passphrase or the others unwiped.
    for (const p of keyfilePaths) keyfiles.push(readKeyfile(p));
    return buildKdfInput(passphrase, keyfiles);
  } finally {
    wipe(passphrase, ...keyfiles);
  }
}

const withNone = (prompt: string, keyfiles?: string[]) => (keyfiles?.length ? prompt.replace(/: $/, ' (empty if none): ') : prompt);

/** Reads one existing passphrase (and the keyfiles) and returns the KDF input. */
export function gatherKdfInput(o: SecretOptions, prompt = 'Passphrase: '): Buffer {
  const [pw] = readPassphrases(o, [withNone(prompt, o.keyfile)]);
  return kdfInputFrom(pw!, o.keyfile);
}

/**
 * Reads a new passphrase (twice on a terminal, strength-checked) and the keyfiles: the KDF input,
 * and what prints a weak --password-stdin passphrase's warning when the command is done.
 */
export async function gatherNewKdfInput(o: SecretOptions): Promise<{ input: Buffer; warnWeak: WarnWeak }> {
  const { pw, warnWeak } = await readNewPassphrase(o, withNone('New passphrase: ', o.keyfile), (o.keyfile?.length ?? 0) > 0);
  return { input: kdfInputFrom(pw, o.keyfile), warnWeak };
}

/**
 * The passphrase and the keyfiles, kept apart (UnlockSecret) for formats that combine them their
 * own way; keyfiles are read as `policy` says. The caller wipes both (unlockVolume does).
 */
export function gatherSecret(o: SecretOptions, policy: KeyfilePolicy): UnlockSecret {
  const paths = o.keyfile ?? [];
  const [passphrase] = readPassphrases(o, [withNone('Passphrase: ', paths)]);
  const keyfiles: Buffer[] = [];
  try {
    for (const p of paths) keyfiles.push(readKeyfileWith(p, policy));
  } catch (e) {
    wipe(passphrase, ...keyfiles);
    throw e;
  }
  return { passphrase: passphrase!, keyfiles };
}

/**
 * An existing secret and a new one, for passwd and keyslot add: two lines on --password-stdin, or
 * two prompts (the new one asked twice). Keyfiles: --keyfile for the existing, --new-keyfile for the new.
 */
export async function gatherOldAndNew(o: SecretOptions & { newKeyfile?: string[] }): Promise<{ oldInput: Buffer; newInput: Buffer; warnWeak: WarnWeak }> {
  // Everything read so far is wiped if a later step fails (a prompt interrupted, a keyfile
  // missing); on success kdfInputFrom has wiped the passphrases and the caller owns the inputs.
  const held: Buffer[] = [];
  const keep = (b: Buffer): Buffer => (held.push(b), b);
  const newWithKeyfiles = (o.newKeyfile?.length ?? 0) > 0;
  try {
    const { askNewPassphrase, weaknessWarning } = await newPassphrase();
    let oldPw: Buffer, newPw: Buffer;
    let warnWeak = nothingToSay;
    if (o.passwordStdin) {
      [oldPw, newPw] = readPassphrases(o, ['', '']).map(keep) as [Buffer, Buffer];
      warnWeak = weaknessWarning(newPw, newWithKeyfiles);
    } else {
      oldPw = keep(readPassphrases(o, [withNone('Existing passphrase: ', o.keyfile)])[0]!);
      newPw = keep(await askNewPassphrase(withNone('New passphrase: ', o.newKeyfile), newWithKeyfiles));
    }
    const oldInput = keep(kdfInputFrom(oldPw, o.keyfile));
    return { oldInput, newInput: kdfInputFrom(newPw, o.newKeyfile), warnWeak };
  } catch (e) {
    wipe(...held);
    throw e;
  }
}

/**
 * mount --protect-hidden: the outer volume's secret and the hidden volume's, from two lines of
 * stdin (outer first) or two prompts. Keyfiles: --keyfile for the outer, `hiddenKeyfiles` for the
 * hidden one. The caller wipes both (unlockVolume does).
 */
export function gatherOuterAndHidden(o: SecretOptions, policy: KeyfilePolicy, hiddenKeyfiles: readonly string[] = []): [UnlockSecret, UnlockSecret] {
  const [outer, hidden] = readPassphrases(o, [withNone('Outer volume passphrase: ', o.keyfile), withNone('Hidden volume passphrase (to protect it): ', [...hiddenKeyfiles])]) as [Buffer, Buffer];
  const keyfiles: Buffer[][] = [[], []];
  try {
    for (const p of o.keyfile ?? []) keyfiles[0]!.push(readKeyfileWith(p, policy));
    for (const p of hiddenKeyfiles) keyfiles[1]!.push(readKeyfileWith(p, policy));
  } catch (e) {
    wipe(outer, hidden, ...keyfiles.flat());
    throw e;
  }
  return [{ passphrase: outer, keyfiles: keyfiles[0]! }, { passphrase: hidden, keyfiles: keyfiles[1]! }];
}
