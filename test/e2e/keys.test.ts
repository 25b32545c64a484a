/**
 * Issue 5, key management through the real CLI: passwd, keyslots, keyfiles, header backup, restore
 * and repair, crash injection at every header-write step, and --dump-master-key checked by an
 * independent decryption.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, fsyncSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { FAST_KDF, e2eSuite, ok, vault } from './harness.js';
import { secretForms, whereExposed } from './exposure.js';
import { parseRecoveryKey } from '../../src/crypto/recovery-key.js';
import { HOOKS_ARGV } from '../support/cli-hooks.js';

const suite = e2eSuite('keys');
const run = suite.run;
let n = 0;

function create(pw: string, fs = 'none', extra: string[] = []): string {
  const file = path.join(suite.dir, `k${n++}.vol`);
  ok(vault(['create', file, '--size', '24M', '--fs', fs, '--password-stdin', ...FAST_KDF, ...extra], pw + '\n'), 'create');
  return file;
}

/** Opens with `info --dump-master-key`: exit 0 if the secret unlocks, 3 if not. */
function opens(file: string, pw: string, keyfiles: string[] = []): number {
  return vault(['info', file, '--dump-master-key', '--password-stdin', ...keyfiles.flatMap((k) => ['--keyfile', k])], pw + '\n').status;
}

