/**
 * Writing a new file-hosted VeraCrypt volume, optionally with a hidden volume inside (layout in
 * new-layout.ts). Like vault's own create (src/volume/create.ts), everything goes to a temporary
 * file beside the target, kept open by descriptor; the caller formats it and moves it into place.
 *
 * Every byte that is not a header is random-looking, as VeraCrypt makes it: the header areas are
 * filled with random bytes (vault recognises a VeraCrypt file by that, adapter.ts claims), and the
 * data area with encrypted zeros under the outer volume's key (unless quick), all with the
 * chosen algorithm (AES or any of VeraCrypt's, cipher-chains.ts). Each header copy has
 * its own salt, as VeraCrypt's backup headers do (Core/VolumeCreator.cpp CreationThread).
 */
import { type CipherChain, chainKeyBytes } from '../../crypto/cipher-chain.js';
import { closeSync, constants as fsc, fsyncSync, ftruncateSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { KeyHandle } from '../../crypto/key-handle.js';
import { wipe } from '../../crypto/wipe.js';
import { NO_FOLLOW, openAt } from '../../system/fs-at.js';
import { createError, ensureRoomFor, fillWithEncryptedZeros, partialName, removePartial, type Target } from '../../volume/create.js';
import { writeAllSync } from '../../volume/fd-io.js';
import type { UnlockedVolume } from '../types.js';
import { DATA_UNIT, SALT_SIZE } from './header.js';
import { encryptHeader, serializeHeader, type NewHeaderFields } from './header-write.js';
import { XTS_KEY_BYTES, deriveHeaderKey, type KdfCandidate } from './kdf.js';
import { generateChainKey } from './cipher-chains.js';
import { HEADER_AREA, HEADER_GROUP, newVolumeLayout, type NewVolumeLayout } from './new-layout.js';

export interface NewVeraCryptOptions {
  size: number;
  /** The header-key derivation (kdf.ts), the same for both volumes. */
  kdf: KdfCandidate;
  /** The encryption algorithm (cipher-chains.ts CHAINS), of headers and data, the same for both volumes. */
  chain: CipherChain;
  /** The outer (or only) volume's password as the KDF sees it (keyfiles mixed in); not wiped here. */
  password: Uint8Array;
  hidden?: { size: number; password: Uint8Array };
  quick: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface NewVolumeKeys {
  fields: NewHeaderFields;
  chain: CipherChain;
  /** Caller owns it: dispose when done. chainKeyBytes(chain) long. */
  key: KeyHandle;
}

export interface NewVeraCrypt {
  tmpName: string;
  fd: number;
  layout: NewVolumeLayout;
  outer: NewVolumeKeys;
  hidden: NewVolumeKeys | null;
}

/**
 * A header copy, encrypted under a key derived from `password` with a salt of its own: 64 bytes
 * of it for one cipher, and (as VeraCrypt derives for every volume) 192 for a cascade.
 */
async function headerBytes(o: NewVeraCryptOptions, password: Uint8Array, f: NewHeaderFields, mk: Buffer): Promise<Buffer> {
  const salt = randomBytes(SALT_SIZE);
  const full = chainKeyBytes(o.chain) > XTS_KEY_BYTES;
  const key = await deriveHeaderKey(o.kdf, Buffer.from(password.buffer, password.byteOffset, password.length), salt, full);
  const plain = serializeHeader(salt, f, mk);
  try {
    return encryptHeader(plain, key, o.chain);
  } finally {
    wipe(key, plain);
  }
}

/** Writes one volume's two header copies at `primary` and `backup`; returns its key handle. */
async function writeHeaders(fd: number, o: NewVeraCryptOptions, password: Uint8Array, f: NewHeaderFields, primary: number, backup: number): Promise<NewVolumeKeys> {
  const mk = generateChainKey(o.chain);
  try {
    writeAllSync(fd, await headerBytes(o, password, f, mk), primary);
    writeAllSync(fd, await headerBytes(o, password, f, mk), backup);
  } catch (e) {
    wipe(mk);
    throw e;
  }
  return { fields: f, chain: o.chain, key: KeyHandle.fromBytes(mk) }; // wipes mk
}

export async function writeNewVeraCrypt(t: Target, o: NewVeraCryptOptions): Promise<NewVeraCrypt> {
  const layout = newVolumeLayout(o.size, o.hidden?.size);
  const tmpName = partialName(t.name);
  const held: NewVolumeKeys[] = [];
  if (!o.quick) ensureRoomFor(t, o.size);
  let fd = -1;
  try {
    fd = openAt(t.dir.fd, tmpName, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | NO_FOLLOW, 0o600);
    ftruncateSync(fd, o.size);
    // Both header groups random first; the headers then overwrite their 512 bytes.
    writeAllSync(fd, randomBytes(HEADER_GROUP), 0);
    writeAllSync(fd, randomBytes(HEADER_GROUP), o.size - HEADER_GROUP);
    const outer = await writeHeaders(fd, o, o.password, layout.outer, 0, o.size - HEADER_GROUP);
    held.push(outer);
    if (!o.quick) {
      const g = { dataOffset: layout.outer.encryptedAreaStart, sectorSize: DATA_UNIT, firstTweak: BigInt(layout.outer.encryptedAreaStart / DATA_UNIT), chain: o.chain };
      await fillWithEncryptedZeros(fd, g, outer.key, { from: 0, to: layout.outer.volumeSize, signal: o.signal, onProgress: o.onProgress });
    }
    let hidden: NewVolumeKeys | null = null;
    if (layout.hidden && o.hidden) {
      hidden = await writeHeaders(fd, o, o.hidden.password, layout.hidden, HEADER_AREA, o.size - HEADER_AREA);
      held.push(hidden);
    }
    fsyncSync(fd);
    return { tmpName, fd, layout, outer, hidden };
  } catch (e) {
    for (const k of held) k.key.dispose();
    if (fd >= 0) {
      removePartial(t, { tmpName, fd });
      closeSync(fd);
    }
    throw createError(t, o.size, e);
  }
}

/** One of the new volumes as the data path opens it (adapter.ts volumeFrom does the same for an existing one). */
export function newVolumeAsUnlocked(v: NewVolumeKeys): UnlockedVolume {
  return {
    format: 'veracrypt',
    key: v.key,
    sectorSize: DATA_UNIT,
    dataOffset: v.fields.encryptedAreaStart,
    dataSize: v.fields.volumeSize,
    firstTweak: BigInt(v.fields.encryptedAreaStart / DATA_UNIT),
    tweakStep: 1n,
    cipher: v.chain,
    uuid: null,
    warnings: [],
  };
}
