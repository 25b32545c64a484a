/**
 * Kuznyechik, GOST R 34.12-2015 (also RFC 7801): a 10-round SP network on 128-bit blocks with a
 * 256-bit key, written from the standard's definitions (S-box π, the linear map L as 16 steps of R
 * over GF(2^8) mod x^8 + x^7 + x^6 + x + 1, the Feistel key schedule with constants C_i = L(i)).
 *
 * Byte order: a block or key is the byte string as the standard prints it, most significant byte
 * first (a_15 … a_0), which is how VeraCrypt (Crypto/kuznyechik.c, Common/Tests.c) stores its
 * vectors too, so Appendix A of the standard applies byte for byte.
 */
import { type BlockCipher, checkBlock, checkKey, offHeapBytes } from './types.js';
import { gfMul } from './gf256.js';

/** π, the S-box (GOST R 34.12-2015, section 4.1.1). */
const PI = Uint8Array.of(
  252, 238, 221, 17, 207, 110, 49, 22, 251, 196, 250, 218, 35, 197, 4, 77, 233, 119, 240, 219, 147, 46,
  153, 186, 23, 54, 241, 187, 20, 205, 95, 193, 249, 24, 101, 90, 226, 92, 239, 33, 129, 28, 60, 66,
  139, 1, 142, 79, 5, 132, 2, 174, 227, 106, 143, 160, 6, 11, 237, 152, 127, 212, 211, 31, 235, 52,
  44, 81, 234, 200, 72, 171, 242, 42, 104, 162, 253, 58, 206, 204, 181, 112, 14, 86, 8, 12, 118, 18,
  191, 114, 19, 71, 156, 183, 93, 135, 21, 161, 150, 41, 16, 123, 154, 199, 243, 145, 120, 111, 157, 158,
  178, 177, 50, 117, 25, 61, 255, 53, 138, 126, 109, 84, 198, 128, 195, 189, 13, 87, 223, 245, 36, 169,
  62, 168, 67, 201, 215, 121, 214, 246, 124, 34, 185, 3, 224, 15, 236, 222, 122, 148, 176, 188, 220, 232,
  40, 80, 78, 51, 10, 74, 167, 151, 96, 115, 30, 0, 98, 68, 26, 184, 56, 130, 100, 159, 38, 65,
  173, 69, 70, 146, 39, 94, 85, 47, 140, 163, 165, 125, 105, 213, 149, 59, 7, 88, 179, 64, 134, 172,
  29, 247, 48, 55, 107, 228, 136, 217, 231, 137, 225, 27, 131, 73, 76, 63, 248, 254, 141, 83, 170, 144,
  202, 216, 133, 97, 32, 113, 103, 164, 45, 43, 9, 91, 203, 155, 37, 208, 190, 229, 108, 82, 89, 166,
  116, 210, 230, 244, 180, 192, 209, 102, 175, 194, 57, 75, 99, 182,
);
const PI_INV = (() => {
  const inv = new Uint8Array(256);
  PI.forEach((v, i) => (inv[v] = i));
  return inv;
})();
/** The coefficients of ℓ for a_15 … a_0 (section 4.1.2). */
/** x^8 + x^7 + x^6 + x + 1, the field of ℓ. */
const POLY = 0x1c3;
const L_COEFF = [148, 32, 133, 16, 194, 192, 1, 251, 1, 192, 194, 16, 133, 32, 148, 1];

/** R(a_15..a_0) = ℓ(a_15..a_0) ‖ a_15..a_1: byte 0 of the array is a_15. */
function stepR(x: Uint8Array): void {
  let l = 0;
  for (let i = 0; i < 16; i++) l ^= gfMul(x[i]!, L_COEFF[i]!, POLY);
  x.copyWithin(1, 0, 15);
  x[0] = l;
}

function stepRInverse(x: Uint8Array): void {
  const first = x[0]!;
  x.copyWithin(0, 1, 16);
  let l = first;
  for (let i = 0; i < 15; i++) l ^= gfMul(x[i]!, L_COEFF[i]!, POLY);
  x[15] = l;
}

function linear(x: Uint8Array): void {
  for (let i = 0; i < 16; i++) stepR(x);
}

function linearInverse(x: Uint8Array): void {
  for (let i = 0; i < 16; i++) stepRInverse(x);
}

function xorInto(x: Uint8Array, k: Uint8Array): void {
  for (let i = 0; i < 16; i++) x[i]! ^= k[i]!;
}

/** The key-schedule constants C_1..C_32: C_i = L(i), i as a 128-bit big-endian number. */
const CONSTANTS = Array.from({ length: 32 }, (_, i) => {
  const c = new Uint8Array(16);
  c[15] = i + 1;
  linear(c);
  return c;
});

/** K_1..K_10 (16 bytes each) from the 256-bit key by the Feistel network with the constants. */
function schedule(key: Uint8Array): Uint8Array[] {
  const copy = (x: Uint8Array): Uint8Array => {
    const c = offHeapBytes(16);
    c.set(x);
    return c;
  };
  let a = copy(key.subarray(0, 16));
  let b = copy(key.subarray(16, 32));
  const keys = [copy(a), copy(b)];
  const t = offHeapBytes(16);
  for (let i = 0; i < 32; i++) {
    t.set(a);
    xorInto(t, CONSTANTS[i]!);
    for (let j = 0; j < 16; j++) t[j] = PI[t[j]!]!;
    linear(t);
    xorInto(t, b);
    b.fill(0);
    b = a;
    a = copy(t);
    if (i % 8 === 7) keys.push(copy(a), copy(b));
  }
  a.fill(0);
  b.fill(0);
  t.fill(0);
  return keys;
}

export function kuznyechik(key: Uint8Array): BlockCipher {
  checkKey(key, 'Kuznyechik');
  const k = schedule(key);
  return {
    encrypt(block) {
      checkBlock(block);
      for (let r = 0; r < 9; r++) {
        xorInto(block, k[r]!);
        for (let j = 0; j < 16; j++) block[j] = PI[block[j]!]!;
        linear(block);
      }
      xorInto(block, k[9]!);
    },
    decrypt(block) {
      checkBlock(block);
      xorInto(block, k[9]!);
      for (let r = 8; r >= 0; r--) {
        linearInverse(block);
        for (let j = 0; j < 16; j++) block[j] = PI_INV[block[j]!]!;
        xorInto(block, k[r]!);
      }
    },
    wipe: () => k.forEach((x) => x.fill(0)),
  };
}
