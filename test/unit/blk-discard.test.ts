/**
 * The addon's blkDiscard (native/sys_napi.c), which `vault mount` uses to refuse one discard on a
 * fresh loop device (src/mount/discards.ts). Its effect on a real loop device is checked end to end
 * in test/e2e/discards.test.ts (fstrim is refused without --allow-discards); here, what it does with
 * what is not a block device, and the arguments it refuses.
 */
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeAddon } from '../../src/crypto/native.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vault-blkdiscard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('blkDiscard', () => {
  it('returns the errno for a descriptor that is not a block device (ENOTTY), and the file keeps its bytes', () => {
    const file = path.join(dir, 'plain');
    writeFileSync(file, Buffer.alloc(8192, 7));
    const fd = openSync(file, constants.O_RDWR);
    try {
      expect(nativeAddon().blkDiscard(fd, 0, 4096)).toBe(osConstants.errno.ENOTTY);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file).equals(Buffer.alloc(8192, 7))).toBe(true);
  });

  it('refuses a length of 0, a negative offset and fractions before any ioctl', () => {
    const fd = openSync(path.join(dir, 'plain'), constants.O_RDONLY);
    try {
      for (const [off, len] of [[0, 0], [-4096, 4096], [0, 4096.5], [0.5, 4096]] as const)
        expect(() => nativeAddon().blkDiscard(fd, off, len)).toThrow(RangeError);
    } finally {
      closeSync(fd);
    }
  });
});
