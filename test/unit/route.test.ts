/** The route choice's pure parts (issue 15): --via values, fuse.conf's user_allow_other, gdbus errors. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRoute, userAllowOther } from '../../src/mount/route.js';
import { busError } from '../../src/system/bus-names.js';
import { isVaultError } from '../../src/errors.js';

describe('--via', () => {
  it('takes the three routes and refuses anything else with a usage error', () => {
    expect(parseRoute(undefined)).toBeUndefined();
    for (const r of ['root', 'udisks', 'fuse'] as const) expect(parseRoute(r)).toBe(r);
    let err: unknown;
    try {
      parseRoute('loop');
    } catch (e) {
      err = e;
    }
    expect(isVaultError(err, 'usage')).toBe(true);
  });
});

describe('user_allow_other in fuse.conf', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-route-'));
  const conf = (text: string) => {
    const f = path.join(dir, 'fuse.conf');
    writeFileSync(f, text);
    return f;
  };
  it('counts only an uncommented line of its own', () => {
    expect(userAllowOther(conf('# user_allow_other\nmount_max = 1000\n'))).toBe(false);
    expect(userAllowOther(conf('mount_max = 1000\n  user_allow_other  \n'))).toBe(true);
    expect(userAllowOther(conf('user_allow_other_not\n'))).toBe(false);
    expect(userAllowOther(path.join(dir, 'missing'))).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('gdbus errors', () => {
  it('yields the D-Bus error name and message, or the first line of anything else', () => {
    const e = busError({ status: 1, stdout: '', stderr: 'Error: GDBus.Error:org.freedesktop.UDisks2.Error.NotAuthorizedCanObtain: Not authorized to perform operation\n' });
    expect(e).toEqual({ name: 'org.freedesktop.UDisks2.Error.NotAuthorizedCanObtain', message: 'Not authorized to perform operation' });
    expect(busError({ status: 1, stdout: '', stderr: 'Error connecting: Could not connect: No such file or directory\n' })).toEqual({
      name: '',
      message: 'Error connecting: Could not connect: No such file or directory',
    });
  });
});
