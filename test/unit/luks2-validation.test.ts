/**
 * Damaged and malformed LUKS2 headers, made the way cryptsetup's own validation suite makes them
 * (tests/luks2-validation-test and tests/generators/*.sh: rewrite the JSON area of a valid
 * cryptsetup header, recompute the checksum, or break the binary header). Each row is checked
 * against the installed cryptsetup too: vault must refuse ("F") exactly what cryptsetup refuses and
 * accept ("R"), possibly from the other copy, what cryptsetup accepts. Nothing may crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, copyFileSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { VaultError } from '../../src/errors.js';
import { readLuks2Header, type Luks2Header } from '../../src/formats/luks2/read.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { detectFormat } from '../../src/formats/index.js';
import { luks2Info } from '../../src/formats/luks2/info.js';
import { dataSegment, keyslotsToTry } from '../../src/formats/luks2/support.js';
import { MAX_KDF_ATTEMPTS, openFirstKeyslot } from '../../src/formats/luks/try-keyslots.js';
import { parseDmCipher } from '../../src/formats/luks/dm-cipher.js';
import {
  copyOffsets,
  cryptsetup,
  cryptsetupAccepts,
  expectVaultError,
  FAST_PBKDF2,
  fastArgon2,
  fixChecksum,
  keyFile,
  mutateJson,
  patch,
  readJson,
  secretOf,
  unlockFile,
  withContainer,
  withContainerAsync,
  workDir,
  writeJsonText,
  type Json,
} from '../support/luks.js';

const MiB = 1024 * 1024;
const KEY = Buffer.from('validation key');
let dir = '';
let base = '';
let key = '';

beforeAll(() => {
  dir = workDir('luks2-validation');
  key = keyFile(dir, 'key', KEY);
  base = path.join(dir, 'base.img');
  writeFileSync(base, '');
  truncateSync(base, 20 * MiB);
  // Three keyslots like cryptsetup's luks2_valid_hdr.img: pbkdf2, argon2id, pbkdf2.
  cryptsetup(['luksFormat', '--type', 'luks2', ...FAST_PBKDF2, '--key-file', key, base]);
  cryptsetup(['luksAddKey', ...fastArgon2('argon2id'), '--key-file', key, base, key]);
  cryptsetup(['luksAddKey', ...FAST_PBKDF2, '--key-file', key, base, key]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function read(file: string): Luks2Header {
  return withContainer(file, (c) => readLuks2Header(c.fd, c.size, c.path));
}

let n = 0;
function damaged(damage: (file: string) => void): string {
  const f = path.join(dir, `case-${n++}.img`);
  copyFileSync(base, f);
  damage(f);
  return f;
}

const both = (m: (j: Json) => void) => (f: string) => mutateJson(f, m);
const jsonArea = () => copyOffsets(base).hdrSize - 4096;

/** Text of the primary JSON area with `edit` applied to its bytes. */
function withArea(edit: (area: Buffer, textLength: number) => void) {
  return (f: string) => {
    const text = Buffer.from(JSON.stringify(readJson(f)));
    const area = Buffer.alloc(jsonArea());
    text.copy(area);
    edit(area, text.length);
    writeJsonText(f, area);
  };
}

/** Adds entries up to `count` members, numbered after the existing ones. */
function addEntries(section: Json, count: number, make: (i: number) => unknown): void {
  for (let i = Object.keys(section).length; i < count; i++) section[String(i)] = make(i);
}

/** A keyslot of a type vault does not try: only the members every type needs, and its own 4 KiB area at the end. */
function tinyKeyslot(j: Json, i: number): Json {
  const end = 2 * (Number(j.config.json_size) + 4096) + Number(j.config.keyslots_size);
  return { type: 'x', key_size: 64, area: { type: 'raw', offset: String(end - (i + 1) * 4096), size: '4096' } };
}

/** R: accepted, F: refused, as by cryptsetup; V: refused by vault's own bounds, accepted by cryptsetup. */
type Row = [name: string, expect: 'R' | 'F' | 'V', damage: (file: string) => void, check?: (h: Luks2Header) => void];

