/**
 * Issue 13, a sibling of the path findings: root running vault with an environment a user made
 * (`su` without `-` keeps it). A user plants `losetup`, `mount`, `blkid`, `mkfs.ext4` and friends in
 * a directory of theirs and puts it first on PATH, with BLKID_CONF and LIBMOUNT_FSTAB pointing into
 * it too. vault must run the system's tools, with none of that environment: the planted programs
 * never run, and create, mount and dismount work.
 */
import { describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FAST_KDF, e2eSuite, ok, vault } from './harness.js';
import { localUser } from '../support/unprivileged.js';
import { TRUSTED_PATH, toolEnv, toolPath } from '../../src/mount/run.js';

const suite = e2eSuite('hardening-env');
const PW = 'environment is not trusted\n';
const TOOLS = ['losetup', 'mount', 'umount', 'blkid', 'wipefs', 'mkfs.ext4', 'e2fsck', 'fuser', 'lsof', 'findmnt', 'node'];

describe('tool PATH and environment', () => {
  it('as root only the directories root alone can write; otherwise the caller PATH plus sbin', () => {
    expect(toolPath(0)).toBe(TRUSTED_PATH);
    const saved = process.env.PATH;
    process.env.PATH = '/home/someone/bin:/usr/bin';
    try {
      expect(toolPath(0)).toBe(TRUSTED_PATH);
      expect(toolPath(1000).split(':').slice(0, 2)).toEqual(['/home/someone/bin', '/usr/bin']);
      expect(toolPath(1000).split(':')).toContain('/usr/sbin');
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe.runIf(suite.run)('a planted PATH and tool environment do not reach root', () => {
  it('create, mount and dismount run the system tools; the planted ones never run', () => {
    const user = localUser();
    const evil = path.join(suite.dir, 'evil-bin');
    mkdirSync(evil);
    const canary = path.join(evil, 'RAN');
    for (const t of TOOLS) {
      const f = path.join(evil, t);
      writeFileSync(f, `#!/bin/sh\necho "$0 $*" >> ${canary}\nexit 1\n`);
      chmodSync(f, 0o755);
    }
    writeFileSync(path.join(evil, 'blkid.conf'), 'EVALUATE=udev\n');
    chownSync(suite.dir, 0, 0);
    chmodSync(suite.dir, 0o755);
    for (const f of [evil, ...TOOLS.map((t) => path.join(evil, t))]) chownSync(f, user.uid, user.gid);

    const env = {
      PATH: `${evil}:${process.env.PATH ?? ''}`,
      BLKID_CONF: path.join(evil, 'blkid.conf'),
      LIBMOUNT_FSTAB: path.join(evil, 'fstab'),
      LIBMOUNT_DEBUG: 'all',
    };
    expect(toolEnv()).toEqual({ PATH: TRUSTED_PATH, LC_ALL: 'C' });
    const file = path.join(suite.dir, 'env.vol');
    const mp = path.join(suite.dir, 'mp');
    mkdirSync(mp);
    ok(vault(['create', file, '--size', '32M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW, env), 'create');
    const m = ok(vault(['mount', file, mp, '--password-stdin'], PW, env), 'mount');
    expect(m.stderr).not.toMatch(/libmount/i); // LIBMOUNT_DEBUG did not reach mount(8)
    writeFileSync(path.join(mp, 'f'), 'ok');
    ok(vault(['dismount', mp], '', env), 'dismount');
    expect(existsSync(canary) ? readFileSync(canary, 'utf8') : '').toBe('');
  });
});
