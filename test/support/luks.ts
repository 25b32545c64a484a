/**
 * Test helpers for LUKS containers made by the real cryptsetup (Debian's cryptsetup-bin, installed
 * by scripts/setup-system.sh --test): running it, damaging its headers the way cryptsetup's own
 * tests/generators do (rewrite the JSON area, recompute the checksum), and decrypting what an
 * adapter unlocked with node:crypto, independently of vault's data path.
 */
import { spawnSync } from 'node:child_process';
import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { VaultError, type ErrorCode } from '../../src/errors.js';
import { closeContainer, openContainer, type ContainerFile } from '../../src/volume/container-file.js';
import type { FormatAdapter, UnlockOptions, UnlockSecret, UnlockedVolume } from '../../src/formats/types.js';

export const FAST_PBKDF2 = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
export const fastArgon2 = (type: 'argon2i' | 'argon2id') => ['--pbkdf', type, '--pbkdf-memory', '32', '--pbkdf-force-iterations', '4'];

/** Runs cryptsetup in batch mode; throws with its stderr when it fails. */
export function cryptsetup(args: string[]): string {
  const r = spawnSync('cryptsetup', ['--batch-mode', ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`cryptsetup ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Whether cryptsetup accepts the header (luksDump on a throwaway copy: it may repair what it reads). */
export function cryptsetupAccepts(file: string): boolean {
  const copy = `${file}.dump-copy`;
  writeFileSync(copy, readFileSync(file));
  try {
    return spawnSync('cryptsetup', ['luksDump', copy], { encoding: 'utf8' }).status === 0;
  } finally {
    rmSync(copy, { force: true });
  }
}

export function workDir(name: string): string {
  const tag = process.env.VAULT_E2E_TAG ? `${process.env.VAULT_E2E_TAG}-` : '';
  return mkdtempSync(`/tmp/vault-unit-${tag}${name}-`);
}

export function keyFile(dir: string, name: string, bytes: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** A file of `size` bytes in `dir`: `random` random bytes, then zeros. */
export function plaintextImage(dir: string, name: string, random: number, size: number): { file: string; plain: Buffer } {
  const file = path.join(dir, name);
  const plain = Buffer.alloc(size);
  randomBytes(random).copy(plain);
  writeFileSync(file, plain);
  return { file, plain };
}

export const secretOf = (passphrase: string | Buffer, keyfiles: Buffer[] = []): UnlockSecret => ({
  passphrase: Buffer.from(passphrase),
  keyfiles,
});

/** Opens `file` read-only and unlocks it with `adapter` (a detached header when `header` is given). */
export async function unlockFile(adapter: FormatAdapter, file: string, secret: UnlockSecret, o: Partial<UnlockOptions> & { header?: string } = {}): Promise<UnlockedVolume> {
  const c = openContainer(file, true);
  const h = o.header ? openContainer(o.header, true) : undefined;
  try {
    const { header: _ignored, ...rest } = o;
    return await adapter.unlock(c, secret, { readOnly: true, ...rest, ...(h ? { headerFile: h } : {}) });
  } finally {
    closeContainer(c);
    if (h) closeContainer(h);
  }
}

export function withContainer<T>(file: string, fn: (c: ContainerFile) => T): T {
  const c = openContainer(file, true);
  try {
    return fn(c);
  } finally {
    closeContainer(c);
  }
}

/** withContainer for a callback that awaits: the container stays open until it settles. */
export async function withContainerAsync<T>(file: string, fn: (c: ContainerFile) => Promise<T>): Promise<T> {
  const c = openContainer(file, true);
  try {
    return await fn(c);
  } finally {
    closeContainer(c);
  }
}

/** Decrypts the whole data area with node:crypto's aes-256-xts at the volume's tweak rule. */
export function decryptVolume(v: UnlockedVolume, file: string): Buffer {
  const enc = readFileSync(file).subarray(v.dataOffset, v.dataOffset + v.dataSize);
  expect(enc.length).toBe(v.dataSize);
  const out = Buffer.alloc(enc.length);
  v.key.withBytes((key) => {
    const iv = Buffer.alloc(16);
    for (let i = 0; i < enc.length / v.sectorSize; i++) {
      iv.writeBigUInt64LE(v.firstTweak + BigInt(i) * v.tweakStep);
      const d = createDecipheriv('aes-256-xts', key, iv);
      d.update(enc.subarray(i * v.sectorSize, (i + 1) * v.sectorSize)).copy(out, i * v.sectorSize);
    }
  });
  return out;
}

export async function expectVaultError(p: Promise<unknown> | (() => unknown), code: ErrorCode, message?: RegExp): Promise<VaultError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected VaultError ${code}`).toBeInstanceOf(VaultError);
  expect((err as VaultError).code, (err as VaultError).message).toBe(code);
  if (message) expect((err as VaultError).message).toMatch(message);
  expect((err as VaultError).message).not.toContain('\n');
  return err as VaultError;
}

// ---- header surgery, as cryptsetup's tests/generators/lib.sh does it ----

const BIN = 4096;

function readAt(fd: number, length: number, offset: number): Buffer {
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, offset);
  return b;
}

/** Offsets of both copies: the primary at 0, the secondary at the primary's hdr_size. */
export function copyOffsets(file: string): { primary: number; secondary: number; hdrSize: number } {
  const fd = openSync(file, 'r');
  try {
    const hdrSize = Number(readAt(fd, BIN, 0).readBigUInt64BE(8));
    return { primary: 0, secondary: hdrSize, hdrSize };
  } finally {
    closeSync(fd);
  }
}

/** Recomputes the sha256 checksum of the copy at `offset` (binary header with csum zeroed || JSON area). */
export function fixChecksum(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const bin = readAt(fd, BIN, offset);
    const hdrSize = Number(bin.readBigUInt64BE(8));
    const area = readAt(fd, hdrSize - BIN, offset + BIN);
    bin.fill(0, 448, 512);
    const sum = createHash('sha256').update(bin).update(area).digest();
    writeSync(fd, sum, 0, sum.length, offset + 448);
  } finally {
    closeSync(fd);
  }
}

/** Writes raw bytes at `offset` (no checksum fix). */
export function patch(file: string, offset: number, bytes: Buffer | string): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.from(bytes);
    writeSync(fd, b, 0, b.length, offset);
  } finally {
    closeSync(fd);
  }
}

export type Json = Record<string, any>;

export function readJson(file: string, which: 'primary' | 'secondary' = 'primary'): Json {
  const o = copyOffsets(file);
  const fd = openSync(file, 'r');
  try {
    const area = readAt(fd, o.hdrSize - BIN, o[which] + BIN);
    return JSON.parse(area.subarray(0, area.indexOf(0)).toString('utf8')) as Json;
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces the JSON area text of the chosen copies (zero padded, like write_luks2_json) and fixes
 * their checksums. `text` may be any string, so malformed JSON can be written too.
 */
export function writeJsonText(file: string, text: string | Buffer, which: Array<'primary' | 'secondary'> = ['primary', 'secondary']): void {
  const o = copyOffsets(file);
  const area = Buffer.alloc(o.hdrSize - BIN);
  Buffer.from(text).copy(area);
  for (const w of which) {
    patch(file, o[w] + BIN, area);
    fixChecksum(file, o[w]);
  }
}

/** Applies `mutate` to the JSON of the chosen copies (default both) and writes it back compact. */
export function mutateJson(file: string, mutate: (j: Json) => void, which: Array<'primary' | 'secondary'> = ['primary', 'secondary']): void {
  const j = readJson(file);
  mutate(j);
  writeJsonText(file, JSON.stringify(j), which);
}
