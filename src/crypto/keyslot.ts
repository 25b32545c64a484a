/**
 * Keyslot wrap and unwrap (spec/format.md §4.4): XChaCha20-Poly1305 keyed by the Argon2id output,
 * with AAD binding the wrap to the container UUID, the slot index and the slot's KDF parameters.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from 'node:crypto';
import { FORMAT_VERSION, MASTER_KEY_SIZE, NONCE_SIZE, SALT_SIZE } from '../format/constants.js';
import { keyslotAadBytes } from '../format/header.js';
import type { ActiveKeyslot, EmptyKeyslot, KdfParams } from '../format/types.js';
import { deriveKek } from './kdf.js';
import { wipe } from './wipe.js';

const AAD_DOMAIN = Buffer.from('vault-keyslot-v1', 'ascii'); // 16 bytes

export function keyslotAad(uuid: Uint8Array, slotIndex: number, slot: ActiveKeyslot): Buffer {
  const version = Buffer.alloc(2);
  version.writeUInt16LE(FORMAT_VERSION);
  return Buffer.concat([AAD_DOMAIN, version, uuid, Buffer.from([slotIndex]), keyslotAadBytes(slot)]);
}

/** Wraps the master key into a new active slot with a fresh salt and nonce. */
export async function createKeyslot(
  kdfInput: Uint8Array,
  masterKey: Uint8Array,
  uuid: Uint8Array,
  slotIndex: number,
  kdf: KdfParams,
): Promise<ActiveKeyslot> {
  const salt = randomBytes(SALT_SIZE);
  const kek = await deriveKek(kdfInput, salt, kdf);
  try {
    return sealKeyslot(kek, masterKey, uuid, slotIndex, kdf, salt);
  } finally {
    wipe(kek);
  }
}

/** The AEAD step alone, for a KEK already derived. */
export function sealKeyslot(
  kek: Uint8Array,
  masterKey: Uint8Array,
  uuid: Uint8Array,
  slotIndex: number,
  kdf: KdfParams,
  salt: Buffer,
): ActiveKeyslot {
  const slot: ActiveKeyslot = {
    state: 'active',
    kdf: { ...kdf },
    salt,
    nonce: randomBytes(NONCE_SIZE),
    wrappedKey: Buffer.alloc(MASTER_KEY_SIZE + 16),
  };
  const sealed = xchacha20poly1305(kek, slot.nonce, keyslotAad(uuid, slotIndex, slot)).encrypt(masterKey);
  slot.wrappedKey = Buffer.from(sealed);
  return slot;
}

/** Returns the master key, or null when the tag fails (wrong passphrase or tampered slot). */
export function openKeyslot(kek: Uint8Array, uuid: Uint8Array, slotIndex: number, slot: ActiveKeyslot): Uint8Array | null {
  try {
    const mk = xchacha20poly1305(kek, slot.nonce, keyslotAad(uuid, slotIndex, slot)).decrypt(slot.wrappedKey);
    return mk.length === MASTER_KEY_SIZE ? mk : null;
  } catch {
    return null;
  }
}

/** Tries one slot with a passphrase input: derive, then open. */
export async function tryKeyslot(
  kdfInput: Uint8Array,
  uuid: Uint8Array,
  slotIndex: number,
  slot: ActiveKeyslot,
): Promise<Uint8Array | null> {
  const kek = await deriveKek(kdfInput, slot.salt, slot.kdf);
  try {
    return openKeyslot(kek, uuid, slotIndex, slot);
  } finally {
    wipe(kek);
  }
}

/** An empty slot filled with random bytes (spec §3: removed slots are overwritten, not just flagged). */
export function emptyKeyslot(): EmptyKeyslot {
  return { state: 'empty', filler: randomBytes(159) };
}

export { SALT_SIZE };
