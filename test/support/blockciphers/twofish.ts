/**
 * Twofish with a 256-bit key (Schneier et al., "Twofish: A 128-Bit Block Cipher", 1998), written
 * from the paper's definitions (q permutations from their 4-bit tables, the MDS and RS matrices),
 * without the precomputed tables fast implementations use.
 *
 * Byte order as in the paper and in VeraCrypt (Crypto/Twofish.c): key and block bytes map to
 * 32-bit words little-endian, so the paper's KAT files apply byte for byte.
 */
import { type BlockCipher, checkBlock, checkKey, offHeapWords, rotl, rotr } from './types.js';
import { gfMul } from './gf256.js';

/** The 4-bit tables t0..t3 of q0 and q1 (paper, section 4.3.5). */
const Q_TABLES = [
  [
    [0x8, 0x1, 0x7, 0xd, 0x6, 0xf, 0x3, 0x2, 0x0, 0xb, 0x5, 0x9, 0xe, 0xc, 0xa, 0x4],
    [0xe, 0xc, 0xb, 0x8, 0x1, 0x2, 0x3, 0x5, 0xf, 0x4, 0xa, 0x6, 0x7, 0x0, 0x9, 0xd],
    [0xb, 0xa, 0x5, 0xe, 0x6, 0xd, 0x9, 0x0, 0xc, 0x8, 0xf, 0x3, 0x2, 0x4, 0x7, 0x1],
    [0xd, 0x7, 0xf, 0x4, 0x1, 0x2, 0x6, 0xe, 0x9, 0xb, 0x3, 0x0, 0x8, 0x5, 0xc, 0xa],
  ],
  [
    [0x2, 0x8, 0xb, 0xd, 0xf, 0x7, 0x6, 0xe, 0x3, 0x1, 0x9, 0x4, 0x0, 0xa, 0xc, 0x5],
    [0x1, 0xe, 0x2, 0xb, 0x4, 0xc, 0x3, 0x7, 0x6, 0xd, 0xa, 0x5, 0xf, 0x9, 0x0, 0x8],
    [0x4, 0xc, 0x7, 0x5, 0x1, 0x6, 0x9, 0xa, 0x0, 0xe, 0xd, 0x8, 0x2, 0xb, 0x3, 0xf],
    [0xb, 0x9, 0x5, 0x1, 0xc, 0x3, 0xd, 0xe, 0x6, 0x4, 0x7, 0xf, 0x2, 0x0, 0x8, 0xa],
  ],
] as const;

const ror4 = (x: number): number => ((x >>> 1) | (x << 3)) & 0xf;

function qPermutation(t: readonly (readonly number[])[]): Uint8Array {
  const q = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    let a = x >>> 4, b = x & 0xf;
    for (let stage = 0; stage < 2; stage++) {
      const a1 = a ^ b;
      const b1 = a ^ ror4(b) ^ ((8 * a) & 0xf);
      a = t[2 * stage]![a1]!;
      b = t[2 * stage + 1]![b1]!;
    }
    q[x] = (b << 4) | a;
  }
  return q;
}

const Q0 = qPermutation(Q_TABLES[0]);
const Q1 = qPermutation(Q_TABLES[1]);

