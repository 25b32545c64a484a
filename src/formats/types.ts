/**
 * The contract between container formats and the one shared data path.
 *
 * Every format (vault's own, LUKS2/LUKS1, VeraCrypt/TrueCrypt) is a thin adapter that recognises
 * its header, unlocks it, and yields an UnlockedVolume: a key handle plus the geometry and tweak
 * rule the volume server needs. Mounting, the loop device, the filesystem and dismount never look
 * at a format again.
 */
import type { KeyHandle } from '../crypto/key-handle.js';
import type { ContainerFile } from '../volume/container-file.js';
import type { InfoJson } from './info-json.js';
import type { Prf } from './veracrypt/prf.js';
import type { CipherChain } from '../crypto/cipher-chain.js';

export type FormatName = 'vault' | 'luks2' | 'luks1' | 'veracrypt' | 'truecrypt';

/**
 * Every name `--type` accepts, in detection order. Kept here, not built from the adapters, so
 * that the CLI can list them without loading any format's code.
 */
export const FORMAT_NAMES: readonly FormatName[] = ['vault', 'luks2', 'luks1', 'veracrypt', 'truecrypt'];

/** The label people know a format by. */
export function formatLabel(f: FormatName): string {
  return { vault: 'vault', luks2: 'LUKS2', luks1: 'LUKS1', veracrypt: 'VeraCrypt', truecrypt: 'TrueCrypt' }[f];
}


/** What unlocks a foreign or native volume. Adapters must not keep references after unlock. */
export interface UnlockSecret {
  /** The passphrase bytes exactly as typed or read (no trailing newline); wiped by the caller. */
  passphrase: Buffer;
  /** Keyfile contents, in the order given; wiped by the caller. */
  keyfiles: Buffer[];
}

export interface UnlockOptions {
  /** Only try this keyslot (vault, LUKS). */
  slot?: number;
  /** VeraCrypt Personal Iterations Multiplier; 0 or undefined = the default iteration count. */
  pim?: number;
  /** VeraCrypt: unlock the hidden volume's header only. */
  hidden?: boolean;
  /** VeraCrypt: use the backup headers at the end of the container. */
  useBackupHeader?: boolean;
  /** VeraCrypt/TrueCrypt: try only this header PRF (`--hash`). */
  hash?: Prf;
  /** VeraCrypt/TrueCrypt system encryption: the header in the drive's boot track (`--system`). */
  system?: boolean;
  /** LUKS: a detached header file, already opened read-only. */
  headerFile?: ContainerFile;
  /** Opening read-write: adapters refuse formats/flags that forbid writing (e.g. LUKS requirements). */
  readOnly: boolean;
  /** VeraCrypt: the outer volume is mounted with hidden-volume protection (mount --protect-hidden). */
  protectHidden?: boolean;
  /** vault: progress of finishing an interrupted re-encryption, which a read-write open does first (spec §13.6). */
  onProgress?: (label: string, done: number, total: number) => void;
}

/** How the user asked a container to be opened (`mount` and `info` options), before any parsing of it. */
export interface FormatChoice {
  /** Force a format instead of detecting it (`--type`). */
  type?: string;
  /** A detached header file (LUKS `--header`). */
  headerPath?: string;
  /** Try only this keyslot (`--slot`). */
  slot?: number;
  /** VeraCrypt/TrueCrypt: `--pim`, `--hidden`, `--use-backup-header`, `--hash`, `--system`. */
  pim?: number;
  hidden?: boolean;
  useBackupHeader?: boolean;
  hash?: Prf;
  system?: boolean;
  /** vault: use this header copy alone (`--header-copy`, spec §6 "Choosing a copy"): 0 primary, 1 secondary. */
  headerCopy?: 0 | 1;
}

