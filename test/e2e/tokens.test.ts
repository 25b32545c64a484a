/**
 * Issue 19 end to end: `vault enroll --tpm2 / --fido2` and `vault mount` unlocking with the token
 * first, against the real software TPM (swtpm, reached by TCTI) and a software FIDO2 authenticator
 * spoken to by the real libfido2 (only the device is simulated: test/support/fido2-authenticator).
 * Every refusal falls back to the passphrase (or fails with --token-only) and changes nothing; no
 * PIN or recovery key given at a mount shows in its server's argv, environment or state files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FAST_KDF, e2eSuite, ok, sha256File, vault } from './harness.js';
import { secretForms, whereExposed } from './exposure.js';
import { requirementsMet } from '../support/requirements.js';
import { connects, startSwtpm, swtpmMissing, type Swtpm } from '../support/swtpm.js';
import { startSim, type Sim } from '../support/fido2-sim.js';
import { enrolLikeSystemd, SYSTEMD_FIDO2_PASSPHRASE } from '../support/systemd-fido2.js';

const suite = e2eSuite('tokens');
const run = suite.run && requirementsMet('tokens', swtpmMissing());
const PW = 'token test passphrase';
let n = 0;
let template = '';

/** A new container with passphrase PW only: a copy of one made once (the tests add their own tokens). */
function create(): string {
  if (!template) {
    template = path.join(suite.dir, 'template.vol');
    ok(vault(['create', template, '--size', '8M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], `${PW}\n`), 'create');
  }
  const file = path.join(suite.dir, `t${n++}.vol`);
  copyFileSync(template, file);
  return file;
}

/** `vault mount --no-filesystem`, then (after `whileMounted`) dismount at once: the result of the mount. */
function mountOnce(file: string, args: string[], input = '', whileMounted?: () => void) {
  const r = vault(['mount', file, '--no-filesystem', ...args], input);
  if (r.status === 0)
    try {
      whileMounted?.();
    } finally {
      ok(vault(['dismount', r.stdout.trim()]), 'dismount');
    }
  return r;
}

/** A PIN nothing else contains by chance (what the leak checks look for). */
const uniquePin = () => `pin-${randomBytes(6).toString('hex')}`;

/** The mounted volume's server and state files hold no form of `secret` (given on stdin). */
const notExposed = (secret: string) => () => expect(whereExposed(secretForms(Buffer.from(secret))), `${secret} appears there`).toEqual([]);

const headers = (file: string) => {
  const b = readFileSync(file);
  return Buffer.concat([b.subarray(0, 4096), b.subarray(b.length - 4096)]);
};

describe.runIf(run)('TPM2 tokens (swtpm)', () => {
  let tpm: Swtpm;
  beforeAll(async () => (tpm = await startSwtpm()));
  afterAll(async () => tpm?.stop());

  it('enrol under PCR 16; mount unseals it without a passphrase; a changed PCR refuses it and the passphrase still works; no TPM (at a TCTI, or by the default search): refused, the passphrase opens', async () => {
    const file = create();
    const dev = ['--tpm2-device', tpm.tcti];
    const e = ok(vault(['enroll', file, '--tpm2', '--tpm2-pcrs', '16', ...dev, '--password-stdin'], `${PW}\n`));
    expect(e.stdout).toMatch(/added a TPM2 token in keyslot 1/);
    const slots = JSON.parse(ok(vault(['keyslot', 'list', file, '--json'])).stdout) as Array<{ slot: number; token?: string | null }>;
    expect(slots.find((s) => s.slot === 1)?.token).toBe('tpm2');
    const t = mountOnce(file, ['--token-only', ...dev]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/unlocked with the TPM2 token in keyslot 1/);
    // The PCR changes (as after a firmware or boot-chain change): the TPM refuses, nothing changes.
    const before = headers(file);
    tpm.extendPcr(16);
    const refused = mountOnce(file, ['--token-only', ...dev]);
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/TPM2 token in keyslot 1 did not unlock: .*(PCR|policy)/i);
    expect(headers(file).equals(before)).toBe(true);
    const fallback = mountOnce(file, [...dev, '--password-stdin'], `${PW}\n`);
    expect(fallback.status, fallback.stderr).toBe(0);
    expect(fallback.stderr).toMatch(/did not unlock/);
    // No TPM at the given TCTI: the token is refused with its reason (--token-only: 3); nothing changes.
    const absent = mountOnce(file, ['--token-only', '--tpm2-device', 'swtpm:host=127.0.0.1,port=1']);
    expect(absent.status).toBe(3);
    expect(absent.stderr).toMatch(/TPM2 token in keyslot 1 did not unlock: no TPM answers at TCTI 'swtpm:host=127\.0\.0\.1,port=1'/);
    expect(headers(file).equals(before)).toBe(true);
    // No --tpm2-device: tpm2-tss's own search (/dev/tpmrm0, /dev/tpm0, localhost:2321) finds no TPM
    // here; the note says where it looked, and the passphrase opens.
    const found = ['/dev/tpmrm0', '/dev/tpm0'].filter((d) => existsSync(d));
    if ((await connects(2321, '127.0.0.1')) || (await connects(2321, '::1'))) found.push('a TPM simulator on localhost:2321');
    if (requirementsMet('tokens (the default TPM search finding no TPM)', found.map((f) => `a machine without ${f}`))) {
      const search = mountOnce(file, ['--password-stdin'], `${PW}\n`);
      expect(search.status, search.stderr).toBe(0);
      expect(search.stderr).toMatch(/TPM2 token in keyslot 1 did not unlock: no TPM answers \(tpm2-tss looked for \/dev\/tpmrm0, \/dev\/tpm0 and a simulator on localhost:2321\)/);
      expect(headers(file).equals(before)).toBe(true);
    }
    // --no-tokens never asks the TPM; --wipe-slot tpm2 removes it.
    const none = mountOnce(file, ['--no-tokens', ...dev, '--password-stdin'], `${PW}\n`);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stderr).not.toMatch(/TPM2/);
    ok(vault(['enroll', file, '--wipe-slot', 'tpm2', '--password-stdin'], `${PW}\n`));
    expect(mountOnce(file, ['--token-only', ...dev]).status).toBe(3);
  });

  it('with a PIN: the right PIN unseals (and shows nowhere), a wrong one is refused (3) and changes nothing, and the passphrase still opens', () => {
    const file = create();
    const dev = ['--tpm2-device', tpm.tcti];
    const pin = uniquePin();
    ok(vault(['enroll', file, '--tpm2', '--tpm2-pin', '--tpm2-pcrs', '', ...dev, '--password-stdin'], `${PW}\n${pin}\n`));
    const right = mountOnce(file, ['--token-only', '--token-pin-stdin', ...dev], `${pin}\n`, notExposed(pin));
    expect(right.status, right.stderr).toBe(0);
    const before = headers(file);
    const wrong = mountOnce(file, ['--token-only', '--token-pin-stdin', ...dev], '1234\n');
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toMatch(/wrong TPM2 PIN/);
    expect(headers(file).equals(before)).toBe(true);
    // A script with --password-stdin has no PIN to give: the token is skipped, the passphrase opens.
    expect(mountOnce(file, [...dev, '--password-stdin'], `${PW}\n`).status).toBe(0);
  });
});

describe.runIf(run)('LUKS2 containers enrolled by the real systemd-cryptenroll (swtpm)', () => {
  let tpm: Swtpm;
  beforeAll(async () => (tpm = await startSwtpm()));
  afterAll(async () => tpm?.stop());

  it('systemd-tpm2: vault mount unseals it (--token-only); a changed PCR falls back; systemd-recovery: its key typed as the passphrase', () => {
    const file = path.join(suite.dir, 'systemd.luks');
    writeFileSync(file, Buffer.alloc(20 << 20));
    const fmt = spawnSync('cryptsetup', ['--batch-mode', 'luksFormat', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-', file], { input: PW, encoding: 'utf8' });
    expect(fmt.status, fmt.stderr).toBe(0);
    // systemd-cryptenroll's non-interactive interface: the existing passphrase in $PASSWORD (a test value).
    const enroll = (args: string[]) => {
      const r = spawnSync('systemd-cryptenroll', [...args, file], { encoding: 'utf8', env: { ...process.env, PASSWORD: PW }, timeout: 60_000 });
      tpm.flushSessions(); // systemd 252 leaves sessions loaded; /dev/tpmrm0 would flush them
      expect(r.status, r.stderr).toBe(0);
      return r;
    };
    enroll([`--tpm2-device=${tpm.tcti}`, '--tpm2-pcrs=16']);
    const recovery = enroll(['--recovery-key']).stdout.match(/([cbdefghijklnrtuv]{8}-){7}[cbdefghijklnrtuv]{8}/)?.[0];
    expect(recovery).toBeDefined();
    const dev = ['--tpm2-device', tpm.tcti];
    const t = mountOnce(file, ['--token-only', ...dev]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/unlocked with the systemd-tpm2 token 0 \(keyslot 1\)/);
    tpm.extendPcr(16);
    expect(mountOnce(file, ['--token-only', ...dev]).status).toBe(3);
    const viaRecovery = mountOnce(file, [...dev, '--password-stdin'], `${recovery}\n`, notExposed(recovery!));
    expect(viaRecovery.status, viaRecovery.stderr).toBe(0);
    expect(viaRecovery.stderr).toMatch(/systemd-tpm2 token 0 did not unlock/);
  });
});

describe.runIf(run)('FIDO2 tokens (libfido2 and a software authenticator)', () => {
  let dir = '';
  const sims: Sim[] = [];
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), `vault-e2e-fido2-${process.env.VAULT_E2E_TAG ?? ''}`));
    chmodSync(dir, 0o700);
  });
  afterAll(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  const sim = async (name: string, o: Parameters<typeof startSim>[2] = {}) => {
    const s = await startSim(dir, name, o);
    sims.push(s);
    return s;
  };
  // Keys several tests use, started by the first that needs one (a start costs a second or two).
  const KEY_PIN = uniquePin();
  const shared = new Map<string, Promise<Sim>>();
  const sharedSim = (which: 'plain' | 'pinned') => {
    if (!shared.has(which)) shared.set(which, sim(which, which === 'pinned' ? { pin: KEY_PIN } : {}));
    return shared.get(which)!;
  };

  it('enrol; mount asks the key; the wrong key, presence denied and a removed key are refused and fall back; a corrupted token slot is caught', async () => {
    const key = await sim('key');
    const file = create();
    const e = ok(vault(['enroll', file, '--fido2', '--fido2-device', key.device, '--password-stdin'], `${PW}\n`));
    expect(e.stdout).toMatch(/added a FIDO2 token in keyslot 1/);
    const t = mountOnce(file, ['--token-only', '--fido2-device', key.device]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/unlocked with the FIDO2 token in keyslot 1/);
    const before = headers(file);
    const other = await sharedSim('plain');
    const wrongKey = mountOnce(file, ['--token-only', '--fido2-device', other.device]);
    expect(wrongKey.status).toBe(3);
    expect(wrongKey.stderr).toMatch(/FIDO2 token in keyslot 1 did not unlock/);
    const denied = await sim('denied', { master: key.master, presence: 'deny' });
    const notTouched = mountOnce(file, ['--token-only', '--fido2-device', denied.device]);
    expect(notTouched.status).toBe(3);
    expect(notTouched.stderr).toMatch(/FIDO2 token in keyslot 1 did not unlock: the security key \S+ was not touched \(user presence not confirmed\)/);
    await key.stop();
    const removed = mountOnce(file, ['--fido2-device', key.device, '--password-stdin'], `${PW}\n`);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stderr).toMatch(/FIDO2 token in keyslot 1 did not unlock/);
    expect(headers(file).equals(before)).toBe(true);
    // A corrupted token (a credential id byte flipped in both copies, checksums made right again):
    // the key knows no such credential, and once the passphrase opens the slot the MAC catches the edit.
    const corrupt = readFileSync(file);
    for (const at of [0, corrupt.length - 4096]) {
      corrupt[at + 2248 + 4 + 2 + 'io.vault'.length + 2 + 5]! ^= 0x40;
      createHash('sha256').update(corrupt.subarray(at, at + 4064)).digest().copy(corrupt, at + 4064);
    }
    writeFileSync(file, corrupt);
    const key2 = await sim('key2', { master: key.master });
    const bad = mountOnce(file, ['--fido2-device', key2.device, '--password-stdin'], `${PW}\n`);
    expect(bad.status).toBe(5);
    expect(bad.stderr).toMatch(/FIDO2 token in keyslot 1 did not unlock/);
    expect(bad.stderr).toMatch(/header failed authentication: it was modified/);
    expect(readFileSync(file).equals(corrupt)).toBe(true);
  });

  it('with the key\'s PIN: given on stdin it unlocks (and shows nowhere); a wrong PIN is refused (3)', async () => {
    const key = await sharedSim('pinned');
    const file = create();
    ok(vault(['enroll', file, '--fido2', '--fido2-pin', '--fido2-device', key.device, '--password-stdin'], `${PW}\n${KEY_PIN}\n`));
    expect(mountOnce(file, ['--token-only', '--token-pin-stdin', '--fido2-device', key.device], `${KEY_PIN}\n`, notExposed(KEY_PIN)).status).toBe(0);
    const wrong = mountOnce(file, ['--token-only', '--token-pin-stdin', '--fido2-device', key.device], '1111\n');
    expect(wrong.status).toBe(3);
  });

  it('--fido2-uv on a key with built-in user verification: the slot records UV (spec §14.4), and mount unlocks with the key alone', async () => {
    const key = await sim('uv', { uv: true });
    const file = create();
    const e = ok(vault(['enroll', file, '--fido2', '--fido2-uv', '--fido2-device', key.device, '--password-stdin'], `${PW}\n`));
    expect(e.stdout).toMatch(/added a FIDO2 token in keyslot 1/);
    const b = readFileSync(file);
    for (const at of [0, b.length - 4096]) {
      expect([...b.subarray(at + 2248, at + 2250)]).toEqual([3, 1]); // a FIDO2 token (type 3) for keyslot 1
      expect(b[at + 2248 + 4]).toBe(0b011); // its flags: user presence and user verification required, no PIN
    }
    // The key's hmac-secret differs with and without UV (CTAP 2.1 §12.5): the slot opens only if mount asks with UV too.
    const t = mountOnce(file, ['--token-only', '--fido2-device', key.device]);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/unlocked with the FIDO2 token in keyslot 1/);
  });

  it('LUKS2 with a systemd-fido2 token (JSON as systemd-cryptenroll writes it): the key and its PIN from stdin unlock (--token-only); another key falls back to the passphrase, or with --token-only fails (3)', async () => {
    const pinKey = await sharedSim('pinned');
    const locked = await enrolLikeSystemd(suite.dir, 'fido2-pin.luks', pinKey, { pin: KEY_PIN });
    const t = mountOnce(locked.file, ['--token-only', '--token-pin-stdin', '--fido2-device', pinKey.device], `${KEY_PIN}\n`, notExposed(KEY_PIN));
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/unlocked with the systemd-fido2 token 0 \(keyslot 1\)/);
    // A token without a PIN, tried with another key (pinKey holds no credential of it).
    const plain = await enrolLikeSystemd(suite.dir, 'fido2.luks', await sharedSim('plain'), {});
    const before = sha256File(plain.file);
    const wrongKey = /systemd-fido2 token 0 did not unlock: the security key \S+ does not hold this keyslot's credential/;
    const fallback = mountOnce(plain.file, ['--fido2-device', pinKey.device, '--password-stdin'], `${SYSTEMD_FIDO2_PASSPHRASE}\n`);
    expect(fallback.status, fallback.stderr).toBe(0);
    expect(fallback.stderr).toMatch(wrongKey);
    const only = mountOnce(plain.file, ['--token-only', '--fido2-device', pinKey.device]);
    expect(only.status).toBe(3);
    expect(only.stderr).toMatch(wrongKey);
    expect(only.stderr).toMatch(/no token unlocked the container \(--token-only\)/);
    expect(sha256File(plain.file)).toBe(before);
  });
});
