/** Writes and verifies test data trees: a large random file plus many small files in nested directories. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';

/** Returns relative path → sha256 of everything written. */
export function writeTree(root: string, bigBytes: number, smallFiles: number): Map<string, string> {
  const sums = new Map<string, string>();
  const put = (rel: string, data: Buffer) => {
    const full = path.join(root, rel);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, data);
    sums.set(rel, createHash('sha256').update(data).digest('hex'));
  };
  put('big.bin', randomBytes(bigBytes));
  for (let i = 0; i < smallFiles; i++) {
    const rel = path.join(`d${i % 7}`, `e${i % 13}`, `f${i % 3}`, `file-${i}.dat`);
    put(rel, randomBytes(1 + ((i * 7919) % 9000)));
  }
  const fd = openSync(path.join(root, 'big.bin'), 'r');
  fsyncSync(fd);
  closeSync(fd);
  return sums;
}

export function readTree(root: string): Map<string, string> {
  const sums = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (name === 'lost+found') continue;
      if (statSync(full).isDirectory()) walk(full);
      else sums.set(path.relative(root, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(root);
  return sums;
}
