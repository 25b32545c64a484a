/**
 * cryptsetup's real TrueCrypt/VeraCrypt images (test/fixtures/tcrypt, made by the real programs)
 * open through the adapter: every XTS-AES image whose KDF is cheap enough for the unit budget
 * (TrueCrypt 5, 6, 7 with their 1000-2000 iterations, TrueCrypt 5.x's own header layout and hidden
 * volume; VeraCrypt's PRFs with `--hash`; keyfiles; a PIM; the three system-encryption drives), and
 * the first sectors of each decrypt to the FAT filesystem cryptsetup's test expects (DEAD-BABE;
 * hidden volumes CAFE-BABE). Left out for time: the Argon2id images (vc_1-argon2id is opened by the
 * e2e test), VeraCrypt RIPEMD-160 at 655331 iterations (the hash is covered by TrueCrypt's images),
 * and the SHA-256/BLAKE2s twins of the keyfile images (the keyfile pool does not depend on the PRF).
 */
import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adapterByName, detectFormat, unlockVolume } from '../../src/formats/index.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { readAtSync } from '../../src/volume/fd-io.js';
import type { UnlockOptions } from '../../src/formats/types.js';
import { xtsDecrypt } from '../../src/crypto/xts.js';
import { deriveHeaderKey, kdfCandidates } from '../../src/formats/veracrypt/kdf.js';
import { headerChecksPass, headerMagic } from '../../src/formats/veracrypt/header.js';
import { decryptHeaderWith } from '../../src/formats/veracrypt/cipher-chains.js';
import type { VaultError } from '../../src/errors.js';
import { describeAlgorithmsTried, noHeaderOpened, type Outcome } from '../../src/formats/veracrypt/adapter.js';
import type { HeaderSlot } from '../../src/formats/veracrypt/slots.js';
import type { ContainerFile } from '../../src/volume/container-file.js';
import { TC_FS_UUID, TC_HIDDEN_PASSWORD, TC_PASSWORD, TC_PASSWORD_72, TC_PIM_PASSWORD, tcryptImage } from '../support/tcrypt-images.js';

const HIDDEN_FS_UUID = 'CAFE-BABE';

interface Case {
  password: string;
  type?: 'veracrypt' | 'truecrypt';
  options?: Partial<UnlockOptions>;
  keyfiles?: boolean;
  /** Where the filesystem starts inside the decrypted area (whole-drive system encryption). */
  fsAt?: number;
}