const rows: Row[] = [
  // [1] auto-recovery: one copy with a bad checksum, the other copy is used
  ['invalid-checksum-hdr0', 'R', (f) => patch(f, 448, Buffer.alloc(64)), (h) => {
    expect(h.bin.copy).toBe('secondary');
    expect(h.warnings.join()).toMatch(/primary header: checksum mismatch/);
  }],
  ['invalid-checksum-hdr1', 'R', (f) => patch(f, copyOffsets(f).secondary + 448, Buffer.alloc(64)), (h) => {
    expect(h.bin.copy).toBe('primary');
    expect(h.warnings.join()).toMatch(/secondary header: checksum mismatch/);
  }],
  ['invalid-checksum-both-hdrs', 'F', (f) => {
    patch(f, 448, Buffer.alloc(64));
    patch(f, copyOffsets(f).secondary + 448, Buffer.alloc(64));
  }],
  ['kill-hdr0 (secondary found by its known offset)', 'R', (f) => patch(f, 0, 'VACUUM'), (h) => expect(h.bin.copy).toBe('secondary')],
  // [2] a copy with a correct checksum over malformed JSON
  ['corrupted-hdr0-with-correct-chks', 'R', (f) => writeJsonText(f, '{"keyslots":', ['primary']), (h) => expect(h.bin.copy).toBe('secondary')],
  ['corrupted-hdr1-with-correct-chks', 'R', (f) => writeJsonText(f, '{"keyslots":', ['secondary']), (h) => expect(h.bin.copy).toBe('primary')],
  ['correct-full-json0', 'R', (f) => {
    const j = readJson(f);
    const filler = jsonArea() - 1 - JSON.stringify({ ...j, tokens: { '0': { type: 'x', keyslots: [], pad: '' } } }).length;
    j.tokens['0'] = { type: 'x', keyslots: [], pad: 'a'.repeat(filler) };
    writeJsonText(f, JSON.stringify(j));
  }],
  ['argon2-leftover-params', 'R', both((j) => Object.assign(j.keyslots['1'].kdf, { type: 'pbkdf2', iterations: 1001, hash: 'sha256' }))],
  ['pbkdf2-leftover-params', 'R', both((j) => Object.assign(j.keyslots['1'].kdf, { iterations: 1001, hash: 'sha256' }))],
  // [3] JSON area restrictions
  ['non-null-byte-beyond-json0', 'F', withArea((a, len) => (a[len] = 0x58))],
  ['whitespace after the JSON object', 'R', withArea((a, len) => a.fill(0x20, len, len + 10))],
  ['non-null-bytes-beyond-json0', 'F', withArea((a, len) => a.write('garbage', len + 100))],
  ['missing-trailing-null-byte-json0', 'F', withArea((a, len) => a.fill(0x20, len))],
  ['invalid-opening-char-json0', 'F', withArea((a) => a.copyWithin(1, 0, a.length - 1) && (a[0] = 0x20))],
  ['invalid-object-type-json0', 'F', (f) => writeJsonText(f, `[${JSON.stringify(readJson(f))}]`)],
  ['invalid-top-objects', 'F', both((j) => Object.assign(j, { tokens: 42, digests: 42, keyslots: [], segments: 'hi' }))],
  ['keyslot-invalid-objects', 'F', both((j) => Object.assign(j.keyslots['0'], { kdf: 42, af: 42 }))],
  ['overlapping-areas-c0-json0', 'F', both((j) => (j.keyslots['1'].area.offset = j.keyslots['0'].area.offset))],
  ['overlapping-areas-c1-json0', 'F', both((j) => (j.keyslots['1'].area.offset = String(Number(j.keyslots['0'].area.offset) + 4096)))],
  ['overlapping-areas-c2-json0', 'F', both((j) => (j.keyslots['1'].area.offset = String(Number(j.keyslots['0'].area.offset) + Number(j.keyslots['0'].area.size) - 512)))],
  ['area-in-json-hdr-space-json0', 'F', both((j) => (j.keyslots['0'].area.offset = '16384'))],
  ['keyslot-invalid-area-size', 'F', both((j) => (j.keyslots['0'].area.size = '18446744073709551615'))],
  ['missing-keyslot-referenced-in-digest', 'F', both((j) => j.digests['0'].keyslots.push('7'))],
  ['missing-segment-referenced-in-digest', 'F', both((j) => j.digests['0'].segments.push('3'))],
  ['missing-keyslot-referenced-in-token', 'F', both((j) => (j.tokens['0'] = { type: 'x', keyslots: ['9'] }))],
  ['keyslot-missing-digest', 'F', both((j) => (j.digests['0'].keyslots = ['0', '2']))],
  ['keyslot-too-many-digests', 'F', both((j) => (j.digests['1'] = { ...j.digests['0'], keyslots: ['1'] }))],
  ['keyslot-invalid-af', 'F', both((j) => (j.keyslots['0'].af.type = 'luks2'))],
  ['keyslot priority not an integer', 'R', both((j) => (j.keyslots['0'].priority = 'high')), (h) => expect(h.metadata.keyslots[0]!.priority).toBe(0)],
  ['key_size as a double', 'F', (f) => writeJsonText(f, JSON.stringify(readJson(f)).replace('"key_size":64,', '"key_size":64.0,'))],
  // [4] integer limits
  ['uint64-max-segment-size', 'R', both((j) => Object.assign(j.segments['0'], { sector_size: 512, size: '18446744073709551104' }))],
  ['uint64-overflow-segment-size', 'F', both((j) => (j.segments['0'].size = '18446744073709551616'))],
  ['uint64-signed-segment-size', 'F', both((j) => (j.segments['0'].size = '-512'))],
  // [5] segments
  ['segment-missing-type', 'F', both((j) => delete j.segments['0'].type)],
  ['segment-wrong-type', 'F', both((j) => (j.segments['0'].type = 42))],
  ['segment-missing-offset', 'F', both((j) => delete j.segments['0'].offset)],
  ['segment-wrong-offset', 'F', both((j) => (j.segments['0'].offset = '-42'))],
  ['segment-missing-size', 'F', both((j) => delete j.segments['0'].size)],
  ['segment-wrong-size-0', 'F', both((j) => (j.segments['0'].size = '0'))],
  ['segment-wrong-size-1', 'F', both((j) => (j.segments['0'].size = 'dynamic-'))],
  ['segment-wrong-size-2', 'F', both((j) => (j.segments['0'].size = '4097'))],
  ['segment-crypt-missing-encryption', 'F', both((j) => delete j.segments['0'].encryption)],
  ['segment-crypt-wrong-encryption', 'F', both((j) => (j.segments['0'].encryption = {}))],
  ['segment-crypt-missing-ivoffset', 'F', both((j) => delete j.segments['0'].iv_tweak)],
  ['segment-crypt-wrong-ivoffset', 'F', both((j) => (j.segments['0'].iv_tweak = '+1'))],
  ['segment-crypt-missing-sectorsize', 'F', both((j) => delete j.segments['0'].sector_size)],
  ['segment-crypt-wrong-sectorsize-0', 'F', both((j) => (j.segments['0'].sector_size = '4096'))],
  ['segment-crypt-wrong-sectorsize-1', 'F', both((j) => (j.segments['0'].sector_size = 1023))],
  ['segment-crypt-wrong-sectorsize-2', 'F', both((j) => (j.segments['0'].sector_size = -1024))],
  ['segment-unknown-type', 'R', both((j) => (j.segments['0'] = { type: 'some', offset: j.segments['0'].offset, size: 'dynamic' }))],
  ['segment-two', 'R', both((j) => {
    const s = j.segments['0'];
    j.segments['0'] = { ...s, size: String(MiB) };
    j.segments['1'] = { ...s, offset: String(Number(s.offset) + MiB) };
    j.digests['0'].segments.push('1');
  })],
  ['segment-wrong-flags', 'F', both((j) => (j.segments['0'].flags = 'hi'))],
  ['segment-wrong-flags-element', 'F', both((j) => (j.segments['0'].flags = [1]))],
  ['segment-wrong-backup-key', 'F', both((j) => (j.segments['2'] = { ...j.segments['0'], flags: ['backup-previous'] }))],
  // [6] metadata and keyslots sizes (config section)
  ['invalid-keyslots-size-c0', 'F', both((j) => (j.config.keyslots_size = String(16 * MiB)))],
  ['invalid-keyslots-size-c1', 'F', both((j) => (j.config.keyslots_size = String(Number(j.config.keyslots_size) - 1)))],
  ['invalid-keyslots-size-c2', 'F', both((j) => (j.config.keyslots_size = '8192'))],
  ['invalid-json-size-c0', 'F', both((j) => (j.config.json_size = '0'))],
  ['invalid-json-size-c1', 'F', both((j) => (j.config.json_size = '-12288'))],
  ['invalid-json-size-c2', 'F', both((j) => (j.config.json_size = String(32768 - 4096)))],
  // [7] counts vault bounds (LUKS2_LIMITS) before looking at any entry; cryptsetup's own limits
  // (LUKS2_KEYSLOTS_MAX, LUKS2_TOKENS_MAX) apply only when it adds entries, so it accepts these.
  ['33 keyslots', 'V', both((j) => addEntries(j.keyslots, 33, (i) => tinyKeyslot(j, i)))],
  ['33 tokens', 'V', both((j) => addEntries(j.tokens, 33, () => ({ type: 'x', keyslots: [] })))],
  ['33 digests', 'V', both((j) => addEntries(j.digests, 33, () => ({ type: 'x', keyslots: [], segments: [] })))],
  ['33 segments', 'V', both((j) => {
    const [start, unit] = [Number(j.segments['0'].offset), j.segments['0'].sector_size];
    j.segments['0'].size = String(unit);
    addEntries(j.segments, 33, (i) => ({ type: 'x', offset: String(start + i * unit), size: String(unit) }));
  })],
  ['a digest listing 33 keyslots', 'V', both((j) => j.digests['0'].keyslots.push(...Array(33).fill('0')))],
  ['a digest listing 33 segments', 'V', both((j) => j.digests['0'].segments.push(...Array(33).fill('0')))],
  ['a token listing 33 keyslots', 'V', both((j) => (j.tokens['0'] = { type: 'x', keyslots: Array(33).fill('0') }))],
  ['32 keyslots (the most allowed)', 'R', both((j) => addEntries(j.keyslots, 32, (i) => tinyKeyslot(j, i))), (h) => expect(h.metadata.keyslots).toHaveLength(32)],
  ['requirements not an object', 'F', both((j) => (j.config.requirements = ['online-reencrypt']))],
  // seqid: the newer copy wins, the other one is only a warning
  ['secondary-newer-seqid', 'R', (f) => {
    const s = copyOffsets(f).secondary;
    const seq = Buffer.alloc(8);
    seq.writeBigUInt64BE(read(f).bin.seqid + 1n);
    patch(f, s + 16, seq);
    patch(f, s + 24, 'newer\0');
    fixChecksum(f, s);
  }, (h) => {
    expect(h.bin.copy).toBe('secondary');
    expect(h.bin.label).toBe('newer');
    expect(h.warnings).toEqual(['the primary LUKS2 header is older than the secondary']);
  }],
  ['secondary-wrong-hdr-offset', 'R', (f) => {
    const s = copyOffsets(f).secondary;
    patch(f, s + 256, Buffer.alloc(8));
    fixChecksum(f, s);
  }, (h) => expect(h.warnings.join()).toMatch(/secondary header: it says it is at offset 0/)],
];

