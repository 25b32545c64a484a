/**
 * The header PRFs VeraCrypt and TrueCrypt offer, by the names VeraCrypt's `--hash` takes, and the
 * spellings cryptsetup's `-h` uses for the same ones. `--hash` restricts autodetection to one.
 */
import { VaultError } from '../../errors.js';

export const PRF_NAMES = ['sha512', 'whirlpool', 'sha256', 'blake2s', 'streebog', 'argon2id', 'ripemd160', 'sha1'] as const;
export type Prf = (typeof PRF_NAMES)[number];

/** cryptsetup's (libgcrypt's) names and a few obvious spellings for the same PRFs. */
const ALIASES: Record<string, Prf> = {
  'sha-512': 'sha512',
  'sha-256': 'sha256',
  'blake2s-256': 'blake2s',
  blake2s256: 'blake2s',
  stribog512: 'streebog',
  streebog512: 'streebog',
  'ripemd-160': 'ripemd160',
  rmd160: 'ripemd160',
  'sha-1': 'sha1',
};

/** The PRF `--hash <name>` names (case-insensitive), or a usage error listing the choices. */
export function parsePrf(name: string): Prf {
  const n = name.toLowerCase();
  const hit = (PRF_NAMES as readonly string[]).includes(n) ? (n as Prf) : ALIASES[n];
  if (!hit) throw new VaultError('usage', `unknown VeraCrypt/TrueCrypt header hash "${name}"`, `use one of ${PRF_NAMES.join(', ')} (cryptsetup's stribog512 and blake2s-256 are accepted too)`);
  return hit;
}
