/**
 * Constants of container format version 1 (spec/format.md §2–§3). Every number here is normative.
 */
export const MAGIC = Buffer.from('VAULTVOL', 'ascii');
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 4096;
export const KEYSLOT_COUNT = 8;
export const KEYSLOT_SIZE = 160;
export const MASTER_KEY_SIZE = 64;
export const SALT_SIZE = 32;
export const NONCE_SIZE = 24;
export const CIPHER_FIELD_SIZE = 32;
export const MIB = 1024 * 1024;
export const DATA_ALIGNMENT = MIB;
export const DEFAULT_DATA_OFFSET = MIB;
export const DEFAULT_SECTOR_SIZE = 4096;

/** The cipher allowlist: the only cipher of version 1. */
export const CIPHERS = ['aes-256-xts'] as const;
export type CipherName = (typeof CIPHERS)[number];
export const SECTOR_SIZES = [512, 4096] as const;
export type SectorSize = (typeof SECTOR_SIZES)[number];

export const KDF_ARGON2ID = 1;

/** Bounds on untrusted KDF parameters (spec §3), checked before any derivation runs. */
export const KDF_BOUNDS = {
  memoryKiB: { min: 1024, max: 4 * 1024 * 1024 },
  iterations: { min: 1, max: 64 },
  parallelism: { min: 1, max: 16 },
} as const;

/** Byte offsets inside one header copy (spec §2). */
export const OFF = {
  magic: 0,
  version: 8,
  headerSize: 10,
  flags: 12,
  sequence: 16,
  uuid: 24,
  cipher: 40,
  sectorSize: 72,
  keyslotCount: 76,
  dataOffset: 80,
  dataSize: 88,
  copy: 96,
  reserved1: 97,
  keyslots: 128,
  reserved2: 128 + KEYSLOT_COUNT * KEYSLOT_SIZE, // 1408
  mac: 4032,
  checksum: 4064,
} as const;

/** Header feature flags (spec §2): bit 0 marks a re-encryption under way (spec §13), bit 1 a token area (§14). */
export const FLAG_REENCRYPT = 1;
export const FLAG_TOKENS = 2;
export const KNOWN_FLAGS = FLAG_REENCRYPT | FLAG_TOKENS;

/** The token area (spec §14.1): bytes 2248–4031 while TOKENS is set. */
export const TOKEN_OFF = { start: 2248, end: 4032 } as const;
export const TOKEN_TYPES = { recovery: 1, tpm2: 2, fido2: 3 } as const;
/** The KDF parameters of a token slot (spec §14): its input is a 32-byte random secret. */
export const TOKEN_KDF = { memoryKiB: 8192, iterations: 1, parallelism: 1 } as const;
export const TOKEN_SECRET_SIZE = 32;

/** The reserved area of a flagged header (spec §13.2). */
export const REENC_OFF = {
  newSectorSize: 1408,
  reserved: 1412,
  staged: 1416,
  stagedSize: 24 + 80,
  end: 1416 + KEYSLOT_COUNT * (24 + 80), // 2248
} as const;

/** Byte offsets inside one keyslot (spec §3). */
export const SLOT_OFF = {
  state: 0,
  kdf: 1,
  reserved1: 2,
  memoryKiB: 4,
  iterations: 8,
  parallelism: 12,
  salt: 16,
  nonce: 48,
  wrappedKey: 72,
  reserved2: 152,
  /** Bytes 0–47 (state through salt) are bound into the wrap's AAD. */
  aadEnd: 48,
} as const;

/** The largest container we accept: every offset stays exact in a JS number. */
export const MAX_CONTAINER_BYTES = Number.MAX_SAFE_INTEGER; // 2^53 − 1, spec §2
