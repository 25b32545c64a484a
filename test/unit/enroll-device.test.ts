/**
 * `vault enroll --tpm2-pcrs` (src/cli/enroll-device.ts parsePcrs): the PCR list of the sha256 bank,
 * '+' or ',' between numbers as systemd-cryptenroll takes them; a bad list is a usage error (exit 2),
 * refused before anything is opened (test/unit/cli-usage.test.ts runs it through the program).
 */
import { describe, expect, it } from 'vitest';
import { parsePcrs } from '../../src/cli/enroll-device.js';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';
import { expectVaultError } from '../support/luks.js';

describe('--tpm2-pcrs', () => {
  it("takes '+' or ',' lists, spaces around numbers, 0 to 23; absent is 7 (Secure Boot), empty is none", () => {
    expect(parsePcrs('7+11')).toEqual([7, 11]);
    expect(parsePcrs('7,11')).toEqual([7, 11]);
    expect(parsePcrs(' 0 + 23 ')).toEqual([0, 23]);
    expect(parsePcrs(undefined)).toEqual([7]);
    expect(parsePcrs('')).toEqual([]);
    expect(parsePcrs('  ')).toEqual([]);
  });

  for (const [v, bad] of [['24', '24'], ['7+99', '99'], ['-1', '-1'], ['7+', ''], ['7;11', '7;11'], ['pcr7', 'pcr7'], ['0x7', '0x7'], ['7.5', '7.5']])
    it(`refuses "${v}" as a usage error (exit 2) naming "${bad}"`, async () => {
      const e = await expectVaultError(() => parsePcrs(v), 'usage', new RegExp(`^--tpm2-pcrs: "${bad.replace(/[.+]/g, '\\$&')}" is not a PCR number$`));
      expect(e.hint).toBe("give numbers 0 to 23 joined by '+', e.g. 7+11");
      expect(exitCodeFor(e.code)).toBe(EXIT.usage);
    });
});
