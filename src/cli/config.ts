/**
 * vault's configuration file: the default auto-dismount policy for `vault mount`.
 *
 *   /etc/vault/config.json            for root (vault mounts as root, so this is the usual one)
 *   ~/.config/vault/config.json       for other users ($XDG_CONFIG_HOME/vault/config.json)
 *   $VAULT_CONFIG                     overrides both (tests, and trying a config out)
 *
 *   { "dismountOn": ["lock", "sleep"], "idle": "15m" }
 *
 * Both keys are optional. The file is validated strictly: unknown keys, wrong types and bad values
 * are errors that name the file and the key, never silently ignored, since a policy that quietly
 * fails to apply leaves volumes open that the user believes close themselves.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VaultError } from '../errors.js';
import { NO_POLICY, parseDuration, parseTriggers, type DismountPolicy } from '../mount/policy.js';

const KEYS = ['dismountOn', 'idle'] as const;

export function configPath(): string {
  if (process.env.VAULT_CONFIG) return process.env.VAULT_CONFIG;
  if (process.getuid?.() === 0) return '/etc/vault/config.json';
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'vault', 'config.json');
}

/** The default policy from the config file; no file means no policy. */
export function loadDefaultPolicy(file = configPath()): DismountPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return NO_POLICY;
    throw new VaultError('bad-config', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): DismountPolicy {
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
  const policy: DismountPolicy = { ...NO_POLICY };
  if (o.dismountOn !== undefined) {
    if (!Array.isArray(o.dismountOn) || !o.dismountOn.every((t) => typeof t === 'string'))
      throw bad('"dismountOn" must be a list of event names, e.g. ["lock", "sleep"]');
    policy.dismountOn = rethrow(bad, () => parseTriggers(o.dismountOn as string[], '"dismountOn"'));
  }
  if (o.idle !== undefined && o.idle !== null) {
    if (typeof o.idle !== 'string') throw bad('"idle" must be a duration string such as "15m", or "off"');
    policy.idleSeconds = rethrow(bad, () => parseDuration(o.idle as string, '"idle"'));
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
