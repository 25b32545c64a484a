import type { CipherName, SectorSize } from './constants.js';

/** Argon2id cost parameters of one keyslot. */
export interface KdfParams {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
}

export interface ActiveKeyslot {
  state: 'active';
  kdf: KdfParams;
  salt: Buffer; // 32 bytes
  nonce: Buffer; // 24 bytes
  wrappedKey: Buffer; // 80 bytes
}

/** An empty slot keeps its (random) bytes so re-serialising reproduces the copy exactly. */
export interface EmptyKeyslot {
  state: 'empty';
  filler: Buffer; // bytes 1..159 of the slot
}

export type Keyslot = ActiveKeyslot | EmptyKeyslot;

/** Which copy a header is, and so where it lives. */
export type CopyIndex = 0 | 1;

/** A fully validated header copy (spec §7 steps 1–6). Step 7 (MAC) needs the master key. */
export interface Header {
  version: number;
  sequence: bigint;
  uuid: Buffer; // 16 bytes
  cipher: CipherName;
  sectorSize: SectorSize;
  dataOffset: number;
  dataSize: number;
  copy: CopyIndex;
  keyslots: Keyslot[]; // always KEYSLOT_COUNT entries
  mac: Buffer; // 32 bytes, as stored
  /** Present when flags bit 0 (REENCRYPT) is set: a re-encryption is under way (spec §13). */
  reencrypt?: ReencryptState;
  /** Present (non-empty) when flags bit 1 (TOKENS) is set (spec §14). */
  tokens?: Token[];
}

/** A recovery key's slot (spec §14.2). */
export interface RecoveryToken {
  type: 'recovery';
  slot: number;
}

/** A TPM2-sealed secret (spec §14.3). */
export interface Tpm2Token {
  type: 'tpm2';
  slot: number;
  pcrBank: 'sha256';
  pcrs: number[];
  pin: boolean;
  policyHash: Buffer; // 32 bytes
  public: Buffer;
  private: Buffer;
}

/** A FIDO2 hmac-secret credential (spec §14.4). */
export interface Fido2Token {
  type: 'fido2';
  slot: number;
  up: boolean;
  uv: boolean;
  pin: boolean;
  rpId: string;
  credentialId: Buffer;
  salt: Buffer; // 32 bytes
}

export type Token = RecoveryToken | Tpm2Token | Fido2Token;

/** The new master key wrapped for one active slot, in its final keyslot form (spec §13.2). */
export interface StagedWrap {
  nonce: Buffer; // 24 bytes
  wrappedKey: Buffer; // 80 bytes
}

/** What a flagged header stores in its reserved area (spec §13.2). */
export interface ReencryptState {
  newSectorSize: SectorSize;
  /** One entry per keyslot: the staged wrap of each active slot, null for empty slots. */
  staged: Array<StagedWrap | null>;
}
