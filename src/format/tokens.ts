/**
 * The token area of a header copy (spec/format.md §14.1): parsed from untrusted bytes into typed
 * tokens, every rule checked before any entry is used, and serialised back. Pure: no I/O, no keys.
 */
import { VaultError } from '../errors.js';
import { KEYSLOT_COUNT, TOKEN_OFF, TOKEN_TYPES } from './constants.js';
import type { CopyIndex, Fido2Token, Keyslot, Token, Tpm2Token } from './types.js';

const AREA = TOKEN_OFF.end - TOKEN_OFF.start; // 1784
const TPM2_ALG_SHA256 = 0x000b;
const MAX_TPM_BLOB = 1024;
const MAX_RP = 64;
const MAX_CREDENTIAL = 1023;
const PCR_BITS = 24;

class Reader {
  at = 0;
  constructor(
    private readonly b: Buffer,
    private readonly fail: (why: string) => VaultError,
  ) {}
  take(n: number, what: string): Buffer {
    if (this.at + n > this.b.length) throw this.fail(`${what} runs past its entry`);
    const out = Buffer.from(this.b.subarray(this.at, this.at + n));
    this.at += n;
    return out;
  }
  u8(what: string): number {
    return this.take(1, what)[0]!;
  }
  u16(what: string): number {
    return this.take(2, what).readUInt16LE(0);
  }
  u32(what: string): number {
    return this.take(4, what).readUInt32LE(0);
  }
  end(): void {
    if (this.at !== this.b.length) throw this.fail(`${this.b.length - this.at} bytes follow its fields`);
  }
}

function bounded(n: number, min: number, max: number, what: string, fail: (w: string) => VaultError): number {
  if (n < min || n > max) throw fail(`${what} ${n} is outside ${min}–${max}`);
  return n;
}

function parseTpm2(r: Reader, slot: number, fail: (w: string) => VaultError): Tpm2Token {
  if (r.u16('pcr_bank') !== TPM2_ALG_SHA256) throw fail('pcr_bank is not sha256 (0x000b)');
  const mask = r.u32('pcr_mask');
  if (mask >>> PCR_BITS !== 0) throw fail(`pcr_mask 0x${mask.toString(16)} names PCRs above ${PCR_BITS - 1}`);
  const flags = r.u8('flags');
  if ((flags & ~1) !== 0) throw fail(`unknown TPM2 flags 0x${flags.toString(16)}`);
  const policyHash = r.take(32, 'policy_hash');
  const pub = r.take(bounded(r.u16('public_len'), 1, MAX_TPM_BLOB, 'public_len', fail), 'public');
  const priv = r.take(bounded(r.u16('private_len'), 1, MAX_TPM_BLOB, 'private_len', fail), 'private');
  r.end();
  const pcrs = [...Array(PCR_BITS).keys()].filter((i) => (mask >>> i) & 1);
  return { type: 'tpm2', slot, pcrBank: 'sha256', pcrs, pin: (flags & 1) !== 0, policyHash, public: pub, private: priv };
}

function parseFido2(r: Reader, slot: number, fail: (w: string) => VaultError): Fido2Token {
  const flags = r.u8('flags');
  if ((flags & ~7) !== 0) throw fail(`unknown FIDO2 flags 0x${flags.toString(16)}`);
  const rp = r.take(bounded(r.u8('rp_len'), 1, MAX_RP, 'rp_len', fail), 'rp_id');
  if (!/^[\x21-\x7e]+$/.test(rp.toString('latin1'))) throw fail('rp_id is not printable ASCII');
  const credentialId = r.take(bounded(r.u16('cred_len'), 1, MAX_CREDENTIAL, 'cred_len', fail), 'credential_id');
  const salt = r.take(32, 'salt');
  r.end();
  return { type: 'fido2', slot, up: (flags & 1) !== 0, uv: (flags & 2) !== 0, pin: (flags & 4) !== 0, rpId: rp.toString('latin1'), credentialId, salt };
}

/** Parses and checks the whole token area (spec §14.1); `area` is bytes 2248–4031 of a copy. */
export function parseTokenArea(area: Buffer, keyslots: Keyslot[], copy: CopyIndex): Token[] {
  const where = copy === 0 ? 'primary' : 'secondary';
  const tokens: Token[] = [];
  let at = 0;
  while (at < AREA && area[at] !== 0) {
    const n = tokens.length;
    const fail = (why: string) => new VaultError('invalid-field', `${where} header: token ${n}: ${why}`);
    if (at + 4 > AREA) throw fail('its entry header runs past the token area');
    const type = area[at]!;
    const slot = area[at + 1]!;
    const length = area.readUInt16LE(at + 2);
    if (at + 4 + length > AREA) throw fail(`its ${length}-byte payload runs past the token area`);
    if (slot >= KEYSLOT_COUNT || keyslots[slot]!.state !== 'active') throw fail(`keyslot ${slot} is not an active keyslot`);
    if (tokens.some((t) => t.slot === slot)) throw fail(`keyslot ${slot} already has a token`);
    const r = new Reader(area.subarray(at + 4, at + 4 + length), fail);
    if (type === TOKEN_TYPES.recovery) {
      r.end();
      tokens.push({ type: 'recovery', slot });
    } else if (type === TOKEN_TYPES.tpm2) tokens.push(parseTpm2(r, slot, fail));
    else if (type === TOKEN_TYPES.fido2) tokens.push(parseFido2(r, slot, fail));
    else throw fail(`unknown token type ${type}`);
    at += 4 + length;
  }
  for (let i = at; i < AREA; i++) if (area[i] !== 0) throw new VaultError('invalid-field', `${where} header: bytes after the last token are not zero`);
  if (tokens.length === 0) throw new VaultError('invalid-field', `${where} header: the TOKENS flag is set but the token area is empty`);
  return tokens;
}

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

function payload(t: Token): Buffer {
  if (t.type === 'recovery') return Buffer.alloc(0);
  if (t.type === 'tpm2') {
    const head = Buffer.alloc(7);
    head.writeUInt16LE(TPM2_ALG_SHA256, 0);
    head.writeUInt32LE(t.pcrs.reduce((m, i) => (m | (1 << i)) >>> 0, 0), 2);
    head[6] = t.pin ? 1 : 0;
    return Buffer.concat([head, t.policyHash, u16(t.public.length), t.public, u16(t.private.length), t.private]);
  }
  const rp = Buffer.from(t.rpId, 'latin1');
  const flags = (t.up ? 1 : 0) | (t.uv ? 2 : 0) | (t.pin ? 4 : 0);
  return Buffer.concat([Buffer.from([flags, rp.length]), rp, u16(t.credentialId.length), t.credentialId, t.salt]);
}

/** The token area's 1784 bytes for `tokens`; throws (internal) when they do not fit. The header writer re-parses them. */
export function serializeTokenArea(tokens: Token[]): Buffer {
  const parts = tokens.map((t) => {
    const p = payload(t);
    const head = Buffer.from([TOKEN_TYPES[t.type], t.slot, 0, 0]);
    head.writeUInt16LE(p.length, 2);
    return Buffer.concat([head, p]);
  });
  const body = Buffer.concat(parts);
  if (body.length > AREA) throw new VaultError('usage', `the tokens need ${body.length} bytes; the header holds ${AREA}`, 'remove a token with `vault enroll --wipe-slot` first');
  const out = Buffer.alloc(AREA);
  body.copy(out);
  return out;
}

/** Bytes a token takes in the area: to refuse an enrolment that would not fit before touching a device. */
export function tokenBytes(t: Token): number {
  return 4 + payload(t).length;
}
