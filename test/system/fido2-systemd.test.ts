/**
 * LUKS2 containers with a systemd-fido2 token (src/token/systemd-fido2.ts) unlocked by vault mount's
 * token step for LUKS2 (src/formats/luks2/tokens.ts, luks2TokenUnlocker) through the real libfido2
 * and the software authenticator. The containers are enrolled as systemd-cryptenroll enrols them
 * (test/support/systemd-fido2.ts: the real cryptsetup, token JSON built as systemd builds it), because
 * systemd-cryptenroll itself cannot reach an authenticator here (no USB, no UHID).
 * test/e2e/tokens.test.ts runs the same through `vault mount`.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { luks2TokenUnlocker } from '../../src/formats/luks2/tokens.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { cryptsetup, FAST_PBKDF2, keyFile, mutateJson, workDir } from '../support/luks.js';
import { simulators } from '../support/fido2-sim.js';
import { enrolLikeSystemd } from '../support/systemd-fido2.js';

const dir = workDir('fido2-systemd');
const sim = simulators(dir);

/**
 * vault mount's token step on `file` with this key and PIN (none: no PIN can be asked): the volume
 * key it opened, or null, and what it noted. No systemd token at all: null, noted as such.
 */
async function unlockByToken(file: string, o: { device?: string; pin?: string }): Promise<{ key: Buffer | null; notes: string[] }> {
  const c = openContainer(file, true);
  const notes: string[] = [];
  try {
    const unlock = await luks2TokenUnlocker(c, { readOnly: true }, {
      ...(o.device ? { fido2Device: o.device } : {}),
      pin: async () => (o.pin === undefined ? null : Buffer.from(o.pin)),
      note: (m) => notes.push(m),
    });
    if (!unlock) return { key: null, notes: ['no systemd token'] };
    const v = await unlock();
    if (!v) return { key: null, notes };
    expect(v.format).toBe('luks2');
    const key = v.key.withBytes((k) => Buffer.from(k));
    v.key.dispose();
    return { key, notes };
  } finally {
    closeContainer(c);
  }
}

const opened = (token: number, slot = 1) => [`unlocked with the systemd-fido2 token ${token} (keyslot ${slot})`];
const refused = (why: RegExp) => ({ key: null, notes: [expect.stringMatching(new RegExp(`^the systemd-fido2 token 0 did not unlock: ${why.source}`))] });

describe('systemd-fido2 LUKS2 tokens', () => {
  it('opens the keyslot a systemd-fido2 token names, to the volume key the passphrase opens; another key does not', async () => {
    const key = await sim('key');
    const { file, volumeKey } = await enrolLikeSystemd(dir, 'plain.luks', key, {});
    expect(await unlockByToken(file, { device: key.device })).toEqual({ key: volumeKey, notes: opened(0) });
    const other = await sim('other');
    expect(await unlockByToken(file, { device: other.device })).toEqual(refused(/the security key unix:\S+ does not hold this keyslot's credential/));
  });

  it('a PIN-locked token: the PIN opens it, none is refused before the key is asked, a wrong one is a wrong PIN', async () => {
    const key = await sim('pinkey', { pin: '123456', ctap21: true });
    const { file, volumeKey } = await enrolLikeSystemd(dir, 'pin.luks', key, { pin: '123456' });
    expect(await unlockByToken(file, { device: key.device, pin: '123456' })).toEqual({ key: volumeKey, notes: opened(0) });
    const asked = key.log().length;
    expect(await unlockByToken(file, { device: key.device })).toEqual(refused(/this systemd-fido2 token needs the security key’s PIN/));
    expect(key.log()).toHaveLength(asked);
    expect(await unlockByToken(file, { device: key.device, pin: '000000' })).toEqual(refused(/wrong PIN for the security key/));
  });

  it('fido2-up-required false: no touch asked (a key that would refuse one still answers); a token of systemd 248 without the flags, retried with a touch when the key insists', async () => {
    const key = await sim('upkey');
    const { file, volumeKey } = await enrolLikeSystemd(dir, 'noup.luks', key, { up: false });
    const refusing = await sim('refusing', { master: key.master, presence: 'deny' });
    expect((await unlockByToken(file, { device: refusing.device })).key).toEqual(volumeKey);
    // A token of systemd 248 has neither the three flags nor "fido2-rp": no touch asked first, no PIN,
    // no "uv" option, relying party io.systemd.cryptsetup.
    const flags = ['fido2-clientPin-required', 'fido2-up-required', 'fido2-uv-required', 'fido2-rp'];
    const legacy = await enrolLikeSystemd(dir, 'v248.luks', key, {}, {}, flags);
    expect((await unlockByToken(legacy.file, { device: refusing.device })).key).toEqual(legacy.volumeKey);
    // A key that insists on a touch: the old token retries with one (as systemd does); the new one,
    // which says no touch, is refused.
    const insisting = await sim('insisting', { master: key.master, upAlways: true });
    expect((await unlockByToken(legacy.file, { device: insisting.device })).key).toEqual(legacy.volumeKey);
    expect(await unlockByToken(file, { device: insisting.device })).toEqual(refused(/the security key \S+ was not touched \(user presence not confirmed\)/));
  });

  it('a token of systemd 248 (no fido2-clientPin-required) on a key that insists on its PIN: the PIN is asked then, and opens it; none to give is noted', async () => {
    const key = await sim('alwaysuv', { pin: '123456', ctap21: true, alwaysUv: true });
    const legacy = await enrolLikeSystemd(dir, 'v248-pin.luks', key, { pin: '123456' }, {}, ['fido2-clientPin-required', 'fido2-up-required', 'fido2-uv-required']);
    expect(await unlockByToken(legacy.file, { device: key.device, pin: '123456' })).toEqual({ key: legacy.volumeKey, notes: opened(0) });
    expect(await unlockByToken(legacy.file, { device: key.device })).toEqual(refused(/the security key \S+ needs its PIN/));
  });

  it('a damaged token is noted and leaves the passphrase; a header without one has no token step', async () => {
    const key = await sim('dmg');
    const { file } = await enrolLikeSystemd(dir, 'damaged.luks', key, {});
    // cryptsetup's import refuses such a token (systemd's plugin validates it): damage the header's JSON instead.
    mutateJson(file, (j) => {
      (j as { tokens: Record<string, Record<string, unknown>> }).tokens['0']!['fido2-salt'] = 'not base64!';
    });
    expect(await unlockByToken(file, { device: key.device })).toEqual({
      key: null,
      notes: ['the LUKS2 tokens cannot be used: LUKS2 token 0 (systemd-fido2): "fido2-salt" is not base64 of 1..32 bytes'],
    });
    const bare = path.join(dir, 'bare.luks');
    writeFileSync(bare, Buffer.alloc(20 << 20));
    cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', keyFile(dir, 'bare.pass', 'x'), bare]);
    expect(await unlockByToken(bare, { device: key.device })).toEqual({ key: null, notes: ['no systemd token'] });
  });
});
