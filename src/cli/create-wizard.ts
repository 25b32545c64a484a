/**
 * `vault create` on a terminal without --size or --fs: a few questions instead of a usage error.
 * Size (with the free space of the target's filesystem), filesystem, quick or full fill; the
 * passphrase follows through the usual prompt. Options given on the command line skip their
 * question. Without a terminal nothing is asked: create fails at once as it always did.
 */
import { statfsSync } from 'node:fs';
import { VaultError, isVaultError } from '../errors.js';
import type { SectorSize } from '../format/constants.js';
import { geometryForSize } from '../format/layout.js';
import { formatSize, parseSize } from './sizes.js';
import { askOnTty, canAsk, type Context } from './terminal.js';

export const FILESYSTEMS = [
  { value: 'ext4', description: 'Linux: permissions, journal, large files. The usual choice.' },
  { value: 'exfat', description: 'Large files, and Windows and macOS read it too.' },
  { value: 'vfat', description: 'FAT32: any system reads it; files up to 4 GiB.' },
  { value: 'none', description: 'No filesystem: an empty encrypted device to format yourself.' },
] as const;

export interface CreateChoices {
  size?: string;
  fs?: string;
  quick?: boolean;
}

/** Fails at once when --size is missing and there is no terminal to ask on (the usage error of old). */
export function requireAnswerable(o: CreateChoices): void {
  if (o.size === undefined && !canAsk())
    throw new VaultError('usage', "required option '--size <size>' not specified", 'give the size, e.g. --size 512M (on a terminal, vault asks for it)');
}

/** The answers create needs: from the options, asked for on a terminal when missing. */
interface Prompts {
  input: typeof import('@inquirer/input').default;
  select: typeof import('@inquirer/select').default;
}

export async function completeCreateChoices(o: CreateChoices, dir: string, sectorSize: SectorSize): Promise<Required<CreateChoices>> {
  if (o.size !== undefined && (o.fs !== undefined || !canAsk())) return { size: o.size, fs: o.fs ?? 'ext4', quick: !!o.quick };
  // The prompt modules load only when a question is asked: a scripted create starts faster.
  const [{ default: input }, { default: select }] = await Promise.all([import('@inquirer/input'), import('@inquirer/select')]);
  const prompts: Prompts = { input, select };
  // One terminal stream per question: inquirer closes its readline, and with it the input, when done.
  return {
    size: o.size ?? (await askOnTty((context) => askSize(prompts, dir, sectorSize, context))),
    fs: o.fs ?? (await askOnTty((context) => askFilesystem(prompts, context))),
    quick: o.quick ?? (await askOnTty((context) => askQuick(prompts, context))),
  };
}

function askSize({ input }: Prompts, dir: string, sectorSize: SectorSize, context: Context): Promise<string> {
  const st = statfsSync(dir);
  const free = st.bavail * st.bsize;
  const validate = (text: string): string | true => {
    try {
      const bytes = parseSize(text);
      geometryForSize(bytes, sectorSize);
      return bytes <= free ? true : `only ${formatSize(free)} is free in ${dir}`;
    } catch (e) {
      if (!isVaultError(e)) throw e;
      return e.hint ? `${e.message}: ${e.hint}` : e.message;
    }
  };
  return input({ message: `Size (e.g. 512M, 2G; ${formatSize(free)} free in ${dir}):`, validate }, context);
}

function askFilesystem({ select }: Prompts, context: Context): Promise<string> {
  return select({ message: 'Filesystem:', choices: FILESYSTEMS.map((f) => ({ value: f.value, name: f.value, description: f.description })) }, context);
}

function askQuick({ select }: Prompts, context: Context): Promise<boolean> {
  return select(
    {
      message: 'Fill:',
      choices: [
        { value: false, name: 'full', description: 'Writes random-looking ciphertext over the whole size: nobody can tell how much is used. Takes as long as writing the size.' },
        { value: true, name: 'quick', description: 'A sparse file, ready at once; but anyone who sees the file can tell how much was written, and where.' },
      ],
    },
    context,
  );
}
