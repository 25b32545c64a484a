/**
 * Helpers shared by resize.test.ts and resize-crash.test.ts: a small ext4 container with known
 * data, copied per test, and what a test checks of a container afterwards (its size, its data,
 * e2fsck -fn).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { FAST_KDF, ok, vault } from './harness.js';

export const PW = 'pw\n';
const MIB = 1024 * 1024;

/** A 64 MiB ext4 container holding `data.bin` (`dataMiB` MiB of random bytes); returns the file's sha256. */
export function makeTemplate(dir: string, dataMiB: number): { file: string; sha: string } {
  const file = path.join(dir, 'template.vol');
  ok(vault(['create', file, '--size', '64M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], PW));
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  ok(vault(['mount', file, mnt, '--password-stdin'], PW));
  try {
    spawnSync('dd', ['if=/dev/urandom', `of=${mnt}/data.bin`, 'bs=1M', `count=${dataMiB}`, 'status=none']);
    spawnSync('sync');
    return { file, sha: sha256Of(`${mnt}/data.bin`) };
  } finally {
    ok(vault(['dismount', mnt]));
  }
}

export function sha256Of(file: string): string {
  return spawnSync('sha256sum', [file], { encoding: 'utf8' }).stdout.split(' ')[0]!;
}

/** A fresh copy of the template (sparse stays sparse). */
export function copyOf(template: string, dir: string, name: string): string {
  const file = path.join(dir, name);
  copyFileSync(template, file);
  return file;
}

export function fileSize(file: string): number {
  return statSync(file).size;
}

export function mib(n: number): number {
  return n * MIB;
}

/** Mounts the container: the sha256 of data.bin and the filesystem's size in bytes (df). */
export function contents(file: string, dir: string): { sha: string; fsBytes: number } {
  const mnt = path.join(dir, `mnt-${path.basename(file)}`);
  mkdirSync(mnt, { recursive: true });
  ok(vault(['mount', file, mnt, '--password-stdin'], PW));
  try {
    return look(mnt);
  } finally {
    ok(vault(['dismount', mnt]));
  }
}

function look(mnt: string): { sha: string; fsBytes: number } {
  const df = spawnSync('df', ['-B1', '--output=size', mnt], { encoding: 'utf8' }).stdout.trim().split('\n')[1]!;
  return { sha: sha256Of(`${mnt}/data.bin`), fsBytes: Number(df.trim()) };
}

/**
 * Asserts that the container opens, e2fsck -fn finds nothing, and data.bin is intact; returns the
 * filesystem's size. One mount: the decrypted device, checked, then mounted read-only by hand.
 */
export function expectHealthy(file: string, dir: string, sha: string): number {
  const dev = ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], PW)).stdout.trim();
  const mnt = path.join(dir, `ro-${path.basename(file)}`);
  mkdirSync(mnt, { recursive: true });
  try {
    const f = spawnSync('e2fsck', ['-fn', dev], { encoding: 'utf8' });
    expect(f.status, `e2fsck -fn ${file}:\n${f.stdout}${f.stderr}`).toBe(0);
    expect(spawnSync('mount', ['-t', 'ext4', '-o', 'ro,noload', dev, mnt]).status).toBe(0);
    try {
      const c = look(mnt);
      expect(c.sha).toBe(sha);
      return c.fsBytes;
    } finally {
      spawnSync('umount', [mnt]);
    }
  } finally {
    ok(vault(['dismount', file]));
  }
}
