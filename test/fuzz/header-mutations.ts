/**
 * The header mutation generator (issue 6, header fuzzing): a seeded PRNG and the mutations it draws
 * for one case. Pure and deterministic: case `i` of seed `s` is the same mutation on every machine,
 * so a failure reproduces from its seed and index alone. No vitest here: the standalone runner
 * (test/fuzz/run.ts) and the unit test share it.
 */
import { createHash } from 'node:crypto';
import { HEADER_SIZE, KDF_BOUNDS, KEYSLOT_COUNT, KEYSLOT_SIZE, MAX_CONTAINER_BYTES, OFF, SLOT_OFF } from '../../src/format/constants.js';

/** xoshiro128** seeded from SHA-256(seed:index): independent streams per case, no shared state. */
export class Prng {
  private s: Uint32Array;

  constructor(seed: number | string, index = 0) {
    const h = createHash('sha256').update(`vault-header-fuzz:${seed}:${index}`).digest();
    this.s = new Uint32Array([h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12) | 1]);
  }

  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }

  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 2 ** 32 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Which header copies a mutation is applied to. */
export type Target = 'primary' | 'secondary' | 'both';

/** What one case does. `describe()` of it is printed on failure, with the seed and index. */
export type Mutation =
  | { kind: 'bitflip'; target: Target; bits: number[]; fixChecksum: boolean }
  | { kind: 'byteset'; target: Target; sets: [number, number][]; fixChecksum: boolean }
  | { kind: 'field'; target: Target; field: string; offset: number; value: Buffer; fixChecksum: boolean }
  | { kind: 'slot-move'; target: Target; from: number; to: number; clearFrom: boolean; fixChecksum: boolean }
  | { kind: 'foreign-slot'; target: Target; donor: number; slot: number; fixChecksum: boolean }
  | { kind: 'foreign-copy'; target: Target; donor: number }
  | { kind: 'swap-copies' }
  | { kind: 'truncate'; headerLength: number; fileLength: number }
  | { kind: 'extend'; extra: Buffer };

export function describeMutation(m: Mutation): string {
  switch (m.kind) {
    case 'bitflip':
      return `${m.target}: flip bits ${m.bits.join(',')}${m.fixChecksum ? ', checksum fixed' : ''}`;
    case 'byteset':
      return `${m.target}: set ${m.sets.map(([o, v]) => `[${o}]=0x${v.toString(16)}`).join(' ')}${m.fixChecksum ? ', checksum fixed' : ''}`;
    case 'field':
      return `${m.target}: ${m.field} @${m.offset} = ${m.value.toString('hex')}${m.fixChecksum ? ', checksum fixed' : ''}`;
    case 'slot-move':
      return `${m.target}: keyslot ${m.from} copied to ${m.to}${m.clearFrom ? ', source emptied' : ''}${m.fixChecksum ? ', checksum fixed' : ''}`;
    case 'foreign-slot':
      return `${m.target}: keyslot ${m.slot} of base ${m.donor} transplanted${m.fixChecksum ? ', checksum fixed' : ''}`;
    case 'foreign-copy':
      return `${m.target}: whole copy of base ${m.donor} transplanted`;
    case 'swap-copies':
      return 'primary and secondary copies swapped';
    case 'truncate':
      return `header buffer cut to ${m.headerLength} bytes; file cut to ${m.fileLength} bytes`;
    case 'extend':
      return `${m.extra.length} bytes appended to the header buffer and the file`;
  }
}

/** An unsigned little-endian field of `size` bytes holding `v`. */
export function le(v: bigint, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
}

const U64_MAX = (1n << 64n) - 1n;
const MIB = 1n << 20n;
const MAX = BigInt(MAX_CONTAINER_BYTES);

/**
 * Every field of spec §2 and §3 with its boundary values: 0, the type's maximum, and each bound of
 * the rule and its neighbours (off by one, and off by one unit where the rule is a multiple).
 * `values` gets the field's current bytes, so relative values (sequence + 1) can be made.
 */
interface FieldSpec {
  name: string;
  offset: number;
  size: number;
  values(current: Buffer, ctx: { sectorSize: bigint; dataOffset: bigint; dataSize: bigint; parallelism: bigint }): Buffer[];
}

const ints = (size: number, ...vs: bigint[]) => vs.filter((v) => v >= 0n && v <= U64_MAX >> BigInt(64 - 8 * size)).map((v) => le(v, size));
const cur = (b: Buffer) => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const ascii = (s: string, size: number) => {
  const b = Buffer.alloc(size);
  b.write(s, 'latin1');
  return b;
};
const nonZeroAt = (size: number, ...positions: number[]) =>
  positions.filter((p) => p < size).map((p) => {
    const b = Buffer.alloc(size);
    b[p] = 1;
    return b;
  });

