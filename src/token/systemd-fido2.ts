/**
 * systemd-fido2 tokens in LUKS2 headers (systemd-cryptenroll --fido2-device), unlocked the way
 * systemd-cryptsetup does (systemd's src/cryptsetup/cryptsetup-tokens/luks2-fido2.c and
 * src/shared/libfido2-util.c, fido2_use_hmac_hash):
 *
 *   { "type": "systemd-fido2", "keyslots": ["1"], "fido2-credential": base64, "fido2-salt": base64,
 *     "fido2-rp": "io.systemd.cryptsetup", "fido2-clientPin-required": bool, "fido2-up-required": bool,
 *     "fido2-uv-required": bool }
 *
 * The keyslot's passphrase is the base64 (RFC 4648, padded) of the key's hmac-secret output for the
 * salt. "fido2-rp" absent: "io.systemd.cryptsetup". The three flags absent (tokens of systemd 248):
 * the PIN and user presence only when the key asks for them, the "uv" option left out.
 */
import { wipe } from '../crypto/wipe.js';
import { base64Secret } from './systemd-tpm2.js';
import { isVaultError, VaultError } from '../errors.js';
import { decodeBase64 } from '../formats/luks/base64.js';
import type { Luks2Metadata, Luks2Token } from '../formats/luks2/metadata.js';
import { fido2Secret, FIDO2_SALT_BYTES } from './fido2.js';

export const SYSTEMD_FIDO2_RP_ID = 'io.systemd.cryptsetup';
const MAX_CREDENTIAL_ID = 1024;
// libfido2's numbers, for systemd's retries: FIDO_ERR_UP_REQUIRED, FIDO_ERR_UNSUPPORTED_OPTION.
const FIDO_ERR_UP_REQUIRED = 0x3b;
const FIDO_ERR_UNSUPPORTED_OPTION = 0x2b;

/** required / not required / absent from the token (systemd 248: ask only when the key wants it). */
export type TokenFlag = 'required' | 'no' | 'if-needed';

export interface SystemdFido2Token {
  id: number;
  keyslots: number[];
  credentialId: Buffer;
  salt: Buffer;
  rpId: string;
  pin: TokenFlag;
  up: TokenFlag;
  /** 'if-needed' here means systemd's FIDO2ENROLL_UV_OMIT: the "uv" option is left out. */
  uv: TokenFlag;
}

function bad(t: Luks2Token, what: string): VaultError {
  return new VaultError('invalid-field', `LUKS2 token ${t.id} (systemd-fido2): ${what}`, 'the token is damaged; unlock with a passphrase or another keyslot');
}

function bytesMember(t: Luks2Token, key: string, max: number): Buffer {
  const v = t.members.get(key);
  if (v?.t !== 'string') throw bad(t, `"${key}" is missing or not a string`);
  const b = decodeBase64(v.v);
  if (b === null || b.length === 0 || b.length > max) throw bad(t, `"${key}" is not base64 of 1..${max} bytes`);
  return b;
}

function flagMember(t: Luks2Token, key: string): TokenFlag {
  const v = t.members.get(key);
  if (v === undefined) return 'if-needed';
  if (v.t !== 'bool') throw bad(t, `"${key}" is not a boolean`);
  return v.v ? 'required' : 'no';
}

