/**
 * Real TrueCrypt/VeraCrypt XTS images with Serpent, Twofish, Camellia, Kuznyechik and cascades
 * (cryptsetup's test images, made by the real programs: test/fixtures/tcrypt), opened in-process
 * with the KDF named by the image (as cryptsetup's tcrypt-compat-test does with -h): the header
 * opens under its cipher chain through the native engine (openWithOtherChain), and the first data
 * sectors decrypted with the header's master key hold the FAT filesystem whose volume ID is
 * DEAD-BABE (CAFE-BABE in hidden volumes).
 *
 * Listed: the images whose derivation is cheap (TrueCrypt's 1000-2000 iterations, TrueCrypt 5.x's
 * version-3 headers included) and VeraCrypt's Camellia and Kuznyechik ones. Left to other files,
 * for time: the Whirlpool and Streebog images (vc_1-stribog512-xts-camellia's header is opened by
 * test/unit/veracrypt-images.test.ts, the PRFs by veracrypt-kdf.test.ts's vectors; every PRF under
 * every algorithm by veracrypt-create-ciphers.test.ts), and VeraCrypt's AES-Twofish-Serpent and
 * Serpent-Twofish-AES images, left to their TrueCrypt twins (same chains, 1000 iterations instead
 * of 3 × 500000 for a 192-byte key).
 */
import { describe, expect, it } from 'vitest';
import { readFileAt } from '../support/read-at.js';
import { chainKeyBytes } from '../../src/crypto/cipher-chain.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { secretCopy } from '../../src/crypto/wipe.js';
import { xtsDecrypt } from '../../src/crypto/xts.js';
import { CHAINS, openWithOtherChain } from '../../src/formats/veracrypt/cipher-chains.js';
import { DATA_UNIT, HEADER_SIZE, HIDDEN_HEADER_OFFSET, parseHeader } from '../../src/formats/veracrypt/header.js';
import { deriveHeaderKey, kdfCandidates } from '../../src/formats/veracrypt/kdf.js';
import { TC_FS_UUID, TC_HIDDEN_PASSWORD, TC_PASSWORD, tcryptImage, tcryptImageParams } from '../support/tcrypt-images.js';

const IMAGES = [
  'tc_3-ripemd160-xts-aes-twofish',
  'tc_3-ripemd160-xts-aes-twofish-serpent',
  'tc_3-ripemd160-xts-serpent',
  'tc_3-ripemd160-xts-serpent-aes',
  'tc_3-ripemd160-xts-serpent-twofish-aes',
  'tc_3-ripemd160-xts-twofish',
  'tc_3-ripemd160-xts-twofish-serpent',
  'tc_4-sha512-xts-aes-twofish',
  'tc_4-sha512-xts-aes-twofish-serpent',
  'tc_4-sha512-xts-serpent',
  'tc_4-sha512-xts-serpent-aes',
  'tc_4-sha512-xts-serpent-twofish-aes',
  'tc_4-sha512-xts-serpent-twofish-aes-hidden',
  'tc_4-sha512-xts-twofish',
  'tc_4-sha512-xts-twofish-serpent',
  'tc_5-sha512-xts-aes-twofish',
  'tc_5-sha512-xts-aes-twofish-serpent',
  'tc_5-sha512-xts-serpent',
  'tc_5-sha512-xts-serpent-aes',
  'tc_5-sha512-xts-serpent-twofish-aes',
  'tc_5-sha512-xts-serpent-twofish-aes-hidden',
  'tc_5-sha512-xts-twofish',
  'tc_5-sha512-xts-twofish-serpent',
  'vc_1-sha512-xts-camellia',
  'vc_1-sha512-xts-camellia-serpent-kuznyechik',
  'vc_1-sha512-xts-kuznyechik',
  'vc_1-sha512-xts-kuznyechik-camellia',
];

const read = readFileAt;

/** The FAT volume ID of a boot sector as blkid prints it (FAT12/16 at 0x27, FAT32 at 0x43). */
function fatVolumeId(boot: Buffer): string {
  const at = boot.toString('latin1', 0x36, 0x39) === 'FAT' ? 0x27 : 0x43;
  const v = boot.readUInt32LE(at);
  const h = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  return `${h(v >>> 16)}-${h(v & 0xffff)}`;
}

describe('real TrueCrypt/VeraCrypt XTS images with other ciphers and cascades', () => {
  it.concurrent.each(IMAGES)('%s opens under its chain and its data decrypts to the filesystem', async (name) => {
    const { hash, ciphers, hidden } = tcryptImageParams(name);
    // cryptsetup's names list the ciphers in VeraCrypt's order for the older cascades
    // ("serpent-twofish-aes" is Serpent-Twofish-AES, which encrypts with AES first) but in
    // encryption order for the Kuznyechik ones ("camellia-serpent-kuznyechik" is VeraCrypt's
    // Kuznyechik-Serpent-Camellia): the chain is whichever of the two VeraCrypt offers.
    const chain = CHAINS.find((c) => c.join() === [...ciphers].reverse().join()) ?? CHAINS.find((c) => c.join() === ciphers.join());
    if (!chain) throw new Error(`${name}: not one of VeraCrypt's algorithms`);
    const file = tcryptImage(name);
    const flavour = name.startsWith('tc_') ? 'truecrypt' : 'veracrypt';
    const kdf = kdfCandidates({ pim: 0 }).find((k) => k.kind === 'pbkdf2' && k.flavour === flavour && k.digest === hash)!;
    const raw = read(file, HEADER_SIZE, hidden ? HIDDEN_HEADER_OFFSET : 0);
    const key = await deriveHeaderKey(kdf, Buffer.from(hidden ? TC_HIDDEN_PASSWORD : TC_PASSWORD), raw.subarray(0, 64), chainKeyBytes(chain) > 64);
    const opened = openWithOtherChain(raw, key);
    key.fill(0);
    expect(opened?.chain).toEqual(chain);
    const h = parseHeader(opened!.plain, hidden ? 'hidden' : 'normal');
    h.masterKey.fill(0);
    const mk = KeyHandle.fromBytes(secretCopy(opened!.plain.subarray(256, 256 + chainKeyBytes(chain))));
    opened!.plain.fill(0);
    const data = read(file, 2 * DATA_UNIT, h.encryptedAreaStart);
    xtsDecrypt(mk, data, { sectorSize: DATA_UNIT, firstTweak: BigInt(h.encryptedAreaStart / DATA_UNIT), cipher: chain });
    mk.dispose();
    expect(data.readUInt16LE(510)).toBe(0xaa55);
    expect(fatVolumeId(data)).toBe(hidden ? 'CAFE-BABE' : TC_FS_UUID);
  });
});