const HEADER_FIELDS: FieldSpec[] = [
  { name: 'magic', offset: OFF.magic, size: 8, values: () => [Buffer.alloc(8), Buffer.alloc(8, 0xff), ascii('VAULTVOM', 8), ascii('vaultvol', 8), ascii('LUKS\xba\xbe\0\x02', 8)] },
  { name: 'version', offset: OFF.version, size: 2, values: () => ints(2, 0n, 1n, 2n, 0xfffen, 0xffffn, 0x100n) },
  { name: 'header_size', offset: OFF.headerSize, size: 2, values: () => ints(2, 0n, 1n, 4095n, 4096n, 4097n, 8192n, 0xffffn) },
  { name: 'flags', offset: OFF.flags, size: 4, values: () => ints(4, 0n, 1n, 2n, 0x80000000n, 0xffffffffn) },
  { name: 'sequence', offset: OFF.sequence, size: 8, values: (c) => ints(8, 0n, 1n, 2n, cur(c) - 1n, cur(c) + 1n, 1n << 63n, U64_MAX - 1n, U64_MAX) },
  { name: 'uuid', offset: OFF.uuid, size: 16, values: (c) => [Buffer.alloc(16), Buffer.alloc(16, 0xff), Buffer.from(c.map((x) => x ^ 1))] },
  {
    name: 'cipher', offset: OFF.cipher, size: 32,
    values: () => [Buffer.alloc(32), ascii('aes-256-xts', 32), Buffer.alloc(32, 0x41), ascii('AES-256-XTS', 32), ascii('aes-128-xts', 32),
      ascii('aes-256-xt', 32), ascii('aes-256-xtsx', 32), ascii('cipher_null', 32), Buffer.concat([ascii('aes-256-xts', 31), Buffer.from([1])]),
      Buffer.concat([Buffer.from('aes-256-xts'), Buffer.alloc(21, 0xff)])],
  },
  { name: 'sector_size', offset: OFF.sectorSize, size: 4, values: () => ints(4, 0n, 1n, 511n, 512n, 513n, 1024n, 2048n, 4095n, 4096n, 4097n, 8192n, 0xffffffffn) },
  { name: 'keyslot_count', offset: OFF.keyslotCount, size: 4, values: () => ints(4, 0n, 1n, 7n, 8n, 9n, 0xffffffffn) },
  {
    name: 'data_offset', offset: OFF.dataOffset, size: 8,
    values: (_c, g) => ints(8, 0n, 1n, 4096n, MIB - 1n, MIB, MIB + 1n, MIB + 512n, 2n * MIB, g.dataOffset - 1n, g.dataOffset + 1n,
      g.dataOffset + MIB, MAX - g.dataSize - 4096n, (MAX - g.dataSize - 4096n) / MIB * MIB, MAX - g.dataSize - 4095n, 1n << 53n, U64_MAX - MIB + 1n, U64_MAX),
  },
  {
    name: 'data_size', offset: OFF.dataSize, size: 8,
    values: (_c, g) => ints(8, 0n, 1n, g.sectorSize - 1n, g.sectorSize, g.sectorSize + 1n, g.dataSize - g.sectorSize, g.dataSize - 1n, g.dataSize + 1n,
      g.dataSize + g.sectorSize, 2n * g.dataSize, (MAX - g.dataOffset - 4096n) / g.sectorSize * g.sectorSize,
      (MAX - g.dataOffset - 4096n) / g.sectorSize * g.sectorSize + g.sectorSize, 1n << 53n, U64_MAX - g.sectorSize + 1n, U64_MAX),
  },
  { name: 'copy', offset: OFF.copy, size: 1, values: () => ints(1, 0n, 1n, 2n, 0x80n, 0xffn) },
  { name: 'reserved(97..127)', offset: OFF.reserved1, size: OFF.keyslots - OFF.reserved1, values: (c) => nonZeroAt(c.length, 0, 15, c.length - 1) },
  { name: 'reserved(1408..4031)', offset: OFF.reserved2, size: OFF.mac - OFF.reserved2, values: (c) => nonZeroAt(c.length, 0, 1000, c.length - 1) },
  { name: 'mac', offset: OFF.mac, size: 32, values: (c) => [Buffer.alloc(32), Buffer.from(c.map((x, i) => (i === 31 ? x ^ 0x80 : x)))] },
  { name: 'checksum', offset: OFF.checksum, size: 32, values: (c) => [Buffer.alloc(32), Buffer.from(c.map((x, i) => (i === 0 ? x ^ 1 : x)))] },
];