/** The systemd-fido2 tokens of a LUKS2 header, checked; a damaged one throws 'invalid-field'. */
export function systemdFido2Tokens(m: Luks2Metadata): SystemdFido2Token[] {
  return m.tokens
    .filter((t) => t.type === 'systemd-fido2')
    .map((t) => {
      const rp = t.members.get('fido2-rp');
      if (rp !== undefined && (rp.t !== 'string' || rp.v.length === 0 || rp.v.length > 255)) throw bad(t, '"fido2-rp" is not a relying party id');
      const salt = bytesMember(t, 'fido2-salt', FIDO2_SALT_BYTES);
      if (salt.length !== FIDO2_SALT_BYTES) throw bad(t, `"fido2-salt" is not ${FIDO2_SALT_BYTES} bytes`);
      if (t.keyslots.length === 0) throw bad(t, 'it names no keyslot');
      return {
        id: t.id,
        keyslots: t.keyslots,
        credentialId: bytesMember(t, 'fido2-credential', MAX_CREDENTIAL_ID),
        salt,
        rpId: rp?.t === 'string' ? rp.v : SYSTEMD_FIDO2_RP_ID,
        pin: flagMember(t, 'fido2-clientPin-required'),
        up: flagMember(t, 'fido2-up-required'),
        uv: flagMember(t, 'fido2-uv-required'),
      };
    });
}

export interface TokenUnlockOptions {
  device?: string;
  pin?: Uint8Array;
  /** Asked only when the PIN is needed (required by the token, or asked for by the key of a token
   *  that does not say); null: none can be given. What it returns is wiped here. */
  askPin?: () => Promise<Uint8Array | null>;
  timeoutMs?: number;
}

function fidoErrorOf(e: unknown): unknown {
  return isVaultError(e) ? (e.cause as { fidoError?: unknown } | undefined)?.fidoError : undefined;
}


/**
 * The keyslot passphrase of a systemd-fido2 token: base64 of the hmac-secret output, asked with the
 * options systemd-cryptsetup uses (user presence only when required, retried with it when a key of
 * an old token insists; the PIN when required, or, for a token that does not say, when the key asks
 * for it: systemd's FIDO2ENROLL_PIN_IF_NEEDED). The caller wipes it.
 */
export async function systemdFido2Passphrase(t: SystemdFido2Token, o: TokenUnlockOptions): Promise<Buffer> {
  let pin = o.pin;
  let asked: Uint8Array | null = null;
  let askedOnce = false;
  const havePin = async (): Promise<boolean> => {
    if (pin === undefined && o.askPin && !askedOnce) {
      askedOnce = true;
      asked = await o.askPin();
      if (asked) pin = asked;
    }
    return pin !== undefined;
  };
  try {
    return await withOptions(t, o, () => pin, havePin);
  } finally {
    if (asked) wipe(asked);
  }
}

async function withOptions(t: SystemdFido2Token, o: TokenUnlockOptions, pinOf: () => Uint8Array | undefined, havePin: () => Promise<boolean>): Promise<Buffer> {
  if (t.pin === 'required' && !(await havePin()))
    throw new VaultError('token-pin-required', 'this systemd-fido2 token needs the security key’s PIN', 'enter the PIN of the security key');
  let up = t.up === 'required';
  let usePin = t.pin === 'required';
  for (;;) {
    const pin = pinOf();
    try {
      const secret = await fido2Secret({
        ...(o.device !== undefined ? { device: o.device } : {}),
        rpId: t.rpId,
        credentialId: t.credentialId,
        salt: t.salt,
        uv: t.uv === 'required',
        // systemd sets "uv" false when not required; CTAP reads a missing "uv" as false too.
        uvOption: t.uv === 'required' ? 'true' : 'omit',
        up,
        ...(usePin && pin !== undefined ? { pin } : {}),
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      });
      try {
        return base64Secret(secret);
      } finally {
        wipe(secret);
      }
    } catch (e) {
      const fidoError = fidoErrorOf(e);
      if (!up && t.up === 'if-needed' && (fidoError === FIDO_ERR_UP_REQUIRED || fidoError === FIDO_ERR_UNSUPPORTED_OPTION)) {
        up = true;
        continue;
      }
      // A token of systemd 248 does not say whether the PIN is needed: asked when the key wants it.
      if (!usePin && t.pin === 'if-needed' && isVaultError(e, 'token-pin-required') && (await havePin())) {
        usePin = true;
        continue;
      }
      throw e;
    }
  }
}
