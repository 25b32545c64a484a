import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { mountVolume, type MountOptions } from '../../mount/lifecycle.js';
import { keyfilePolicy, type FormatAdapter, type UnlockSecret } from '../../formats/types.js';
import { addFormatOptions, formatChoice, type FormatCliOptions } from '../format-options.js';
import { info, progress, warn } from '../output.js';
import { withSecretOptions } from '../secret-options.js';
import { invokingUser } from '../owner.js';
import { abortOnSignals } from '../signals.js';
import { loadDefaultPolicy } from '../config.js';
import { parseDuration, parseTriggers, type DismountPolicy } from '../../mount/policy.js';
import { parseRoute } from '../../mount/route.js';
import { checkDiscardOptions, type DiscardSource } from '../../mount/discards.js';
import { addMountTokenOptions, mountTokens, type MountTokenCli } from '../token-options.js';

interface MountCliOptions extends FormatCliOptions, MountTokenCli {
  readOnly?: boolean;
  fsOptions?: string;
  filesystem: boolean; // commander's --no-filesystem
  passwordStdin?: boolean;
  keyfile?: string[];
  dismountOn?: string;
  idle?: string;
  allowFs?: string[];
  via?: string;
  allowDiscards?: boolean; // --allow-discards / --no-allow-discards; undefined: the config file's
  protectHidden?: boolean;
  protectHiddenKeyfile?: string[];
  allowLegacyWrite?: boolean;
}

/** --protect-hidden's combinations, checked before anything is asked. */
function checkProtectHidden(o: MountCliOptions): void {
  if (o.protectHiddenKeyfile && !o.protectHidden) throw new VaultError('usage', '--protect-hidden-keyfile applies only with --protect-hidden');
  if (!o.protectHidden) return;
  if (o.hidden) throw new VaultError('usage', '--protect-hidden protects the hidden volume while the outer one is mounted: it does not go with --hidden');
  if (o.readOnly) throw new VaultError('usage', '--read-only already keeps every write away from the hidden volume: drop --protect-hidden');
}

/** The config file's defaults, overridden flag by flag. Checked before any passphrase is asked. */
function policyFor(o: MountCliOptions): { policy: DismountPolicy; allowDiscards: DiscardSource | undefined } {
  // The flags first: a bad value is a usage error whatever the config file holds.
  const dismountOn = o.dismountOn !== undefined ? parseTriggers(o.dismountOn.split(','), '--dismount-on') : undefined;
  const idleSeconds = o.idle !== undefined ? parseDuration(o.idle, '--idle') : undefined;
  const defaults = loadDefaultPolicy();
  const discards = o.allowDiscards ?? defaults.allowDiscards;
  return {
    policy: {
      dismountOn: dismountOn ?? defaults.dismountOn,
      idleSeconds: idleSeconds !== undefined ? idleSeconds : defaults.idleSeconds,
    },
    allowDiscards: discards ? (o.allowDiscards ? 'flag' : 'config') : undefined,
  };
}

/** The secret callbacks of mountVolume: one secret, or with --protect-hidden the outer and hidden ones read together. */
function secretsFor(o: MountCliOptions): Pick<MountOptions, 'secret' | 'protectHidden'> {
  // Loaded when needed: the secrets code pulls in the KDF, and the server launches before that.
  if (!o.protectHidden) return { secret: async (adapter) => (await import('../secrets.js')).gatherSecret(o, keyfilePolicy(adapter)) };
  let both: Promise<[UnlockSecret, UnlockSecret]> | undefined;
  const pair = (adapter: FormatAdapter) => (both ??= import('../secrets.js').then((m) => m.gatherOuterAndHidden(o, keyfilePolicy(adapter), o.protectHiddenKeyfile)));
  return { secret: async (a) => (await pair(a))[0], protectHidden: async (a) => (await pair(a))[1] };
}