describe('cryptsetup validation cases', () => {
  for (const [name, verdict, damage, check] of rows) {
    it(`${name}: ${verdict === 'R' ? 'accepted' : 'refused'}${verdict === 'V' ? ' by vault' : ', as by cryptsetup'}`, () => {
      const f = damaged(damage);
      expect(cryptsetupAccepts(f), 'cryptsetup luksDump verdict').toBe(verdict !== 'F');
      if (verdict !== 'R') {
        let err: unknown;
        try {
          read(f);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(VaultError);
        expect(['headers-damaged', 'not-a-container', 'truncated']).toContain((err as VaultError).code);
        expect((err as VaultError).message).not.toContain('\n');
        if (verdict === 'V') expect((err as VaultError).message).toMatch(/(keyslots|tokens|segments|digests)\b.*more than the 32 allowed/);
      } else {
        const h = read(f);
        check?.(h);
        if (h.bin.copy === 'primary' && !name.includes('leftover')) {
          // cryptsetup shows the winning copy's seqid as the epoch.
          expect(cryptsetup(['luksDump', f])).toContain(`Epoch:         \t${h.bin.seqid}`);
        }
      }
    });
  }

  it('the registry detects LUKS2 by its magic, and by the secondary copy when the primary is gone', async () => {
    expect(await withContainerAsync(base, async (c) => (await detectFormat(c)).name)).toBe('luks2');
    const f = damaged((file) => patch(file, 0, Buffer.alloc(4096)));
    expect(await withContainerAsync(f, async (c) => (await detectFormat(c)).name)).toBe('luks2');
  });

  it('unlocks from the secondary copy when the primary is damaged, and says so', async () => {
    const f = damaged((file) => patch(file, 448, Buffer.alloc(64)));
    const v = await unlockFile(luks2Adapter, f, secretOf('', [KEY]));
    expect(v.warnings.join()).toMatch(/primary header: checksum mismatch/);
    v.key.dispose();
  });

  it('refuses what json-c would bend: duplicate members, deep nesting, invalid UTF-8', () => {
    const text = JSON.stringify(readJson(base));
    const cases = [
      text.replace('{"keyslots":', '{"keyslots":{},"keyslots":'),
      text.replace('"tokens":{}', `"tokens":{},"x":${'['.repeat(40)}${']'.repeat(40)}`),
      Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.from(',"x":"\xff"}', 'latin1')]),
    ];
    for (const c of cases) {
      const f = damaged((file) => writeJsonText(file, c));
      expect(() => read(f)).toThrow(VaultError);
    }
  });

  it('a header truncated inside its keyslot areas is truncated, not damaged', async () => {
    const f = damaged((file) => truncateSync(file, 20000));
    await expectVaultError(async () => read(f), 'truncated');
  });

  it('never crashes on random damage: each of 300 mutations is read, shown and checked for use, or is a VaultError', () => {
    const text = Buffer.from(JSON.stringify(readJson(base)));
    const f = damaged(() => undefined);
    const metadata = readFileSync(f).subarray(0, 2 * copyOffsets(f).hdrSize);
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      patch(f, 0, metadata);
      const t = Buffer.from(text);
      const at = randomInt(t.length);
      t[at] = i % 3 === 0 ? randomInt(256) : '{}[]",:0123456789-'.charCodeAt(randomInt(18));
      writeJsonText(f, t, ['primary', 'secondary']);
      if (i % 5 === 0) patch(f, copyOffsets(f).secondary + randomInt(512), Buffer.from([randomInt(256)]));
      try {
        const h = read(f);
        luks2Info(h); // whatever parsed can be shown
        dataSegment(h.metadata);
        keyslotsToTry(h.metadata, undefined, []);
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(VaultError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});

describe('structural fuzzing', () => {
  it('300 random member replacements or deletions: each is read, shown and checked for use, or is a VaultError', () => {
    const f = damaged(() => undefined);
    const metadata = readFileSync(f).subarray(0, 2 * copyOffsets(f).hdrSize);
    const original = readJson(f);
    const replacements: unknown[] = [42, -1, 0, 2 ** 40, 1.5, '', 'x', '0', '512', '18446744073709551616', 'dynamic', [], ['0'], {}, null, true];
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      patch(f, 0, metadata);
      const j = structuredClone(original);
      // A random path down the object tree.
      let parent: Json = j;
      let key = '';
      for (let depth = 0; depth < 1 + randomInt(4); depth++) {
        const keys = Object.keys(parent);
        if (keys.length === 0) break;
        key = keys[randomInt(keys.length)]!;
        const next = parent[key];
        if (depth > 0 && (typeof next !== 'object' || next === null || randomInt(3) === 0)) break;
        if (typeof next !== 'object' || next === null) break;
        if (depth < 3) parent = next as Json;
      }
      if (randomInt(4) === 0) delete parent[key];
      else parent[key] = replacements[randomInt(replacements.length)];
      writeJsonText(f, JSON.stringify(j));
      try {
        const h = read(f);
        luks2Info(h);
        dataSegment(h.metadata);
        keyslotsToTry(h.metadata, undefined, []);
        accepted++;
      } catch (e) {
        expect(e, String(e)).toBeInstanceOf(VaultError);
      }
    }
    expect(accepted).toBeLessThan(300);
  });
});

describe('counts are bounded before anything costly', () => {
  it('a header of 48 000 keyslots in both 4 MiB metadata copies is refused in well under a second', async () => {
    const f = path.join(dir, 'keyslots-48000.img');
    writeFileSync(f, '');
    truncateSync(f, 32 * MiB);
    cryptsetup(['luksFormat', '--type', 'luks2', '--luks2-metadata-size', '4m', ...FAST_PBKDF2, '--key-file', key, f]);
    const j = readJson(f);
    // Areas of one byte each, all distinct: before the bound this cost 27 s per copy (overlap checks).
    const areasStart = 2 * (Number(j.config.json_size) + 4096);
    for (let i = 0; i < 48_000; i++) j.keyslots[String(i)] = { type: 'x', key_size: 1, area: { type: 'r', offset: String(areasStart + i), size: '1' } };
    const text = JSON.stringify(j);
    expect(text.length).toBeLessThan(Number(j.config.json_size));
    writeJsonText(f, text);
    const started = performance.now();
    const err = await expectVaultError(async () => read(f), 'headers-damaged', /keyslots: more than the 32 allowed/);
    expect(performance.now() - started).toBeLessThan(250);
    expect(err.message).not.toContain('\n');
  });

  it('no unlock runs more than 32 key derivations, whatever the format hands it', async () => {
    const slot = { name: 'keyslot', kdf: { type: 'pbkdf2' as const, hash: 'sha256' as const, iterations: 1, salt: Buffer.alloc(32) }, areaOffset: 0, keyLength: 64, afHash: 'sha256' as const, area: parseDmCipher('LUKS2', 'aes-xts-plain64', 64) };
    const digest = { hash: 'sha256' as const, iterations: 1, salt: Buffer.alloc(32), digest: Buffer.alloc(20) };
    const attempts = Array.from({ length: MAX_KDF_ATTEMPTS + 1 }, () => ({ slot, digest }));
    const fd = openSync(base, 'r');
    try {
      await expectVaultError(openFirstKeyslot(fd, attempts, Buffer.from('x')), 'invalid-field', /33 keyslots to try, more than the 32 allowed/);
      // 32 are tried (and fail as a wrong passphrase would).
      await expectVaultError(openFirstKeyslot(fd, attempts.slice(1), Buffer.from('x')), 'wrong-password');
    } finally {
      closeSync(fd);
    }
  });
});

describe('metadata sizes 16 KiB … 4 MiB, and the secondary found at each', () => {
  for (const size of ['16k', '32k', '64k', '256k', '1m', '4m']) {
    it(`--luks2-metadata-size ${size}`, async () => {
      const f = path.join(dir, `meta-${size}.img`);
      writeFileSync(f, '');
      truncateSync(f, 32 * MiB);
      cryptsetup(['luksFormat', '--type', 'luks2', '--luks2-metadata-size', size, ...FAST_PBKDF2, '--key-file', key, f]);
      const bytes = { k: 1024, m: MiB }[size.slice(-1) as 'k' | 'm'] * Number(size.slice(0, -1));
      expect(read(f).bin.hdrSize).toBe(bytes);
      patch(f, 0, 'VACUUM'); // the primary is gone: the secondary must be found by scanning
      expect(cryptsetupAccepts(f)).toBe(true);
      const h = read(f);
      expect(h.bin.copy).toBe('secondary');
      expect(h.bin.offset).toBe(bytes);
      const v = await unlockFile(luks2Adapter, f, secretOf('', [KEY]));
      v.key.dispose();
    });
  }
});
