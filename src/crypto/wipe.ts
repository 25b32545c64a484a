/** Overwrites key and password material we hold in JS memory. Best effort: V8 may have moved copies. */
export function wipe(...buffers: (Uint8Array | null | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}

/**
 * A zeroed buffer for secrets, over an ArrayBuffer of its own. Not `Buffer.from(small)` or
 * `Buffer.allocUnsafe`: those share Node's 8 KiB pool with unrelated data, so a wipe of one view
 * is easy to forget and the pool keeps the bytes. Not `Buffer.alloc(n)` either: for n ≤ 64 V8 keeps
 * the bytes on its own heap, where a garbage collection may move them and leave an unwiped copy.
 */
export function secretBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

/** A copy of `bytes` in a secretBuffer; the caller wipes it. */
export function secretCopy(bytes: Uint8Array): Buffer {
  const b = secretBuffer(bytes.length);
  b.set(bytes);
  return b;
}
