/**
 * A LUKS2 container enrolled the way systemd-cryptenroll --fido2-device enrols one, for tests that
 * cannot run systemd-cryptenroll itself against an authenticator (no USB, no UHID here). The
 * container and its keyslots are made by the real cryptsetup; the token JSON is built exactly as
 * systemd builds it (src/cryptenroll/cryptenroll-fido2.c: the keyslot passphrase is base64 of the
 * hmac-secret output for a 32-byte salt, relying party "io.systemd.cryptsetup"), and
 * `cryptsetup token import` hands it to systemd's own token plugin
 * (libcryptsetup-token-systemd-fido2.so, Debian's systemd), which validates it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { fido2Enroll } from '../../src/token/fido2.js';
import { SYSTEMD_FIDO2_RP_ID } from '../../src/token/systemd-fido2.js';
import { cryptsetup, FAST_PBKDF2, keyFile, secretOf, unlockFile } from './luks.js';
import type { Sim } from './fido2-sim.js';

/** The passphrase of keyslot 0 of every container enrolLikeSystemd makes. */
export const SYSTEMD_FIDO2_PASSPHRASE = 'the passphrase';

/**
 * What systemd-cryptenroll --fido2-device does to a new LUKS2 container `dir`/`name` (20 MiB):
 * keyslot 0 for SYSTEMD_FIDO2_PASSPHRASE, keyslot 1 for base64(hmac-secret) and token 0 naming it.
 * `extra` adds token members, `omit` drops some (a token of systemd 248 has no flags and no "fido2-rp").
 * Returns the file and the volume key the passphrase opens.
 */
export async function enrolLikeSystemd(
  dir: string,
  name: string,
  key: Sim,
  lock: { pin?: string; up?: boolean; uv?: boolean },
  extra: Record<string, unknown> = {},
  omit: string[] = [],
): Promise<{ file: string; volumeKey: Buffer }> {
  const file = path.join(dir, name);
  writeFileSync(file, Buffer.alloc(20 << 20));
  const pass = keyFile(dir, `${name}.pass`, SYSTEMD_FIDO2_PASSPHRASE);
  cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', pass, file]);
  const e = await fido2Enroll({ device: key.device, rpId: SYSTEMD_FIDO2_RP_ID, uv: lock.uv ?? false, ...(lock.pin ? { pin: Buffer.from(lock.pin) } : {}) });
  cryptsetup(['luksAddKey', ...FAST_PBKDF2, '--key-file', pass, '--new-key-slot', '1', file, keyFile(dir, `${name}.fido2`, e.secret.toString('base64'))]);
  const token: Record<string, unknown> = {
    type: 'systemd-fido2',
    keyslots: ['1'],
    'fido2-credential': e.credentialId.toString('base64'),
    'fido2-salt': e.salt.toString('base64'),
    'fido2-rp': SYSTEMD_FIDO2_RP_ID,
    'fido2-clientPin-required': lock.pin !== undefined,
    'fido2-up-required': lock.up ?? true,
    'fido2-uv-required': lock.uv ?? false,
    ...extra,
  };
  for (const k of omit) delete token[k];
  const json = keyFile(dir, `${name}.json`, JSON.stringify(token));
  cryptsetup(['token', 'import', '--json-file', json, '--token-id', '0', file]);
  const byPassphrase = await unlockFile(luks2Adapter, file, secretOf(SYSTEMD_FIDO2_PASSPHRASE));
  const volumeKey = byPassphrase.key.withBytes((k) => Buffer.from(k));
  byPassphrase.key.dispose();
  return { file, volumeKey };
}
