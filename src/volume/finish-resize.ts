/**
 * Finishing a resize that was killed between its header writes (spec/format.md §12), as part of
 * `vault header repair`: after both copies have been rewritten from the copy that opened (G), what
 * the interrupted resize had not done yet is done, and only where the bytes prove it is owed:
 *
 * - a grow killed after its step 3: the old secondary copy still lies inside G's data area, at the
 *   old `data_offset + data_size` (where the old primary placed it). Step 5 overwrites it with
 *   encryptions of zero sectors, so that its keyslots do not linger there;
 * - a shrink killed after its step 2: the file still ends with the old, longer container's
 *   secondary copy. Step 3 truncates the file to G's length.
 *
 * Each is done only when the bytes at that place are a valid header copy of this container (its
 * uuid, placed where it was read, authentic under G's master key) that is older than G: never over
 * data a filesystem could own, never over bytes appended to the file by something else.
 */
import { fstatSync, fsyncSync, ftruncateSync } from 'node:fs';
import { isVaultError } from '../errors.js';
import { HEADER_SIZE } from '../format/constants.js';
import { parseHeaderCopy } from '../format/header.js';
import { containerFileSize, secondaryOffset } from '../format/layout.js';
import type { Header } from '../format/types.js';
import { KeyHandle } from '../crypto/key-handle.js';
import { verifyHeaderMac } from '../crypto/master-key.js';
import { secretCopy } from '../crypto/wipe.js';
import type { HeaderCopies } from './container.js';
import type { ContainerFile } from './container-file.js';
import { fillWithEncryptedZeros } from './create.js';
import { readAtSync } from './fd-io.js';

/**
 * An older header copy of G's container at `offset`: valid, placed there by its own geometry, and
 * authentic under G's master key (so written by vault for this container, not data that looks like
 * a header); else null.
 */
function staleCopyAt(c: ContainerFile, offset: number, g: Header, masterKey: Uint8Array): Header | null {
  if (offset < 0 || offset + HEADER_SIZE > c.size) return null;
  try {
    const h = parseHeaderCopy(readAtSync(c.fd, HEADER_SIZE, offset), 1);
    if (!h.uuid.equals(g.uuid) || secondaryOffset(h) !== offset || h.sequence >= g.sequence) return null;
    verifyHeaderMac(masterKey, h);
    return h;
  } catch (e) {
    if (isVaultError(e)) return null;
    throw e;
  }
}

/** What an interrupted resize still owes: the old secondary copy's offset to overwrite, the length to truncate to. */
export interface ResizeLeftovers {
  oldSecondaryAt: number | null;
  truncateTo: number | null;
}

/** What `g` (the copy that opened) says an interrupted resize left undone, from the copies as read; writes nothing. */
export function interruptedResize(c: ContainerFile, copies: HeaderCopies, g: Header, masterKey: Uint8Array): ResizeLeftovers {
  // Grow: the old primary placed the old secondary inside what is now G's data area.
  const oldPrimary = copies.primary.ok ? copies.primary.header : null;
  const at = oldPrimary && oldPrimary.dataSize < g.dataSize ? secondaryOffset(oldPrimary) : null;
  // Shrink: the file still ends with the longer container's secondary copy.
  const length = containerFileSize(g);
  const longer = fstatSync(c.fd).isFile() && c.size > length;
  return {
    oldSecondaryAt: at !== null && staleCopyAt(c, at, g, masterKey) ? at : null,
    truncateTo: longer && staleCopyAt(c, c.size - HEADER_SIZE, g, masterKey) ? length : null,
  };
}

export const resizeOwed = (l: ResizeLeftovers): boolean => l.oldSecondaryAt !== null || l.truncateTo !== null;

/**
 * Does what `left` (found before the repair rewrote the copies) says, with `g` the header as
 * written. Returns what was done, for the user.
 */
export async function finishInterruptedResize(c: ContainerFile, left: ResizeLeftovers, g: Header, masterKey: Uint8Array): Promise<string[]> {
  const done: string[] = [];
  const at = left.oldSecondaryAt;
  if (at !== null) {
    const key = KeyHandle.fromBytes(secretCopy(masterKey));
    try {
      await fillWithEncryptedZeros(c.fd, g, key, { from: at - g.dataOffset, to: at - g.dataOffset + HEADER_SIZE });
    } finally {
      key.dispose();
    }
    fsyncSync(c.fd);
    done.push(`overwrote the old secondary header copy left at offset ${at} by an interrupted grow`);
  }
  if (left.truncateTo !== null) {
    const was = c.size;
    ftruncateSync(c.fd, left.truncateTo);
    fsyncSync(c.fd);
    c.size = left.truncateTo;
    done.push(`truncated the file from ${was} to ${left.truncateTo} bytes, as the interrupted shrink would have`);
  }
  return done;
}
