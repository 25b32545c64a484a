/**
 * The VeraCrypt/TrueCrypt header KDFs: PBKDF2 through libgcrypt (native/kdf_gcrypt.c) for
 * Whirlpool and Streebog, checked against published vectors and an independent implementation;
 * VeraCrypt's iteration counts (Common/Pkcs5.c get_pkcs5_iteration_count) and `--hash` names.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { kdfCandidates, pbkdf2Gcrypt, veracryptIterations, type Digest } from '../../src/formats/veracrypt/kdf.js';
import { parsePrf } from '../../src/formats/veracrypt/prf.js';

const P = Buffer.from('password');
const S = Buffer.from('salt');

describe('PBKDF2 through libgcrypt', () => {
  // R 50.1.111-2016 (TC26, "PBKDF2 with HMAC_GOSTR3411_2012_512"), appendix A.
  it.each([
    [P, S, 1, 64, '64770af7f748c3b1c9ac831dbcfd85c26111b30a8a657ddc3056b80ca73e040d2854fd36811f6d825cc4ab66ec0a68a490a9e5cf5156b3a2b7eecddbf9a16b47'],
    [P, S, 2, 64, '5a585bafdfbb6e8830d6d68aa3b43ac00d2e4aebce01c9b31c2caed56f0236d4d34b2b8fbd2c4e89d54d46f50e47d45bbac301571743119e8d3c42ba66d348de'],
    [P, S, 4096, 64, 'e52deb9a2d2aaff4e2ac9d47a41f34c20376591c67807f0477e32549dc341bc7867c09841b6d58e29d0347c996301d55df0d34e47cf68f4e3c2cdaf1d9ab86c3'],
    [
      Buffer.from('passwordPASSWORDpassword'), Buffer.from('saltSALTsaltSALTsaltSALTsaltSALTsalt'), 4096, 100,
      'b2d8f1245fc4d29274802057e4b54e0a0753aa22fc53760b301cf008679e58fe4bee9addcae99ba2b0b20f431a9c5e50f395c89387d0945aedeca6eb4015dfc2bd2421ee9bb71183ba882ceebfef259f33f9e27dc6178cb89dc37428cf9cc52a2baa2d3a',
    ],
  ] as const)('Streebog-512: R 50.1.111-2016 vector (c = %#)', async (pw, salt, c, len, hex) => {
    expect((await pbkdf2Gcrypt('streebog512', pw, salt, c, len)).toString('hex')).toBe(hex);
  });

  it('Whirlpool equals OpenSSL\'s (the openssl command, legacy provider), also past one output block', async () => {
    const pw = randomBytes(20);
    const salt = randomBytes(64);
    const mine = await pbkdf2Gcrypt('whirlpool', pw, salt, 1000, 192);
    const ref = execFileSync('openssl', [
      'kdf', '-keylen', '192', '-kdfopt', 'digest:whirlpool', '-kdfopt', `hexpass:${pw.toString('hex')}`, '-kdfopt', `hexsalt:${salt.toString('hex')}`,
      '-kdfopt', 'iter:1000', '-provider', 'legacy', '-provider', 'default', 'PBKDF2',
    ], { encoding: 'utf8' }).trim().replace(/:/g, '').toLowerCase();
    expect(mine.toString('hex')).toBe(ref);
  });

  it.each(['sha512', 'sha256', 'ripemd160', 'blake2s256'] as const)('%s equals node:crypto (OpenSSL)', async (d: Digest) => {
    const pw = randomBytes(33);
    const salt = randomBytes(64);
    expect((await pbkdf2Gcrypt(d, pw, salt, 7, 192)).equals(pbkdf2Sync(pw, salt, 7, 192, d))).toBe(true);
  });

  it('refuses an unknown hash and empty or oversized outputs', async () => {
    await expect(pbkdf2Gcrypt('md5' as Digest, P, S, 1, 64)).rejects.toThrow(/unknown hash/);
    await expect(pbkdf2Gcrypt('sha512', P, S, 0, 64)).rejects.toThrow(RangeError);
    await expect(pbkdf2Gcrypt('sha512', P, S, 1, 2048)).rejects.toThrow(RangeError);
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
  it('candidates: VeraCrypt\'s PRF order, TrueCrypt\'s cheap counts early, none with a PIM; system drops Argon2id', () => {
    const all = kdfCandidates();
    expect(all.map((k) => `${k.flavour[0]}:${k.prf}:${k.iterations}`)).toEqual([
      'v:sha512:500000', 't:sha512:1000', 't:ripemd160:2000', 't:whirlpool:1000', 't:sha1:2000', 'v:whirlpool:500000', 'v:sha256:500000',
      'v:blake2s:500000', 'v:streebog:500000', 'v:argon2id:6', 'v:ripemd160:655331',
    ]);
    const sys = kdfCandidates({ system: true });
    expect(sys.some((k) => k.prf === 'argon2id' || k.prf === 'sha1')).toBe(false);
    expect(sys.find((k) => k.flavour === 'truecrypt' && k.prf === 'ripemd160')?.iterations).toBe(1000);
    expect(kdfCandidates({ prf: 'whirlpool' }).map((k) => k.iterations)).toEqual([1000, 500_000]);
    expect(kdfCandidates({ prf: 'whirlpool', flavour: 'truecrypt' }).map((k) => k.iterations)).toEqual([1000]);
    expect(kdfCandidates({ prf: 'streebog', pim: 1 }).map((k) => k.iterations)).toEqual([16_000]);
  });
  it('--hash takes VeraCrypt\'s names and cryptsetup\'s spellings', () => {
    expect(parsePrf('stribog512')).toBe('streebog');
    expect(parsePrf('BLAKE2S-256')).toBe('blake2s');
    expect(parsePrf('sha512')).toBe('sha512');
    expect(() => parsePrf('md5')).toThrow(/unknown VeraCrypt\/TrueCrypt header hash "md5".*/);
  });
});
