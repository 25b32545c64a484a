/**
 * FIDO2 security keys through the real libfido2 (native/fido2.c): a non-resident ES256 credential
 * with the hmac-secret extension, and its hmac-secret for a random salt as the key material of a
 * keyslot (what systemd-cryptenroll --fido2-device does). libfido2 runs on the libuv threadpool.
 *
 * A device is a hidraw path (/dev/hidraw3), `unix:<absolute path>` (CTAP HID reports over a unix
 * socket: native/fido2.h), or absent: the first FIDO2 device libfido2 finds.
 */
import { randomBytes } from 'node:crypto';
import { loadVaultAddon } from '../crypto/addon-loader.js';
import { VaultError } from '../errors.js';

/** The relying party vault's credentials are made for (systemd-cryptenroll uses "io.systemd.cryptsetup"). */
export const FIDO2_DEFAULT_RP_ID = 'io.vault';
export const FIDO2_SALT_BYTES = 32;
export const FIDO2_SECRET_BYTES = 32;
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_CREDENTIAL_ID = 1024;

interface Fido2Addon {
  fido2Async(options: {
    device: string;
    rpId: string;
    salt: Uint8Array;
    uv: boolean;
    pin?: Uint8Array;
    credentialId?: Uint8Array;
    timeoutMs: number;
    up?: boolean;
    uvOption?: 'omit' | 'false' | 'true';
  }): Promise<{ credentialId: Buffer; secret: Buffer }>;
  fido2Devices(): Fido2Device[];
}

export interface Fido2Device {
  path: string;
  manufacturer: string;
  product: string;
}

export interface Fido2EnrollOptions {
  /** hidraw path or `unix:<path>`; absent: the first key found. */
  device?: string;
  rpId?: string;
  /** Require user verification (built-in, e.g. a fingerprint; with `pin`, the PIN verifies). */
  uv: boolean;
  /** The key's client PIN (UTF-8). The caller wipes it. */
  pin?: Uint8Array;
  /** How long libfido2 waits for the key, touches included (default 30 s). */
  timeoutMs?: number;
}

export interface Fido2Enrollment {
  credentialId: Buffer;
  salt: Buffer;
  /** The hmac-secret output (32 bytes): the keyslot's key material. The caller wipes it. */
  secret: Buffer;
  rpId: string;
  uv: boolean;
  /** Whether a PIN was used: unlocking then needs it too (the key answers differently without). */
  pin: boolean;
}

export interface Fido2SecretOptions {
  device?: string;
  rpId: string;
  credentialId: Uint8Array;
  salt: Uint8Array;
  uv: boolean;
  pin?: Uint8Array;
  /** The credential was enrolled with a PIN: without one, fail with 'token-pin-required' before asking the key. */
  pinRequired?: boolean;
  timeoutMs?: number;
  /** Ask for user presence (default true). */
  up?: boolean;
  /** The assertion's "uv" option, when it must be exactly this (systemd tokens); by default "true" when uv and no pin, else omitted. */
  uvOption?: 'omit' | 'false' | 'true';
}

function addon(): Fido2Addon {
  return loadVaultAddon() as Fido2Addon;
}

/** The FIDO2 devices libfido2 finds on hidraw (unix-socket devices are never listed). */
export function fido2Devices(): Fido2Device[] {
  return addon().fido2Devices();
}

function checkDevice(device: string | undefined): string {
  if (device === undefined) return '';
  if (/^unix:\/[^\0]+$/.test(device) || /^\/dev\/[^\0]+$/.test(device)) return device;
  throw new VaultError('usage', `not a FIDO2 device: ${JSON.stringify(device)}`, 'give a hidraw path (/dev/hidrawN) or unix:/path/to/socket');
}

function checkRpId(rpId: string): string {
  if (rpId.length === 0 || rpId.length > 255 || rpId.includes('\0')) throw new VaultError('invalid-field', 'a FIDO2 relying party id must be 1..255 characters');
  return rpId;
}

/** Enrols a new credential on the key (it asks for a touch, and the PIN when given) and derives its secret for a new salt. */
export async function fido2Enroll(o: Fido2EnrollOptions): Promise<Fido2Enrollment> {
  const rpId = checkRpId(o.rpId ?? FIDO2_DEFAULT_RP_ID);
  const device = checkDevice(o.device);
  const salt = randomBytes(FIDO2_SALT_BYTES);
  const r = await call(device, { device, rpId, salt, uv: o.uv, ...(o.pin ? { pin: o.pin } : {}), timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS });
  return { credentialId: r.credentialId, salt, secret: r.secret, rpId, uv: o.uv, pin: o.pin !== undefined };
}

