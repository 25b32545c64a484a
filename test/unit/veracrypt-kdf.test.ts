/**
 * The VeraCrypt/TrueCrypt header KDFs in native code (native/kdf.c): PBKDF2 with every header hash
 * (vault's own loop over OpenSSL's or libgcrypt's HMAC) and Argon2id (libgcrypt's), checked
 * against published vectors and independent implementations; any range of PBKDF2 output blocks
 * alone equals that slice of the whole derivation; a derivation under way stops when aborted.
 * VeraCrypt's iteration counts (Common/Pkcs5.c get_pkcs5_iteration_count) and `--hash` names.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import {
  DIGEST_BYTES, KdfAbort, argon2idNative, isCancelled, kdfCandidates, pbkdf2Native, veracryptIterations, type Digest,
} from '../../src/formats/veracrypt/kdf.js';
import { derivationPlan } from '../../src/formats/veracrypt/adapter.js';
import { parsePrf } from '../../src/formats/veracrypt/prf.js';

const P = Buffer.from('password');
const S = Buffer.from('salt');
const DIGESTS = Object.keys(DIGEST_BYTES) as Digest[];

describe('PBKDF2 in native code', () => {
  // RFC 6070 (PBKDF2-HMAC-SHA-1); the 16777216-iteration vector is left out for time.
  it.each([
    [P, S, 1, 20, '0c60c80f961f0e71f3a9b524af6012062fe037a6'],
    [P, S, 2, 20, 'ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957'],
    [P, S, 4096, 20, '4b007901b765489abead49d926f721d065a429c1'],
    [Buffer.from('passwordPASSWORDpassword'), Buffer.from('saltSALTsaltSALTsaltSALTsaltSALTsalt'), 4096, 25, '3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038'],
    [Buffer.from('pass\0word', 'latin1'), Buffer.from('sa\0lt', 'latin1'), 4096, 16, '56fa6aa75548099dcc37d7f03425e0c3'],
  ] as const)('SHA-1: RFC 6070 vector %#', async (pw, salt, c, len, hex) => {
    expect((await pbkdf2Native('sha1', pw, salt, c, len)).toString('hex')).toBe(hex);
  });

  // R 50.1.111-2016 (TC26, "PBKDF2 with HMAC_GOSTR3411_2012_512"), appendix A.
  const STREEBOG_100 = 'b2d8f1245fc4d29274802057e4b54e0a0753aa22fc53760b301cf008679e58fe4bee9addcae99ba2b0b20f431a9c5e50f395c89387d0945aedeca6eb4015dfc2bd2421ee9bb71183ba882ceebfef259f33f9e27dc6178cb89dc37428cf9cc52a2baa2d3a';
  const LONG_PW = Buffer.from('passwordPASSWORDpassword');
  const LONG_SALT = Buffer.from('saltSALTsaltSALTsaltSALTsaltSALTsalt');
  it.each([
    [P, S, 1, 64, '64770af7f748c3b1c9ac831dbcfd85c26111b30a8a657ddc3056b80ca73e040d2854fd36811f6d825cc4ab66ec0a68a490a9e5cf5156b3a2b7eecddbf9a16b47'],
    [P, S, 2, 64, '5a585bafdfbb6e8830d6d68aa3b43ac00d2e4aebce01c9b31c2caed56f0236d4d34b2b8fbd2c4e89d54d46f50e47d45bbac301571743119e8d3c42ba66d348de'],
    [P, S, 4096, 64, 'e52deb9a2d2aaff4e2ac9d47a41f34c20376591c67807f0477e32549dc341bc7867c09841b6d58e29d0347c996301d55df0d34e47cf68f4e3c2cdaf1d9ab86c3'],
    [LONG_PW, LONG_SALT, 4096, 100, STREEBOG_100],
  ] as const)('Streebog-512: R 50.1.111-2016 vector (c = %#)', async (pw, salt, c, len, hex) => {
    expect((await pbkdf2Native('streebog512', pw, salt, c, len)).toString('hex')).toBe(hex);
  });

  it('block ranges: the second block of the Streebog vector and the blocks after RFC 6070\'s first equal those slices of the whole', async () => {
    // Bytes 64..99 of the 100-byte Streebog vector are its block 2, derived alone.
    expect((await pbkdf2Native('streebog512', LONG_PW, LONG_SALT, 4096, 36, { firstBlock: 2 })).toString('hex')).toBe(STREEBOG_100.slice(128));
    // RFC 6070's 25-byte vector is block 1 and the first 5 bytes of block 2.
    expect((await pbkdf2Native('sha1', LONG_PW, LONG_SALT, 4096, 5, { firstBlock: 2 })).toString('hex')).toBe('4cf2f07038');
  });

  it.each(DIGESTS)('%s: every range of blocks of a 192-byte derivation, derived alone, equals its slice', async (d) => {
    const pw = randomBytes(33);
    const salt = randomBytes(64);
    const whole = await pbkdf2Native(d, pw, salt, 50, 192);
    const block = DIGEST_BYTES[d];
    for (let first = 1; (first - 1) * block < 192; first++) {
      const from = (first - 1) * block;
      expect((await pbkdf2Native(d, pw, salt, 50, 192 - from, { firstBlock: first })).equals(whole.subarray(from)), `from block ${first}`).toBe(true);
    }
  });

  it('Whirlpool equals OpenSSL\'s (the openssl command, legacy provider), also past one output block', async () => {
    const pw = randomBytes(20);
    const salt = randomBytes(64);
    const mine = await pbkdf2Native('whirlpool', pw, salt, 1000, 192);
    const ref = execFileSync('openssl', [
      'kdf', '-keylen', '192', '-kdfopt', 'digest:whirlpool', '-kdfopt', `hexpass:${pw.toString('hex')}`, '-kdfopt', `hexsalt:${salt.toString('hex')}`,
      '-kdfopt', 'iter:1000', '-provider', 'legacy', '-provider', 'default', 'PBKDF2',
    ], { encoding: 'utf8' }).trim().replace(/:/g, '').toLowerCase();
    expect(mine.toString('hex')).toBe(ref);
  });

  it.each(['sha1', 'sha512', 'sha256', 'ripemd160', 'blake2s256'] as const)('%s equals node:crypto (OpenSSL), also with a key longer than the HMAC block', async (d: Digest) => {
    for (const pw of [randomBytes(33), randomBytes(200)]) {
      const salt = randomBytes(64);
      expect((await pbkdf2Native(d, pw, salt, 7, 192)).equals(pbkdf2Sync(pw, salt, 7, 192, d))).toBe(true);
    }
  });

  it('refuses an unknown hash, empty or oversized outputs, block 0', async () => {
    await expect(pbkdf2Native('md5' as Digest, P, S, 1, 64)).rejects.toThrow(/unknown hash/);
    await expect(pbkdf2Native('sha512', P, S, 0, 64)).rejects.toThrow(RangeError);
    await expect(pbkdf2Native('sha512', P, S, 1, 2048)).rejects.toThrow(RangeError);
    await expect(pbkdf2Native('sha512', P, S, 1, 64, { firstBlock: 0 })).rejects.toThrow(RangeError);
  });
});

describe('Argon2id through libgcrypt', () => {
  it('equals the argon2 package (the reference implementation) at 192 bytes, one and four lanes', async () => {
    for (const lanes of [1, 4]) {
      const pw = randomBytes(20);
      const salt = randomBytes(64);
      const p = { memoryKiB: 256, iterations: 3, parallelism: lanes };
      const ref = await argon2.hash(pw, { raw: true, type: argon2.argon2id, version: 0x13, salt, memoryCost: 256, timeCost: 3, parallelism: lanes, hashLength: 192 });
      expect((await argon2idNative(pw, salt, p, 192)).equals(ref), `${lanes} lanes`).toBe(true);
    }
  });
});

describe('stopping a derivation under way', () => {
  // Generous bounds: a loaded 2-core machine. Unstopped, each would run for minutes.
  it.each(['sha512', 'streebog512'] as const)('PBKDF2-%s with 2^31 - 1 iterations stops soon after abort(), and leaves no output', async (d) => {
    const abort = new KdfAbort();
    const started = Date.now();
    const p = pbkdf2Native(d, P, S, 0x7fffffff, 64, { abort });
    await new Promise((r) => setTimeout(r, 50));
    const at = Date.now();
    abort.abort();
    const e = await p.catch((x: unknown) => x);
    expect(isCancelled(e)).toBe(true);
    expect(Date.now() - at).toBeLessThan(1500);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('Argon2id with 1000 passes stops at the next segment', async () => {
    const abort = new KdfAbort();
    const p = argon2idNative(P, Buffer.alloc(16, 1), { memoryKiB: 8192, iterations: 1000, parallelism: 1 }, 64, abort);
    await new Promise((r) => setTimeout(r, 50));
    const at = Date.now();
    abort.abort();
    expect(isCancelled(await p.catch((x: unknown) => x))).toBe(true);
    expect(Date.now() - at).toBeLessThan(1500);
  });

  it('an abort given before the start stops at the first check', async () => {
    const abort = new KdfAbort();
    abort.abort();
    expect(isCancelled(await pbkdf2Native('sha256', P, S, 0x7fffffff, 32, { abort }).catch((x: unknown) => x))).toBe(true);
  });
});

describe('iteration counts (VeraCrypt Pkcs5.c, cryptsetup tcrypt_kdf)', () => {
  it('normal volumes: 500000 (RIPEMD-160 655331), or 15000 + 1000·PIM', () => {
    for (const p of ['sha512', 'whirlpool', 'sha256', 'blake2s', 'streebog'] as const) expect(veracryptIterations(p, 0, false)).toBe(500_000);
    expect(veracryptIterations('ripemd160', 0, false)).toBe(655_331);
    for (const p of ['sha512', 'whirlpool', 'sha256', 'blake2s', 'streebog', 'ripemd160'] as const) expect(veracryptIterations(p, 10, false)).toBe(25_000);
  });
  it('system encryption: SHA-256, BLAKE2s, Streebog 200000, RIPEMD-160 327661, or 2048·PIM; SHA-512 and Whirlpool as normal', () => {
    for (const p of ['sha256', 'blake2s', 'streebog'] as const) expect(veracryptIterations(p, 0, true)).toBe(200_000);
    expect(veracryptIterations('ripemd160', 0, true)).toBe(327_661);
    expect(veracryptIterations('sha256', 10, true)).toBe(20_480);
    expect(veracryptIterations('sha512', 0, true)).toBe(500_000);
    expect(veracryptIterations('whirlpool', 10, true)).toBe(25_000);
  });
  it('candidates: VeraCrypt\'s PRF order (Pkcs5Kdf.cpp), TrueCrypt\'s cheap counts early, none with a PIM; system drops Argon2id', () => {
    const all = kdfCandidates();
    expect(all.map((k) => `${k.flavour[0]}:${k.prf}:${k.iterations}`)).toEqual([
      'v:sha512:500000', 't:sha512:1000', 't:ripemd160:2000', 't:whirlpool:1000', 't:sha1:2000', 'v:sha256:500000', 'v:blake2s:500000',
      'v:whirlpool:500000', 'v:streebog:500000', 'v:argon2id:6', 'v:ripemd160:655331',
    ]);
    const sys = kdfCandidates({ system: true });
    expect(sys.some((k) => k.prf === 'argon2id' || k.prf === 'sha1')).toBe(false);
    expect(sys.find((k) => k.flavour === 'truecrypt' && k.prf === 'ripemd160')?.iterations).toBe(1000);
    expect(kdfCandidates({ prf: 'whirlpool' }).map((k) => k.iterations)).toEqual([1000, 500_000]);
    expect(kdfCandidates({ prf: 'whirlpool', flavour: 'truecrypt' }).map((k) => k.iterations)).toEqual([1000]);
    expect(kdfCandidates({ prf: 'streebog', pim: 1 }).map((k) => k.iterations)).toEqual([16_000]);
  });
  it('every VeraCrypt PBKDF2 derivation, whatever its PRF and count, gets a second pass for the cascades; the order of the passes', () => {
    for (const pim of [0, 1, 86, 2000]) {
      for (const k of kdfCandidates({ pim })) {
        const plan = derivationPlan(k);
        if (k.flavour === 'truecrypt' || k.kind === 'argon2id') expect(plan.second, k.label).toBeNull(); // 192 bytes at once
        else expect(plan.second, `${k.label} ${k.iterations}`).toBeGreaterThan(plan.first);
      }
    }
    const steps = kdfCandidates().flatMap((k, i) => {
      const p = derivationPlan(k);
      const name = `${k.flavour[0]}:${k.prf}`;
      return [[p.first, i, name] as const, ...(p.second === null ? [] : [[p.second, i, `${name}+`] as const])];
    });
    steps.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(steps.map((x) => x[2])).toEqual([
      'v:sha512', 't:sha512', 't:ripemd160', 't:whirlpool', 't:sha1', 'v:sha512+', 'v:sha256', 'v:blake2s', 'v:whirlpool', 'v:streebog',
      'v:argon2id', 'v:ripemd160', 'v:sha256+', 'v:blake2s+', 'v:whirlpool+', 'v:streebog+', 'v:ripemd160+',
    ]);
  });

  it('--hash takes VeraCrypt\'s names and cryptsetup\'s spellings', () => {
    expect(parsePrf('stribog512')).toBe('streebog');
    expect(parsePrf('BLAKE2S-256')).toBe('blake2s');
    expect(parsePrf('sha512')).toBe('sha512');
    expect(() => parsePrf('md5')).toThrow(/unknown VeraCrypt\/TrueCrypt header hash "md5".*/);
  });
});