/** The FAT volume serial of a decrypted boot sector, as blkid prints it (FAT12/16: bytes 39..42). */
function fatSerial(boot: Buffer): string {
  expect(boot.toString('latin1', 54, 57)).toBe('FAT');
  const h = boot.readUInt32LE(39).toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

async function open(name: string, k: Case): Promise<{ uuid: string; info: Record<string, unknown> }> {
  const c = openContainer(tcryptImage(name), true);
  try {
    const adapter = k.type ? await adapterByName(k.type) : await detectFormat(c);
    const keyfiles = k.keyfiles ? [1, 2].map((n) => readFileSync(tcryptImage(`keyfile${n}`))) : [];
    const v = await unlockVolume(adapter, c, { passphrase: Buffer.from(k.password), keyfiles }, { readOnly: true, ...k.options });
    try {
      const at = k.fsAt ?? 0;
      const boot = readAtSync(c.fd, 512, v.dataOffset + at);
      // The native data path's XTS over the volume's cipher chain (AES for most images).
      xtsDecrypt(v.key, boot, { sectorSize: 512, firstTweak: v.firstTweak + BigInt(at / 512), cipher: v.cipher });
      return { uuid: fatSerial(boot), info: v.info!.json as unknown as Record<string, unknown> };
    } finally {
      v.key.dispose();
    }
  } finally {
    closeContainer(c);
  }
}

const tc = (password = TC_PASSWORD, options: Partial<UnlockOptions> = {}): Case => ({ password, type: 'truecrypt', options });
const vc = (hash: UnlockOptions['hash'], password = TC_PASSWORD, more: Partial<Case> = {}): Case => ({ password, ...more, options: { hash, ...more.options } });

describe('TrueCrypt 5, 6, 7 images (header versions 3, 4, 5)', () => {
  it.each([
    ['tc_3-ripemd160-xts-aes', tc(), 3],
    ['tc_3-sha512-xts-aes', tc(), 3],
    ['tc_4-ripemd160-xts-aes', tc(), 4],
    ['tc_4-sha512-xts-aes', tc(), 4],
    ['tc_5-ripemd160-xts-aes', tc(), 5],
    ['tc_5-sha512-xts-aes', tc(), 5],
    ['tc_5-whirlpool-xts-aes', tc(), 5],
    ['tck_5-sha512-xts-aes', { ...tc(), keyfiles: true }, 5],
    // Outer volumes of the hidden-volume images, with the outer password.
    ['tc_3-sha512-xts-aes-hidden', tc(), 3],
    ['tc_4-sha512-xts-aes-hidden', tc(), 4],
    ['tc_5-sha512-xts-aes-hidden', tc(), 5],
  ] as const)('%s opens (detected as small TrueCrypt 5.x files too)', async (name, k, version) => {
    const r = await open(name, k);
    expect(r.uuid).toBe(TC_FS_UUID);
    expect(r.info).toMatchObject({ format: 'truecrypt', volumeType: 'normal', header: { version } });
  });

  it.each(['tc_3-sha512-xts-aes-hidden', 'tc_4-sha512-xts-aes-hidden', 'tc_5-sha512-xts-aes-hidden'])('%s: the hidden volume opens with its password', async (name) => {
    const r = await open(name, tc(TC_HIDDEN_PASSWORD));
    expect(r.uuid).toBe(HIDDEN_FS_UUID);
    expect(r.info).toMatchObject({ volumeType: 'hidden' });
    expect((await open(name, tc(TC_HIDDEN_PASSWORD, { hidden: true }))).uuid).toBe(HIDDEN_FS_UUID);
  });

  it('TrueCrypt 5.x: data right after the header; its hidden volume right before the header near the end', async () => {
    expect((await open('tc_3-sha512-xts-aes', tc())).info).toMatchObject({ dataOffset: 512, firstDataUnit: 1, dataSize: 18944 });
    // 40960-byte file, 19456-byte hidden volume, header 1536 bytes from the end (cryptsetup TCRYPT_get_data_offset)
    expect((await open('tc_3-sha512-xts-aes-hidden', tc(TC_HIDDEN_PASSWORD))).info).toMatchObject({ dataOffset: 19968, dataSize: 19456 });
  });

  it.each([
    ['tc_3-ripemd160-xts-serpent', TC_PASSWORD, TC_FS_UUID, 'Serpent'],
    ['tc_3-sha512-xts-serpent-twofish-aes-hidden', TC_HIDDEN_PASSWORD, HIDDEN_FS_UUID, 'Serpent-Twofish-AES'],
  ])('TrueCrypt 5.x with another cipher (%s) opens through the cipher engine', async (name, password, uuid, algorithm) => {
    const r = await open(name, tc(password));
    expect(r.uuid).toBe(uuid);
    expect(r.info.algorithm).toBe(algorithm);
  });

  it('the small TrueCrypt 5.x files are detected as VeraCrypt/TrueCrypt and open without --type', async () => {
    const r = await open('tc_3-sha512-xts-aes', { password: TC_PASSWORD, options: { hash: 'sha512' } });
    expect(r.uuid).toBe(TC_FS_UUID);
  });
});

describe('VeraCrypt images with --hash', () => {
  it.each([
    ['vc_1-sha512-xts-aes', vc('sha512')],
    ['vc_1-sha256-xts-aes', vc('sha256')],
    ['vc_1-blake2s-xts-aes', vc('blake2s')],
    ['vc_1-whirlpool-xts-aes', vc('whirlpool')],
    ['vck_1-sha512-xts-aes', vc('sha512', TC_PASSWORD, { keyfiles: true })],
    ['vck_1_nopw-sha512-xts-aes', vc('sha512', '', { keyfiles: true })],
    ['vck_1_pw12-sha512-xts-aes', vc('sha512', TC_PASSWORD, { keyfiles: true })],
    ['vck_1_pw72-sha512-xts-aes', vc('sha512', TC_PASSWORD_72, { keyfiles: true })],
    ['vcpim_1_1234-sha256-xts-aes', vc('sha256', TC_PIM_PASSWORD, { options: { pim: 1234 } })],
  ] as const)('%s opens', async (name, k) => {
    const r = await open(name, k);
    expect(r.uuid).toBe(TC_FS_UUID);
    expect(r.info).toMatchObject({ format: 'veracrypt', volumeType: 'normal' });
  });

  it('vc_1-sha512-xts-aes-hidden: the hidden volume', async () => {
    const r = await open('vc_1-sha512-xts-aes-hidden', vc('sha512', TC_HIDDEN_PASSWORD, { options: { hidden: true } }));
    expect(r.uuid).toBe(HIDDEN_FS_UUID);
  });

  it('Streebog: the header of vc_1-stribog512-xts-camellia decrypts (Camellia) under PBKDF2-HMAC-Streebog-512, 500000 iterations', async () => {
    // One derivation, for the normal header only (the adapter would try the hidden one too).
    const raw = Buffer.alloc(512);
    const fd = openSync(tcryptImage('vc_1-stribog512-xts-camellia'), 'r');
    try {
      readSync(fd, raw, 0, 512, 0);
    } finally {
      closeSync(fd);
    }
    const [kdf] = kdfCandidates({ prf: 'streebog', flavour: 'veracrypt' });
    const key = await deriveHeaderKey(kdf!, Buffer.from(TC_PASSWORD), raw.subarray(0, 64));
    const plain = decryptHeaderWith(['camellia'], raw, key);
    try {
      expect(headerChecksPass(plain)).toBe(true);
      expect(headerMagic(plain)).toBe('veracrypt');
    } finally {
      key.fill(0);
      raw.fill(0);
      plain.fill(0);
    }
  });
});

describe('system encryption (--system: the header in the boot track)', () => {
  it.each([
    ['sys_vc_1_gpt_part-sha512-xts-aes', 'sha512', 0, 67584 * 512],
    ['sys_vc_1_mbr_part-sha256-xts-aes', 'sha256', 0, 2048 * 512],
    // Whole-drive encryption: the encrypted area starts at sector 63; the partition at sector 2048.
    ['sys_vc_1_mbr_full-sha256-xts-aes', 'sha256', 2048 * 512 - 63 * 512, 63 * 512],
  ] as const)('%s opens read-only at the partition the header gives', async (name, hash, fsAt, dataOffset) => {
    const r = await open(name, { password: TC_PASSWORD, type: 'veracrypt', options: { hash, system: true }, fsAt });
    expect(r.uuid).toBe(TC_FS_UUID);
    expect(r.info).toMatchObject({ volumeType: 'system', dataOffset, firstDataUnit: dataOffset / 512, kdf: { iterations: hash === 'sha512' ? 500_000 : 200_000 } });
  });

  it('read-write opens (XTS), exposing the partition the header gives; without --system the drive is not a volume', async () => {
    const c = openContainer(tcryptImage('sys_vc_1_mbr_part-sha256-xts-aes'), true);
    try {
      const secret = () => ({ passphrase: Buffer.from(TC_PASSWORD), keyfiles: [] });
      const rw = await unlockVolume(await adapterByName('veracrypt'), c, secret(), { readOnly: false, system: true, hash: 'sha256' });
      expect(rw).toMatchObject({ dataOffset: 2048 * 512, dataSize: 32768 * 512, firstTweak: 2048n, cipher: ['aes'] });
      rw.key.dispose();
      const e = (await unlockVolume(await adapterByName('truecrypt'), c, secret(), { readOnly: true }).catch((x: unknown) => x)) as VaultError;
      expect(e).toMatchObject({ code: 'wrong-password', hint: expect.stringMatching(/--system/) });
    } finally {
      closeContainer(c);
    }
  });
});

describe('errors', () => {
  it('a wrong password says what was tried and that the password, PIM or keyfiles may be wrong', async () => {
    const e = (await open('tc_5-sha512-xts-aes', tc('not the password')).catch((x: unknown) => x)) as VaultError;
    expect(e.code).toBe('wrong-password');
    expect(e.message).toMatch(/opened with the password, no PIM: a wrong password, or a PIM or keyfiles were needed/);
    expect(e.message).toMatch(/Tried the normal and hidden-volume headers at bytes 0, 65536, 297472 with PBKDF2-HMAC-SHA-512 \(TrueCrypt 1000\), PBKDF2-HMAC-RIPEMD-160 \(TrueCrypt 2000\), PBKDF2-HMAC-Whirlpool \(TrueCrypt 1000\)/);
    // Which algorithms, under which derivations: SHA-1 only with TrueCrypt 1.0-4.3's chains, on the headers they used.
    expect(e.message).toMatch(/; under each but PBKDF2-HMAC-SHA-1 \(TrueCrypt 2000\), every VeraCrypt encryption algorithm \(AES, Serpent, Twofish, Camellia, Kuznyechik and the 10 cascades\); under TrueCrypt's, also the LRW and CBC chains of TrueCrypt 1.0-4.3 \(on the headers at bytes 0, 297472\)$/);
    expect(e.message).not.toContain('not the password');
    expect(e.hint).toMatch(/--hidden/);
    expect(e.message).not.toMatch(/signature/); // --type truecrypt: no detection, so nothing to say about other formats
    // Detected (no --type): the other formats ruled out by their signatures are named too. cryptsetup's
    // "TCRYPT only" check: a VeraCrypt volume does not open with TrueCrypt's derivations.
    const vcAsTc = (await open('vc_1-sha512-xts-aes', tc()).catch((x: unknown) => x)) as VaultError;
    expect(vcAsTc.code).toBe('wrong-password');
    const detected = (await open('tc_5-sha512-xts-aes', { password: 'not the password', options: { hash: 'sha512', pim: 1, hidden: true } }).catch((x: unknown) => x)) as VaultError;
    expect(detected.message).toMatch(/with PBKDF2-HMAC-SHA-512 \(16000\); under it, every VeraCrypt encryption algorithm \(AES, Serpent, Twofish, Camellia, Kuznyechik and the 10 cascades\); the file has no vault, LUKS2 or LUKS1 signature either$/);
    const withPim = (await open('tc_5-sha512-xts-aes', vc('sha512', 'x', { type: 'veracrypt', options: { pim: 1, hidden: true } })).catch((x: unknown) => x)) as VaultError;
    expect(withPim.message).toMatch(/with the password, PIM 1: a wrong password, PIM or keyfile.*hidden-volume headers at bytes 65536, 297472 with PBKDF2-HMAC-SHA-512 \(16000\)/);
  });

  it('when a derivation or its cascade blocks could not run, the error says so and does not blame the password alone', () => {
    const slot = (at: number): HeaderSlot => ({ kind: at ? 'hidden' : 'normal', copy: 'primary', at, raw: Buffer.alloc(512) });
    const slots = [slot(0), slot(65536)];
    const kdfs = kdfCandidates({ pim: 1 }); // SHA-512, SHA-256, BLAKE2s, Whirlpool, Streebog, Argon2id, RIPEMD-160
    const pairs = kdfs.flatMap((k) => slots.map((s) => [s, k] as const));
    const whirlpool = kdfs.find((k) => k.prf === 'whirlpool')!;
    const argon = kdfs.find((k) => k.prf === 'argon2id')!;
    const outcomes: Outcome[] = pairs.map(([s, k]) => {
      if (k === argon) return { ok: false, slot: s, kdf: k, error: null, tried: 'none', skipped: 'Argon2id (Argon2id failed: not enough memory)' };
      // The hidden header's cascade blocks under Whirlpool failed after its first pass.
      return { ok: false, slot: s, kdf: k, error: null, tried: k === whirlpool && s.at > 0 ? 'single' : 'all' };
    });
    expect(describeAlgorithmsTried(pairs, outcomes)).toBe(
      'under each, every VeraCrypt encryption algorithm (AES, Serpent, Twofish, Camellia, Kuznyechik and the 10 cascades), except only the single ciphers ' +
        'under PBKDF2-HMAC-Whirlpool (16000) and nothing under Argon2id (64 MiB, 3 passes) (could not run here)',
    );
    const e = noHeaderOpened({ path: 'x.hc' } as ContainerFile, outcomes, { readOnly: true, pim: 1 }, { slots, kdfs, pairs, keyfiles: 0 });
    expect(e.message).toMatch(/^no VeraCrypt\/TrueCrypt header of x.hc opened with the password, PIM 1: a wrong password, PIM or keyfile, or a derivation that could not run here \(see the hint\), or it is not/);
    expect(e.hint).toMatch(/these key derivations could not run here: Argon2id \(Argon2id failed: not enough memory\)/);
  });

  it('--hash that no program uses with these options, and a PIM for TrueCrypt, are usage errors', async () => {
    await expect(open('tc_5-sha512-xts-aes', tc(TC_PASSWORD, { hash: 'sha256' }))).rejects.toMatchObject({ code: 'usage', message: /--hash sha256 with TrueCrypt/ });
    await expect(open('tc_5-sha512-xts-aes', tc(TC_PASSWORD, { pim: 3 }))).rejects.toMatchObject({ code: 'usage', message: /no PIM/ });
  });

  it('a small file that is no container: what was ruled out, how to force VeraCrypt, and no header backup to restore', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vault-unit-tiny-'));
    try {
      const f = path.join(dir, 'notes.txt');
      writeFileSync(f, 'shopping list\n'.repeat(1500));
      const c = openContainer(f, true);
      try {
        const secret = () => ({ passphrase: Buffer.from('pw'), keyfiles: [] });
        const e = (await unlockVolume(await detectFormat(c), c, secret(), { readOnly: true }).catch((x: unknown) => x)) as VaultError;
        expect(e).toMatchObject({
          code: 'not-a-container',
          message: /is not a container vault recognises: no vault, LUKS2 or LUKS1 signature \(and at 21000 bytes too small for a vault container\), and its header area does not look like a VeraCrypt/,
        });
        expect(e.hint).toMatch(/--type veracrypt/);
        expect(e.hint).not.toMatch(/restore/); // a vault container is at least 1 MiB + 4.5 KiB
        // Forced, the VeraCrypt adapter says what it tried and that the password may be wrong.
        const forced = (await unlockVolume(await adapterByName('truecrypt'), c, secret(), { readOnly: true }).catch((x: unknown) => x)) as VaultError;
        expect(forced).toMatchObject({ code: 'wrong-password', message: /Tried the normal and hidden-volume headers at bytes 0, 19464 with/ });
        const sys = (await unlockVolume(await adapterByName('veracrypt'), c, secret(), { readOnly: true, system: true }).catch((x: unknown) => x)) as VaultError;
        expect(sys).toMatchObject({ code: 'not-a-container', message: /too small to hold a system-encryption header/ });
      } finally {
        closeContainer(c);
      }
      // 2 MiB of zeros could be a vault container whose headers were wiped: then a backup helps.
      const zeros = path.join(dir, 'zeros.img');
      writeFileSync(zeros, Buffer.alloc(2 << 20));
      const z = openContainer(zeros, true);
      try {
        const e = (await unlockVolume(await detectFormat(z), z, { passphrase: Buffer.from('pw'), keyfiles: [] }, { readOnly: true }).catch((x: unknown) => x)) as VaultError;
        expect(e.message).not.toMatch(/too small/);
        expect(e.hint).toMatch(/--type veracrypt.*restore a header backup with `vault header restore`/);
      } finally {
        closeContainer(z);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