/** The one thing every adapter yields. The data path needs nothing else. */
export interface UnlockedVolume {
  format: FormatName;
  /** The XTS key of `cipher` (chainKeyBytes(cipher) bytes: 64 for AES), in locked memory. Consumed by the mount. */
  key: KeyHandle;
  /** The XTS cipher chain in encryption order: AES alone for vault and LUKS; VeraCrypt's algorithm. */
  cipher: CipherChain;
  /**
   * Optional: a TrueCrypt volume of a version before 5.0 (spec/interop.md §2.9), whose sectors use
   * a legacy mode (LRW or CBC) instead of `cipher`'s XTS: `key` is then the chain's part of the
   * header's master key area, and sector i has IV sector number firstIvSector + i. The volume
   * server only runs XTS, so mount refuses such a volume; `vault info` shows it.
   */
  legacy?: { chain: string; label: string; mode: 'lrw' | 'cbc' | 'cbc-outer'; firstIvSector: bigint };
  /**
   * Optional: a LUKS volume whose dm-crypt spec the XTS chains do not cover (CBC, XTS with a key
   * shorter than 512 bits): the native engine's name for it (native/dm_crypt.h,
   * "aes-cbc-essiv:sha256/256"), which then replaces `cipher` on the data path; `key` holds its
   * key length. Sector i's IV sector number is firstTweak + i * tweakStep.
   */
  engine?: string;
  /** Encryption sector size in bytes (512 or 4096 for LUKS2; 512 for VeraCrypt; vault's header). */
  sectorSize: number;
  /** Byte offset of the first data sector inside the container file. */
  dataOffset: number;
  /** Bytes of decrypted data exposed as the block file (a multiple of sectorSize). */
  dataSize: number;
  /** XTS tweak of data sector i is firstTweak + i * tweakStep (vault: 0 and 1; LUKS2 4096: iv_tweak and 8). */
  firstTweak: bigint;
  tweakStep: bigint;
  /** A stable identifier to show (vault/LUKS UUID); VeraCrypt has none, so null. */
  uuid: string | null;
  /**
   * Optional: the largest data area (bytes) whose sectors all have distinct IVs, where that is
   * bounded (LUKS "plain" IV: 32-bit IV sectors, wrapping at 2^32). A resize refuses to grow past it.
   */
  maxDataSize?: number;
  /** Non-fatal findings to show the user (a damaged header copy, ...). */
  warnings: string[];
  /**
   * Optional: metadata only known after unlocking (VeraCrypt: the KDF, PIM and volume type that
   * matched), shown by `vault info` for formats whose header says nothing without the password.
   */
  info?: FormatInfo;
}

/** A format's metadata for `vault info`, without secrets. */
export interface FormatInfo {
  format: FormatName;
  /** Human-readable lines (label: value) in display order. */
  fields: Array<[string, string]>;
  /** The same, as structured data for --json (CLI_ABI.md, spec/info.schema.json). */
  json: InfoJson;
  /** Optional: non-fatal findings (a damaged header copy, ...), printed as warnings. */
  warnings?: string[];
}

/** How the CLI reads a keyfile for a format before handing its bytes over in UnlockSecret. */
export interface KeyfilePolicy {
  /** Largest number of bytes used from one keyfile. */
  maxBytes: number;
  /** true: use the first maxBytes of a longer file (VeraCrypt); false: refuse a longer file. */
  prefix: boolean;
}

export interface FormatAdapter {
  name: FormatName;
  /**
   * Cheap recognition from the first bytes of the container (or the detached header): magic
   * numbers only. VeraCrypt/TrueCrypt headers are indistinguishable from random bytes, so their
   * adapter never claims a file here; it is the fallback tried last.
   */
  recognises(firstBytes: Buffer): boolean;
  /**
   * Optional fuller recognition on the open file, for formats with a second header copy elsewhere
   * (vault's secondary copy at the end, LUKS2's secondary header) whose primary may be destroyed.
   * The VeraCrypt fallback uses it to say whether the file could be a VeraCrypt volume at all.
   */
  claims?(c: ContainerFile): boolean;
  /** Optional: how keyfiles are read for this format (default: whole file, at most 8 MiB). */
  keyfilePolicy?: KeyfilePolicy;
  unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume>;
  /**
   * Metadata that can be shown without the password. Formats that need the password for it
   * (VeraCrypt) leave this out and put it in UnlockedVolume.info instead.
   */
  info?(c: ContainerFile, o: UnlockOptions): FormatInfo;
}

const DEFAULT_KEYFILE_POLICY: KeyfilePolicy = { maxBytes: 8 * 1024 * 1024, prefix: false };

/** How a format reads keyfiles: its own policy, or the default. */
export function keyfilePolicy(a: FormatAdapter): KeyfilePolicy {
  return a.keyfilePolicy ?? DEFAULT_KEYFILE_POLICY;
}