const MDS = [
  [0x01, 0xef, 0x5b, 0x5b],
  [0x5b, 0xef, 0xef, 0x01],
  [0xef, 0x5b, 0x01, 0xef],
  [0xef, 0x01, 0xef, 0x5b],
];
const MDS_POLY = 0x169;
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
  [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
  [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];
const RS_POLY = 0x14d;

const byteOf = (w: number, i: number): number => (w >>> (8 * i)) & 0xff;

/**
 * The q permutation of each byte (columns) at each keyed layer of h for a 256-bit key (rows: the
 * layers xored with l[3], l[2], l[1], l[0]), then the last q before the MDS (paper, section 4.3.2).
 */
const Q_LAYERS: readonly (readonly Uint8Array[])[] = [
  [Q1, Q0, Q0, Q1],
  [Q1, Q1, Q0, Q0],
  [Q0, Q1, Q0, Q1],
  [Q0, Q0, Q1, Q1],
];
const Q_FINAL: readonly Uint8Array[] = [Q1, Q0, Q1, Q0];

/** The function h for a 256-bit key (k = 4): four q layers keyed by l[3], l[2], l[1], l[0], then MDS. */
function h(x: number, l: Uint32Array | readonly number[]): number {
  const y = [byteOf(x, 0), byteOf(x, 1), byteOf(x, 2), byteOf(x, 3)];
  for (let stage = 0; stage < 4; stage++) {
    const key = l[3 - stage]!;
    for (let j = 0; j < 4; j++) y[j] = Q_LAYERS[stage]![j]![y[j]!]! ^ byteOf(key, j);
  }
  let z = 0;
  for (let i = 0; i < 4; i++) {
    let zi = 0;
    for (let j = 0; j < 4; j++) zi ^= gfMul(MDS[i]![j]!, Q_FINAL[j]![y[j]!]!, MDS_POLY);
    z |= zi << (8 * i);
  }
  return z >>> 0;
}

interface Schedule {
  /** The 40 round subkeys K0..K39. */
  k: Uint32Array;
  /** The key-dependent S-box words in h's list order: (S3, S2, S1, S0). */
  s: Uint32Array;
}

function schedule(key: Uint8Array): Schedule {
  const v = new DataView(key.buffer, key.byteOffset, 32);
  const m = offHeapWords(8);
  for (let i = 0; i < 8; i++) m[i] = v.getUint32(4 * i, true);
  const even = offHeapWords(4);
  const odd = offHeapWords(4);
  for (let i = 0; i < 4; i++) {
    even[i] = m[2 * i]!;
    odd[i] = m[2 * i + 1]!;
  }
  // S_i = RS · key bytes 8i..8i+7; h takes them in reverse: (S_3, S_2, S_1, S_0).
  const s = offHeapWords(4);
  for (let i = 0; i < 4; i++) {
    let w = 0;
    for (let r = 0; r < 4; r++) {
      let acc = 0;
      for (let c = 0; c < 8; c++) acc ^= gfMul(RS[r]![c]!, key[8 * i + c]!, RS_POLY);
      w |= acc << (8 * r);
    }
    s[3 - i] = w >>> 0;
  }
  const k = offHeapWords(40);
  const rho = 0x01010101;
  for (let i = 0; i < 20; i++) {
    const a = h(Math.imul(2 * i, rho) >>> 0, even);
    const b = rotl(h(Math.imul(2 * i + 1, rho) >>> 0, odd), 8);
    k[2 * i] = (a + b) >>> 0;
    k[2 * i + 1] = rotl((a + 2 * b) >>> 0, 9);
  }
  m.fill(0);
  even.fill(0);
  odd.fill(0);
  return { k, s };
}

export function twofish(key: Uint8Array): BlockCipher {
  checkKey(key, 'Twofish');
  const { k, s } = schedule(key);
  const g = (x: number): number => h(x, s);
  const f = (r0: number, r1: number, round: number): [number, number] => {
    const t0 = g(r0);
    const t1 = g(rotl(r1, 8));
    return [(t0 + t1 + k[2 * round + 8]!) >>> 0, (t0 + 2 * t1 + k[2 * round + 9]!) >>> 0];
  };
  return {
    encrypt(block) {
      checkBlock(block);
      const v = new DataView(block.buffer, block.byteOffset, 16);
      let r = [0, 1, 2, 3].map((i) => (v.getUint32(4 * i, true) ^ k[i]!) >>> 0);
      for (let round = 0; round < 16; round++) {
        const [f0, f1] = f(r[0]!, r[1]!, round);
        r = [rotr((r[2]! ^ f0) >>> 0, 1), (rotl(r[3]!, 1) ^ f1) >>> 0, r[0]!, r[1]!];
      }
      // Undo the last swap, then output whitening.
      for (let i = 0; i < 4; i++) v.setUint32(4 * i, (r[(i + 2) % 4]! ^ k[i + 4]!) >>> 0, true);
      r.fill(0);
    },
    decrypt(block) {
      checkBlock(block);
      const v = new DataView(block.buffer, block.byteOffset, 16);
      let r = new Array<number>(4);
      for (let i = 0; i < 4; i++) r[(i + 2) % 4] = (v.getUint32(4 * i, true) ^ k[i + 4]!) >>> 0;
      for (let round = 15; round >= 0; round--) {
        const [f0, f1] = f(r[2]!, r[3]!, round);
        r = [r[2]!, r[3]!, (rotl(r[0]!, 1) ^ f0) >>> 0, rotr((r[1]! ^ f1) >>> 0, 1)];
      }
      for (let i = 0; i < 4; i++) v.setUint32(4 * i, (r[i]! ^ k[i]!) >>> 0, true);
      r.fill(0);
    },
    wipe() {
      k.fill(0);
      s.fill(0);
    },
  };
}
