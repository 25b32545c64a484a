/**
 * Token keyslots (spec/format.md §14): enrol a recovery key, a TPM2-sealed or a FIDO2 secret into a
 * new keyslot with its token, and wipe slots by index or kind. Each change is one header update
 * (both copies, spec §6), so a crash leaves the old or the new header.
 */
import { VaultError } from '../errors.js';
import { KEYSLOT_COUNT, TOKEN_KDF, TOKEN_SECRET_SIZE } from '../format/constants.js';
import { serializeTokenArea } from '../format/tokens.js';
import type { Header, Token } from '../format/types.js';
import { createKeyslot, emptyKeyslot } from '../crypto/keyslot.js';
import { writeHeaderUpdate, type UnlockResult } from './container.js';
import type { ContainerFile } from './container-file.js';
import { firstFreeSlot } from './keyslots.js';

export type NewToken = Token extends infer T ? (T extends Token ? Omit<T, 'slot'> : never) : never;

/** The slot a new token would take and a check that its entry fits, before any device is asked. */
export function planEnrolment(h: Header, token: NewToken): number {
  const slot = firstFreeSlot(h);
  if (slot === null) throw new VaultError('usage', `all ${KEYSLOT_COUNT} keyslots are in use`, 'free one with `vault enroll --wipe-slot N`');
  serializeTokenArea([...(h.tokens ?? []), { ...token, slot } as Token]); // throws when the area is full
  return slot;
}

/** Adds a keyslot whose KDF input is `secret` (32 bytes, spec §14) and its token. The caller wipes `secret`. */
export async function enrollToken(c: ContainerFile, u: UnlockResult, secret: Uint8Array, token: NewToken): Promise<{ header: Header; slot: number }> {
  if (secret.length !== TOKEN_SECRET_SIZE) throw new VaultError('internal', `a token secret is ${TOKEN_SECRET_SIZE} bytes`);
  const slot = planEnrolment(u.header, token);
  const next: Header = { ...u.header, keyslots: [...u.header.keyslots] };
  next.keyslots[slot] = await createKeyslot(secret, u.masterKey, next.uuid, slot, { ...TOKEN_KDF });
  next.tokens = [...(u.header.tokens ?? []), { ...token, slot } as Token];
  return { header: writeHeaderUpdate(c, next, u.masterKey, u.header.copy), slot };
}

/** What `--wipe-slot` names: a slot index, or every slot of one token kind. */
export type WipeTarget = number | Token['type'];

/** The slots `target` names in `h`; a usage error when it names none. */
export function slotsOf(h: Header, target: WipeTarget): number[] {
  if (typeof target === 'number') {
    if (h.keyslots[target]?.state !== 'active') throw new VaultError('usage', `keyslot ${target} is not in use`);
    return [target];
  }
  const slots = (h.tokens ?? []).filter((t) => t.type === target).map((t) => t.slot);
  if (slots.length === 0) throw new VaultError('usage', `the container has no ${target === 'recovery' ? 'recovery key' : `${target.toUpperCase()} token`}`);
  return slots;
}

/** A header without `slots` (emptied with random bytes) and their tokens; refuses to remove the last way in. */
export function withoutSlots(h: Header, slots: number[]): Header {
  const remaining = h.keyslots.filter((s, i) => s.state === 'active' && !slots.includes(i)).length;
  if (remaining === 0)
    throw new VaultError(
      'usage',
      `removing keyslot${slots.length > 1 ? 's' : ''} ${slots.join(', ')} would leave no way to open this container`,
      'enrol another passphrase, recovery key or token first',
    );
  const next: Header = { ...h, keyslots: h.keyslots.map((s, i) => (slots.includes(i) ? emptyKeyslot() : s)) };
  const tokens = (h.tokens ?? []).filter((t) => !slots.includes(t.slot));
  if (tokens.length > 0) next.tokens = tokens;
  else delete next.tokens;
  return next;
}

/** `vault enroll --wipe-slot`: one header update. Returns the slots removed. */
export function wipeSlots(c: ContainerFile, u: UnlockResult, target: WipeTarget): number[] {
  const slots = slotsOf(u.header, target);
  writeHeaderUpdate(c, withoutSlots(u.header, slots), u.masterKey, u.header.copy);
  return slots;
}
