/**
 * Unlocking a LUKS2 container with the tokens systemd-cryptenroll writes (issue 19):
 * `systemd-tpm2` (src/token/systemd-tpm2.ts) and `systemd-fido2` (src/token/systemd-fido2.ts).
 * Each token gives the passphrase of its keyslots (base64 of the unsealed or hmac-secret bytes), tried
 * on those keyslots alone, as systemd-cryptsetup does. `systemd-recovery` keyslots need nothing
 * here: their recovery key is an ordinary passphrase, typed at the prompt.
 */
import { isVaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import type { ContainerFile } from '../../volume/container-file.js';
import type { TokenUnlockOptions } from '../vault-tokens.js';
import type { UnlockOptions, UnlockedVolume } from '../types.js';
import { luks2Adapter } from './index.js';
import { readLuks2Header } from './read.js';

interface Attempt {
  label: string;
  keyslots: number[];
  passphrase: () => Promise<Buffer>;
}

async function attempts(c: ContainerFile, u: UnlockOptions, o: TokenUnlockOptions): Promise<Attempt[]> {
  const m = u.headerFile ?? c;
  const meta = readLuks2Header(m.fd, m.size, m.path).metadata;
  const out: Attempt[] = [];
  const withPin = async <T>(kind: 'tpm2' | 'fido2', needed: boolean, fn: (pin: Buffer | undefined) => Promise<T>): Promise<T> => {
    const pin = needed ? await o.pin(kind) : undefined;
    try {
      return await fn(pin ?? undefined);
    } finally {
      if (pin) wipe(pin);
    }
  };
  if (meta.tokens.some((t) => t.type === 'systemd-tpm2')) {
    const { parseSystemdTpm2Token, systemdTpm2Passphrase } = await import('../../token/systemd-tpm2.js');
    for (const t of meta.tokens.filter((x) => x.type === 'systemd-tpm2')) {
      const tok = parseSystemdTpm2Token({ t: 'object', v: t.members }, String(t.id));
      out.push({
        label: `systemd-tpm2 token ${t.id}`,
        keyslots: tok.keyslots,
        passphrase: () => withPin('tpm2', tok.sealed.pin, (pin) => systemdTpm2Passphrase(tok, { tcti: o.tpm2Device ?? null, ...(pin ? { pin } : {}) })),
      });
    }
  }
  if (meta.tokens.some((t) => t.type === 'systemd-fido2')) {
    const { systemdFido2Tokens, systemdFido2Passphrase } = await import('../../token/systemd-fido2.js');
    for (const tok of systemdFido2Tokens(meta))
      out.push({
        label: `systemd-fido2 token ${tok.id}`,
        keyslots: tok.keyslots,
        // The PIN is asked by systemdFido2Passphrase when needed (a token of systemd 248 does not say).
        passphrase: () => systemdFido2Passphrase(tok, { ...(o.fido2Device !== undefined ? { device: o.fido2Device } : {}), askPin: () => o.pin('fido2') }),
      });
  }
  return out;
}

/** What unlocks the container with its systemd tokens, or null when it has none. */
export async function luks2TokenUnlocker(c: ContainerFile, u: UnlockOptions, o: TokenUnlockOptions): Promise<(() => Promise<UnlockedVolume | null>) | null> {
  let list: Attempt[];
  try {
    list = await attempts(c, u, o);
  } catch (e) {
    if (!isVaultError(e)) throw e;
    o.note(`the LUKS2 tokens cannot be used: ${e.message}`);
    return async () => null;
  }
  return list.length === 0 ? null : () => unlockWith(c, u, o, list);
}

/** The volume unlocked by the first systemd token that works, or null (each failure noted). */
async function unlockWith(c: ContainerFile, u: UnlockOptions, o: TokenUnlockOptions, list: Attempt[]): Promise<UnlockedVolume | null> {
  for (const a of list) {
    let passphrase: Buffer | null = null;
    try {
      passphrase = await a.passphrase();
      for (const slot of a.keyslots) {
        try {
          const v = await luks2Adapter.unlock(c, { passphrase, keyfiles: [] }, { ...u, slot }); // it copies; ours is wiped below
          o.note(`unlocked with the ${a.label} (keyslot ${slot})`);
          return v;
        } catch (e) {
          if (!isVaultError(e, 'wrong-password')) throw e;
        }
      }
      o.note(`the ${a.label} opens none of its keyslots (${a.keyslots.join(', ')})`);
    } catch (e) {
      if (!isVaultError(e)) throw e;
      o.note(`the ${a.label} did not unlock: ${e.message}`);
    } finally {
      if (passphrase) wipe(passphrase);
    }
  }
  return null;
}