const B = KDF_BOUNDS;
const SLOT_FIELDS: FieldSpec[] = [
  { name: 'state', offset: SLOT_OFF.state, size: 1, values: () => ints(1, 0n, 1n, 2n, 0x80n, 0xffn) },
  { name: 'kdf', offset: SLOT_OFF.kdf, size: 1, values: () => ints(1, 0n, 1n, 2n, 0xffn) },
  { name: 'slot reserved(2..3)', offset: SLOT_OFF.reserved1, size: 2, values: () => ints(2, 0n, 1n, 0x100n, 0xffffn) },
  {
    name: 'memory_kib', offset: SLOT_OFF.memoryKiB, size: 4,
    values: (_c, g) => ints(4, 0n, 1n, 8n * g.parallelism - 1n, 8n * g.parallelism, BigInt(B.memoryKiB.min) - 1n, BigInt(B.memoryKiB.min),
      BigInt(B.memoryKiB.min) + 1n, 2048n, 65536n, BigInt(B.memoryKiB.max) - 1n, BigInt(B.memoryKiB.max), BigInt(B.memoryKiB.max) + 1n,
      2n * BigInt(B.memoryKiB.max), 0xffffffffn),
  },
  {
    name: 'iterations', offset: SLOT_OFF.iterations, size: 4,
    values: () => ints(4, 0n, BigInt(B.iterations.min), 2n, 3n, BigInt(B.iterations.max) - 1n, BigInt(B.iterations.max), BigInt(B.iterations.max) + 1n, 1000n, 0xffffffffn),
  },
  {
    name: 'parallelism', offset: SLOT_OFF.parallelism, size: 4,
    values: () => ints(4, 0n, BigInt(B.parallelism.min), 2n, 4n, BigInt(B.parallelism.max) - 1n, BigInt(B.parallelism.max), BigInt(B.parallelism.max) + 1n, 255n, 0xffffffffn),
  },
  { name: 'salt', offset: SLOT_OFF.salt, size: 32, values: (c) => [Buffer.alloc(32), Buffer.from(c.map((x, i) => (i === 7 ? x ^ 4 : x)))] },
  { name: 'nonce', offset: SLOT_OFF.nonce, size: 24, values: (c) => [Buffer.alloc(24), Buffer.from(c.map((x, i) => (i === 23 ? x ^ 1 : x)))] },
  { name: 'wrapped_key', offset: SLOT_OFF.wrappedKey, size: 80, values: (c) => [Buffer.alloc(80), Buffer.from(c.map((x, i) => (i === 0 || i === 79 ? x ^ 0x10 : x)))] },
  { name: 'slot reserved(152..159)', offset: SLOT_OFF.reserved2, size: 8, values: () => nonZeroAt(8, 0, 7) },
];

/** Every field the generator knows, with absolute offsets: the header's, then each slot's. */
export const ALL_FIELDS: FieldSpec[] = [
  ...HEADER_FIELDS,
  ...Array.from({ length: KEYSLOT_COUNT }, (_, i) =>
    SLOT_FIELDS.map((f) => ({ ...f, name: `keyslot ${i} ${f.name}`, offset: OFF.keyslots + i * KEYSLOT_SIZE + f.offset })),
  ).flat(),
];

/** What the generator needs to know about a base container. */
export interface BaseInfo {
  copies: [Buffer, Buffer];
  activeSlots: number[];
  fileSize: number;
}

