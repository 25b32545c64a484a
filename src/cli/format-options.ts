/**
 * The options that pick a container format and say how to open a foreign one, shared by `mount`
 * and `info`: --type, --header, --slot, --pim, --hidden, --use-backup-header, --hash, --system,
 * and for vault's own, --header-copy.
 */
import type { Command } from 'commander';
import { VaultError } from '../errors.js';
import { FORMAT_NAMES, type FormatChoice } from '../formats/types.js';
import { PRF_NAMES, parsePrf } from '../formats/veracrypt/prf.js';

export interface FormatCliOptions {
  type?: string;
  header?: string;
  slot?: string;
  pim?: string;
  hidden?: boolean;
  useBackupHeader?: boolean;
  hash?: string;
  system?: boolean;
  headerCopy?: string;
}


/** VeraCrypt's own upper bound for a non-system volume's PIM (its iteration count stays below 2^31). */
export const MAX_PIM = 2147468;

export function addFormatOptions(cmd: Command): Command {
  return cmd
    .option('--type <format>', `container format instead of detecting it: ${FORMAT_NAMES.join(', ')}`)
    .option('--header <file>', 'a detached header file (LUKS)')
    .option('--slot <n>', 'try only this keyslot (vault, LUKS; also a LUKS keyslot of priority "ignore")')
    .option('--pim <n>', 'VeraCrypt Personal Iterations Multiplier (0 or absent: the default)')
    .option('--hidden', 'VeraCrypt/TrueCrypt: open the hidden volume (use only its header)')
    .option('--use-backup-header', 'VeraCrypt/TrueCrypt: use the backup headers at the end of the container')
    .option('--hash <prf>', `VeraCrypt/TrueCrypt: try only this header hash (${PRF_NAMES.join(', ')}) instead of all`)
    .option('--system', 'VeraCrypt/TrueCrypt system encryption: the header in the boot track of the drive (give the drive or its image; exposes the encrypted partition or area)')
    .option('--header-copy <copy>', 'vault: use only this header copy, primary or secondary, when the two disagree (a mount is then read-only)');
}

/** `--header-copy primary|secondary` as the copy index of spec §2 (0, 1). */
export function parseHeaderCopyOption(v: string | undefined): 0 | 1 | undefined {
  if (v === undefined) return undefined;
  if (v === 'primary') return 0;
  if (v === 'secondary') return 1;
  throw new VaultError('usage', `--header-copy takes primary or secondary, not "${v}"`);
}

/** The options' values, checked before anything is opened or asked (the same words as detectFormat's). */
export function formatChoice(o: FormatCliOptions): FormatChoice {
  if (o.type !== undefined && !(FORMAT_NAMES as readonly string[]).includes(o.type))
    throw new VaultError('usage', `unknown container format "${o.type}"`, `use one of ${FORMAT_NAMES.join(', ')}`);
  let pim: number | undefined;
  if (o.pim !== undefined) {
    if (!/^\d+$/.test(o.pim) || Number(o.pim) > MAX_PIM) throw new VaultError('usage', `--pim must be a whole number from 0 to ${MAX_PIM}`);
    pim = Number(o.pim);
  }
  if (o.slot !== undefined && !/^\d{1,3}$/.test(o.slot)) throw new VaultError('usage', `--slot must be a keyslot number, got "${o.slot}"`);
  return {
    // A system-encryption drive starts with a boot sector, not random bytes: detection would not pick VeraCrypt.
    ...(o.type ? { type: o.type } : o.system ? { type: 'veracrypt' } : {}),
    ...(o.header ? { headerPath: o.header } : {}),
    ...(o.slot !== undefined ? { slot: Number(o.slot) } : {}),
    ...(pim !== undefined ? { pim } : {}),
    ...(o.hidden ? { hidden: true } : {}),
    ...(o.useBackupHeader ? { useBackupHeader: true } : {}),
    ...(o.hash !== undefined ? { hash: parsePrf(o.hash) } : {}),
    ...(o.system ? { system: true } : {}),
    ...(o.headerCopy !== undefined ? { headerCopy: parseHeaderCopyOption(o.headerCopy)! } : {}),
  };
}
