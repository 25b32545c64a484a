/**
 * FIDO2 hmac-secret through the real libfido2 (native/fido2.c, src/token/fido2.ts) against the
 * software authenticator (test/support/fido2-authenticator), reached over the `unix:` CTAP HID
 * transport. Only the security key is simulated: libfido2 and vault's code are the real ones.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isVaultError, VaultError } from '../../src/errors.js';
import { FIDO2_DEFAULT_RP_ID, fido2Devices, fido2Enroll, fido2Secret } from '../../src/token/fido2.js';
import { expectedHmac, simulators } from '../support/fido2-sim.js';

const tag = process.env.VAULT_E2E_TAG ? `${process.env.VAULT_E2E_TAG}-` : '';
const root = mkdtempSync(path.join(tmpdir(), `vault-fido2-${tag}`));
chmodSync(root, 0o700);
const sim = simulators(root);

async function vaultError(p: Promise<unknown>): Promise<VaultError> {
  try {
    await p;
  } catch (e) {
    if (isVaultError(e)) return e;
    throw e;
  }
  throw new Error('expected a VaultError');
}

const pin = (s: string) => Buffer.from(s, 'utf8');

describe('fido2 with libfido2 and a software authenticator', () => {
  it('enrols, then gives the same secret for the same salt, another for another salt, HMAC(CredRandom, salt) as CTAP 2.1 defines it', async () => {
    const key = await sim('plain');
    const e = await fido2Enroll({ device: key.device, uv: false });
    expect(e.rpId).toBe(FIDO2_DEFAULT_RP_ID);
    expect(e.salt.length).toBe(32);
    expect(e.secret.length).toBe(32);
    expect(e.pin).toBe(false);
    expect(e.credentialId.length).toBeGreaterThan(16);
    expect(e.secret.toString('hex')).toBe(expectedHmac(key.master, e.rpId, e.credentialId, e.salt, false));
    const again = await fido2Secret({ device: key.device, rpId: e.rpId, credentialId: e.credentialId, salt: e.salt, uv: false });
    expect(again.equals(e.secret)).toBe(true);
    const otherSalt = randomBytes(32);
    const other = await fido2Secret({ device: key.device, rpId: e.rpId, credentialId: e.credentialId, salt: otherSalt, uv: false });
    expect(other.equals(e.secret)).toBe(false);
    expect(other.toString('hex')).toBe(expectedHmac(key.master, e.rpId, e.credentialId, otherSalt, false));
    // Another relying party does not find the credential.
    const err = await vaultError(fido2Secret({ device: key.device, rpId: 'io.systemd.cryptsetup', credentialId: e.credentialId, salt: e.salt, uv: false }));
    expect(err.code).toBe('token-refused');
    // hmac-secret went through protocol one (a CTAP 2.0 key), and the enrolment touched the key once: the assertion asked with up=false.
    expect(key.log()).toContain('hmac-secret protocol 1');
  });

  for (const ctap21 of [false, true]) {
    const protocol = ctap21 ? 2 : 1;
    it(`PIN (CTAP ${ctap21 ? '2.1, pinUvAuthToken with permissions' : '2.0, getPinToken'}, protocol ${protocol}): right PIN, wrong PIN, missing PIN, blocked`, async () => {
      const key = await sim(`pin${protocol}`, { pin: '4711', ctap21 });
      // Without the PIN the key makes no credential.
      expect((await vaultError(fido2Enroll({ device: key.device, uv: true }))).code).toBe('token-pin-required');
      const e = await fido2Enroll({ device: key.device, uv: true, pin: pin('4711') });
      expect(e.pin).toBe(true);
      expect(e.secret.toString('hex')).toBe(expectedHmac(key.master, e.rpId, e.credentialId, e.salt, true));
      const slot = { device: key.device, rpId: e.rpId, credentialId: e.credentialId, salt: e.salt, uv: true, pinRequired: true };
      expect((await fido2Secret({ ...slot, pin: pin('4711') })).equals(e.secret)).toBe(true);
      const wrong = await vaultError(fido2Secret({ ...slot, pin: pin('0000') }));
      expect(wrong.code).toBe('wrong-password');
      expect(wrong.message).toMatch(/wrong PIN/);
      // The slot says a PIN is needed: no PIN is refused before the key is asked.
      const missing = await vaultError(fido2Secret({ ...slot }));
      expect(missing.code).toBe('token-pin-required');
      // User verification asked for without a PIN: the key (no built-in verification) wants its PIN.
      expect((await vaultError(fido2Secret({ ...slot, pinRequired: false }))).code).toBe('token-pin-required');
      expect(key.log()).toContain(`clientPIN sub 0x${ctap21 ? '09' : '05'} protocol ${protocol}`);
      expect(key.log()).toContain(`hmac-secret protocol ${protocol}`);
      // Two more wrong PINs make three in a row: the key refuses PINs until it is power-cycled.
      expect((await vaultError(fido2Secret({ ...slot, pin: pin('0001') }))).code).toBe('wrong-password');
      const blocked = await vaultError(fido2Secret({ ...slot, pin: pin('0002') }));
      expect(blocked.code).toBe('token-refused');
      expect(blocked.message).toMatch(/too many wrong/);
      expect((await vaultError(fido2Secret({ ...slot, pin: pin('4711') }))).code).toBe('token-refused');
    });
  }

  it('built-in user verification: uv without a PIN on a key that has it, refused on a key without', async () => {
    const key = await sim('uv', { uv: true });
    const e = await fido2Enroll({ device: key.device, uv: true });
    expect(e.secret.toString('hex')).toBe(expectedHmac(key.master, e.rpId, e.credentialId, e.salt, true));
    const s = await fido2Secret({ device: key.device, rpId: e.rpId, credentialId: e.credentialId, salt: e.salt, uv: true });
    expect(s.equals(e.secret)).toBe(true);
    // CTAP 2.1 with pinUvAuthToken: libfido2 gets a token by built-in verification (getPinUvAuthTokenUsingUvWithPermissions).
    const key21 = await sim('uv21', { uv: true, ctap21: true });
    const e21 = await fido2Enroll({ device: key21.device, uv: true });
    expect(e21.secret.toString('hex')).toBe(expectedHmac(key21.master, e21.rpId, e21.credentialId, e21.salt, true));
    const s21 = await fido2Secret({ device: key21.device, rpId: e21.rpId, credentialId: e21.credentialId, salt: e21.salt, uv: true });
    expect(s21.equals(e21.secret)).toBe(true);
    expect(key21.log()).toContain('clientPIN sub 0x06 protocol 2');
    const plain = await sim('no-uv');
    const err = await vaultError(fido2Enroll({ device: plain.device, uv: true }));
    expect(err.code).toBe('token-refused');
    expect(err.message).toMatch(/verify the user/);
  });

  it('the wrong authenticator, presence denied, presence timed out, a slow touch, the key removed', async () => {
    const key = await sim('owner');
    const e = await fido2Enroll({ device: key.device, uv: false });
    const slot = { rpId: e.rpId, credentialId: e.credentialId, salt: e.salt, uv: false };
    const other = await sim('other'); // another master secret: another authenticator
    const wrongKey = await vaultError(fido2Secret({ ...slot, device: other.device }));
    expect(wrongKey.code).toBe('token-refused');
    expect(wrongKey.message).toMatch(/does not hold this keyslot's credential/);
    const denied = await sim('denied', { master: key.master, presence: 'deny' });
    const d = await vaultError(fido2Secret({ ...slot, device: denied.device }));
    expect(d.code).toBe('token-refused');
    expect(d.message).toMatch(/not touched/);
    const never = await sim('never', { master: key.master, presence: 'timeout', presenceMs: 400 });
    const t = await vaultError(fido2Secret({ ...slot, device: never.device }));
    expect(t.code).toBe('token-refused');
    expect(t.message).toMatch(/not touched/);
    // A key that waits for a touch longer than vault waits: a timeout, not a missing key.
    const late = await sim('late', { master: key.master, presence: 'slow', presenceMs: 5000 });
    const l = await vaultError(fido2Secret({ ...slot, device: late.device, timeoutMs: 600 }));
    expect(l.code).toBe('token-refused');
    expect(l.message).toMatch(/did not answer in time/);
    const slow = await sim('slow', { master: key.master, presence: 'slow', presenceMs: 500 }); // keepalives meanwhile
    expect((await fido2Secret({ ...slot, device: slow.device })).equals(e.secret)).toBe(true);
    // A key that refuses assertions without a touch: enrolment asks again with one (as systemd-cryptenroll does).
    const insisting = await sim('insisting', { upAlways: true });
    const e2 = await fido2Enroll({ device: insisting.device, uv: false });
    expect(insisting.log().filter((l) => l === 'cmd 0x02')).toHaveLength(2);
    expect((await fido2Secret({ device: insisting.device, rpId: e2.rpId, credentialId: e2.credentialId, salt: e2.salt, uv: false })).equals(e2.secret)).toBe(true);
    await key.stop();
    const gone = await vaultError(fido2Secret({ ...slot, device: key.device }));
    expect(gone.code).toBe('token-unavailable');
    expect(gone.message).toMatch(/not there or stopped answering/);
  });

  it('refuses device names that are neither hidraw nor unix:, and with no device picks the first key libfido2 finds', async () => {
    expect((await vaultError(fido2Enroll({ device: 'hidraw0', uv: false }))).code).toBe('usage');
    expect((await vaultError(fido2Enroll({ device: 'unix:relative.sock', uv: false }))).code).toBe('usage');
    const devices = fido2Devices();
    expect(Array.isArray(devices)).toBe(true);
    if (devices.length === 0) {
      // No USB here: libfido2's manifest is empty, so there is nothing to pick.
      const none = await vaultError(fido2Enroll({ uv: false }));
      expect(none.code).toBe('token-unavailable');
      expect(none.message).toBe('no FIDO2 security key found');
    } else {
      for (const d of devices) expect(d.path).toMatch(/^\/dev\//);
    }
  });
});