/** The hmac-secret of an enrolled credential for `salt` (the key asks for a touch). */
export async function fido2Secret(o: Fido2SecretOptions): Promise<Buffer> {
  const rpId = checkRpId(o.rpId);
  const device = checkDevice(o.device);
  if (o.salt.length !== FIDO2_SALT_BYTES) throw new VaultError('invalid-field', `a FIDO2 salt must be ${FIDO2_SALT_BYTES} bytes`);
  if (o.credentialId.length === 0 || o.credentialId.length > MAX_CREDENTIAL_ID)
    throw new VaultError('invalid-field', `a FIDO2 credential id must be 1..${MAX_CREDENTIAL_ID} bytes`);
  if (o.pinRequired === true && o.pin === undefined)
    throw new VaultError('token-pin-required', 'this FIDO2 keyslot needs the security key’s PIN', 'enter the PIN of the security key');
  const r = await call(device, {
    device,
    rpId,
    salt: o.salt,
    uv: o.uv,
    credentialId: o.credentialId,
    ...(o.pin ? { pin: o.pin } : {}),
    ...(o.up !== undefined ? { up: o.up } : {}),
    ...(o.uvOption !== undefined ? { uvOption: o.uvOption } : {}),
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
  return r.secret;
}

async function call(device: string, options: Parameters<Fido2Addon['fido2Async']>[0]): Promise<{ credentialId: Buffer; secret: Buffer }> {
  try {
    return await addon().fido2Async(options);
  } catch (e) {
    throw fido2Error(e, device);
  }
}

// libfido2's numbers for the two kinds of blocked PIN (CTAP2_ERR_PIN_BLOCKED, CTAP2_ERR_PIN_AUTH_BLOCKED).
const FIDO_ERR_PIN_BLOCKED = 0x32;

/** libfido2's failure (native/fido2.h codes) as a VaultError; anything else unchanged. */
export function fido2Error(e: unknown, device: string): unknown {
  const err = e as { code?: unknown; fidoError?: unknown; message?: string };
  if (typeof err?.code !== 'string' || !err.code.startsWith('ERR_FIDO2')) return e;
  const key = device === '' ? 'the security key' : `the security key ${device}`;
  const cause = { cause: e };
  switch (err.code) {
    case 'ERR_FIDO2_NO_DEVICE':
      return device === ''
        ? new VaultError('token-unavailable', 'no FIDO2 security key found', 'plug the security key in, or use the passphrase', cause)
        : new VaultError('token-unavailable', `${key} is not there or stopped answering`, 'plug the security key in, or use the passphrase', cause);
    case 'ERR_FIDO2_NO_CREDENTIAL':
      return new VaultError('token-refused', `${key} does not hold this keyslot's credential (another security key?)`, 'use the security key this keyslot was enrolled with, or the passphrase', cause);
    case 'ERR_FIDO2_PRESENCE':
      return new VaultError('token-refused', `${key} was not touched (user presence not confirmed)`, 'touch the security key when it blinks, and try again', cause);
    case 'ERR_FIDO2_TIMEOUT':
      return new VaultError('token-refused', `${key} did not answer in time (not touched?)`, 'touch the security key when it blinks, and try again', cause);
    case 'ERR_FIDO2_PIN_REQUIRED':
      return new VaultError('token-pin-required', `${key} needs its PIN`, 'enter the PIN of the security key', cause);
    case 'ERR_FIDO2_PIN_INVALID':
      return new VaultError('wrong-password', `wrong PIN for ${key}`, 'after a few wrong PINs the key blocks it', cause);
    case 'ERR_FIDO2_PIN_BLOCKED':
      return err.fidoError === FIDO_ERR_PIN_BLOCKED
        ? new VaultError('token-refused', `the PIN of ${key} is blocked`, 'only a reset of the key (which destroys its credentials) unblocks it: use the passphrase', cause)
        : new VaultError('token-refused', `${key} refuses PINs after too many wrong ones in a row`, 'unplug the security key, plug it in again and retry', cause);
    case 'ERR_FIDO2_UV':
      return new VaultError('token-refused', `${key} could not verify the user (no built-in verification, or it failed)`, 'enrol with a PIN instead, or use the passphrase', cause);
    case 'ERR_FIDO2_UNSUPPORTED':
      return new VaultError('token-refused', `${key} lacks what vault needs (FIDO2 with the hmac-secret extension and ES256 credentials)`, 'use a FIDO2 key with hmac-secret', cause);
    default:
      return new VaultError('token-refused', `${key} did not answer as expected (${err.message ?? 'unknown error'})`, undefined, cause);
  }
}
