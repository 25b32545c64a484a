/** Multiplication in GF(2^8) modulo `poly` (given with its x^8 term, e.g. 0x169 for Twofish's MDS). */
export function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  for (; b; b >>>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= poly;
  }
  return r;
}
