/** Overwrites key and password material we hold in JS memory. Best effort: V8 may have moved copies. */
export function wipe(...buffers: (Uint8Array | null | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}
