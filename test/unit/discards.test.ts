/**
 * Where `mount --allow-discards` can be honoured (src/mount/discards.ts): a flag that cannot is an
 * error with its exit class; the config file's default is skipped with a note instead.
 */
import { describe, expect, it } from 'vitest';
import { discardsForFormat, discardsForOptions } from '../../src/mount/discards.js';
import { isVaultError } from '../../src/errors.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isVaultError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('--allow-discards', () => {
  it('is off unless asked for, and on for the root route', () => {
    expect(discardsForOptions({ readOnly: false }, 'root')).toBe(false);
    expect(discardsForOptions({ readOnly: false, allowDiscards: 'flag' }, 'root')).toBe(true);
    expect(discardsForOptions({ readOnly: false, allowDiscards: 'config', fsOptions: 'noatime,discard' }, 'root')).toBe(true);
  });

  it('as a flag, is a usage error read-only and through the fuse and udisks routes', () => {
    for (const [ro, route] of [[true, 'root'], [false, 'fuse'], [false, 'udisks']] as const) {
      expect(codeOf(() => discardsForOptions({ readOnly: ro, allowDiscards: 'flag' }, route)), `${route} ro=${ro}`).toBe('usage');
    }
    expect(() => discardsForOptions({ readOnly: false, allowDiscards: 'flag' }, 'fuse')).toThrow(/fuse2fs, which sends no discards/);
  });

  it('from the config file, is skipped there with a note', () => {
    const notes: string[] = [];
    expect(discardsForOptions({ readOnly: true, allowDiscards: 'config', note: (m) => notes.push(m) }, 'root')).toBe(false);
    expect(discardsForOptions({ readOnly: false, allowDiscards: 'config', note: (m) => notes.push(m) }, 'udisks')).toBe(false);
    expect(notes).toEqual([expect.stringMatching(/^allowDiscards from the config file not applied: a read-only mount/), expect.stringMatching(/udisks route/)]);
  });

  it('--fs-options discard without it is a usage error', () => {
    expect(codeOf(() => discardsForOptions({ readOnly: false, fsOptions: 'discard' }, 'root'))).toBe('usage');
    expect(codeOf(() => discardsForOptions({ readOnly: false, fsOptions: 'nodiscard' }, 'root'))).toBeUndefined();
  });

  it('is for the vault format only: refused for safety (exit 8) on LUKS and VeraCrypt/TrueCrypt as a flag, skipped from the config', () => {
    expect(discardsForFormat('vault', 'flag')).toBe(true);
    expect(discardsForFormat('vault', undefined)).toBe(false);
    for (const f of ['luks2', 'luks1', 'veracrypt', 'truecrypt'] as const) {
      expect(codeOf(() => discardsForFormat(f, 'flag')), f).toBe('unsafe');
      const notes: string[] = [];
      expect(discardsForFormat(f, 'config', (m) => notes.push(m))).toBe(false);
      expect(notes).toHaveLength(1);
    }
    expect(() => discardsForFormat('veracrypt', 'flag')).toThrow(/hidden volume/);
  });
});
