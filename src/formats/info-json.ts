/**
 * What `vault info --json` prints, per format: part of the CLI contract (CLI_ABI.md, checked by
 * spec/info.schema.json). The same name means the same thing in every format: `format`, `uuid`
 * (null where the format has none), `slot` for a keyslot's number, `kdf` for a key derivation
 * (KdfJson), `sequence` for a header's update counter, byte offsets and sizes in bytes. Values a
 * header holds as 64-bit integers (sequence numbers, LUKS2 offsets and sizes) are decimal strings,
 * since a JSON number loses precision above 2^53.
 */
import type { CipherName } from '../format/constants.js';
import type { FormatName } from './types.js';

/** A key derivation, the same shape in every format. */
export type KdfJson =
  | { type: 'pbkdf2'; hash: string; iterations: number }
  | { type: 'argon2i' | 'argon2id'; memoryKiB: number; iterations: number; parallelism: number }
  /** LUKS2 only: a KDF type vault does not know (its keyslot cannot be opened). */
  | { type: string };

export interface VaultInfoJson {
  format: 'vault';
  version: number;
  uuid: string;
  cipher: CipherName;
  sectorSize: number;
  dataOffset: number;
  dataSize: number;
  sequence: string;
  /** Each copy's state: "valid, sequence N" or "unusable: <why>". */
  headers: { primary: string; secondary: string };
  /** The active keyslots only. */
  keyslots: Array<{ slot: number; kdf: KdfJson }>;
  /** A re-encryption left part-way (spec §13), or null. */
  reencrypt: { newSectorSize: number } | null;
}

export interface Luks1InfoJson {
  format: 'luks1';
  uuid: string;
  cipher: string;
  keyBits: number;
  hash: string;
  dataOffset: number;
  keyslots: Array<{ slot: number; kdf: KdfJson }>;
}

export interface Luks2InfoJson {
  format: 'luks2';
  uuid: string;
  label: string;
  subsystem: string;
  /** The copy shown (the newer valid one). */
  header: { copy: 'primary' | 'secondary'; sequence: string; metadataSize: number; keyslotsSize: string };
  segments: Array<{ id: number; type: string; offset: string; size: string; encryption?: string; sectorSize?: number; ivTweak?: string }>;
  keyslots: Array<{ slot: number; type: string; keyBits: number; priority: 'ignore' | 'normal' | 'prefer'; kdf?: KdfJson; areaEncryption: string | null }>;
  tokens: number;
  requirements: string[];
}

/** VeraCrypt and TrueCrypt: known only after the password opened a header. */
export interface VeraCryptInfoJson {
  format: 'veracrypt' | 'truecrypt';
  uuid: null;
  /** `system`: system encryption, opened with `--system` from the drive's boot track. */
  volumeType: 'normal' | 'hidden' | 'system';
  /** The header that opened: its copy, its version, and the program version it needs. */
  header: { copy: 'primary' | 'backup'; version: number; requiredProgramVersion: string };
  kdf: KdfJson;
  pim: number;
  /** The XTS cipher chain in encryption order: 'aes-256-xts', or e.g. 'serpent-twofish-aes-xts'. */
  cipher: string;
  /** VeraCrypt's name of it, e.g. 'AES' or 'AES-Twofish-Serpent'. */
  algorithm: string;
  /**
   * The encryption mode: 'xts' (VeraCrypt, TrueCrypt 5.0 and later), or for TrueCrypt before 5.0
   * 'lrw', 'cbc', 'outer-cbc' or 'inner-cbc' (then `cipher` is the legacy chain, e.g. 'lrw-aes').
   */
  mode: 'xts' | 'lrw' | 'cbc' | 'outer-cbc' | 'inner-cbc';
  sectorSize: number;
  dataOffset: number;
  dataSize: number;
  firstDataUnit: number;
}

/** Any other unlocked volume: what every format has. */
export interface GeometryInfoJson {
  format: FormatName;
  uuid: string | null;
  sectorSize: number;
  dataOffset: number;
  dataSize: number;
}

export type InfoJson = VaultInfoJson | Luks1InfoJson | Luks2InfoJson | VeraCryptInfoJson | GeometryInfoJson;
