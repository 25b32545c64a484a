/**
 * The systemd-tpm2 LUKS2 token reader (src/token/systemd-tpm2.ts), on token JSON shaped as
 * systemd-cryptenroll 252 writes it (the blob below is one it really enrolled on swtpm): the
 * fields it takes, systemd's defaults for older tokens, and every refusal, with its code.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { parseJson } from '../../src/formats/luks/json.js';
import { base64Secret, parseSystemdTpm2Token } from '../../src/token/systemd-tpm2.js';

// From `cryptsetup token export` after `systemd-cryptenroll --tpm2-device=swtpm:... --tpm2-pcrs=7`.
const BLOB =
  'AJ4AICrIFJabzx1d4W5R9slwGAjGmAFk8SjcgCtoVafZigBpABCtCnEmGl/MiP/vF4zRT2joMxGBaXGpqul9GKXDOvddCdQM30AKACbh6jeBQQertvY8aB7sv7jquQ9hQM/uGt5/9gS5pZI9I8EFvexXFtOwX1wiRiPQBsbSkf539bAePeLRsP3FggbS3ZZHkiwuu1sbeGH2BTASF2Tj2wBOAAgACwAAABIAIItWgtgbKUNdCNeSeBUGEdx+WSOy/vzOaEoJV3tAEwqLABAAIM+NXqnzWWCAjbHd/iJIX0UQioiTgFEuRJxa9+YDXzJt';
const POLICY = '8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b';
const TOKEN = {
  type: 'systemd-tpm2',
  keyslots: ['1'],
  'tpm2-blob': BLOB,
  'tpm2-pcrs': [7],
  'tpm2-pcr-bank': 'sha256',
  'tpm2-primary-alg': 'ecc',
  'tpm2-policy-hash': POLICY,
  'tpm2-pin': false,
};

function parse(token: Record<string, unknown>) {
  return parseSystemdTpm2Token(parseJson(Buffer.from(JSON.stringify(token))), '0');
}

function without(key: string): Record<string, unknown> {
  const t: Record<string, unknown> = { ...TOKEN };
  delete t[key];
  return t;
}

describe('systemd-tpm2 token', () => {
  it('splits the blob into TPM2B_PRIVATE and TPM2B_PUBLIC and keeps the policy fields', () => {
    const t = parse(TOKEN);
    const blob = Buffer.from(BLOB, 'base64');
    expect(t.keyslots).toEqual([1]);
    expect(t.sealed.private.length).toBe(2 + 0x9e);
    expect(t.sealed.private.readUInt16BE(0)).toBe(0x9e);
    expect(Buffer.concat([t.sealed.private, t.sealed.public]).equals(blob)).toBe(true);
    // TPM2B_PUBLIC: size, then type KEYEDHASH (0x0008), nameAlg SHA-256 (0x000b).
    expect(t.sealed.public.readUInt16BE(0)).toBe(t.sealed.public.length - 2);
    expect(t.sealed.public.subarray(2, 6).toString('hex')).toBe('0008000b');
    expect(t.sealed).toMatchObject({ pcrBank: 'sha256', pcrs: [7], pin: false });
    expect(t.sealed.policyHash.toString('hex')).toBe(POLICY);
    expect(parse({ ...TOKEN, 'tpm2-pin': true, 'tpm2-pcrs': [16, 7, 7] }).sealed).toMatchObject({ pin: true, pcrs: [7, 16] });
    expect(parse(without('tpm2-pin')).sealed.pin).toBe(false);
  });

  it('refuses what it does not support as unsupported-feature, as systemd defaults it', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [without('tpm2-pcr-bank'), /sha1 PCR bank/],
      [{ ...TOKEN, 'tpm2-pcr-bank': 'sha1' }, /sha1 PCR bank/],
      [without('tpm2-primary-alg'), /rsa primary key/],
      [{ ...TOKEN, 'tpm2-pubkey': 'LS0t', 'tpm2-pubkey-pcrs': [11] }, /signed PCR policy/],
      [{ ...TOKEN, 'tpm2-salt': 'c2FsdA==' }, /tpm2-salt/],
      [{ ...TOKEN, tpm2_srk: 'AAAA' }, /tpm2_srk/],
    ];
    for (const [token, msg] of cases) expect(() => parse(token)).toThrow(expect.objectContaining({ code: 'unsupported-feature', message: expect.stringMatching(msg) }));
    expect(parse({ ...TOKEN, 'tpm2-pubkey': '' }).keyslots).toEqual([1]); // systemd writes an empty one when unused
  });

  it('refuses damaged tokens as invalid-field, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [without('tpm2-blob'), /"tpm2-blob" is missing/],
      [{ ...TOKEN, 'tpm2-blob': 'AJ4A!' }, /not base64/],
      [{ ...TOKEN, 'tpm2-blob': Buffer.from(BLOB, 'base64').subarray(0, 150).toString('base64') }, /TPM2B_PRIVATE followed by a TPM2B_PUBLIC/],
      [{ ...TOKEN, 'tpm2-blob': 'A'.repeat(4000) }, /too long/],
      [{ ...TOKEN, 'tpm2-pcrs': [24] }, /PCR numbers/],
      [{ ...TOKEN, 'tpm2-pcrs': ['7'] }, /PCR numbers/],
      [{ ...TOKEN, 'tpm2-pcrs': 7 }, /"tpm2-pcrs" is not of type array/],
      [{ ...TOKEN, 'tpm2-policy-hash': POLICY.slice(2) }, /SHA-256 digest/],
      [{ ...TOKEN, 'tpm2-pin': 'no' }, /"tpm2-pin" is not of type bool/],
      [{ ...TOKEN, keyslots: [1] }, /keyslot numbers/],
      [{ ...TOKEN, type: 'systemd-fido2' }, /not of type systemd-tpm2/],
    ];
    for (const [token, msg] of cases) expect(() => parse(token)).toThrow(expect.objectContaining({ code: 'invalid-field', message: expect.stringMatching(msg) }));
  });
});

describe('the keyslot passphrase', () => {
  it("is systemd's base64mem of the secret (padded RFC 4648 base64)", () => {
    for (let n = 1; n <= 70; n++) {
      const b = randomBytes(n);
      expect(base64Secret(b).toString('ascii'), `${n} bytes`).toBe(b.toString('base64'));
    }
  });
});