describe.runIf(run)('key management', () => {
  it('passwd: the old passphrase stops working and the new one works (unmounted)', () => {
    const file = create('old');
    const before = readFileSync(file).subarray(1 << 20, (1 << 20) + (22 << 20));
    ok(vault(['passwd', file, '--password-stdin', ...FAST_KDF], 'old\nnew\n'));
    expect(opens(file, 'old')).toBe(3);
    expect(opens(file, 'new')).toBe(0);
    // the data area is never touched
    expect(readFileSync(file).subarray(1 << 20, (1 << 20) + (22 << 20)).equals(before)).toBe(true);
    expect(vault(['passwd', file, '--password-stdin', ...FAST_KDF], 'wrong\nx\n').status).toBe(3);
  });

  it('passwd on a mounted volume: it keeps working, and the new passphrase mounts it next time', () => {
    const file = create('old', 'ext4');
    ok(vault(['mount', file, '--password-stdin'], 'old\n'));
    const mp = JSON.parse(ok(vault(['list', '--json'])).stdout)[0].mountpoint as string;
    writeFileSync(path.join(mp, 'a.txt'), 'before');
    ok(vault(['passwd', file, '--password-stdin', ...FAST_KDF], 'old\nnew\n'));
    writeFileSync(path.join(mp, 'b.txt'), 'after');
    ok(vault(['dismount', mp]));
    expect(vault(['mount', file, '--password-stdin'], 'old\n').status).toBe(3);
    ok(vault(['mount', file, '--password-stdin'], 'new\n'));
    expect(readFileSync(path.join(mp, 'a.txt'), 'utf8') + readFileSync(path.join(mp, 'b.txt'), 'utf8')).toBe('beforeafter');
    ok(vault(['dismount', mp]));
  });

  it('recovery key (vault enroll): printed once, mounts wherever a passphrase is asked, survives a re-encryption; --wipe-slot', () => {
    const file = create('first', 'ext4');
    const r = ok(vault(['enroll', file, '--recovery-key', '--password-stdin'], 'first\n'));
    const key = r.stdout.trim();
    expect(key).toMatch(/^([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}$/);
    expect(r.stderr).toMatch(/added a recovery key in keyslot 1; it is shown once/);
    const slots = JSON.parse(ok(vault(['keyslot', 'list', file, '--json'])).stdout) as Array<{ slot: number; token?: string | null }>;
    expect(slots.find((s) => s.slot === 1)?.token).toBe('recovery');
    // Typed as shown, or in capitals without dashes: it mounts, and the filesystem is there.
    const typed = key.toUpperCase().replace(/-/g, '');
    ok(vault(['mount', file, '--password-stdin'], `${typed}\n`));
    const mp = JSON.parse(ok(vault(['list', '--json'])).stdout).find((v: { container: string }) => v.container === file).mountpoint as string;
    // Neither the key (as shown, as typed) nor its 32 bytes show in the server's argv, environment or state files.
    const forms = [key, typed].flatMap((k) => secretForms(Buffer.from(k)));
    expect(whereExposed([...forms, ...secretForms(parseRecoveryKey(Buffer.from(key))!)])).toEqual([]);
    writeFileSync(path.join(mp, 'r.txt'), 'recovered');
    ok(vault(['dismount', mp]));
    // A re-encryption asks for each slot's secret in slot order; the recovery slot takes the key.
    ok(vault(['reencrypt', file, '--password-stdin'], `first\n${key}\n`));
    expect(opens(file, key)).toBe(0);
    expect(opens(file, 'first')).toBe(0);
    // One letter changed (not replace('c', …): a key without a 'c', 1 in ~60, stayed the same).
    expect(opens(file, `${key[0] === 'c' ? 'b' : 'c'}${key.slice(1)}`)).toBe(3);
    // --wipe-slot: by kind, with the passphrase; the last way in is refused (2) and nothing changes.
    ok(vault(['enroll', file, '--wipe-slot', '0', '--password-stdin'], `${key}\n`));
    expect(opens(file, 'first')).toBe(3);
    const before = readFileSync(file).subarray(0, 4096);
    const last = vault(['enroll', file, '--wipe-slot', 'recovery', '--password-stdin'], `${key}\n`);
    expect(last.status).toBe(2);
    expect(last.stderr).toMatch(/would leave no way to open this container/);
    expect(readFileSync(file).subarray(0, 4096).equals(before)).toBe(true);
    ok(vault(['mount', file, '--password-stdin'], `${key}\n`));
    expect(readFileSync(path.join(mp, 'r.txt'), 'utf8')).toBe('recovered');
    ok(vault(['dismount', mp]));
  });

  it('adds, uses and removes a keyslot; refuses to remove the last one without --force', () => {
    const file = create('first');
    const added = ok(vault(['keyslot', 'add', file, '--password-stdin', ...FAST_KDF], 'first\nsecond\n'));
    expect(added.stdout).toMatch(/added keyslot 1/);
    const slots = JSON.parse(ok(vault(['keyslot', 'list', file, '--json'])).stdout);
    expect(slots.filter((s: { state: string }) => s.state === 'active').map((s: { slot: number }) => s.slot)).toEqual([0, 1]);
    expect(opens(file, 'second')).toBe(0);
    const slot1Before = readFileSync(file).subarray(128 + 160, 128 + 320);
    ok(vault(['keyslot', 'remove', file, '--slot', '1', '--yes', '--password-stdin'], 'first\n'));
    expect(opens(file, 'second')).toBe(3);
    // the removed slot's bytes were overwritten with random data, not just flagged
    const slot1After = readFileSync(file).subarray(128 + 160, 128 + 320);
    expect(slot1After[0]).toBe(0);
    expect(slot1After.subarray(16, 160).equals(slot1Before.subarray(16, 160))).toBe(false);
    const last = vault(['keyslot', 'remove', file, '--slot', '0', '--password-stdin'], 'first\n');
    expect(last.status).toBe(2);
    expect(last.stderr).toMatch(/last one/);
    expect(last.stderr).toMatch(/unrecoverable/);
    expect(opens(file, 'first')).toBe(0);
    const forced = ok(vault(['keyslot', 'remove', file, '--slot', '0', '--force', '--password-stdin'], 'first\n'));
    expect(forced.stderr).toMatch(/unrecoverable/);
    expect(opens(file, 'first')).not.toBe(0);
  });

  it('keyfiles: keyfile only, passphrase plus keyfiles in any order, wrong or missing keyfile fails', () => {
    const k1 = path.join(suite.dir, 'kf1');
    const k2 = path.join(suite.dir, 'kf2');
    ok(vault(['keyfile', 'generate', k1]));
    ok(vault(['keyfile', 'generate', k2]));
    expect(statSync(k1).mode & 0o777).toBe(0o600);
    expect(statSync(k1).size).toBe(64);
    expect(vault(['keyfile', 'generate', k1]).status).toBe(2); // never overwrites
    const only = path.join(suite.dir, 'kfonly.vol');
    ok(vault(['create', only, '--size', '24M', '--fs', 'none', '--password-stdin', '--keyfile', k1, ...FAST_KDF], '\n'));
    expect(opens(only, '', [k1])).toBe(0);
    expect(opens(only, '', [k2])).toBe(3);
    const both = path.join(suite.dir, 'kfboth.vol');
    ok(vault(['create', both, '--size', '24M', '--fs', 'none', '--password-stdin', '--keyfile', k1, '--keyfile', k2, ...FAST_KDF], 'pw\n'));
    expect(opens(both, 'pw', [k1, k2])).toBe(0);
    expect(opens(both, 'pw', [k2, k1])).toBe(0); // order-independent (spec §4.2)
    expect(opens(both, 'pw', [k1])).toBe(3);
    expect(opens(both, 'pw')).toBe(3);
    expect(opens(both, 'px', [k1, k2])).toBe(3);
    expect(vault(['info', both, '--dump-master-key', '--password-stdin', '--keyfile', path.join(suite.dir, 'missing')], 'pw\n').status).toBe(2);
    // add a passphrase-only slot with a keyfile-protected one
    ok(vault(['keyslot', 'add', both, '--password-stdin', '--keyfile', k1, '--keyfile', k2, ...FAST_KDF], 'pw\nplain\n'));
    expect(opens(both, 'plain')).toBe(0);
  });

  it('header backup, both headers destroyed, restore, mount: the data is intact', () => {
    const file = create('pw', 'ext4');
    ok(vault(['mount', file, '--password-stdin'], 'pw\n'));
    const mp = JSON.parse(ok(vault(['list', '--json'])).stdout)[0].mountpoint as string;
    const payload = randomBytes(3 << 20);
    writeFileSync(path.join(mp, 'data.bin'), payload);
    ok(vault(['dismount', mp]));
    const backup = path.join(suite.dir, 'hdr.bak');
    ok(vault(['header', 'backup', file, backup]));
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(statSync(backup).size).toBe(8192);
    // an old backup still opens with the passphrases it held (as with LUKS)
    ok(vault(['passwd', file, '--password-stdin', ...FAST_KDF], 'pw\nchanged\n'));
    const size = statSync(file).size;
    const fd = openSync(file, 'r+');
    writeSync(fd, randomBytes(4096), 0, 4096, 0);
    writeSync(fd, randomBytes(4096), 0, 4096, size - 4096);
    fsyncSync(fd);
    closeSync(fd);
    const broken = vault(['mount', file, '--password-stdin'], 'changed\n');
    expect(broken.status).toBe(5);
    expect(broken.stderr).toMatch(/header restore/);
    const other = create('x');
    const wrong = vault(['header', 'restore', other, backup, '--force', '--password-stdin'], 'pw\n');
    expect(wrong.status, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(/belongs to container/);
    const noForce = vault(['header', 'restore', file, backup, '--password-stdin'], 'pw\n');
    expect(noForce.status).toBe(2); // no terminal to confirm on
    const restored = ok(vault(['header', 'restore', file, backup, '--force', '--password-stdin'], 'pw\n'));
    expect(restored.stdout).toMatch(/backup: sequence 1/);
    expect(vault(['mount', file, '--password-stdin'], 'changed\n').status).toBe(3); // the backup predates passwd
    ok(vault(['mount', file, '--password-stdin'], 'pw\n'));
    expect(readFileSync(path.join(mp, 'data.bin')).equals(payload)).toBe(true);
    ok(vault(['dismount', mp]));
  });

  it('a damaged primary: warning, automatic fallback to the secondary, and header repair', () => {
    const file = create('pw');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.from('garbage!'), 0, 8, 200);
    closeSync(fd);
    const info = vault(['info', file, '--dump-master-key', '--password-stdin'], 'pw\n');
    expect(info.status).toBe(0);
    expect(info.stderr).toMatch(/warning: primary header is damaged/);
    ok(vault(['header', 'repair', file, '--password-stdin'], 'pw\n'));
    const after = vault(['info', file, '--json']);
    expect(after.stderr).toBe('');
    expect(JSON.parse(after.stdout).headers).toEqual({ primary: 'valid, sequence 2', secondary: 'valid, sequence 2' });
    expect(ok(vault(['header', 'repair', file, '--password-stdin'], 'pw\n')).stdout).toMatch(/nothing to repair/);
  });

  describe('crash injection: killed at each header-write step, the container opens with the old or the new secret', () => {
    const commands: [string, (f: string) => string[], string, string, string][] = [
      ['passwd', (f) => ['passwd', f, '--password-stdin', ...FAST_KDF], 'old\nnew\n', 'old', 'new'],
      ['keyslot add', (f) => ['keyslot', 'add', f, '--password-stdin', ...FAST_KDF], 'old\nnew\n', 'old', 'new'],
      ['keyslot remove', (f) => ['keyslot', 'remove', f, '--slot', '1', '--yes', '--password-stdin'], 'old\n', 'other', 'old'],
      ['header repair', (f) => ['header', 'repair', f, '--password-stdin'], 'old\n', 'old', 'old'],
    ];
    for (const [name, args, input, before, after] of commands) {
      it(name, () => {
        // One starting state made with the CLI, copied fresh for each step (a create per step cost
        // a CLI start and 24 MiB of random fill each).
        const template = create('old');
        if (name === 'keyslot remove') ok(vault(['keyslot', 'add', template, '--password-stdin', ...FAST_KDF], 'old\nother\n'));
        if (name === 'header repair') {
          const fd = openSync(template, 'r+');
          writeSync(fd, Buffer.from('x'), 0, 1, 300);
          closeSync(fd);
        }
        for (let step = 1; step <= 4; step++) {
          const file = path.join(suite.dir, `k${n++}.vol`);
          copyFileSync(template, file);
          const r = vault(args(file), input, { VAULT_TEST_CRASH_AT: String(step), NODE_OPTIONS: HOOKS_ARGV.join(' ') });
          expect(r.status, `${name} step ${step}: ${r.stderr}`).not.toBe(0); // it really died at that step
          const oldOpens = opens(file, before) === 0;
          const newOpens = opens(file, after) === 0;
          expect(oldOpens || newOpens, `${name}, crash before step ${step}: opens with neither`).toBe(true);
        }
      });
    }
  });

  it('--dump-master-key: an independent XTS decryption of a sector equals what was written through the block device', () => {
    const file = create('pw', 'none', ['--sector-size', '4096']);
    const dev = ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], 'pw\n')).stdout.trim();
    const plain = randomBytes(4096);
    const fd = openSync(dev, 'r+');
    writeSync(fd, plain, 0, 4096, 5 * 4096); // sector 5
    fsyncSync(fd);
    closeSync(fd);
    ok(vault(['dismount', dev]));
    const dump = ok(vault(['info', file, '--dump-master-key', '--password-stdin'], 'pw\n'));
    expect(dump.stderr).toMatch(/warning/);
    const keyHex = dump.stdout.trim();
    expect(keyHex).toMatch(/^[0-9a-f]{128}$/);
    // spec §8: sector 5 of a 4096-byte-sector volume is at 1 MiB + 5·4096, tweak 5 as LE128.
    // `openssl enc` of OpenSSL 3.0 refuses XTS, so Debian's python3-cryptography (OpenSSL-backed) does it.
    const py = spawnSync('/usr/bin/python3', ['-c', `
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key = bytes.fromhex(sys.argv[1]); data = open(sys.argv[2], 'rb').read()[1048576 + 5*4096 : 1048576 + 6*4096]
d = Cipher(algorithms.AES(key), modes.XTS((5).to_bytes(16, 'little'))).decryptor()
sys.stdout.write((d.update(data) + d.finalize()).hex())
`, keyHex, file], { encoding: 'utf8' });
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe(plain.toString('hex'));
  });
});
