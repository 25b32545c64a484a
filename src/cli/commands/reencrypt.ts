import type { Command } from 'commander';
import { parseRecoveryKey } from '../../crypto/recovery-key.js';
import { VaultError, isVaultError } from '../../errors.js';
import { KEYSLOT_COUNT, type SectorSize } from '../../format/constants.js';
import type { Header } from '../../format/types.js';
import { wipe } from '../../crypto/wipe.js';
import { candidateHeaders, readHeaderCopies, unlockContainer } from '../../volume/container.js';
import type { ContainerFile } from '../../volume/container-file.js';
import { lockHeaderUpdates } from '../../volume/header-lock.js';
import { activeSlots } from '../../volume/reencrypt/staged.js';
import { resumeReencryption, startReencryption, type RunOptions } from '../../volume/reencrypt/run.js';
import { lockContainer } from '../../mount/lifecycle.js';
import { info, progress, warn } from '../output.js';
import { gatherKdfInput, kdfInputFrom, readPassphrases, type SecretOptions } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { abortOnSignals } from '../signals.js';
import { withVaultContainer } from '../unlock.js';

interface ReencryptOptions extends SecretOptions {
  sectorSize?: string;
  resume?: boolean;
  slotKeyfile?: string[];
}

const collect = (v: string, acc: string[] = []) => [...acc, v];

export function registerReencrypt(program: Command): void {
  const cmd = program
    .command('reencrypt <container>')
    .description('re-encrypt every sector under a new master key (optionally another sector size), offline and resumable; every keyslot keeps its passphrase')
    .option('--sector-size <bytes>', 'the new sector size: 512 or 4096 (default: keep it)')
    .option('--resume', 'finish an interrupted re-encryption (one keyslot\'s secret is enough)')
    .option('--slot-keyfile <n:file>', 'a keyfile of keyslot n, when starting (repeatable)', collect);
  withSecretOptions(cmd).action(async (container: string, o: ReencryptOptions) => {
    const sectorSize = parseSectorSize(o.sectorSize);
    const slotKeyfiles = parseSlotKeyfiles(o.slotKeyfile ?? []);
    await withVaultContainer(container, 'vault reencrypt', false, async (c) => {
      lockContainer(c); // a mounted container is held by its server: exit 4
      const release = lockHeaderUpdates(c);
      const { signal, dispose } = abortOnSignals();
      const started = Date.now();
      const run: RunOptions = { signal, onProgress: (done, total) => progress('re-encrypting', done, total, started) };
      try {
        const { candidates, warnings } = candidateHeaders(c, readHeaderCopies(c));
        for (const w of warnings) warn(w);
        const h = candidates[0]!;
        const done = h.reencrypt ? await resume(c, h, o, sectorSize, run) : await start(c, h, o, sectorSize, slotKeyfiles, run);
        const slots = activeSlots(done);
        info(`re-encrypted ${c.path} under a new master key (${done.sectorSize}-byte sectors); ${slots.length === 1 ? 'keyslot' : 'keyslots'} ${slots.join(', ')} ${slots.length === 1 ? 'opens' : 'open'} it with the same passphrase and keyfiles`);
      } catch (e) {
        throw ioError(c, e);
      } finally {
        dispose();
        release();
      }
    });
  });
}

function parseSectorSize(v: string | undefined): SectorSize | undefined {
  if (v === undefined) return undefined;
  if (v !== '512' && v !== '4096') throw new VaultError('usage', '--sector-size must be 512 or 4096');
  return Number(v) as SectorSize;
}

function parseSlotKeyfiles(list: string[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const v of list) {
    const m = /^(\d+):(.+)$/.exec(v);
    if (!m || Number(m[1]) >= KEYSLOT_COUNT) throw new VaultError('usage', `--slot-keyfile takes N:FILE with N from 0 to ${KEYSLOT_COUNT - 1}, got "${v}"`);
    out.set(Number(m[1]), [...(out.get(Number(m[1])) ?? []), m[2]!]);
  }
  return out;
}

async function resume(c: ContainerFile, h: Header, o: ReencryptOptions, sectorSize: SectorSize | undefined, run: RunOptions): Promise<Header> {
  if (sectorSize !== undefined && sectorSize !== h.reencrypt!.newSectorSize)
    throw new VaultError('usage', `the unfinished re-encryption goes to ${h.reencrypt!.newSectorSize}-byte sectors, not ${sectorSize}`, 'resume it without --sector-size');
  if (o.slotKeyfile?.length) throw new VaultError('usage', 'resuming needs one secret: give its keyfiles with --keyfile');
  if (!o.resume) info('an unfinished re-encryption was found; resuming it');
  const u = await unlockContainer(c, gatherKdfInput(o), undefined, true);
  try {
    return await resumeReencryption(c, u, run);
  } finally {
    wipe(u.masterKey, u.newMasterKey);
  }
}

/** A fresh run: one secret per active keyslot (stdin: one line each, in slot order), so every slot is re-wrapped. */
async function start(c: ContainerFile, h: Header, o: ReencryptOptions, sectorSize: SectorSize | undefined, slotKeyfiles: Map<number, string[]>, run: RunOptions): Promise<Header> {
  if (o.resume) throw new VaultError('usage', `${c.path} has no unfinished re-encryption to resume`, 'start one without --resume');
  if (o.keyfile?.length) throw new VaultError('usage', '--keyfile is for --resume; give each keyslot\'s keyfiles with --slot-keyfile N:FILE');
  const slots = activeSlots(h);
  for (const n of slotKeyfiles.keys()) if (!slots.includes(n)) throw new VaultError('usage', `--slot-keyfile ${n}: keyslot ${n} is not active`);
  const device = (h.tokens ?? []).find((t) => t.type !== 'recovery');
  if (device)
    throw new VaultError(
      'usage',
      `keyslot ${device.slot} holds a ${device.type.toUpperCase()} token, whose secret a re-encryption cannot ask for`,
      `wipe it first (\`vault enroll --wipe-slot ${device.slot}\`) and enrol the token again afterwards`,
    );
  const recovery = new Set((h.tokens ?? []).map((t) => t.slot));
  const prompts = slots.map((i) => `${recovery.has(i) ? 'Recovery key' : 'Passphrase'} of keyslot ${i}${slotKeyfiles.has(i) ? ' (empty if none)' : ''}: `);
  const pws = readPassphrases(o, prompts);
  const inputs = new Map<number, Buffer>();
  try {
    slots.forEach((i, k) => {
      // A recovery slot's KDF input is the key's 32-byte secret (spec §14.2), however it was typed.
      const secret = recovery.has(i) && !slotKeyfiles.has(i) ? parseRecoveryKey(pws[k]!) : null;
      inputs.set(i, secret ?? kdfInputFrom(pws[k]!, slotKeyfiles.get(i)));
    });
  } catch (e) {
    wipe(...pws, ...inputs.values());
    throw e;
  }
  return startReencryption(c, h, inputs, sectorSize ?? h.sectorSize, run);
}

/** A disk error (a full disk, a read-only file) is exit 7 with what to do next. */
function ioError(c: ContainerFile, e: unknown): unknown {
  if (isVaultError(e) || !(e instanceof Error) || !('code' in e)) return e;
  const code = String((e as NodeJS.ErrnoException).code);
  return new VaultError('io', `cannot re-encrypt ${c.path}: ${code} (${e.message})`, code === 'ENOSPC' ? 'free some space on its filesystem, then run the command again' : 'fix the disk error, then run `vault reencrypt --resume` if it had started');
}
