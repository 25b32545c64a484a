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
}
