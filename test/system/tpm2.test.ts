/**
 * TPM2 sealing (src/token/tpm2.ts over native/tpm2.c and tpm2-tss) against a real software TPM,
 * swtpm (test/support/swtpm.ts): a round trip, the policy digest recomputed here from the PCR
 * values the TPM reports, a PCR extended after sealing, the PIN (right, wrong, missing), no TPM at
 * the TCTI, damaged and foreign blobs, and dictionary-attack lockout. No root needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { isVaultError, type VaultError } from '../../src/errors.js';
import { tpm2Seal, tpm2Unseal, type Tpm2Sealed } from '../../src/token/tpm2.js';
import { requirementsMet } from '../support/requirements.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../support/swtpm.js';

const run = requirementsMet('tpm2', swtpmMissing());

const TPM_CC_POLICY_PCR = 0x17f;
const TPM_CC_POLICY_AUTH_VALUE = 0x16b;

/** TPM2_PolicyPCR's digest over the sha256 bank (TPM 2.0 Part 3, 23.7), then PolicyAuthValue's. */
function expectedPolicy(pcrs: number[], values: string[], pin: boolean): Buffer {
  const select = Buffer.alloc(3);
  for (const p of pcrs) select[p >> 3]! |= 1 << (p & 7);
  const selection = Buffer.concat([Buffer.from([0, 0, 0, 1, 0x00, 0x0b, 3]), select]);
  const pcrDigest = createHash('sha256').update(Buffer.concat(values.map((v) => Buffer.from(v, 'hex')))).digest();
  const cc = (n: number) => Buffer.from([0, 0, n >> 8, n & 0xff]);
  let d = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), cc(TPM_CC_POLICY_PCR), selection, pcrDigest])).digest();
  if (pin) d = createHash('sha256').update(Buffer.concat([d, cc(TPM_CC_POLICY_AUTH_VALUE)])).digest();
  return d;
}

async function refusal(p: Promise<unknown>): Promise<VaultError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!isVaultError(e)) throw new Error(`expected a VaultError, got ${String(e)}`);
  return e;
}

/** A TCP port with nobody listening on it. */
function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

