/**
 * src/system/capabilities.ts against the real thing: each probe's answer is checked against an
 * independent attempt to use the capability (a hard rlimit raised, an online ext4 resize, fio on
 * io_uring, cryptsetup on AF_ALG, /dev/uhid opened). Whatever the machine offers, each test
 * asserts that the probe tells the truth, and prints which branch this machine took.
 *
 * Needs root and loop devices; fails instead of skipping on CI.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  afAlgAvailable,
  effectiveCapabilities,
  fuseOverIoUring,
  hasCapability,
  ioUringPolicy,
  ioUringUsable,
  machineCapabilities,
  uhidAvailable,
} from '../../src/system/capabilities.js';
import { commandExists, requirementsMet } from '../support/requirements.js';

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/vault_native.node');

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push('root');
if (!existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
if (!existsSync(ADDON)) missing.push(ADDON);
for (const tool of ['bash', 'losetup', 'mkfs.ext4', 'resize2fs', 'fio', 'cryptsetup']) if (!commandExists(tool)) missing.push(tool);
const run = requirementsMet('capabilities', missing);

function sh(cmd: string, args: string[]) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
}

function branch(name: string, has: boolean | null, what: string): void {
  console.log(`[capability] ${name}: ${has === null ? 'unknown' : has ? 'present' : 'absent'}: ${what}`);
}

describe('capability parsing', () => {
  it('reads CapEff as a bit set', () => {
    const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n';
    const caps = effectiveCapabilities(status);
    expect(caps).toBe(0x1fffeffffffn);
    expect(hasCapability('CAP_SYS_RESOURCE', caps)).toBe(false); // bit 24 is the cleared one
    expect(hasCapability('CAP_SYS_ADMIN', caps)).toBe(true);
    expect(hasCapability('CAP_IPC_LOCK', caps)).toBe(true);
    expect(() => effectiveCapabilities('Name:\tnode\n')).toThrow(/CapEff/);
  });
});

describe.runIf(run)('capability probes tell the truth on this machine', () => {
  it('CAP_SYS_RESOURCE: raising a hard rlimit and PR_SET_IO_FLUSHER succeed exactly when it is present', () => {
    const has = hasCapability('CAP_SYS_RESOURCE');
    branch('CAP_SYS_RESOURCE', has, has ? 'hard rlimits rise, PR_SET_IO_FLUSHER works' : 'both must fail with EPERM');
    const raise = sh('bash', ['-c', 'h=$(ulimit -Hq) && ulimit -Hq $((h + 1))']);
    expect(raise.status === 0, raise.stderr).toBe(has);
    if (!has) expect(raise.stderr).toMatch(/not permitted/);
    // In a child, so that this process keeps its own flags.
    const flusher = sh(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(ADDON)}).setIoFlusher(true)))`]);
    expect(flusher.status, flusher.stderr).toBe(0);
    expect(Number(flusher.stdout)).toBe(has ? 0 : 1 /* EPERM */);
  });

  it('CAP_SYS_RESOURCE: an online ext4 resize works exactly when it is present', () => {
    const has = hasCapability('CAP_SYS_RESOURCE');
    branch('online ext4 resize', has, has ? 'resize2fs grows a mounted ext4' : 'resize2fs on a mounted ext4 must fail with EPERM');
    const dir = mkdtempSync(path.join(tmpdir(), 'vault-caps-'));
    const img = path.join(dir, 'fs.img');
    const mnt = path.join(dir, 'mnt');
    let dev = '';
    let mounted = false;
    try {
      expect(sh('mkdir', [mnt]).status).toBe(0);
      expect(sh('truncate', ['-s', '16M', img]).status).toBe(0);
      expect(sh('mkfs.ext4', ['-q', '-E', 'nodiscard', img]).status).toBe(0);
      dev = sh('losetup', ['--find', '--show', img]).stdout.trim();
      expect(dev).toMatch(/^\/dev\/loop\d+$/);
      expect(sh('mount', [dev, mnt]).status).toBe(0);
      mounted = true;
      expect(sh('truncate', ['-s', '32M', img]).status).toBe(0);
      expect(sh('losetup', ['--set-capacity', dev]).status).toBe(0);
      const r = sh('resize2fs', [dev]);
      expect(r.status === 0, r.stderr).toBe(has);
      if (!has) expect(r.stderr).toMatch(/Permission denied/);
      const blocks = Number(sh('df', ['--output=size', '-B1K', mnt]).stdout.split('\n')[1]);
      expect(blocks > 20_000).toBe(has);
    } finally {
      if (mounted) sh('umount', [mnt]);
      if (dev) sh('losetup', ['-d', dev]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('io_uring: fio on the io_uring engine works exactly when the policy lets this process use it', () => {
    const policy = ioUringPolicy();
    const usable = ioUringUsable(policy);
    const fuse = fuseOverIoUring();
    branch('io_uring', usable, `kernel.io_uring_disabled: ${policy}; FUSE over io_uring: ${fuse}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'vault-caps-'));
    try {
      const r = sh('fio', [
        '--name=probe', `--filename=${path.join(dir, 'f')}`, '--size=1M', '--rw=randread', '--bs=4k',
        '--ioengine=io_uring', '--output-format=terse', '--verify_state_save=0',
      ]);
      expect(r.status === 0, r.stderr).toBe(usable);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // The FUSE parameter exists exactly when the kernel was built with CONFIG_FUSE_IO_URING.
    expect(fuse === 'absent').toBe(!existsSync('/sys/module/fuse/parameters/enable_uring'));
  });

  it("AF_ALG: cryptsetup finds the kernel crypto interface exactly when the probe does", () => {
    const has = afAlgAvailable();
    expect(has).not.toBeNull(); // the addon is loaded here
    branch('AF_ALG', has, has ? 'cryptsetup benchmark runs on the kernel crypto API' : 'cryptsetup must say the kernel crypto interface is missing');
    const r = sh('cryptsetup', ['benchmark', '--cipher', 'aes-xts-plain64', '--key-size', '512']);
    expect(/Required kernel crypto interface not available/.test(r.stdout + r.stderr)).toBe(!has);
  });

  it('UHID: /dev/uhid opens exactly when the probe says it exists', () => {
    const has = uhidAvailable();
    branch('UHID', has, has ? '/dev/uhid opens' : 'no /dev/uhid');
    let opened = false;
    try {
      closeSync(openSync('/dev/uhid', 'r+'));
      opened = true;
    } catch {
      opened = false;
    }
    expect(opened).toBe(has);
  });

  it('machineCapabilities() lists every probe, each with a reason', () => {
    const list = machineCapabilities();
    expect(list.map((c) => c.name)).toEqual(['CAP_SYS_RESOURCE', 'io_uring', 'FUSE over io_uring', 'AF_ALG', 'UHID']);
    for (const c of list) {
      expect(c.detail.length).toBeGreaterThan(0);
      expect(c.uses.length).toBeGreaterThan(0);
    }
    expect(list[0]!.available).toBe(hasCapability('CAP_SYS_RESOURCE'));
    expect(list[3]!.available).toBe(afAlgAvailable());
    expect(list[4]!.available).toBe(uhidAvailable());
  });
});
