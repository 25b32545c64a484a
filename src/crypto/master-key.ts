/**
 * Master key generation and checks (spec/format.md §4.1), and the header MAC (§4.5, §5).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { VaultError } from '../errors.js';
import { MASTER_KEY_SIZE } from '../format/constants.js';
import { serializeHeaderBody } from '../format/header.js';
import type { Header } from '../format/types.js';
import { wipe } from './wipe.js';

const MAC_INFO = Buffer.from('vault-header-mac-v1', 'ascii');

/** 64 random bytes whose two XTS halves differ. */
export function generateMasterKey(): Buffer {
  for (;;) {
    const mk = randomBytes(MASTER_KEY_SIZE);
    if (halvesDiffer(mk)) return mk;
    wipe(mk);
  }
}

export function halvesDiffer(mk: Uint8Array): boolean {
  const h = MASTER_KEY_SIZE / 2;
  return mk.length === MASTER_KEY_SIZE && !timingSafeEqual(mk.subarray(0, h), mk.subarray(h));
}

/** HKDF-SHA-256(MK, salt = uuid, info = "vault-header-mac-v1") → 32 bytes. Never the master key itself. */
export function deriveMacKey(masterKey: Uint8Array, uuid: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, uuid, MAC_INFO, 32));
}

export function computeHeaderMac(masterKey: Uint8Array, header: Header): Buffer {
  const macKey = deriveMacKey(masterKey, header.uuid);
  try {
    return createHmac('sha256', macKey).update(serializeHeaderBody(header)).digest();
  } finally {
    wipe(macKey);
  }
}

/**
 * Spec §7 step 7: the unwrapped key must have distinct halves and the copy's MAC must verify.
 * Throws header-tampered otherwise; the caller must then not use any field of this copy.
 */
export function verifyHeaderMac(masterKey: Uint8Array, header: Header): void {
  if (!halvesDiffer(masterKey))
    throw new VaultError('header-tampered', 'the unlocked master key is invalid (equal XTS halves)');
  const expected = computeHeaderMac(masterKey, header);
  if (!timingSafeEqual(expected, header.mac))
    throw new VaultError(
      'header-tampered',
      `${header.copy === 0 ? 'primary' : 'secondary'} header failed authentication: it was modified after it was written`,
    );
}
