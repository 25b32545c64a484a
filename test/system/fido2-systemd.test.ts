/**
 * LUKS2 containers with a systemd-fido2 token (src/token/systemd-fido2.ts) unlocked through the real
 * libfido2 and the software authenticator. The container and its keyslots are made by the real
 * cryptsetup; the token JSON is built exactly as systemd-cryptenroll builds it (systemd's
 * src/cryptenroll/cryptenroll-fido2.c: the keyslot passphrase is base64 of the hmac-secret output
 * for a 32-byte salt, relying party "io.systemd.cryptsetup"), because systemd-cryptenroll itself
 * cannot reach an authenticator here (no USB, no UHID). `cryptsetup token import` hands the JSON to
 * systemd's own token plugin (libcryptsetup-token-systemd-fido2.so, Debian's systemd), which validates it.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isVaultError } from '../../src/errors.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { fido2Enroll } from '../../src/token/fido2.js';
import { SYSTEMD_FIDO2_RP_ID, unlockLuks2WithSystemdFido2 } from '../../src/token/systemd-fido2.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { cryptsetup, FAST_PBKDF2, keyFile, mutateJson, secretOf, unlockFile, workDir } from '../support/luks.js';
import { simulators, type Sim } from '../support/fido2-sim.js';

const dir = workDir('fido2-systemd');
const sim = simulators(dir);

/** What systemd-cryptenroll --fido2-device does to a LUKS2 container: a keyslot for base64(hmac-secret), and the token. */
async function enrolLikeSystemd(name: string, key: Sim, lock: { pin?: string; up?: boolean; uv?: boolean }, extra: Record<string, unknown> = {}, omit: string[] = []) {
  const file = path.join(dir, name);
  writeFileSync(file, Buffer.alloc(20 << 20));
  const pass = keyFile(dir, `${name}.pass`, 'the passphrase');
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
  const byPassphrase = await unlockFile(luks2Adapter, file, secretOf('the passphrase'));
  const volumeKey = byPassphrase.key.withBytes((k) => Buffer.from(k));
  byPassphrase.key.dispose();
  return { file, volumeKey };
}

async function unlockByToken(file: string, o: { device?: string; pin?: string }) {
  const c = openContainer(file, true);
  try {
    const v = await unlockLuks2WithSystemdFido2(c, { readOnly: true }, { ...(o.device ? { device: o.device } : {}), ...(o.pin ? { pin: Buffer.from(o.pin) } : {}) });
    const key = v.key.withBytes((k) => Buffer.from(k));
    v.key.dispose();
    expect(v.format).toBe('luks2');
    return key;
  } finally {
    closeContainer(c);
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isVaultError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}

describe('systemd-fido2 LUKS2 tokens', () => {
  it('opens the keyslot a systemd-fido2 token names, to the volume key the passphrase opens; another key does not', async () => {
    const key = await sim('key');
    const { file, volumeKey } = await enrolLikeSystemd('plain.luks', key, {});
    expect((await unlockByToken(file, { device: key.device })).equals(volumeKey)).toBe(true);
    const other = await sim('other');
    expect(await codeOf(unlockByToken(file, { device: other.device }))).toBe('token-refused');
  });

  it('a PIN-locked token: the PIN opens it, none is token-pin-required, a wrong one wrong-password', async () => {
    const key = await sim('pinkey', { pin: '123456', ctap21: true });
    const { file, volumeKey } = await enrolLikeSystemd('pin.luks', key, { pin: '123456' });
    expect((await unlockByToken(file, { device: key.device, pin: '123456' })).equals(volumeKey)).toBe(true);
    expect(await codeOf(unlockByToken(file, { device: key.device }))).toBe('token-pin-required');
    expect(await codeOf(unlockByToken(file, { device: key.device, pin: '000000' }))).toBe('wrong-password');
  });

  it('fido2-up-required false: no touch asked (a key that would refuse one still answers); a token of systemd 248 without the flags, retried with a touch when the key insists', async () => {
    const key = await sim('upkey');
    const { file, volumeKey } = await enrolLikeSystemd('noup.luks', key, { up: false });
    const refusing = await sim('refusing', { master: key.master, presence: 'deny' });
    expect((await unlockByToken(file, { device: refusing.device })).equals(volumeKey)).toBe(true);
    // A token of systemd 248 has neither the three flags nor "fido2-rp": no touch asked first, no PIN,
    // no "uv" option, relying party io.systemd.cryptsetup.
    const flags = ['fido2-clientPin-required', 'fido2-up-required', 'fido2-uv-required', 'fido2-rp'];
    const legacy = await enrolLikeSystemd('v248.luks', key, {}, {}, flags);
    expect((await unlockByToken(legacy.file, { device: refusing.device })).equals(legacy.volumeKey)).toBe(true);
    // A key that insists on a touch: the old token retries with one (as systemd does); the new one,
    // which says no touch, is refused.
    const insisting = await sim('insisting', { master: key.master, upAlways: true });
    expect((await unlockByToken(legacy.file, { device: insisting.device })).equals(legacy.volumeKey)).toBe(true);
    expect(await codeOf(unlockByToken(file, { device: insisting.device }))).toBe('token-refused');
  });

  it('a damaged token is invalid-field; a header without one is no-keyslot', async () => {
    const key = await sim('dmg');
    const { file } = await enrolLikeSystemd('damaged.luks', key, {});
    // cryptsetup's import refuses such a token (systemd's plugin validates it): damage the header's JSON instead.
    mutateJson(file, (j) => {
      (j as { tokens: Record<string, Record<string, unknown>> }).tokens['0']!['fido2-salt'] = 'not base64!';
    });
    expect(await codeOf(unlockByToken(file, { device: key.device }))).toBe('invalid-field');
    const bare = path.join(dir, 'bare.luks');
    writeFileSync(bare, Buffer.alloc(20 << 20));
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', keyFile(dir, 'bare.pass', 'x'), bare]);
    expect(await codeOf(unlockByToken(bare, { device: key.device }))).toBe('no-keyslot');
  });
});
