/**
 * The keys of a re-encryption (spec §13.2): every active keyslot is opened with its own secret, a
 * new master key is drawn, and it is wrapped under each slot's KEK exactly as that slot will hold
 * it when the run completes (same salt and KDF parameters, fresh nonce, the keyslot AAD of §4.4).
 */
import { timingSafeEqual } from 'node:crypto';
import { VaultError } from '../../errors.js';
import type { SectorSize } from '../../format/constants.js';
import type { ActiveKeyslot, Header, StagedWrap } from '../../format/types.js';
import { deriveKek } from '../../crypto/kdf.js';
import { openKeyslot, sealKeyslot } from '../../crypto/keyslot.js';
import { generateMasterKey, verifyHeaderMac } from '../../crypto/master-key.js';
import { wipe } from '../../crypto/wipe.js';

export interface OpenedSlots {
  masterKey: Uint8Array;
  /** KEK of every active slot; the caller wipes them (wipeKeks). */
  keks: Map<number, Buffer>;
}

export const activeSlots = (h: Header): number[] => h.keyslots.flatMap((s, i) => (s.state === 'active' ? [i] : []));

/** Opens every active slot of `header` with its own KDF input (wiped here); all must give one master key. */
export async function openEverySlot(header: Header, inputs: Map<number, Buffer>): Promise<OpenedSlots> {
  const keks = new Map<number, Buffer>();
  let masterKey: Uint8Array | null = null;
  try {
    for (const i of activeSlots(header)) {
      const slot = header.keyslots[i] as ActiveKeyslot;
      const input = inputs.get(i);
      if (!input) throw new VaultError('usage', `no secret was given for keyslot ${i}`);
      const kek = await deriveKek(input, slot.salt, slot.kdf);
      keks.set(i, kek);
      const mk = openKeyslot(kek, header.uuid, i, slot);
      if (!mk)
        throw new VaultError('wrong-password', `wrong passphrase or keyfile for keyslot ${i}`, 'every active keyslot must be opened so it keeps working; remove a slot you cannot open first with `vault keyslot remove`');
      if (!masterKey) {
        masterKey = mk;
        verifyHeaderMac(masterKey, header);
      } else {
        const same = timingSafeEqual(mk, masterKey);
        wipe(mk);
        if (!same) throw new VaultError('header-tampered', `keyslot ${i} holds a different master key`, 'restore a header backup with `vault header restore`');
      }
    }
    if (!masterKey) throw new VaultError('no-keyslot', 'the container has no active keyslot');
    return { masterKey, keks };
  } catch (e) {
    wipe(masterKey);
    wipeKeks(keks);
    throw e;
  } finally {
    for (const b of inputs.values()) wipe(b);
  }
}

export function wipeKeks(keks: Map<number, Buffer>): void {
  for (const k of keks.values()) wipe(k);
}

/** A new master key, different from the old one (and with distinct halves, §4.1). */
export function newMasterKey(old: Uint8Array): Buffer {
  for (;;) {
    const mk = generateMasterKey();
    if (!timingSafeEqual(mk, old)) return mk;
    wipe(mk);
  }
}

/** The flagged header: the new key wrapped for each active slot, sector size to come. MAC'd under the old key. */
export function stagedHeader(header: Header, keks: Map<number, Buffer>, newKey: Uint8Array, newSectorSize: SectorSize): Header {
  const staged = header.keyslots.map((slot, i): StagedWrap | null => {
    if (slot.state !== 'active') return null;
    const sealed = sealKeyslot(keks.get(i)!, newKey, header.uuid, i, slot.kdf, slot.salt);
    return { nonce: sealed.nonce, wrappedKey: sealed.wrappedKey };
  });
  return { ...header, reencrypt: { newSectorSize, staged } };
}

/** The header once every sector is new: staged wraps become the keyslots, the flag and area are cleared. */
export function finalHeader(h: Header): Header {
  const r = h.reencrypt!;
  const keyslots = h.keyslots.map((slot, i) => (slot.state === 'active' ? { ...slot, ...r.staged[i]! } : slot));
  const { reencrypt: _done, ...rest } = h;
  return { ...rest, sectorSize: r.newSectorSize, keyslots };
}