describe.runIf(run)('TPM2 sealing with swtpm', () => {
  let tpm: Swtpm;
  beforeAll(async () => void (tpm = await startSwtpm()));
  afterAll(async () => tpm?.stop());

  it('seals and unseals a secret bound to PCR 7, with the policy digest PolicyPCR defines', async () => {
    const secret = randomBytes(32);
    const sealed = await tpm2Seal(Buffer.from(secret), { tcti: tpm.tcti, pcrs: [7] });
    expect(sealed).toMatchObject({ pcrBank: 'sha256', pcrs: [7], pin: false });
    expect(sealed.policyHash.equals(expectedPolicy([7], [tpm.readPcr(7)], false))).toBe(true);
    expect(sealed.private.includes(secret)).toBe(false);
    const out = await tpm2Unseal(sealed, { tcti: tpm.tcti });
    expect(out.equals(secret)).toBe(true);
    out.fill(0);
    // Unsealing leaves the TPM able to do it again (nothing consumed, no object slots leaked).
    for (let i = 0; i < 4; i++) expect((await tpm2Unseal(sealed, { tcti: tpm.tcti })).equals(secret)).toBe(true);
  });

  it('refuses to unseal once a bound PCR is extended, and only a bound one', async () => {
    const secret = randomBytes(32);
    const both = await tpm2Seal(Buffer.from(secret), { tcti: tpm.tcti, pcrs: [16, 7] });
    expect(both.pcrs).toEqual([7, 16]);
    const only7 = await tpm2Seal(Buffer.from(secret), { tcti: tpm.tcti, pcrs: [7] });
    const before = tpm.readPcr(16);
    tpm.extendPcr(16);
    expect(tpm.readPcr(16)).not.toBe(before);
    const e = await refusal(tpm2Unseal(both, { tcti: tpm.tcti }));
    expect(e.code).toBe('token-refused');
    expect(e.message).toMatch(/PCR policy does not hold/);
    expect(e.hint).toMatch(/passphrase/);
    expect((await tpm2Unseal(only7, { tcti: tpm.tcti })).equals(secret)).toBe(true);
  });

  it('needs the right PIN when sealed with one', async () => {
    const secret = randomBytes(32);
    const pin = Buffer.from('correct horse 1234');
    const sealed = await tpm2Seal(Buffer.from(secret), { tcti: tpm.tcti, pcrs: [7], pin });
    expect(sealed.pin).toBe(true);
    expect(sealed.policyHash.equals(expectedPolicy([7], [tpm.readPcr(7)], true))).toBe(true);
    expect((await tpm2Unseal(sealed, { tcti: tpm.tcti, pin })).equals(secret)).toBe(true);
    const wrong = await refusal(tpm2Unseal(sealed, { tcti: tpm.tcti, pin: Buffer.from('correct horse 1235') }));
    expect(wrong.code).toBe('wrong-password');
    expect(wrong.message).toBe('wrong TPM2 PIN');
    expect((await refusal(tpm2Unseal(sealed, { tcti: tpm.tcti }))).code).toBe('usage');
    // A wrong PIN costs one try, not the token: the right one still unseals.
    expect((await tpm2Unseal(sealed, { tcti: tpm.tcti, pin })).equals(secret)).toBe(true);
  });

  it('says token-unavailable at once when no TPM answers at the TCTI', async () => {
    const sealed = await tpm2Seal(randomBytes(32), { tcti: tpm.tcti, pcrs: [7] });
    const tcti = `swtpm:host=127.0.0.1,port=${await deadPort()}`;
    const t0 = Date.now();
    const e = await refusal(tpm2Unseal(sealed, { tcti }));
    expect(e.code).toBe('token-unavailable');
    expect(e.message).toContain(tcti);
    expect((await refusal(tpm2Seal(randomBytes(32), { tcti, pcrs: [7] }))).code).toBe('token-unavailable');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('reports damaged blobs clearly, without crashing, and still works afterwards', async () => {
    const secret = randomBytes(32);
    const sealed = await tpm2Seal(Buffer.from(secret), { tcti: tpm.tcti, pcrs: [7] });
    const flipped = Buffer.from(sealed.private);
    flipped[flipped.length - 5]! ^= 0x01;
    const cases: [Partial<Tpm2Sealed>, string, RegExp][] = [
      [{ private: flipped }, 'token-refused', /TPM refuses the sealed object: it is damaged/],
      [{ public: sealed.public.subarray(0, 30) }, 'token-refused', /public blob is damaged/],
      [{ private: Buffer.concat([sealed.private, Buffer.from([0])]) }, 'token-refused', /private blob is damaged/],
      [{ public: randomBytes(sealed.public.length) }, 'token-refused', /damaged|not a policy-bound sealed data object/],
      [{ private: Buffer.alloc(1) }, 'invalid-field', /impossible size/],
      [{ public: Buffer.alloc(5000) }, 'invalid-field', /impossible size/],
    ];
    for (const [change, code, msg] of cases) {
      const e = await refusal(tpm2Unseal({ ...sealed, ...change }, { tcti: tpm.tcti }));
      expect(e.code, String(msg)).toBe(code);
      expect(e.message).toMatch(msg);
    }
    expect((await tpm2Unseal(sealed, { tcti: tpm.tcti })).equals(secret)).toBe(true);
  });

  it('refuses bad arguments as usage errors before reaching the TPM', async () => {
    expect((await refusal(tpm2Seal(randomBytes(32), { tcti: tpm.tcti, pcrs: [24] }))).code).toBe('usage');
    expect((await refusal(tpm2Seal(randomBytes(32), { tcti: '', pcrs: [7] }))).code).toBe('usage');
    await expect(tpm2Seal(Buffer.alloc(0), { tcti: tpm.tcti, pcrs: [7] })).rejects.toThrow(RangeError);
  });

  describe('on a second TPM', () => {
    let other: Swtpm;
    beforeAll(async () => void (other = await startSwtpm()));
    afterAll(async () => other?.stop());

    it("refuses a token sealed by another TPM", async () => {
      const sealed = await tpm2Seal(randomBytes(32), { tcti: tpm.tcti, pcrs: [7] });
      const e = await refusal(tpm2Unseal(sealed, { tcti: other.tcti }));
      expect(e.code).toBe('token-refused');
      expect(e.message).toMatch(/sealed by another TPM/);
    });

    it('goes into dictionary-attack lockout after too many wrong PINs, and says so', async () => {
      const pin = Buffer.from('2468');
      const sealed = await tpm2Seal(randomBytes(32), { tcti: other.tcti, pcrs: [7], pin });
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const e = await refusal(tpm2Unseal(sealed, { tcti: other.tcti, pin: Buffer.from(`bad${i}`) }));
        codes.push(e.code);
        if (e.code === 'token-refused') expect(e.message).toMatch(/lockout/);
      }
      expect(codes[0]).toBe('wrong-password');
      expect(codes.at(-1)).toBe('token-refused');
      // In lockout even the right PIN is refused, as lockout.
      const e = await refusal(tpm2Unseal(sealed, { tcti: other.tcti, pin }));
      expect(e.code).toBe('token-refused');
      expect(e.message).toMatch(/lockout/);
    });
  });
});
