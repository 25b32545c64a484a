/**
 * vault's own format (spec/format.md) as a format adapter: a thin wrapper around the existing
 * header reading and unlock in src/volume/container.ts, so a vault container mounts exactly as before.
 */
import { VaultError, isVaultError } from '../errors.js';
import { vaultSignature } from './signatures.js';
import type { Header } from '../format/types.js';
import { MAX_KEYFILE_SIZE, buildKdfInput } from '../crypto/kdf.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { secretCopy, wipe } from '../crypto/wipe.js';
import { candidateHeaders, formatUuid, readHeaderCopies, unlockContainer, type CopyRead } from '../volume/container.js';
import { type ContainerFile } from '../volume/container-file.js';
import type { FormatAdapter, FormatInfo, UnlockOptions, UnlockSecret, UnlockedVolume } from './types.js';
import type { VaultInfoJson } from './info-json.js';
import { AES_XTS } from '../crypto/cipher-chain.js';

/** The geometry of a vault header as the one shared data path needs it (tweak = sector index). */
export function vaultVolume(header: Header, key: KeyHandle, warnings: string[]): UnlockedVolume {
  return {
    format: 'vault',
    key,
    sectorSize: header.sectorSize,
    dataOffset: header.dataOffset,
    dataSize: header.dataSize,
    firstTweak: 0n,
    tweakStep: 1n,
    cipher: AES_XTS,
    uuid: formatUuid(header.uuid),
    warnings,
  };
}

/** VeraCrypt/LUKS options mean nothing to a vault container: say so rather than ignore them. */
function refuseForeignOptions(o: UnlockOptions): void {
  const given = [
    o.pim !== undefined ? '--pim' : null,
    o.hidden ? '--hidden' : null,
    o.useBackupHeader ? '--use-backup-header' : null,
    o.hash ? '--hash' : null,
    o.system ? '--system' : null,
    o.headerFile ? '--header' : null,
  ].filter((x): x is string => x !== null);
  if (given.length)
    throw new VaultError('usage', `${given.join(', ')} ${given.length === 1 ? 'does' : 'do'} not apply to a vault container`, 'vault finds and checks both of its header copies by itself');
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume> {
  refuseForeignOptions(o);
  // The KDF input of spec §4.2, byte for byte what `gatherKdfInput` produced before formats existed.
  const input = buildKdfInput(secret.passphrase, secret.keyfiles);
  let u;
  try {
    // A read-write open finishes an interrupted re-encryption first (spec §13.6); read-only refuses it.
    u = await unlockContainer(c, input, o.slot, !o.readOnly && !c.readOnly);
  } finally {
    input.fill(0);
  }
  if (!u.newMasterKey) return vaultVolume(u.header, KeyHandle.fromBytes(u.masterKey), u.warnings);
  try {
    const progress = o.onProgress;
    // Loaded only here: an unfinished re-encryption is rare, and its code is four modules.
    const { resumeReencryption } = await import('../volume/reencrypt/run.js');
    const done = await resumeReencryption(c, u, progress ? { onProgress: (d, t) => progress('finishing the re-encryption', d, t) } : {});
    u.warnings.push('an interrupted re-encryption was found and finished');
    return vaultVolume(done, KeyHandle.fromBytes(secretCopy(u.newMasterKey)), u.warnings);
  } finally {
    wipe(u.masterKey, u.newMasterKey);
  }
}

function copyState(r: CopyRead): string {
  return r.ok ? `valid, sequence ${r.header.sequence}` : isVaultError(r.error) ? `unusable: ${r.error.message}` : 'unusable';
}

/** `vault info` for a vault container: geometry, both copies and the keyslots, no secret. */
function info(c: ContainerFile): FormatInfo {
  const copies = readHeaderCopies(c);
  const { candidates, warnings } = candidateHeaders(c, copies);
  const h = candidates[0]!;
  const json: VaultInfoJson = {
    format: 'vault',
    version: h.version,
    uuid: formatUuid(h.uuid),
    cipher: h.cipher,
    sectorSize: h.sectorSize,
    dataOffset: h.dataOffset,
    dataSize: h.dataSize,
    sequence: h.sequence.toString(),
    headers: { primary: copyState(copies.primary), secondary: copyState(copies.secondary) },
    keyslots: h.keyslots.flatMap((s, i) => (s.state === 'active' ? [{ slot: i, kdf: { type: 'argon2id' as const, ...s.kdf } }] : [])),
    reencrypt: h.reencrypt ? { newSectorSize: h.reencrypt.newSectorSize } : null,
  };
  const fields: Array<[string, string]> = [
    ['format', `vault version ${json.version}`],
    ['uuid', json.uuid],
    ['cipher', `${json.cipher}, ${json.sectorSize}-byte sectors`],
    ['data', `offset ${json.dataOffset}, size ${json.dataSize}`],
    ['headers', `primary ${json.headers.primary}; secondary ${json.headers.secondary}`],
    ...(h.reencrypt ? [['reencrypt', `unfinished (to ${h.reencrypt.newSectorSize}-byte sectors): run \`vault reencrypt --resume\``] as [string, string]] : []),
    ['keyslots', ''],
    ...h.keyslots.flatMap((s, i): Array<[string, string]> => (s.state === 'active' ? [[`  ${i}`, `argon2id, ${s.kdf.memoryKiB / 1024} MiB, ${s.kdf.iterations} iterations, ${s.kdf.parallelism} lanes`]] : [])),
  ];
  if (h.reencrypt) warnings.push(`${c.path} is part-way through a re-encryption; it opens after \`vault reencrypt --resume\` or a read-write mount finishes it`);
  return { format: 'vault', fields, json, warnings };
}

export const vaultAdapter: FormatAdapter = {
  name: 'vault',
  ...vaultSignature,
  keyfilePolicy: { maxBytes: MAX_KEYFILE_SIZE, prefix: false },
  unlock,
  info,
};