function geometryOf(copy: Buffer, slotStart: number) {
  return {
    sectorSize: BigInt(copy.readUInt32LE(OFF.sectorSize)),
    dataOffset: copy.readBigUInt64LE(OFF.dataOffset),
    dataSize: copy.readBigUInt64LE(OFF.dataSize),
    parallelism: BigInt(copy.readUInt32LE(slotStart + SLOT_OFF.parallelism) || 1),
  };
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/**
 * Draws case `rng`'s mutation of base `base` (one of `nBases`). Field mutations favour the active
 * slots, where the KDF bounds live; everything is recomputed-checksum most of the time so the
 * mutation reaches the structural checks and the MAC, not just the checksum.
 */
export function generateMutation(rng: Prng, base: BaseInfo, nBases: number, self: number): Mutation {
  const target = rng.pick<Target>(['primary', 'primary', 'secondary', 'both']);
  const fixChecksum = rng.chance(0.75);
  const roll = rng.int(100);
  if (roll < 20) {
    // bit flips: anywhere, or concentrated in one field so the structure is hit often
    const field = rng.chance(0.5) ? rng.pick(ALL_FIELDS) : null;
    const lo = field ? field.offset : 0;
    const len = field ? field.size : HEADER_SIZE;
    const bits = Array.from({ length: rng.range(1, 8) }, () => (lo * 8 + rng.int(len * 8)));
    return { kind: 'bitflip', target, bits, fixChecksum };
  }
  if (roll < 32) {
    const sets = Array.from({ length: rng.range(1, 6) }, (): [number, number] => [rng.int(HEADER_SIZE), rng.chance(0.7) ? rng.pick(INTERESTING_BYTES) : rng.int(256)]);
    return { kind: 'byteset', target, sets, fixChecksum };
  }
  if (roll < 77) {
    const slotFields = ALL_FIELDS.filter((f) => base.activeSlots.some((s) => f.name.startsWith(`keyslot ${s} `)));
    const field = rng.chance(0.45) ? rng.pick(slotFields) : rng.pick(ALL_FIELDS);
    const copy = base.copies[target === 'secondary' ? 1 : 0];
    const slotStart = OFF.keyslots + KEYSLOT_SIZE * Math.max(0, Math.floor((field.offset - OFF.keyslots) / KEYSLOT_SIZE));
    const values = field.values(copy.subarray(field.offset, field.offset + field.size), geometryOf(copy, slotStart));
    return { kind: 'field', target, field: field.name, offset: field.offset, value: rng.pick(values), fixChecksum };
  }
  if (roll < 82) {
    const from = rng.pick(base.activeSlots);
    const to = rng.pick([...Array(KEYSLOT_COUNT).keys()].filter((i) => i !== from));
    return { kind: 'slot-move', target, from, to, clearFrom: rng.chance(0.5), fixChecksum };
  }
  if (roll < 86 && nBases > 1) {
    const donor = (self + rng.range(1, nBases - 1)) % nBases;
    return { kind: 'foreign-slot', target, donor, slot: rng.int(KEYSLOT_COUNT), fixChecksum };
  }
  if (roll < 89 && nBases > 1) return { kind: 'foreign-copy', target, donor: (self + rng.range(1, nBases - 1)) % nBases };
  if (roll < 91) return { kind: 'swap-copies' };
  if (roll < 96) {
    const f = base.fileSize;
    const fileLength = rng.pick([0, 1, rng.int(HEADER_SIZE), HEADER_SIZE, 2 * HEADER_SIZE - 1, 2 * HEADER_SIZE, rng.range(2 * HEADER_SIZE, f - 1), f - HEADER_SIZE, f - HEADER_SIZE + 1, f - 1]);
    return { kind: 'truncate', headerLength: rng.int(HEADER_SIZE), fileLength };
  }
  return { kind: 'extend', extra: rng.bytes(rng.pick([1, 511, 512, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, rng.range(1, 3 * HEADER_SIZE)])) };
}

export function targetsOf(m: Mutation): (0 | 1)[] {
  if (!('target' in m)) return m.kind === 'swap-copies' ? [0, 1] : [];
  return m.target === 'both' ? [0, 1] : m.target === 'primary' ? [0] : [1];
}

/**
 * Applies a header-level mutation to copy `copy` of a base (never in place). `donors` are the other
 * bases' copies, for transplants. The result is 4096 bytes except for truncate/extend, whose
 * buffers are for the parser only.
 */
export function mutateCopy(m: Mutation, copies: readonly [Buffer, Buffer], copy: 0 | 1, donors: readonly (readonly [Buffer, Buffer])[], fixChecksumWith: (b: Buffer) => void): Buffer {
  const b = Buffer.from(copies[copy]);
  const slot = (i: number) => OFF.keyslots + i * KEYSLOT_SIZE;
  switch (m.kind) {
    case 'bitflip':
      for (const bit of m.bits) b[bit >> 3]! ^= 1 << (bit & 7);
      break;
    case 'byteset':
      for (const [o, v] of m.sets) b[o] = v;
      break;
    case 'field':
      m.value.copy(b, m.offset);
      break;
    case 'slot-move':
      b.copy(b, slot(m.to), slot(m.from), slot(m.from) + KEYSLOT_SIZE);
      if (m.clearFrom) b[slot(m.from)] = 0;
      break;
    case 'foreign-slot':
      donors[m.donor]![copy].copy(b, slot(m.slot), slot(m.slot), slot(m.slot) + KEYSLOT_SIZE);
      break;
    case 'foreign-copy':
      return Buffer.from(donors[m.donor]![copy]);
    case 'swap-copies':
      return Buffer.from(copies[copy === 0 ? 1 : 0]);
    case 'truncate':
      return b.subarray(0, m.headerLength);
    case 'extend':
      return Buffer.concat([b, m.extra]);
  }
  if ('fixChecksum' in m && m.fixChecksum) fixChecksumWith(b);
  return b;
}
