/** `length` bytes of a file or block device at byte `position` (all of them, or the test fails). */
import { closeSync, openSync, readSync } from 'node:fs';
import { expect } from 'vitest';

export function readFileAt(file: string, length: number, position: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    expect(readSync(fd, b, 0, length, position)).toBe(length);
    return b;
  } finally {
    closeSync(fd);
  }
}
