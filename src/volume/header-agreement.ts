/**
 * Whether the two header copies of a container describe one container (spec/format.md §6
 * "Agreement"): the uuid before any key derivation (candidateHeaders), the authenticated rest
 * after unlocking (checkAgreement). A disagreement is refused, never resolved by picking a copy.
 */
import { VaultError, isVaultError } from '../errors.js';
import { serializeHeaderBody } from '../format/header.js';
import type { Header } from '../format/types.js';
import { verifyHeaderMac } from '../crypto/master-key.js';
import type { ContainerFile } from './container-file.js';

export function copiesDisagree(c: ContainerFile, why: string): VaultError {
  return new VaultError(
    'copies-disagree',
    `the two header copies of ${c.path} disagree: ${why}`,
    'the container was not modified; restore a header backup of it with `vault header restore`, or, without one, look at what each copy opens (`vault mount --header-copy primary`, then `secondary`: read-only) and make both copies that one with `vault header repair --header-copy <it>`',
  );
}

/**
 * Spec §6 "Agreement", after unlocking: every other valid copy that authenticates under the same
 * master key must describe the same container as the one that opened. Copies of one sequence are
 * identical but for `copy`; copies of different sequences (an interrupted resize) may differ in
 * `data_size` and in keyslots, flags and their areas, never in uuid, cipher, sector size or data offset.
 * A copy that does not authenticate is not used (a warning; a repair rewrites it).
 */
export function checkAgreement(c: ContainerFile, opened: Header, others: Header[], masterKey: Uint8Array, warnings: string[]): void {
  for (const o of others) {
    const name = copyName(o);
    if (!macVerifies(masterKey, o)) {
      warnings.push(`${name} header does not authenticate with the key that opened the other copy (damaged, altered, or left by an interrupted re-encryption); it is not used, and \`vault header repair\` rewrites it`);
      continue;
    }
    if (o.sequence === opened.sequence) {
      if (!serializeHeaderBody({ ...o, copy: 0 }).equals(serializeHeaderBody({ ...opened, copy: 0 })))
        throw copiesDisagree(c, `both are authentic with sequence ${o.sequence} but differ (${geometryDiff(opened, o) || 'keyslots or flags'})`);
    } else {
      const diff = geometryDiff(opened, o, false);
      if (diff) throw copiesDisagree(c, `both are authentic but differ in ${diff}`);
    }
  }
}

export function copyName(h: Header): string {
  return h.copy === 0 ? 'primary' : 'secondary';
}

function geometryDiff(a: Header, b: Header, withSize = true): string {
  const d: string[] = [];
  if (a.version !== b.version) d.push(`version ${a.version} / ${b.version}`);
  if (a.cipher !== b.cipher) d.push(`cipher ${a.cipher} / ${b.cipher}`);
  if (a.sectorSize !== b.sectorSize) d.push(`sector size ${a.sectorSize} / ${b.sectorSize}`);
  if (a.dataOffset !== b.dataOffset) d.push(`data offset ${a.dataOffset} / ${b.dataOffset}`);
  if (withSize && a.dataSize !== b.dataSize) d.push(`data size ${a.dataSize} / ${b.dataSize}`);
  return d.join(', ');
}

function macVerifies(masterKey: Uint8Array, h: Header): boolean {
  try {
    verifyHeaderMac(masterKey, h);
    return true;
  } catch (e) {
    if (isVaultError(e, 'header-tampered')) return false;
    throw e;
  }
}
