/**
 * The options `vault create` takes for `--type veracrypt` (create-veracrypt.ts does the work):
 * declared here, and checked before anything is asked or opened.
 */
import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { DEFAULT_SECTOR_SIZE } from '../../format/constants.js';
import type { KdfCliOptions } from '../kdf-options.js';
import { formatChoice } from '../format-options.js';
import { parseSize } from '../sizes.js';
import type { CipherChain } from '../../crypto/cipher-chain.js';
import { parseAlgorithm } from '../../formats/veracrypt/cipher-chains.js';

/** What the command line holds for them (commander's names). */
export interface VeraCryptCliOptions {
  type?: string;
  hash?: string;
  pim?: string;
  cipher?: string;
  hiddenSize?: string;
  hiddenFs?: string;
  hiddenKeyfile?: string[];
}

/** The VeraCrypt options, parsed. */
export interface VeraCryptCreateOptions {
  hash?: string;
  pim?: number;
  /** The encryption algorithm `--cipher` names (VeraCrypt's name, parsed); AES when absent. */
  cipher?: CipherChain;
  hiddenSize?: number;
  hiddenFs?: string;
  passwordStdin?: boolean;
  keyfile?: string[];
  hiddenKeyfile?: string[];
}

const collect = (v: string, acc: string[] = []) => [...acc, v];

export function addVeraCryptOptions(cmd: Command): void {
  cmd
    .option('--type <format>', 'container format to make: vault (the default) or veracrypt')
    .option('--hash <prf>', 'VeraCrypt: header key derivation: sha512 (the default), whirlpool, sha256, blake2s, streebog or argon2id')
    .option('--pim <n>', 'VeraCrypt: Personal Iterations Multiplier (0 or absent: the default count)')
    .option('--cipher <name>', "VeraCrypt: encryption algorithm by VeraCrypt's name, any case: AES (the default), Serpent, Twofish, Camellia, Kuznyechik or a cascade such as Serpent-Twofish-AES")
    .option('--hidden-size <size>', 'VeraCrypt: also make a hidden volume of this size at the end of the outer one (a second passphrase)')
    .option('--hidden-fs <type>', 'VeraCrypt: filesystem inside the hidden volume: ext4 (the default), vfat, exfat or none')
    .option('--hidden-keyfile <file>', "VeraCrypt: a keyfile of the hidden volume's secret (repeatable)", collect);
}

type CreateCli = VeraCryptCliOptions & KdfCliOptions & { sectorSize: string; passwordStdin?: boolean; keyfile?: string[] };

/** The VeraCrypt options, checked; null for a vault container (which takes none of them). */
export function veraCryptChoice(o: CreateCli, filesystems: readonly string[]): VeraCryptCreateOptions | null {
  const type = o.type ?? 'vault';
  if (type !== 'vault' && type !== 'veracrypt') throw new VaultError('usage', `vault creates vault and veracrypt containers, not "${type}"`, 'use --type vault or --type veracrypt');
  const given = (['hash', 'pim', 'cipher', 'hiddenSize', 'hiddenFs', 'hiddenKeyfile'] as const).filter((k) => o[k] !== undefined);
  if (type === 'vault') {
    if (given.length) throw new VaultError('usage', `--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --type veracrypt only`);
    return null;
  }
  if (o.sectorSize !== String(DEFAULT_SECTOR_SIZE) && o.sectorSize !== '512') throw new VaultError('usage', 'a file-hosted VeraCrypt volume has 512-byte sectors: --sector-size does not apply');
  if (o.kdfMemory !== undefined || o.kdfIterations !== undefined || o.kdfParallelism !== undefined)
    throw new VaultError('usage', '--kdf-* apply to vault containers; a VeraCrypt volume takes --hash and --pim');
  if (o.hiddenFs !== undefined && !filesystems.includes(o.hiddenFs)) throw new VaultError('usage', `unknown filesystem "${o.hiddenFs}" (use ${filesystems.join(', ')})`);
  const { pim } = formatChoice(o.pim !== undefined ? { pim: o.pim } : {}); // the same bounds as mount's --pim
  return {
    ...(o.hash !== undefined ? { hash: o.hash } : {}),
    ...(pim !== undefined ? { pim } : {}),
    ...(o.cipher !== undefined ? { cipher: parseAlgorithm(o.cipher) } : {}),
    ...(o.hiddenSize !== undefined ? { hiddenSize: parseSize(o.hiddenSize) } : {}),
    ...(o.hiddenFs !== undefined ? { hiddenFs: o.hiddenFs } : {}),
    ...(o.passwordStdin ? { passwordStdin: true } : {}),
    ...(o.keyfile ? { keyfile: o.keyfile } : {}),
    ...(o.hiddenKeyfile ? { hiddenKeyfile: o.hiddenKeyfile } : {}),
  };
}
