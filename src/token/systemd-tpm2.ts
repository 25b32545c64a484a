// LUKS2 "systemd-tpm2" tokens, as systemd-cryptenroll 252 (Debian bookworm) writes them, unsealed
// with vault's TPM2 primitive (src/token/tpm2.ts): the token's object is the same one tpm2Seal
// makes (systemd 252's ECC primary key, PolicyPCR [+ PolicyAuthValue with SHA-256(PIN)]).
//
// A token (an untrusted member of the LUKS2 JSON, already through the strict reader,
// src/formats/luks/json.ts) holds:
//   "type": "systemd-tpm2", "keyslots": ["1"],
//   "tpm2-blob": base64 of TPM2B_PRIVATE || TPM2B_PUBLIC (marshalled),
//   "tpm2-pcrs": [7], "tpm2-pcr-bank": "sha256", "tpm2-primary-alg": "ecc",
//   "tpm2-policy-hash": hex of the policy digest, "tpm2-pin": false.
// The keyslot's passphrase is the unsealed secret in base64 (systemd's base64mem).
//
// Not supported, refused as unsupported-feature: the sha1 bank, RSA primary keys (tokens of
// systemd < 250, or TPMs without ECC), signed PCR policies (tpm2-pubkey), and the fields of later
// systemd versions (tpm2-salt: a salted PIN; tpm2_srk: the persistent SRK; tpm2_pcrlock).
import { VaultError } from '../errors.js';
import { decodeBase64 } from '../formats/luks/base64.js';
import type { JsonValue } from '../formats/luks/json.js';
import { secretBuffer, wipe } from '../crypto/wipe.js';
import { tpm2Unseal, TPM2_PCR_COUNT, type Tpm2Options, type Tpm2Sealed } from './tpm2.js';

export interface SystemdTpm2Token {
  /** The LUKS2 keyslots this token opens. */
  keyslots: number[];
  sealed: Tpm2Sealed;
}

const MAX_BLOB = 2048;
const UNSUPPORTED = ['tpm2-salt', 'tpm2_srk', 'tpm2_pcrlock'];

function bad(id: string, what: string): never {
  throw new VaultError('invalid-field', `LUKS2 token ${id} (systemd-tpm2): ${what}`, 'the token is damaged; unlock with the passphrase and enroll the TPM again (systemd-cryptenroll --wipe-slot=tpm2 --tpm2-device=auto)');
}

function unsupported(id: string, what: string): never {
  throw new VaultError('unsupported-feature', `LUKS2 token ${id} (systemd-tpm2): ${what} is not supported`, 'unlock with the passphrase, or with systemd-cryptsetup');
}

/** Validates one token object (a member of the LUKS2 "tokens" section); `id` names it in errors. */
export function parseSystemdTpm2Token(token: JsonValue, id = '?'): SystemdTpm2Token {
  if (token.t !== 'object') bad(id, 'not an object');
  const o = token.v;
  const get = <T extends JsonValue['t']>(key: string, t: T): Extract<JsonValue, { t: T }> | undefined => {
    const v = o.get(key);
    if (v === undefined) return undefined;
    if (v.t !== t) bad(id, `"${key}" is not of type ${t}`);
    return v as Extract<JsonValue, { t: T }>;
  };
  const need = <T extends JsonValue['t']>(key: string, t: T): Extract<JsonValue, { t: T }> => get(key, t) ?? bad(id, `"${key}" is missing`);
  if (need('type', 'string').v !== 'systemd-tpm2') bad(id, 'is not of type systemd-tpm2');
  for (const key of UNSUPPORTED) if (o.has(key)) unsupported(id, `"${key}" (from a systemd newer than 252)`);
  const pubkey = get('tpm2-pubkey', 'string');
  if (pubkey !== undefined && pubkey.v !== '') unsupported(id, 'a signed PCR policy ("tpm2-pubkey")');

  const keyslots = need('keyslots', 'array').v.map((k) => {
    if (k.t !== 'string' || !/^[0-9]{1,2}$/.test(k.v)) bad(id, '"keyslots" holds something other than keyslot numbers');
    return Number(k.v);
  });
  const pcrs = need('tpm2-pcrs', 'array').v.map((p) => {
    if (p.t !== 'int' || p.v < 0n || p.v >= BigInt(TPM2_PCR_COUNT)) bad(id, `"tpm2-pcrs" holds something other than PCR numbers 0 to ${TPM2_PCR_COUNT - 1}`);
    return Number(p.v);
  });
  // systemd's defaults for tokens that predate these fields: the sha1 bank, an RSA primary key.
  const bank = get('tpm2-pcr-bank', 'string')?.v ?? 'sha1';
  if (bank !== 'sha256') unsupported(id, `the ${bank} PCR bank`);
  const alg = get('tpm2-primary-alg', 'string')?.v ?? 'rsa';
  if (alg !== 'ecc') unsupported(id, `the ${alg} primary key`);

  const policyHex = need('tpm2-policy-hash', 'string').v;
  if (!/^([0-9a-fA-F]{2}){32}$/.test(policyHex)) bad(id, '"tpm2-policy-hash" is not a SHA-256 digest in hex');
  const blobText = need('tpm2-blob', 'string').v;
  if (blobText.length > (MAX_BLOB / 3) * 4 + 4) bad(id, '"tpm2-blob" is too long');
  const blob = decodeBase64(blobText);
  if (blob === null) bad(id, '"tpm2-blob" is not base64');
  // TPM2B_PRIVATE (a big-endian u16 size, then that many bytes) and then TPM2B_PUBLIC.
  const privEnd = blob.length >= 2 ? 2 + blob.readUInt16BE(0) : Infinity;
  if (privEnd + 2 > blob.length) bad(id, '"tpm2-blob" is not a TPM2B_PRIVATE followed by a TPM2B_PUBLIC');
  return {
    keyslots,
    sealed: {
      pcrBank: 'sha256',
      pcrs: [...new Set(pcrs)].sort((a, b) => a - b),
      pin: get('tpm2-pin', 'bool')?.v ?? false,
      private: blob.subarray(0, privEnd),
      public: blob.subarray(privEnd),
      policyHash: Buffer.from(policyHex, 'hex'),
    },
  };
}

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'ascii');

/** Padded base64 of `bytes` straight into a secretBuffer (no JS string of the secret to linger). */
export function base64Secret(bytes: Uint8Array): Buffer {
  const out = secretBuffer(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o++] = B64[n >> 18]!;
    out[o++] = B64[(n >> 12) & 63]!;
    out[o++] = i + 1 < bytes.length ? B64[(n >> 6) & 63]! : 0x3d;
    out[o++] = i + 2 < bytes.length ? B64[n & 63]! : 0x3d;
  }
  return out;
}

/**
 * Unseals the token's secret and returns the passphrase of its LUKS2 keyslot (the secret in
 * base64, as ASCII bytes), in a Buffer the caller wipes. Errors as tpm2Unseal's.
 */
export async function systemdTpm2Passphrase(token: SystemdTpm2Token, opts: Tpm2Options = {}): Promise<Buffer> {
  const secret = await tpm2Unseal(token.sealed, opts);
  try {
    return base64Secret(secret);
  } finally {
    wipe(secret);
  }
}
