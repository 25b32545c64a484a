/**
 * Opening one LUKS keyslot (LUKS1 and LUKS2 keyslot type "luks2" work alike): derive the area key
 * from the passphrase, decrypt the AF material with the area's dm-crypt cipher (LUKS1: the volume
 * cipher; LUKS2: the keyslot's area.encryption) in 512-byte sectors whose IV counts from 0 at the
 * start of the area, AF-merge it into a candidate volume key, and let the caller check that
 * candidate against the volume-key digest.
 */
import { KeyHandle } from '../../crypto/key-handle.js';
import { wipe } from '../../crypto/wipe.js';
import { xtsDecrypt } from '../../crypto/xts.js';
import { readAtSync } from '../../volume/fd-io.js';
import { VaultError } from '../../errors.js';
import { afMerge, afSplitBytes, AF_STRIPES, type LuksHash } from './af.js';
import { deriveLuksKey, type LuksKdf } from './kdf.js';
import { areaRun, type DmCipher } from './dm-cipher.js';

export interface AfKeyslot {
  /** For messages: "keyslot 3". */
  name: string;
  kdf: LuksKdf;
  /** Byte offset of the key material in the metadata device (the header file when detached). */
  areaOffset: number;
  /** Volume key length in bytes (64 for AES-256-XTS). */
  keyLength: number;
  afHash: LuksHash;
  /** The cipher of the key material (its key, area.key_size bytes, comes from the KDF). */
  area: DmCipher;
}

/**
 * Returns the AF-merged candidate volume key (caller wipes it), or throws for I/O trouble.
 * A wrong passphrase is not detected here: it yields a wrong candidate that fails the digest.
 */
export async function recoverCandidateKey(fd: number, slot: AfKeyslot, secret: Buffer): Promise<Buffer> {
  const materialBytes = afSplitBytes(slot.keyLength, AF_STRIPES);
  const material = readAtSync(fd, materialBytes, slot.areaOffset);
  if (material.length !== materialBytes)
    throw new VaultError('truncated', `${slot.name}: its key material ends beyond the end of the header`);
  const derived = await deriveLuksKey(secret, slot.kdf, slot.area.keyBytes, slot.name);
  let areaKey: KeyHandle | null = null;
  try {
    // KeyHandle.fromBytes zeroes `derived`; the area key then lives in locked memory.
    areaKey = KeyHandle.fromBytes(derived);
    xtsDecrypt(areaKey, material, { sectorSize: 512, firstTweak: 0n, ...areaRun(slot.area) });
    return afMerge(material, slot.keyLength, slot.afHash, AF_STRIPES);
  } catch (e) {
    // Equal XTS halves from a KDF are a 2^-256 event; treat it like any wrong passphrase.
    if ((e as { code?: string }).code === 'ERR_VAULT_XTS_EQUAL_HALVES') return Buffer.alloc(slot.keyLength);
    throw e;
  } finally {
    areaKey?.dispose();
    wipe(derived, material);
  }
}
