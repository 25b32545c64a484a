/**
 * vault's configuration file: the default auto-dismount policy for `vault mount`.
 *
 *   /etc/vault/config.json            for root (vault mounts as root, so this is the usual one)
 *   ~/.config/vault/config.json       for other users ($XDG_CONFIG_HOME/vault/config.json)
 *   $VAULT_CONFIG                     overrides both (tests, and trying a config out)
 *
 *   { "dismountOn": ["lock", "sleep"], "idle": "15m", "allowDiscards": false }
 *
 * Every key is optional. allowDiscards is `vault mount --allow-discards` by default (README, TRIM). The file is validated strictly: unknown keys, wrong types and bad values
 * are errors that name the file and the key, never silently ignored, since a policy that quietly
 * fails to apply leaves volumes open that the user believes close themselves.
 */
import { closeSync, constants as fsc, fstatSync, openSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envValue } from '../env.js';
import { VaultError } from '../errors.js';
import { NO_POLICY, parseDuration, parseTriggers, type DismountPolicy } from '../mount/policy.js';
import { readHead } from '../system/safe-open.js';

const KEYS = ['dismountOn', 'idle', 'allowDiscards'] as const;

/** What the config file sets: the dismount policy, and allowDiscards when the file has the key. */
export type ConfigDefaults = DismountPolicy & { allowDiscards?: boolean };

export function configPath(): string {
  const override = envValue('VAULT_CONFIG');
  if (override) return override;
  if (process.getuid?.() === 0) return '/etc/vault/config.json';
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'vault', 'config.json');
}

/** Larger than any sensible policy; a bound on what a hostile path can make vault read. */
const MAX_CONFIG_BYTES = 64 * 1024;

/** The default policy from the config file; no file means no policy. */
export function loadDefaultPolicy(file = configPath()): ConfigDefaults {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at that name must not hang vault.
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return NO_POLICY;
    throw new VaultError('bad-config', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    checkTrusted(file, fstatSync(fd));
    const text = readHead(fd, MAX_CONFIG_BYTES + 1);
    if (text.length > MAX_CONFIG_BYTES) throw new VaultError('bad-config', `${file} is larger than ${MAX_CONFIG_BYTES} bytes`);
    return parseConfig(text.toString('utf8'), file);
  } finally {
    closeSync(fd);
  }
}

/**
 * A policy decides when volumes close, so the file must be what its owner wrote: a regular file of
 * this user's (root's, for root), which no one else can write (issue 13). Symlinks are followed, as
 * /etc often holds them; it is the file they lead to that must be trusted.
 */
function checkTrusted(file: string, st: Stats): void {
  const uid = process.geteuid?.() ?? 0;
  if (!st.isFile()) throw new VaultError('bad-config', `${file} is not a regular file`);
  if (st.uid !== uid && st.uid !== 0)
    throw new VaultError('unsafe', `refusing the config file ${file}: it belongs to uid ${st.uid}`, `it must belong to ${uid === 0 ? 'root' : 'you or root'}`);
  if ((st.mode & 0o022) !== 0)
    throw new VaultError('unsafe', `refusing the config file ${file}: others can write it (mode ${(st.mode & 0o777).toString(8)})`, `chmod go-w ${file}`);
}

export function parseConfig(text: string, file: string): ConfigDefaults {
  const bad = (msg: string) => new VaultError('bad-config', `${file}: ${msg}`, 'see "Configuration" in README.md');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('must hold a JSON object');
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(KEYS as readonly string[]).includes(k)) throw bad(`unknown key "${k}" (known: ${KEYS.join(', ')})`);
  }
  const policy: ConfigDefaults = { ...NO_POLICY };
  if (o.dismountOn !== undefined) {
    if (!Array.isArray(o.dismountOn) || !o.dismountOn.every((t) => typeof t === 'string'))
      throw bad('"dismountOn" must be a list of event names, e.g. ["lock", "sleep"]');
    policy.dismountOn = rethrow(bad, () => parseTriggers(o.dismountOn as string[], '"dismountOn"'));
  }
  if (o.idle !== undefined && o.idle !== null) {
    if (typeof o.idle !== 'string') throw bad('"idle" must be a duration string such as "15m", or "off"');
    policy.idleSeconds = rethrow(bad, () => parseDuration(o.idle as string, '"idle"'));
  }
  if (o.allowDiscards !== undefined) {
    if (typeof o.allowDiscards !== 'boolean') throw bad('"allowDiscards" must be true or false');
    policy.allowDiscards = o.allowDiscards;
  }
  return policy;
}

/** Keeps the parser's message but makes it a config error that names the file. */
function rethrow<T>(bad: (msg: string) => VaultError, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw bad((e as Error).message);
  }
}
