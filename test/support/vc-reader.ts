/**
 * Runs the independent VeraCrypt reader (vc_reader.py beside this file: Python's hashlib, the
 * `cryptography` package, libgcrypt through ctypes and a Kuznyechik from RFC 7801; no vault code)
 * and returns what it found in the header.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { VcHeader } from '../../src/formats/veracrypt/header.js';

const READER = path.join(import.meta.dirname, 'vc_reader.py');

/**
 * What the reader prints: the header's fields (named as vault's VcHeader names them, so tests
 * compare like with like; only the type is shared, never code) and its checks.
 */
export type VcReading = Omit<VcHeader, 'format' | 'masterKey'> & {
  magic: string;
  keyAreaCrcOk: boolean;
  headerCrcOk: boolean;
  reservedTimesZero: boolean;
  reservedZero: boolean;
  unusedKeyAreaZero: boolean;
  fileSize: number;
  /** VeraCrypt's name of the algorithm under which the magic and both CRCs came out right. */
  cipher: string | null;
  /** With showKey: the master key (64 bytes per cipher) in hex. */
  masterKey?: string;
  ok: boolean;
};

export interface ReadOptions {
  prf: 'sha512' | 'sha256' | 'blake2s' | 'whirlpool' | 'streebog' | 'argon2id';
  password: string;
  pim?: number;
  hidden?: boolean;
  backup?: boolean;
  keyfiles?: string[];
  /** A TrueCrypt 7 volume: magic TRUE, TrueCrypt's iteration counts. */
  truecrypt?: boolean;
  /** Try only this algorithm (VeraCrypt's name); otherwise every one, single ciphers first. */
  cipher?: string;
  showKey?: boolean;
  /** Write the decrypted data area here: all of it, or dumpLength bytes from dumpFrom (whole 512-byte units). */
  dump?: string;
  dumpFrom?: number;
  dumpLength?: number;
}

/** Reads many headers in one Python process (it starts slowly): one reading per job, in order. */
export function readVeraCryptMany(jobs: Array<ReadOptions & { file: string }>): VcReading[] {
  const r = spawnSync('python3', [READER], { input: JSON.stringify(jobs), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vc_reader.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as VcReading[];
}

export function readVeraCrypt(file: string, o: ReadOptions): VcReading {
  return readVeraCryptMany([{ file, ...o }])[0]!;
}

/** The reader's own checks: its Kuznyechik against RFC 7801, its XTS against OpenSSL's. */
export function readerSelfTest(): { ok: boolean; failed: string[] } {
  const r = spawnSync('python3', [READER, '--self-test'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vc_reader.py --self-test failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { ok: boolean; failed: string[] };
}

/** The volume serial of a FAT12/16 or FAT32 boot sector, as blkid prints it (XXXX-XXXX). */
export function fatSerial(boot: Buffer): string {
  const fat32 = boot.readUInt16LE(22) === 0; // sectors per FAT (16-bit) is 0 on FAT32
  const v = boot.readUInt32LE(fat32 ? 67 : 39);
  const h = v.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}
