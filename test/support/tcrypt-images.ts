/**
 * cryptsetup's real TrueCrypt/VeraCrypt images (test/fixtures/tcrypt/README.md), extracted once
 * per machine into a private directory under the system temp dir and shared by every test file.
 * Tests open them read-only or work on copies.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ARCHIVE = path.resolve(import.meta.dirname, '../fixtures/tcrypt/tcrypt-images.tar.xz');
/** Keyed by the archive's blob, so a changed archive is extracted afresh. */
const CACHE = path.join(os.tmpdir(), `vault-tcrypt-images-${process.getuid?.() ?? 0}-38f95b7`);

export const TC_PASSWORD = 'aaaaaaaaaaaa';
export const TC_HIDDEN_PASSWORD = 'bbbbbbbbbbbb';
export const TC_PIM_PASSWORD = 'cccccccccccccccccccc';
export const TC_PASSWORD_72 = 'aaaaaaaaaaaabbbbbbbbbbbbccccccccccccddddddddddddeeeeeeeeeeeeffffffffffff';
export const TC_FS_UUID = 'DEAD-BABE';

/** The directory holding every image (and keyfile1, keyfile2), extracting it on first use. */
export function tcryptImagesDir(): string {
  const dir = path.join(CACHE, 'tcrypt-images');
  if (existsSync(path.join(dir, 'README'))) return dir;
  mkdirSync(path.dirname(CACHE), { recursive: true });
  const tmp = mkdtempSync(`${CACHE}.tmp-`);
  try {
    execFileSync('tar', ['-xJf', ARCHIVE, '-C', tmp, '--no-same-owner']);
    try {
      renameSync(tmp, CACHE);
    } catch (e) {
      // Another test file extracted it first: use theirs.
      if (!existsSync(path.join(dir, 'README'))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Full path of one image (or keyfile) by name, e.g. 'vc_1-sha512-xts-camellia'. */
export function tcryptImage(name: string): string {
  return path.join(tcryptImagesDir(), name);
}

/** Every image name (not the README or keyfiles). */
export function tcryptImageNames(): string[] {
  return readdirSync(tcryptImagesDir()).filter((n) => /^(tc|vc|tck|vck|vcpim|sys)_/.test(n)).sort();
}

/** What cryptsetup's test reads from a name: the header PRF and the cipher list as the name spells it (VeraCrypt's order for the older cascades, encryption order for the Kuznyechik ones: see test/fixtures/tcrypt/README.md). */
export function tcryptImageParams(name: string): { hash: string; mode: string; ciphers: string[]; hidden: boolean } {
  const parts = name.split('-');
  const hidden = parts.at(-1) === 'hidden';
  const body = hidden ? parts.slice(0, -1) : parts;
  return { hash: body[1]!, mode: body[2]!, ciphers: body.slice(3), hidden };
}
