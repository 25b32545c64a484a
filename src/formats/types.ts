/**
 * The contract between container formats and the one shared data path.
 *
 * Every format (vault's own, LUKS2/LUKS1, VeraCrypt/TrueCrypt) is a thin adapter that recognises
 * its header, unlocks it, and yields an UnlockedVolume: a key handle plus the geometry and tweak
 * rule the volume server needs. Mounting, the loop device, the filesystem and dismount never look
 * at a format again.
 */
import type { KeyHandle } from '../crypto/key-handle.js';
import type { ContainerFile } from '../volume/container.js';

export type FormatName = 'vault' | 'luks2' | 'luks1' | 'veracrypt' | 'truecrypt';

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
  /** LUKS: a detached header file, already opened read-only. */
  headerFile?: ContainerFile;
  /** Opening read-write: adapters refuse formats/flags that forbid writing (e.g. LUKS requirements). */
  readOnly: boolean;
}

/** The one thing every adapter yields. The data path needs nothing else. */
export interface UnlockedVolume {
  format: FormatName;
  /** The 64-byte XTS-AES-256 key (two 32-byte halves), in locked memory. Consumed by the mount. */
  key: KeyHandle;
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
  /** Non-fatal findings to show the user (a damaged header copy, ...). */
  warnings: string[];
}

/** A format's metadata for `vault info`, without secrets. */
export interface FormatInfo {
  format: FormatName;
  /** Human-readable lines (label: value) in display order. */
  fields: Array<[string, string]>;
  /** The same, as structured data for --json. */
  json: Record<string, unknown>;
}

export interface FormatAdapter {
  name: FormatName;
  /**
   * Cheap recognition from the first bytes of the container (or the detached header): magic
   * numbers only. VeraCrypt/TrueCrypt headers are indistinguishable from random bytes, so their
   * adapter never claims a file here; it is the fallback tried last.
   */
  recognises(firstBytes: Buffer): boolean;
  unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume>;
  /** Metadata that can be shown without the password (for VeraCrypt: after unlock only). */
  info?(c: ContainerFile, o: UnlockOptions): FormatInfo;
}
