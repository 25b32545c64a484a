/**
 * Unlocking a vault container with its TPM2 and FIDO2 tokens (spec/format.md §14.5), before any
 * passphrase is asked: each token whose device answers and whose policy holds gives its slot's
 * secret, which is tried on that slot alone. A token that cannot give it is noted and skipped; the
 * caller then asks for a passphrase (or, with --token-only, stops).
 */
import { VaultError, isVaultError } from '../errors.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { wipe } from '../crypto/wipe.js';
import type { Fido2Token, Token, Tpm2Token } from '../format/types.js';
import { candidateHeaders, readHeaderCopies, unlockContainer } from '../volume/container.js';
import type { ContainerFile } from '../volume/container-file.js';
import type { UnlockedVolume } from './types.js';
import { vaultVolume } from './vault.js';

export interface TokenUnlockOptions {
  /** A tpm2-tss TCTI; absent: tpm2-tss's own search. */
  tpm2Device?: string;
  /** A FIDO2 device (hidraw path or unix:<socket>); absent: the first one libfido2 finds. */
  fido2Device?: string;
  /** The PIN of a token that needs one, or null to skip that token (the caller wipes nothing: this module wipes it). */
  pin: (token: 'tpm2' | 'fido2') => Promise<Buffer | null>;
  /** Told what each token did. */
  note: (message: string) => void;
  /** Wipes what the PIN source kept (a PIN read once from stdin); called when the tokens are done. */
  dispose?: () => void;
}

export type DeviceToken = Tpm2Token | Fido2Token;

export const isDeviceToken = (t: Token): t is DeviceToken => t.type === 'tpm2' || t.type === 'fido2';

export const tokenLabel = (t: Token): string => (t.type === 'recovery' ? 'recovery key' : t.type === 'tpm2' ? 'TPM2 token' : 'FIDO2 token');

/** The device tokens of the newest valid header copy. */
export function deviceTokens(c: ContainerFile): DeviceToken[] {
  return (candidateHeaders(c, readHeaderCopies(c)).candidates[0]!.tokens ?? []).filter(isDeviceToken);
}

/** A token's secret from its device (32 bytes, the caller wipes), or a VaultError saying why not. */
async function tokenSecret(t: DeviceToken, o: TokenUnlockOptions): Promise<Buffer> {
  const pin = t.pin ? await o.pin(t.type) : undefined;
  if (pin === null) throw new VaultError('token-pin-required', 'it needs a PIN, and none can be asked here', 'run vault mount on a terminal, or give the PIN with --token-pin-stdin');
  try {
    if (t.type === 'tpm2') {
      const { tpm2Unseal } = await import('../token/tpm2.js');
      return await tpm2Unseal(t, { tcti: o.tpm2Device ?? null, ...(pin ? { pin } : {}) });
    }
    const { fido2Secret } = await import('../token/fido2.js');
    return await fido2Secret({
      ...(o.fido2Device !== undefined ? { device: o.fido2Device } : {}),
      rpId: t.rpId,
      credentialId: t.credentialId,
      salt: t.salt,
      uv: t.uv,
      pinRequired: t.pin,
      ...(pin ? { pin } : {}),
    });
  } finally {
    if (pin) wipe(pin);
  }
}

/**
 * What unlocks the container with its TPM2/FIDO2 tokens, or null when it has none (or its headers
 * are unusable: the passphrase path then reports them as it always has).
 */
export function vaultTokenUnlocker(c: ContainerFile, o: TokenUnlockOptions): (() => Promise<UnlockedVolume | null>) | null {
  let tokens: DeviceToken[];
  try {
    tokens = deviceTokens(c);
  } catch (e) {
    if (isVaultError(e)) return null;
    throw e;
  }
  return tokens.length === 0 ? null : () => unlockWithTokens(c, o, tokens);
}

/** The volume, unlocked by the first token that works, or null (each failure noted). */
async function unlockWithTokens(c: ContainerFile, o: TokenUnlockOptions, tokens: DeviceToken[]): Promise<UnlockedVolume | null> {
  for (const t of tokens) {
    let secret: Buffer | null = null;
    try {
      secret = await tokenSecret(t, o);
      const u = await unlockContainer(c, secret, t.slot);
      o.note(`unlocked with the ${tokenLabel(t)} in keyslot ${t.slot}`);
      return vaultVolume(u.header, KeyHandle.fromBytes(u.masterKey), u.warnings);
    } catch (e) {
      if (!isVaultError(e)) throw e;
      o.note(`the ${tokenLabel(t)} in keyslot ${t.slot} did not unlock: ${e.message}`);
    } finally {
      if (secret) wipe(secret);
    }
  }
  return null;
}
