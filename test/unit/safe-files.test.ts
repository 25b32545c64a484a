/**
 * Issue 13: the directory-relative file operations (src/system/fs-at.ts), with the native addon and
 * through its /proc/self/fd fallback, and the checks on vault's private directories
 * (src/system/private-dir.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, closeSync, constants as fsc, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NO_FOLLOW, openAt, openDir, renameAt, statAt, unlinkAt } from '../../src/system/fs-at.js';
import { ensurePrivateDir } from '../../src/system/private-dir.js';
import { isVaultError } from '../../src/errors.js';

const isRoot = process.getuid?.() === 0;

const made: string[] = [];
function fresh(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-safe-files-'));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

describe('directory-relative operations', () => {
  it('create with O_EXCL|O_NOFOLLOW, refuse a planted symlink, rename without replacing, unlink only the entry', () => {
    const dir = fresh();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, path.join(dir, 'planted'));
    const d = openDir(dir);
    try {
      expect(() => openAt(d.fd, 'planted', fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | NO_FOLLOW)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      expect(() => openAt(d.fd, 'planted', fsc.O_RDWR | NO_FOLLOW)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      closeSync(openAt(d.fd, 'new', fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL | NO_FOLLOW));
      expect(statAt(d.fd, 'planted')!.isSymbolicLink()).toBe(true);
      expect(statAt(d.fd, 'missing')).toBeNull();
      expect(() => renameAt(d.fd, 'new', 'planted', true)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      unlinkAt(d.fd, 'planted');
      expect(readFileSync(victim, 'utf8')).toBe('keep');
      renameAt(d.fd, 'new', 'planted', true);
      expect(lstatSync(path.join(dir, 'planted')).isFile()).toBe(true);
      mkdirSync(path.join(dir, 'sub'));
      expect(() => unlinkAt(d.fd, 'sub')).toThrow(expect.objectContaining({ code: 'EISDIR' }));
      expect(() => openAt(d.fd, '../x', fsc.O_RDONLY)).toThrow();
    } finally {
      closeSync(d.fd);
    }
  });
});

describe('private directories', () => {
  it('makes a missing one 0700 and tightens one of ours', () => {
    const dir = path.join(fresh(), 'run');
    ensurePrivateDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    chmodSync(dir, 0o755);
    ensurePrivateDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refuses a symlink, and (as root) a directory another user owns', () => {
    const base = fresh();
    const real = path.join(base, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, path.join(base, 'link'));
    const refused = (dir: string) => {
      try {
        ensurePrivateDir(dir);
        return null;
      } catch (e) {
        return isVaultError(e, 'unsafe') ? e.message : String(e);
      }
    };
    expect(refused(path.join(base, 'link'))).toMatch(/is a symbolic link$/);
    if (!isRoot) return;
    chownSync(real, 65534, 65534);
    expect(refused(real)).toMatch(/belongs to uid 65534, not 0$/);
    expect(statSync(real).uid).toBe(65534);
  });
});
