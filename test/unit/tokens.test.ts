/**
 * Token keyslots (spec/format.md §14): the token area's rules, a bad image for each (labelled by
 * rule), recovery keys, and enrolment and wiping on a real container file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { createKeyslot } from '../../src/crypto/keyslot.js';
import { generateMasterKey } from '../../src/crypto/master-key.js';
import { newRecoveryKey, parseRecoveryKey } from '../../src/crypto/recovery-key.js';
import { FLAG_TOKENS, OFF, TOKEN_OFF } from '../../src/format/constants.js';
import { parseHeaderCopy } from '../../src/format/header.js';
import { containerFileSize, geometryForSize } from '../../src/format/layout.js';
import type { Header, Token } from '../../src/format/types.js';
import { newHeader, readHeaderCopies, unlockContainer, writeInitialHeaders } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { enrollToken, wipeSlots } from '../../src/volume/tokens.js';
import { removeKeyslot } from '../../src/volume/keyslots.js';
import { fixChecksum, sampleHeader, sealedCopy } from '../support/headers.js';
import { TOKENS_FIXTURE } from '../fixtures/make-tokens.js';
import { fixturePlaintext } from '../fixtures/make-v1.js';

const TPM: Token = { type: 'tpm2', slot: 5, pcrBank: 'sha256', pcrs: [7, 11], pin: true, policyHash: randomBytes(32), public: randomBytes(90), private: randomBytes(160) };
const FIDO: Token = { type: 'fido2', slot: 0, up: true, uv: false, pin: true, rpId: 'io.vault', credentialId: randomBytes(72), salt: randomBytes(32) };

function withTokens(tokens: Token[]): { bytes: Buffer; header: Header } {
  const { header, mk } = sampleHeader({ activeSlots: [0, 3, 5] });
  header.tokens = tokens;
  return { bytes: sealedCopy(header, mk), header };
}

describe('token area (spec §14.1)', () => {
  it('round-trips every token type; TOKENS is set exactly when there is a token', () => {
    const { bytes } = withTokens([TPM, FIDO, { type: 'recovery', slot: 3 }]);
    expect(bytes.readUInt32LE(OFF.flags) & FLAG_TOKENS).toBe(FLAG_TOKENS);
    expect(parseHeaderCopy(bytes, 0).tokens).toEqual([TPM, FIDO, { type: 'recovery', slot: 3 }]);
    const none = withTokens([]).bytes;
    expect(none.readUInt32LE(OFF.flags)).toBe(0);
    expect(parseHeaderCopy(none, 0).tokens).toBeUndefined();
  });

  // One bad image per rule: each edit keeps the checksum right, so the rule itself must catch it.
  const at = TOKEN_OFF.start;
  const rules: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['flag without entries', (b) => b.fill(0, at, TOKEN_OFF.end), /TOKENS flag is set but the token area is empty/],
    ['entries without the flag', (b) => b.writeUInt32LE(0, OFF.flags), /reserved bytes are not zero/],
    ['unknown type', (b) => (b[at] = 9), /unknown token type 9/],
    ['slot out of range', (b) => (b[at + 1] = 8), /keyslot 8 is not an active keyslot/],
    ['slot empty', (b) => (b[at + 1] = 1), /keyslot 1 is not an active keyslot/],
    ['two tokens on one slot', (b) => (b[at + 4 + b.readUInt16LE(at + 2) + 1] = 5), /keyslot 5 already has a token/],
    ['payload past the area', (b) => b.writeUInt16LE(1781, at + 2), /payload runs past the token area/],
    ['payload longer than its fields', (b) => b.writeUInt16LE(b.readUInt16LE(at + 2) + 1, at + 2), /1 bytes follow its fields|runs past its entry/],
    ['bytes after the list', (b) => (b[TOKEN_OFF.end - 1] = 1), /bytes after the last token are not zero/],
    ['pcr bank', (b) => b.writeUInt16LE(4, at + 4), /pcr_bank is not sha256/],
    ['pcr above 23', (b) => b.writeUInt32LE(1 << 24, at + 6), /names PCRs above 23/],
    ['tpm2 flags', (b) => (b[at + 10] = 2), /unknown TPM2 flags/],
    ['public_len 0', (b) => b.writeUInt16LE(0, at + 4 + 39), /public_len 0 is outside 1–1024/],
  ];
  for (const [rule, edit, message] of rules) {
    it(`refuses: ${rule}`, () => {
      const { bytes } = withTokens([TPM, FIDO]);
      edit(bytes);
      expect(() => parseHeaderCopy(fixChecksum(bytes), 0)).toThrow(message);
    });
  }

  it('refuses FIDO2 entries that break their rules', () => {
    const fido = (edit: (p: Buffer) => void) => {
      const { bytes } = withTokens([FIDO]);
      edit(bytes.subarray(at + 4));
      return () => parseHeaderCopy(fixChecksum(bytes), 0);
    };
    expect(fido((p) => (p[0] = 8))).toThrow(/unknown FIDO2 flags/);
    expect(fido((p) => (p[1] = 0))).toThrow(/rp_len 0 is outside 1–64/);
    expect(fido((p) => (p[2] = 0x0a))).toThrow(/rp_id is not printable ASCII/);
  });

  it('a writer never writes an area its reader would refuse: too many tokens do not fit', () => {
    const big = (slot: number): Token => ({ ...TPM, slot, public: randomBytes(1024), private: randomBytes(1024) });
    expect(() => withTokens([big(0)])).toThrow(/the tokens need \d+ bytes; the header holds 1784/);
  });
});

describe('recovery keys (spec §14.2)', () => {
  it('are 64 modhex characters in 8 groups, decoded in any case, with or without dashes and spaces', () => {
    const { secret, text } = newRecoveryKey();
    expect(text).toMatch(/^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$/);
    expect(parseRecoveryKey(Buffer.from(text))!.equals(secret)).toBe(true);
    expect(parseRecoveryKey(Buffer.from(text.toUpperCase().replace(/-/g, ' ')))!.equals(secret)).toBe(true);
    expect(parseRecoveryKey(Buffer.from(text.replace(/-/g, '')))!.equals(secret)).toBe(true);
    expect(parseRecoveryKey(Buffer.from(text.slice(0, -1)))).toBeNull();
    expect(parseRecoveryKey(Buffer.from(`a${text.slice(1)}`))).toBeNull(); // 'a' is not modhex
    expect(parseRecoveryKey(Buffer.from('correct horse battery staple'))).toBeNull();
  });
});

describe('enrolment and wiping on a container file', () => {
  let dir = '';
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'vault-tokens-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function container(): Promise<string> {
    const file = path.join(dir, `c${Math.random()}.vol`);
    const mk = generateMasterKey();
    const header = newHeader(geometryForSize(2 << 20, 4096));
    header.keyslots[0] = await createKeyslot(buildKdfInput(Buffer.from('pw')), mk, header.uuid, 0, { memoryKiB: 1024, iterations: 1, parallelism: 1 });
    const fd = openSync(file, 'w+');
    writeSync(fd, Buffer.alloc(1), 0, 1, containerFileSize(header) - 1);
    writeInitialHeaders(fd, header, mk);
    closeSync(fd);
    return file;
  }

  async function unlock(file: string, input: string | Buffer, slot?: number) {
    const c = openContainer(file, true);
    try {
      return await unlockContainer(c, Buffer.from(input), slot);
    } finally {
      closeContainer(c);
    }
  }

  it('a recovery key opens the container typed; a token secret only its own slot; the passphrase never a token slot', async () => {
    const file = await container();
    const c = openContainer(file, false);
    const recovery = newRecoveryKey();
    const tokenSecret = randomBytes(32);
    try {
      const u = await unlockContainer(c, Buffer.from('pw'));
      const r = await enrollToken(c, u, recovery.secret, { type: 'recovery' });
      expect(r.slot).toBe(1);
      const u2 = await unlockContainer(c, Buffer.from('pw'));
      const t = await enrollToken(c, u2, tokenSecret, { ...FIDO, slot: undefined } as never);
      expect(t.slot).toBe(2);
      const both = readHeaderCopies(c);
      for (const copy of [both.primary, both.secondary]) expect(copy.ok && copy.header.tokens?.map((x) => `${x.type}@${x.slot}`)).toEqual(['recovery@1', 'fido2@2']);
    } finally {
      closeContainer(c);
    }
    expect((await unlock(file, recovery.text.toUpperCase())).slot).toBe(1);
    expect((await unlock(file, tokenSecret, 2)).slot).toBe(2);
    // The token secret typed as a passphrase opens nothing: token slots take no typed input.
    await expect(unlock(file, tokenSecret)).rejects.toMatchObject({ code: 'wrong-password' });
    expect((await unlock(file, 'pw')).slot).toBe(0);
  });

  it('--wipe-slot by kind or number removes slots and tokens; the last way in is refused; keyslot remove drops a token too', async () => {
    const file = await container();
    const c = openContainer(file, false);
    try {
      const recovery = newRecoveryKey();
      await enrollToken(c, await unlockContainer(c, Buffer.from('pw')), recovery.secret, { type: 'recovery' });
      let u = await unlockContainer(c, Buffer.from('pw'));
      expect(() => wipeSlots(c, u, 'tpm2')).toThrow(/no TPM2 token/);
      expect(wipeSlots(c, u, 0)).toEqual([0]);
      u = await unlockContainer(c, Buffer.from(recovery.text));
      expect(() => wipeSlots(c, u, 'recovery')).toThrow(/would leave no way to open this container/);
      await enrollToken(c, u, randomBytes(32), { ...TPM, slot: undefined } as never);
      u = await unlockContainer(c, Buffer.from(recovery.text));
      removeKeyslot(c, u, 0, false);
      const h = (readHeaderCopies(c).primary as { header: Header }).header;
      expect(h.tokens?.map((t) => t.type)).toEqual(['recovery']);
      expect(h.keyslots[0]!.state).toBe('empty');
    } finally {
      closeContainer(c);
    }
  });
});

describe('fixture v1-tokens.vol (TOKENS flag, every token type)', () => {
  it('parses to the tokens it was made with and opens with each secret, each on its own slot', async () => {
    const file = new URL('../fixtures/v1/v1-tokens.vol', import.meta.url).pathname;
    const f = TOKENS_FIXTURE;
    const c = openContainer(file, true);
    try {
      const copies = readHeaderCopies(c);
      for (const copy of [copies.primary, copies.secondary]) expect(copy.ok && copy.header.tokens).toEqual(f.tokens);
      expect((await unlockContainer(c, Buffer.from(f.password))).slot).toBe(0);
      expect((await unlockContainer(c, Buffer.from(f.recoveryKey))).slot).toBe(1);
      expect((await unlockContainer(c, Buffer.from(f.tpm2Secret, 'hex'), 2)).slot).toBe(2);
      const u = await unlockContainer(c, Buffer.from(f.fido2Secret, 'hex'), 3);
      expect(u.slot).toBe(3);
      const sector = readFileSync(file).subarray(u.header.dataOffset, u.header.dataOffset + 4096);
      const iv = Buffer.alloc(16);
      const plain = createDecipheriv('aes-256-xts', Buffer.from(u.masterKey), iv).update(sector);
      expect(plain.equals(fixturePlaintext(0, 4096))).toBe(true);
    } finally {
      closeContainer(c);
    }
  });
});
