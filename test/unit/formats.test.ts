/**
 * The registry and vault's own adapter: a vault container unlocks through the adapter with exactly
 * the key and geometry the pre-format code path gave (same KDF input, with and without keyfiles),
 * VeraCrypt options are refused on it, and unlockVolume wipes the secret and checks geometry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildKdfInput } from '../../src/crypto/kdf.js';
import { createKeyslot } from '../../src/crypto/keyslot.js';
import { generateMasterKey } from '../../src/crypto/master-key.js';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { containerFileSize, geometryForSize } from '../../src/format/layout.js';
import { newHeader, unlockContainer, writeInitialHeaders } from '../../src/volume/container.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { adapterByName, adapterNames, detectFormat, unlockVolume } from '../../src/formats/index.js';
import { vaultAdapter } from '../../src/formats/vault.js';
import { FORMAT_NAMES, type FormatAdapter } from '../../src/formats/types.js';

const KDF = { memoryKiB: 1024, iterations: 1, parallelism: 1 };
let dir: string;
beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'vault-formats-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fixture = (f: string) => new URL(`../fixtures/v1/${f}`, import.meta.url).pathname;

describe('vault adapter', () => {
  it('gives the committed fixtures the same key and geometry as unlockContainer', async () => {
    for (const [f, p] of [['v1-4096.vol', 'vault fixture v1'], ['v1-512.vol', 'vault fixture v1 (512)']] as const) {
      const c = openContainer(fixture(f), true);
      try {
        expect((await detectFormat(c)).name).toBe('vault');
        const old = await unlockContainer(c, buildKdfInput(Buffer.from(p)));
        const v = await unlockVolume(vaultAdapter, c, { passphrase: Buffer.from(p), keyfiles: [] }, { readOnly: true });
        expect(v.key.withBytes((k) => Buffer.from(k).equals(Buffer.from(old.masterKey)))).toBe(true);
        expect(v).toMatchObject({ format: 'vault', sectorSize: old.header.sectorSize, dataOffset: old.header.dataOffset, dataSize: old.header.dataSize, firstTweak: 0n, tweakStep: 1n });
        v.key.dispose();
        old.masterKey.fill(0);
      } finally {
        closeContainer(c);
      }
    }
  });

  it('builds the keyfile KDF input as before and wipes the secret it was given', async () => {
    const kf = randomBytes(200);
    const file = path.join(dir, 'kf.vol');
    const mk = generateMasterKey();
    const header = newHeader(geometryForSize(2 << 20, 4096));
    header.keyslots[0] = await createKeyslot(buildKdfInput(Buffer.from('pw'), [kf]), mk, header.uuid, 0, KDF);
    const fd = openSync(file, 'w+');
    writeSync(fd, Buffer.alloc(1), 0, 1, containerFileSize(header) - 1);
    writeInitialHeaders(fd, header, mk);
    closeSync(fd);
    const c = openContainer(file, true);
    try {
      const secret = { passphrase: Buffer.from('pw'), keyfiles: [Buffer.from(kf)] };
      const v = await unlockVolume(vaultAdapter, c, secret, { readOnly: true });
      expect(v.key.withBytes((k) => Buffer.from(k).equals(Buffer.from(mk)))).toBe(true);
      v.key.dispose();
      expect(secret.passphrase.every((b) => b === 0) && secret.keyfiles[0]!.every((b) => b === 0)).toBe(true);
      await expect(unlockVolume(vaultAdapter, c, { passphrase: Buffer.from('pw'), keyfiles: [] }, { readOnly: true })).rejects.toMatchObject({ code: 'wrong-password' });
      await expect(unlockVolume(vaultAdapter, c, { passphrase: Buffer.from('pw'), keyfiles: [] }, { readOnly: true, pim: 3 })).rejects.toMatchObject({ code: 'usage', message: /--pim does not apply/ });
    } finally {
      closeContainer(c);
    }
  });
});

describe('registry', () => {
  it('FORMAT_NAMES (what the CLI lists without loading formats) are exactly the adapters, in detection order', async () => {
    expect([...FORMAT_NAMES]).toEqual(adapterNames());
    for (const n of FORMAT_NAMES) expect((await adapterByName(n)).name).toBe(n);
  });

  it('knows the format names, including truecrypt for the VeraCrypt adapter restricted to TrueCrypt\'s KDFs', async () => {
    expect((await adapterByName('vault')).name).toBe('vault');
    expect((await adapterByName('truecrypt')).name).toBe('truecrypt');
    expect((await adapterByName('truecrypt')).claims).toBe((await adapterByName('veracrypt')).claims);
    await expect(adapterByName('bitlocker')).rejects.toThrow(/unknown container format/);
  });

  it('refuses a volume an adapter describes outside the file, and disposes its key', async () => {
    const c = openContainer(fixture('v1-512.vol'), true);
    let key: KeyHandle | null = null;
    const liar: FormatAdapter = {
      name: 'veracrypt',
      recognises: () => false,
      unlock: async () => {
        key = KeyHandle.fromBytes(randomBytes(64));
        return { format: 'veracrypt', key, sectorSize: 512, dataOffset: 512, dataSize: c.size, firstTweak: 1n, tweakStep: 1n, cipher: ['aes'], uuid: null, warnings: [] };
      },
    };
    try {
      await expect(unlockVolume(liar, c, { passphrase: Buffer.from('x'), keyfiles: [] }, { readOnly: true })).rejects.toMatchObject({ code: 'truncated' });
      expect(key!.disposed).toBe(true);
    } finally {
      closeContainer(c);
    }
  });
});
