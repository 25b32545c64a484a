/**
 * `vault create --type veracrypt`: a file-hosted VeraCrypt volume (src/formats/veracrypt/create.ts),
 * with an optional hidden volume (`--hidden-size`), each formatted through the normal mount path
 * like a vault container (format-new.ts). Its options: create-veracrypt-options.ts.
 */
import { closeSync } from 'node:fs';
import { VaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import { finishContainer, removePartial, removeStalePartials, type Target } from '../../volume/create.js';
import { formatThroughMount } from '../format-new.js';
import type { VeraCryptCreateOptions } from './create-veracrypt-options.js';
import type { RouteChoice } from '../../mount/route.js';
import type { FsType } from '../../mount/filesystem.js';
import { newVolumeAsUnlocked, writeNewVeraCrypt, type NewVeraCrypt } from '../../formats/veracrypt/create.js';
import { creationKdf } from '../../formats/veracrypt/create-kdf.js';
import { AES_XTS, veracryptName } from '../../crypto/cipher-chain.js';
import { newVolumeLayout } from '../../formats/veracrypt/new-layout.js';
import { KEYFILE_MAX_READ, mixKeyfiles } from '../../formats/veracrypt/keyfiles.js';
import { readKeyfileWith } from '../secrets.js';
import { readStdinLines } from '../passphrase.js';
import { askNewPassphrase, weaknessWarning } from '../new-passphrase.js';
import { info, progress, warn } from '../output.js';
import { abortOnSignals } from '../signals.js';

/** Checks the VeraCrypt options before anything is asked or written. */
export function checkVeraCryptOptions(o: VeraCryptCreateOptions, fs: string): void {
  creationKdf(o.hash, o.pim ?? 0); // refuses an unknown --hash
  if (o.hiddenSize !== undefined && fs === 'ext4')
    throw new VaultError(
      'usage',
      'an outer volume with a hidden volume cannot hold ext4: ext4 spreads its metadata over the whole volume, so formatting the hidden volume would destroy the outer filesystem (and writing the outer one would destroy the hidden volume)',
      'use --fs vfat or --fs exfat for the outer volume, as VeraCrypt does',
    );
  if (o.hiddenSize === undefined && (o.hiddenFs !== undefined || o.hiddenKeyfile !== undefined))
    throw new VaultError('usage', '--hidden-fs and --hidden-keyfile apply only with --hidden-size');
}

/** A new password (stdin line or asked twice), mixed with its keyfiles as VeraCrypt's KDF sees it. */
function mixed(pw: Buffer, keyfilePaths: readonly string[] = []): Buffer {
  const keyfiles: Buffer[] = [];
  try {
    for (const p of keyfilePaths) keyfiles.push(readKeyfileWith(p, { maxBytes: KEYFILE_MAX_READ, prefix: true }));
    if (pw.length === 0 && keyfiles.length === 0) throw new VaultError('usage', 'the password is empty', 'give a password, keyfiles, or both');
    return mixKeyfiles(pw, keyfiles);
  } finally {
    wipe(pw, ...keyfiles);
  }
}

async function readPasswords(o: VeraCryptCreateOptions): Promise<{ outer: Buffer; hidden: Buffer | null; warnWeak: () => Promise<void> }> {
  const withHidden = o.hiddenSize !== undefined;
  // Everything read or mixed so far is wiped if a later step fails (a prompt interrupted, a
  // keyfile missing); mixed() wipes the raw passphrase it is given.
  const held: Buffer[] = [];
  const keep = (b: Buffer): Buffer => (held.push(b), b);
  try {
    let raw: Buffer[];
    if (o.passwordStdin) raw = readStdinLines(withHidden ? 2 : 1).map(keep);
    else {
      raw = [keep(await askNewPassphrase('New passphrase (outer volume): ', !!o.keyfile?.length))];
      if (withHidden) raw.push(keep(await askNewPassphrase('New passphrase (hidden volume): ', !!o.hiddenKeyfile?.length)));
    }
    const weak = o.passwordStdin ? raw.map((p, i) => weaknessWarning(p, !!(i === 0 ? o.keyfile : o.hiddenKeyfile)?.length)) : [];
    const outer = keep(mixed(raw[0]!, o.keyfile));
    const hidden = withHidden ? keep(mixed(raw[1]!, o.hiddenKeyfile)) : null;
    // What the KDF sees must differ, or one password would open both volumes.
    if (hidden?.equals(outer)) throw new VaultError('usage', 'the hidden volume needs a secret of its own, not the outer volume\'s', 'give it another passphrase or other keyfiles');
    return { outer, hidden, warnWeak: async () => void (await Promise.all(weak.map((w) => w()))) };
  } catch (e) {
    wipe(...held);
    throw e;
  }
}

export interface VeraCryptSettled {
  size: number;
  fs: string;
  quick: boolean;
  overwrite: boolean;
}

export async function createVeraCryptIn(t: Target, abs: string, o: VeraCryptCreateOptions, x: VeraCryptSettled, route: () => RouteChoice): Promise<void> {
  for (const p of removeStalePartials(t)) warn(`removed ${p}, left by an interrupted create`);
  const kdf = creationKdf(o.hash, o.pim ?? 0);
  const chain = o.cipher ?? AES_XTS;
  const hiddenFs = o.hiddenSize !== undefined ? (o.hiddenFs ?? 'ext4') : 'none';
  newVolumeLayout(x.size, o.hiddenSize); // sizes that cannot be laid out fail before any prompt
  const pw = await readPasswords(o);
  const { signal, dispose } = abortOnSignals();
  const started = Date.now();
  let made: NewVeraCrypt;
  try {
    made = await writeNewVeraCrypt(t, {
      size: x.size, kdf, chain, password: pw.outer, quick: x.quick, signal,
      ...(o.hiddenSize !== undefined && pw.hidden ? { hidden: { size: o.hiddenSize, password: pw.hidden } } : {}),
      onProgress: (done, total) => progress('encrypting', done, total, started),
    });
  } finally {
    wipe(pw.outer, pw.hidden);
  }
  try {
    if (x.quick) warn('--quick: the data area is sparse, so anyone who sees the file can tell which parts hold data');
    // Outer first, then the hidden volume: its filesystem lands in the free end of the outer one.
    if (x.fs !== 'none') await formatThroughMount(t, made, newVolumeAsUnlocked(made.outer), x.fs as FsType, signal, route());
    else made.outer.key.dispose();
    if (made.hidden && hiddenFs !== 'none') await formatThroughMount(t, made, newVolumeAsUnlocked(made.hidden), hiddenFs as FsType, signal, route());
    else made.hidden?.key.dispose();
    if (signal.aborted) throw new VaultError('interrupted', 'interrupted; no container was made');
    finishContainer(t, made, x.overwrite);
  } catch (e) {
    made.outer.key.dispose();
    made.hidden?.key.dispose();
    removePartial(t, made);
    throw e;
  } finally {
    closeSync(made.fd);
    dispose();
  }
  await pw.warnWeak();
  const hidden = made.hidden ? `, hidden volume of ${made.hidden.fields.volumeSize} bytes (${hiddenFs})` : '';
  info(`created ${abs} (VeraCrypt, ${chain.length === 1 && chain[0] === 'aes' ? 'AES-256-XTS' : `${veracryptName(chain)} (XTS)`}, ${kdf.label}${o.pim ? `, PIM ${o.pim}` : ''}, ${x.fs === 'none' ? 'no filesystem' : x.fs}${hidden})`);
}