export function registerMount(program: Command): void {
  const cmd = program
    .command('mount <container> [mountpoint]')
    .description('unlock a container (vault, LUKS2, LUKS1, VeraCrypt, TrueCrypt) and mount its filesystem (default mount point: /media/vault/<user>/<name> as root, /media/<user>/… through udisks, ~/Vaults/<name> through fuse)')
    .option('--read-only', 'open the container, the loop device and the filesystem read-only')
    .option('--fs-options <opts>', 'extra mount options for the filesystem, comma-separated')
    .option('--no-filesystem', 'only attach the decrypted block device and print its path')
    .option('--allow-discards', 'let fstrim and discard mounts punch holes in the container (frees space; reveals which sectors are free, see README "TRIM"); vault format, as root')
    .option('--no-allow-discards', 'refuse discards even if the config file allows them (the default)');
  withSecretOptions(cmd)
    .option('--dismount-on <events>', 'dismount on these events, seen by `vault watch`: lock, sleep, comma-separated, or none')
    .option('--idle <duration>', 'dismount after this long without I/O, e.g. 15m, 30s, 1h30m, or off')
    .option('--via <route>', 'as an ordinary user: udisks (kernel filesystem, needs `vault setup-rootless`) or fuse (fuse2fs, needs nothing); default: the first that works')
    .option('--allow-fs <type>', 'also mount this filesystem type (default: only ext4, vfat, exfat); repeatable', (v: string, acc: string[] = []) => [...acc, ...v.split(',')])
    .option('--protect-hidden', "VeraCrypt/TrueCrypt: mount the outer volume but refuse every write into the hidden volume inside; asks for the hidden volume's password too (--password-stdin: outer first line, hidden second)")
    .option('--protect-hidden-keyfile <file>', "a keyfile of the hidden volume's secret, with --protect-hidden (repeatable)", (v: string, acc: string[] = []) => [...acc, v])
    .option('--allow-legacy-write', 'TrueCrypt before 5.0 (LRW, CBC): mount read-write despite the modes\' weaknesses (default: read-only, with a warning)');
  addMountTokenOptions(cmd);
  addFormatOptions(cmd).action(async (container: string, mountpoint: string | undefined, o: MountCliOptions) => {
    if (!o.filesystem && (mountpoint !== undefined || o.fsOptions !== undefined))
      throw new VaultError('usage', `--no-filesystem mounts no filesystem: it takes no ${mountpoint !== undefined ? 'mount point' : '--fs-options'}`, 'drop one or the other');
    const choice = formatChoice(o);
    // One copy chosen over the other is for looking at it: writes wait for a repair (spec §6).
    const readOnly = !!o.readOnly || choice.headerCopy !== undefined;
    if (readOnly && !o.readOnly) process.stderr.write('vault: --header-copy mounts read-only; `vault header repair --header-copy <copy>` makes both copies that one, after which the volume mounts read-write\n');
    checkProtectHidden(o);
    const via = parseRoute(o.via);
    const { policy, allowDiscards } = policyFor(o);
    const tokens = mountTokens(o, (m) => process.stderr.write(`vault: ${m}\n`));
    checkDiscardOptions({ readOnly, ...(allowDiscards ? { allowDiscards } : {}), ...(o.fsOptions ? { fsOptions: o.fsOptions } : {}) });
    const { signal, dispose } = abortOnSignals();
    let started: number | undefined;
    try {
      const owner = invokingUser();
      const r = await mountVolume({
        container,
        ...(mountpoint ? { mountpoint } : {}),
        readOnly,
        ...(o.fsOptions ? { fsOptions: o.fsOptions } : {}),
        noFilesystem: !o.filesystem,
        ...secretsFor(o),
        ...choice,
        warn,
        ...(owner ? { owner } : {}),
        ...(o.allowFs ? { allowFs: o.allowFs } : {}),
        signal,
        policy,
        ...(allowDiscards ? { allowDiscards } : {}),
        ...(via ? { via } : {}),
        ...(o.allowLegacyWrite ? { allowLegacyWrite: true } : {}),
        tokens,
        note: (m) => process.stderr.write(`vault: ${m}\n`), // for people: stdout is the device path with --no-filesystem
        progress: (label, done, total) => progress(label, done, total, (started ??= Date.now())),
      });
      if (r.mountpoint) info(`mounted ${r.container} on ${r.mountpoint} (${r.fsType}${r.readOnly ? ', read-only' : ''}${r.allowDiscards ? ', discards allowed' : ''})`);
      else info(r.loopDevice ?? r.blockFile);
    } finally {
      dispose();
    }
  });
}
