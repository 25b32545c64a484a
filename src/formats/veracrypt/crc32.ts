/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as VeraCrypt's Crc.c computes it.
 * The header CRCs use the usual finalised value; the keyfile pool uses the raw register after each
 * byte (no final inversion), which is why the byte-wise step is exported.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** One byte into the raw register (VeraCrypt's UPDC32). */
export function crc32Step(crc: number, byte: number): number {
  return (TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)) >>> 0;
}

/** The finalised CRC-32 of `bytes` (initial register 0xFFFFFFFF, final inversion). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = crc32Step(crc, b);
  return (crc ^ 0xffffffff) >>> 0;
}
