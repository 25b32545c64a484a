/**
 * The decrypted block file: any offset and length, read-modify-write of partial sectors, and no lost
 * updates when concurrent writes touch the same sector. Checked against a plain in-memory model and
 * against an independent decryption of the container bytes with node:crypto.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync } from 'node:fs';
import { createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { generateMasterKey } from '../../src/crypto/master-key.js';
import { EncryptedBlockFile } from '../../src/volume/block-file.js';

const DATA_OFFSET = 1 << 20;
let dir: string;
beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'vault-blockfile-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(sectorSize: number, sectors: number) {
  const file = path.join(dir, `bf-${sectorSize}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(file, 'w+');
  ftruncateSync(fd, DATA_OFFSET + sectorSize * sectors);
  const mk = generateMasterKey();
  const mkCopy = Buffer.from(mk);
  const bf = new EncryptedBlockFile(fd, { dataOffset: DATA_OFFSET, dataSize: sectorSize * sectors, sectorSize, firstTweak: 0n, tweakStep: 1n }, KeyHandle.fromBytes(mk), false);
  return { file, fd, bf, mk: mkCopy };
}

/** Decrypts the container's data area independently (spec §8) to check what really reached disk. */
function decryptAll(file: string, mk: Buffer, sectorSize: number): Buffer {
  const data = readFileSync(file).subarray(DATA_OFFSET);
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length / sectorSize; i++) {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(BigInt(i));
    const d = createDecipheriv('aes-256-xts', mk, iv);
    Buffer.concat([d.update(data.subarray(i * sectorSize, (i + 1) * sectorSize)), d.final()]).copy(out, i * sectorSize);
  }
  return out;
}

describe('EncryptedBlockFile', () => {
  for (const ss of [512, 4096]) {
    it(`random writes at any offset and length match a plain model (${ss}-byte sectors)`, async () => {
      const { file, fd, bf, mk } = setup(ss, 64);
      const model = decryptAll(file, mk, ss); // what a fresh sparse container decrypts to
      for (let i = 0; i < 300; i++) {
        const pos = randomInt(0, bf.size - 1);
        const len = Math.min(randomInt(1, 3 * ss), bf.size - pos);
        const data = randomBytes(len);
        expect(await bf.write(pos, data)).toBe(len);
        data.copy(model, pos);
        const rp = randomInt(0, bf.size - 1);
        const rl = randomInt(1, 2 * ss);
        expect((await bf.read(rp, rl)).equals(model.subarray(rp, Math.min(rp + rl, bf.size)))).toBe(true);
      }
      await bf.sync();
      expect(decryptAll(file, mk, ss).equals(model)).toBe(true);
      expect((await bf.read(bf.size, 10)).length).toBe(0);
      await expect(bf.write(bf.size - 1, Buffer.alloc(2))).rejects.toThrow(/beyond the end/);
      closeSync(fd);
    });
  }

  it('concurrent unaligned writes into the same sectors lose no update', async () => {
    const ss = 4096;
    const { file, fd, bf, mk } = setup(ss, 8);
    // 64 writers, each owning distinct byte ranges that share sectors with others.
    const writes = Array.from({ length: 64 }, (_, k) => ({ pos: k * 97 + 5, data: randomBytes(97) }));
    await Promise.all(writes.map((w) => bf.write(w.pos, w.data)));
    await bf.sync();
    const plain = decryptAll(file, mk, ss);
    for (const w of writes) expect(plain.subarray(w.pos, w.pos + 97).equals(w.data)).toBe(true);
    closeSync(fd);
  });

  it('a read-only block file refuses writes', async () => {
    const { fd, mk } = setup(512, 4);
    const ro = new EncryptedBlockFile(fd, { dataOffset: DATA_OFFSET, dataSize: 2048, sectorSize: 512, firstTweak: 0n, tweakStep: 1n }, KeyHandle.fromBytes(mk), true);
    await expect(ro.write(0, Buffer.alloc(512))).rejects.toThrow(/read-only/);
    closeSync(fd);
  });
});
