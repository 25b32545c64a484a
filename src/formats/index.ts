/**
 * The format registry: which adapter opens a container, and the one checked way to unlock it.
 *
 * Detection order:
 *   1. `--type` names the adapter outright;
 *   2. an adapter whose magic is in the first bytes (of the detached header when there is one),
 *      or that claims the file by a fuller check (a header copy elsewhere in the file);
 *   3. the VeraCrypt/TrueCrypt adapter: its headers look like random bytes, so it is the fallback,
 *      tried only when the file could be such a volume at all;
 *   4. otherwise vault's own adapter, whose error explains what is missing (a vault container
 *      whose two headers were both destroyed lands here and is told to restore a backup).
 */
import { VaultError, isVaultError, type ErrorCode } from '../errors.js';
import { readAtSync } from '../volume/fd-io.js';
import { DEFAULT_DATA_OFFSET, HEADER_SIZE } from '../format/constants.js';
import type { ContainerFile } from '../volume/container-file.js';
import { FORMAT_NAMES, formatLabel, type FormatAdapter, type FormatName, type UnlockOptions, type UnlockSecret, type UnlockedVolume } from './types.js';
import { luks1Signature, luks2Signature, vaultSignature } from './signatures.js';
import { chainKeyBytes, chainSpec } from '../crypto/cipher-chain.js';

/**
 * Every adapter, loaded when detection or `--type` picks it: a vault mount never loads the LUKS
 * and VeraCrypt code (signatures.ts).
 */
const LOAD: Record<FormatName | 'truecrypt', () => Promise<FormatAdapter>> = {
  vault: async () => (await import('./vault.js')).vaultAdapter,
  luks2: async () => (await import('./luks2/index.js')).luks2Adapter,
  luks1: async () => (await import('./luks1/index.js')).luks1Adapter,
  veracrypt: async () => (await import('./veracrypt/adapter.js')).veracryptAdapter,
  truecrypt: async () => (await import('./veracrypt/adapter.js')).truecryptAdapter,
};

/** Formats recognised by a signature, tried in this order (their adapters' `recognises` and `claims`). */
const SIGNED: ReadonlyArray<{ name: FormatName; recognises(first: Buffer): boolean; claims?(c: ContainerFile): boolean }> = [
  { name: 'vault', ...vaultSignature },
  { name: 'luks2', ...luks2Signature },
  { name: 'luks1', ...luks1Signature },
];

/** Tried when no signature matches: VeraCrypt and TrueCrypt headers are indistinguishable from random. */
const FALLBACK: FormatName = 'veracrypt';

/** The smallest vault container: 1 MiB of headers and keyslots, one 512-byte sector, the secondary header. */
const MIN_VAULT_CONTAINER = DEFAULT_DATA_OFFSET + 512 + HEADER_SIZE;

/** `a`, whose errors of one code are replaced by `reword`'s (what detection knows and the adapter does not). */
function rewording(a: FormatAdapter, code: ErrorCode, reword: (c: ContainerFile, e: VaultError) => VaultError): FormatAdapter {
  return {
    ...a,
    async unlock(c, secret, o) {
      try {
        return await a.unlock(c, secret, o);
      } catch (e) {
        if (!isVaultError(e, code)) throw e;
        throw reword(c, e);
      }
    },
  };
}

/**
 * What detection ends with when nothing matched: vault's own adapter (a vault container whose two
 * headers were overwritten lands here), whose "no vault signature" then also says what else was
 * ruled out and how to force VeraCrypt/TrueCrypt, whose headers carry no signature.
 */
const undetected = (vault: FormatAdapter) =>
  rewording(vault, 'not-a-container', (c) => {
    // A header backup only helps a file that can have been a vault container.
    const vaultSized = c.size >= MIN_VAULT_CONTAINER;
    return new VaultError(
      'not-a-container',
      `${c.path} is not a container vault recognises: no vault, LUKS2 or LUKS1 signature${vaultSized ? '' : ` (and at ${c.size} bytes too small for a vault container)`}, ` +
        `and its header area does not look like a VeraCrypt/TrueCrypt volume's (random bytes)`,
      `if it is a VeraCrypt or TrueCrypt volume, give --type veracrypt (or truecrypt)${vaultSized ? '; if it is a vault container whose two headers were overwritten, restore a header backup with `vault header restore`' : ''}`,
    );
  });

/**
 * The VeraCrypt/TrueCrypt adapter as detection reaches it (no `--type`): when no header opens, its
 * error also says which formats the file's signature ruled out.
 */
const detectedFallback = (veracrypt: FormatAdapter) =>
  rewording(
    veracrypt,
    'wrong-password',
    (_c, e) => new VaultError(e.code, `${e.message}; the file has no vault, LUKS2 or LUKS1 signature either`, e.hint, { cause: e }),
  );

/** Bytes read for magic recognition: enough for every header's fixed part. */
const PROBE_BYTES = 4096;

