/**
 * detectFilesystem (src/mount/filesystem.ts): libblkid's probe in the process, checked against
 * `blkid -p` itself on the same images: a filesystem vault mounts, one it refuses (named, so that
 * the refusal can say which), nothing at all, and two signatures at once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { detectFilesystem } from '../../src/mount/filesystem.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vault-detect-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function image(name: string, make: (file: string) => void): string {
  const file = path.join(dir, name);
  writeFileSync(file, Buffer.alloc(0));
  spawnSync('truncate', ['-s', '64M', file]);
  make(file);
  return file;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** What `blkid -p` says: its TYPE, null for nothing (exit 2), 'ambivalent' for exit 8. */
function blkid(file: string): string | null {
  const r = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', file], { encoding: 'utf8' });
  if (r.status === 2) return null;
  if (r.status === 8) return 'ambivalent';
  return r.stdout.trim() || null;
}

describe('detectFilesystem', () => {
  const ext4 = image('ext4.img', (f) => sh('mkfs.ext4', ['-q', '-F', f]));
  const vfat = image('vfat.img', (f) => sh('mkfs.vfat', [f]));
  const swap = image('swap.img', (f) => sh('mkswap', [f]));
  const empty = image('empty.img', () => undefined);
  // A FAT volume with an ext4 superblock copied over its bytes 1024-2047: both signatures.
  const both = image('both.img', (f) => {
    sh('mkfs.vfat', [f]);
    sh('dd', [`if=${ext4}`, `of=${f}`, 'bs=1024', 'skip=1', 'seek=1', 'count=1', 'conv=notrunc', 'status=none']);
  });

  it('names the filesystems vault mounts, as blkid -p does', () => {
    expect(detectFilesystem(ext4)).toBe('ext4');
    expect(detectFilesystem(vfat)).toBe('vfat');
    expect([blkid(ext4), blkid(vfat)]).toEqual(['ext4', 'vfat']);
  });

  it('names a type it does not mount (for the refusal to say which), and finds it at once when --allow-fs names it', () => {
    expect(blkid(swap)).toBe('swap');
    expect(detectFilesystem(swap)).toBe('swap');
    expect(detectFilesystem(swap, ['swap'])).toBe('swap');
  });

  it('finds nothing on an empty volume', () => {
    expect(blkid(empty)).toBeNull();
    expect(detectFilesystem(empty)).toBeNull();
  });

  it('refuses a volume with two filesystems it mounts', () => {
    expect(blkid(both)).toBe('ambivalent');
    expect(() => detectFilesystem(both)).toThrow(/signatures of more than one filesystem/);
  });

  it('never follows a symbolic link to the device', () => {
    const link = path.join(dir, 'link.img');
    sh('ln', ['-s', ext4, link]);
    expect(() => detectFilesystem(link)).toThrow(/cannot open .* ELOOP/);
  });
});
