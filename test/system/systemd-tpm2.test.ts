/**
 * LUKS2 systemd-tpm2 tokens enrolled by the real systemd-cryptenroll (Debian bookworm's systemd
 * 252) against a real software TPM (swtpm), unsealed by vault (src/token/systemd-tpm2.ts over
 * native/tpm2.c): the passphrase vault derives opens the token's keyslot in vault's own LUKS2
 * reader with the same volume key as the typed passphrase; the PIN token wants its PIN; a PCR
 * extended after enrolment refuses the token; the policy digest systemd stored is the one
 * tpm2Seal computes. No root needed (cryptsetup and systemd-cryptenroll work on the image file).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { unlockVolume } from '../../src/formats/index.js';
import { parseJson } from '../../src/formats/luks/json.js';
import { luks2Adapter } from '../../src/formats/luks2/index.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';
import { parseSystemdTpm2Token, systemdTpm2Passphrase, type SystemdTpm2Token } from '../../src/token/systemd-tpm2.js';
import { tpm2Seal } from '../../src/token/tpm2.js';
import { commandExists, requirementsMet } from '../support/requirements.js';
import { workDir } from '../support/luks.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../support/swtpm.js';

const missing = [
  ...swtpmMissing(),
  ...['cryptsetup', 'systemd-cryptenroll'].filter((c) => !commandExists(c)).map((c) => `${c} (scripts/setup-system.sh --test)`),
];
const run = requirementsMet('systemd-tpm2', missing);
const PASSPHRASE = 'typed passphrase 4 tests';
const PIN = 'pin-1234';

/**
 * systemd-cryptenroll reads the existing passphrase from $PASSWORD and a new PIN from $NEWPIN (its
 * non-interactive interface; test values only). Returns the keyslot it enrolled. systemd 252 leaves
 * a session loaded in the TPM after a PIN enrolment (and others); /dev/tpmrm0 flushes them when it
 * exits, a bare swtpm does not and runs out of its 3 session slots, so flush them as tpmrm0 would.
 */
function enroll(file: string, tpm: Swtpm, args: string[], pin?: string): number {
  const env: NodeJS.ProcessEnv = { ...process.env, PASSWORD: PASSPHRASE, ...(pin !== undefined ? { NEWPIN: pin } : {}) };
  const r = spawnSync('systemd-cryptenroll', [`--tpm2-device=${tpm.tcti}`, ...args, file], { encoding: 'utf8', env, timeout: 60_000 });
  tpm.flushSessions();
  if (r.status !== 0) throw new Error(`systemd-cryptenroll ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const m = /enrolled as key slot (\d+)/.exec(r.stderr + r.stdout);
  if (!m) throw new Error(`systemd-cryptenroll did not say which slot: ${r.stderr}`);
  return Number(m[1]);
}

function tokenFor(file: string, slot: number): SystemdTpm2Token {
  for (let id = 0; id < 32; id++) {
    const r = spawnSync('cryptsetup', ['token', 'export', '--token-id', String(id), file], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const token = parseSystemdTpm2Token(parseJson(Buffer.from(r.stdout)), String(id));
    if (token.keyslots.includes(slot)) return token;
  }
  throw new Error(`no systemd-tpm2 token for keyslot ${slot} in ${file}`);
}

/** The volume key vault's LUKS2 reader gets from `passphrase` in `slot`, hex. */
async function volumeKey(file: string, passphrase: Buffer, slot: number): Promise<string> {
  const c = openContainer(file, true);
  try {
    const v = await unlockVolume(luks2Adapter, c, { passphrase, keyfiles: [] }, { readOnly: true, slot });
    try {
      return v.key.withBytes((k) => k.toString('hex'));
    } finally {
      v.key.dispose();
    }
  } finally {
    closeContainer(c);
  }
}

describe.runIf(run)('systemd-cryptenroll tokens unsealed by vault', () => {
  let tpm: Swtpm;
  let dir: string;
  let file: string;
  let typedKey: string;
  beforeAll(async () => {
    tpm = await startSwtpm();
    dir = workDir('systemd-tpm2');
    file = path.join(dir, 'luks2.img');
    writeFileSync(file, '');
    truncateSync(file, 24 << 20);
    const r = spawnSync('cryptsetup', ['--batch-mode', 'luksFormat', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-slot', '0', '--key-file', '-', file], { input: PASSPHRASE, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`luksFormat failed: ${r.stderr}`);
    typedKey = await volumeKey(file, Buffer.from(PASSPHRASE), 0);
  });
  afterAll(async () => {
    await tpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('unseals a PCR 7 token into the passphrase of its keyslot, with the policy tpm2Seal computes', async () => {
    const slot = enroll(file, tpm, ['--tpm2-pcrs=7']);
    const token = tokenFor(file, slot);
    expect(token.sealed).toMatchObject({ pcrBank: 'sha256', pcrs: [7], pin: false });
    const ours = await tpm2Seal(randomBytes(32), { tcti: tpm.tcti, pcrs: [7] });
    expect(token.sealed.policyHash.equals(ours.policyHash)).toBe(true);
    const passphrase = await systemdTpm2Passphrase(token, { tcti: tpm.tcti });
    expect(passphrase.toString('ascii')).toMatch(/^[A-Za-z0-9+/]{43}=$/); // base64 of 32 bytes
    // cryptsetup agrees, and vault's reader gets the volume key the typed passphrase gets.
    const check = spawnSync('cryptsetup', ['open', '--test-passphrase', '--key-slot', String(slot), '--key-file', '-', file], { input: passphrase });
    expect(check.status).toBe(0);
    expect(await volumeKey(file, passphrase, slot)).toBe(typedKey);
  });

  it('needs the PIN of a --tpm2-with-pin token, and refuses a wrong one', async () => {
    const slot = enroll(file, tpm, ['--tpm2-pcrs=7', '--tpm2-with-pin=yes'], PIN);
    const token = tokenFor(file, slot);
    expect(token.sealed.pin).toBe(true);
    await expect(systemdTpm2Passphrase(token, { tcti: tpm.tcti })).rejects.toMatchObject({ code: 'usage' });
    await expect(systemdTpm2Passphrase(token, { tcti: tpm.tcti, pin: Buffer.from('pin-1235') })).rejects.toMatchObject({ code: 'wrong-password' });
    const passphrase = await systemdTpm2Passphrase(token, { tcti: tpm.tcti, pin: Buffer.from(PIN) });
    expect(await volumeKey(file, passphrase, slot)).toBe(typedKey);
    expect(tpm.leftovers()).toEqual([]); // vault flushed every session it started, failures included
  });

  it('refuses a token bound to a PCR extended after enrolment', async () => {
    const slot = enroll(file, tpm, ['--tpm2-pcrs=7+16']);
    const token = tokenFor(file, slot);
    expect(token.sealed.pcrs).toEqual([7, 16]);
    tpm.extendPcr(16);
    await expect(systemdTpm2Passphrase(token, { tcti: tpm.tcti })).rejects.toMatchObject({ code: 'token-refused', message: /PCR policy/ });
    // The PCR 7 token from the first test is not bound to PCR 16 and still unseals.
  });
});