/** Every name `--type` accepts, with the adapter it selects (loaded now). */
export async function adapterByName(name: string): Promise<FormatAdapter> {
  if (!Object.hasOwn(LOAD, name)) throw new VaultError('usage', `unknown container format "${name}"`, `use one of ${FORMAT_NAMES.join(', ')}`);
  return LOAD[name as keyof typeof LOAD]();
}

/** Every adapter's name and 'truecrypt', in detection order (FORMAT_NAMES, checked by a unit test). */
export function adapterNames(): string[] {
  return [...SIGNED.map((s) => s.name), FALLBACK, 'truecrypt'];
}

/**
 * What the file's signatures say, reading only a few bytes and loading no adapter: a signed
 * format's name, or null (VeraCrypt, TrueCrypt, or nothing vault knows).
 */
function signedFormat(c: ContainerFile, headerFile?: ContainerFile): FormatName | null {
  const probe = headerFile ?? c;
  const first = readAtSync(probe.fd, Math.min(PROBE_BYTES, probe.size), 0);
  return (SIGNED.find((s) => s.recognises(first)) ?? SIGNED.find((s) => s.claims?.(probe)))?.name ?? null;
}

/** Chooses the adapter for an open container (and optional detached header), and loads it. */
export async function detectFormat(c: ContainerFile, o: { type?: string; headerFile?: ContainerFile } = {}): Promise<FormatAdapter> {
  if (o.type) return adapterByName(o.type);
  const signed = signedFormat(c, o.headerFile);
  if (signed) return LOAD[signed]();
  const fallback = await LOAD[FALLBACK]();
  if (fallback.claims?.(c) ?? true) return detectedFallback(fallback);
  return undetected(await LOAD.vault());
}

/**
 * Unlocks with `adapter` and checks the geometry it yields against the file before anything uses
 * it: an adapter bug or a hostile header must never point the data path outside the container.
 * The secret is wiped here whatever happens.
 */
export async function unlockVolume(adapter: FormatAdapter, c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume> {
  let v: UnlockedVolume;
  try {
    v = await adapter.unlock(c, secret, o);
  } finally {
    secret.passphrase.fill(0);
    for (const k of secret.keyfiles) k.fill(0);
  }
  try {
    checkGeometry(v, c);
  } catch (e) {
    v.key.dispose();
    throw e;
  }
  return v;
}

function checkGeometry(v: UnlockedVolume, c: ContainerFile): void {
  const bad = (why: string) => new VaultError('invalid-field', `the ${v.format} header describes an impossible volume: ${why}`);
  if (v.sectorSize !== 512 && v.sectorSize !== 4096) throw bad(`sector size ${v.sectorSize}`);
  if (!Number.isSafeInteger(v.dataOffset) || v.dataOffset < 0 || v.dataOffset % 512 !== 0) throw bad(`data offset ${v.dataOffset}`);
  if (!Number.isSafeInteger(v.dataSize) || v.dataSize <= 0 || v.dataSize % v.sectorSize !== 0) throw bad(`data size ${v.dataSize}`);
  if (v.firstTweak < 0n || v.tweakStep < 1n) throw bad('negative tweak');
  if (v.dataOffset + v.dataSize > c.size)
    throw new VaultError('truncated', `${c.path} is truncated: the ${v.format} header describes ${v.dataOffset + v.dataSize} bytes, the file has ${c.size}`);
  if (!v.legacy && v.engine === undefined && v.key.length !== chainKeyBytes(v.cipher)) throw bad(`a ${v.key.length}-byte key for ${chainSpec(v.cipher)}`);
}

/**
 * `--header-copy`: a vault container then reads and unlocks that header copy alone (spec §6
 * "Choosing a copy"); other formats have their own ways (VeraCrypt's --use-backup-header) and refuse it.
 */
export function useHeaderCopy(format: string, c: ContainerFile, copy: 0 | 1 | undefined): void {
  if (copy === undefined) return;
  if (format !== 'vault')
    throw new VaultError('usage', `--header-copy applies to vault containers, not to ${formatLabel(format as FormatName)}`, format === 'veracrypt' || format === 'truecrypt' ? 'use --use-backup-header for its backup header' : 'leave it out');
  c.headerCopy = copy;
}

/**
 * Key-management commands change vault headers only. On any other format they stop here, before
 * a passphrase is asked or a byte is written.
 */
export async function requireVaultFormat(c: ContainerFile, what: string): Promise<void> {
  const signed = signedFormat(c);
  if (signed === 'vault') return;
  // No signature: the VeraCrypt/TrueCrypt fallback, unless the file cannot be such a volume (then
  // the vault adapter's own error explains what is missing).
  if (signed === null && !((await LOAD[FALLBACK]()).claims?.(c) ?? true)) return;
  const label = signed === null ? 'VeraCrypt/TrueCrypt (or unrecognised)' : formatLabel(signed);
  throw new VaultError(
    'unsupported-feature',
    `${c.path} is not a vault container (it looks like ${label}); \`${what}\` changes vault headers only`,
    'change its keys with the tool that made it (veracrypt, cryptsetup); vault only mounts it',
  );
}
