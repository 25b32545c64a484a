/**
 * Serpent with a 256-bit key (Anderson, Biham, Knudsen, 1998), in its bitslice description.
 *
 * Byte order: words are read and written little-endian from the byte string, key word 0 from key
 * bytes 0..3. That is the order of VeraCrypt (Crypto/SerpentFast.c, from Botan), the Linux kernel's
 * "serpent" (so cryptsetup's tcrypt) and the NESSIE vectors. The AES-submission files print keys
 * and blocks as big numbers, i.e. byte-reversed ("tnepres" in the kernel); vault does not use it.
 */
import { type BlockCipher, checkBlock, checkKey, offHeapWords, rotl, rotr } from './types.js';

const SBOX: readonly (readonly number[])[] = [
  [3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12],
  [15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4],
  [8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2],
  [0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14],
  [1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13],
  [15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1],
  [7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0],
  [1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6],
];
const SBOX_INV = SBOX.map((s) => {
  const inv = new Array<number>(16);
  s.forEach((v, i) => (inv[v] = i));
  return inv;
});
/** The fractional part of the golden ratio, mixed into the key schedule. */
const PHI = 0x9e3779b9;

/** Applies a 4-bit S-box to 32 nibbles in bitslice form: bit j of x[0..3] forms nibble j. */
function sbox(s: readonly number[], x: Uint32Array): void {
  let y0 = 0, y1 = 0, y2 = 0, y3 = 0;
  for (let j = 0; j < 32; j++) {
    const n = ((x[0]! >>> j) & 1) | (((x[1]! >>> j) & 1) << 1) | (((x[2]! >>> j) & 1) << 2) | (((x[3]! >>> j) & 1) << 3);
    const m = s[n]!;
    y0 |= (m & 1) << j;
    y1 |= ((m >>> 1) & 1) << j;
    y2 |= ((m >>> 2) & 1) << j;
    y3 |= ((m >>> 3) & 1) << j;
  }
  x[0] = y0; x[1] = y1; x[2] = y2; x[3] = y3;
}

function linear(x: Uint32Array): void {
  x[0] = rotl(x[0]!, 13);
  x[2] = rotl(x[2]!, 3);
  x[1] = x[1]! ^ x[0]! ^ x[2]!;
  x[3] = x[3]! ^ x[2]! ^ ((x[0]! << 3) >>> 0);
  x[1] = rotl(x[1]!, 1);
  x[3] = rotl(x[3]!, 7);
  x[0] = x[0]! ^ x[1]! ^ x[3]!;
  x[2] = x[2]! ^ x[3]! ^ ((x[1]! << 7) >>> 0);
  x[0] = rotl(x[0]!, 5);
  x[2] = rotl(x[2]!, 22);
}

function linearInverse(x: Uint32Array): void {
  x[2] = rotr(x[2]!, 22);
  x[0] = rotr(x[0]!, 5);
  x[2] = x[2]! ^ x[3]! ^ ((x[1]! << 7) >>> 0);
  x[0] = x[0]! ^ x[1]! ^ x[3]!;
  x[3] = rotr(x[3]!, 7);
  x[1] = rotr(x[1]!, 1);
  x[3] = x[3]! ^ x[2]! ^ ((x[0]! << 3) >>> 0);
  x[1] = x[1]! ^ x[0]! ^ x[2]!;
  x[2] = rotr(x[2]!, 3);
  x[0] = rotr(x[0]!, 13);
}

/** 33 round keys of 4 words each, from the 8 key words (little-endian). */
function schedule(key: Uint8Array): Uint32Array {
  const w = offHeapWords(8 + 132);
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  for (let i = 0; i < 8; i++) w[i] = view.getUint32(4 * i, true);
  for (let i = 0; i < 132; i++) w[i + 8] = rotl((w[i]! ^ w[i + 3]! ^ w[i + 5]! ^ w[i + 7]! ^ PHI ^ i) >>> 0, 11);
  const k = offHeapWords(132);
  const x = offHeapWords(4);
  for (let r = 0; r < 33; r++) {
    x.set(w.subarray(8 + 4 * r, 12 + 4 * r));
    sbox(SBOX[(35 - r) % 8]!, x); // round key r goes through S-box (3 − r) mod 8
    k.set(x, 4 * r);
  }
  w.fill(0);
  x.fill(0);
  return k;
}

/** Reads a block into the state words (little-endian). */
function load(block: Uint8Array, x: Uint32Array): void {
  const v = new DataView(block.buffer, block.byteOffset, 16);
  for (let i = 0; i < 4; i++) x[i] = v.getUint32(4 * i, true);
}

/** Writes the state words back into the block, then clears them. */
function store(x: Uint32Array, block: Uint8Array): void {
  const v = new DataView(block.buffer, block.byteOffset, 16);
  for (let i = 0; i < 4; i++) v.setUint32(4 * i, x[i]!, true);
  x.fill(0);
}

function addKey(x: Uint32Array, k: Uint32Array, r: number): void {
  for (let i = 0; i < 4; i++) x[i] = (x[i]! ^ k[4 * r + i]!) >>> 0;
}

export function serpent(key: Uint8Array): BlockCipher {
  checkKey(key, 'Serpent');
  const k = schedule(key);
  const x = offHeapWords(4); // the cipher state, reused so that no copy of it is left to the GC
  return {
    encrypt(block) {
      checkBlock(block);
      load(block, x);
      for (let r = 0; r < 32; r++) {
        addKey(x, k, r);
        sbox(SBOX[r % 8]!, x);
        if (r < 31) linear(x);
      }
      addKey(x, k, 32);
      store(x, block);
    },
    decrypt(block) {
      checkBlock(block);
      load(block, x);
      addKey(x, k, 32);
      for (let r = 31; r >= 0; r--) {
        if (r < 31) linearInverse(x);
        sbox(SBOX_INV[r % 8]!, x);
        addKey(x, k, r);
      }
      store(x, block);
    },
    wipe() {
      k.fill(0);
      x.fill(0);
    },
  };
}
