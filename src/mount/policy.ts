/**
 * A volume's auto-dismount policy: which events close it (`lock`, `sleep`, acted on by `vault
 * watch`) and after how long without I/O its own server closes it (`idle`). The policy is stored
 * in the volume's state record so the watcher and `vault list` can read it; it holds no secret.
 */
import { VaultError } from '../errors.js';

export const TRIGGERS = ['lock', 'sleep'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export interface DismountPolicy {
  /** Events on which `vault watch` dismounts the volume, in TRIGGERS order, no duplicates. */
  dismountOn: Trigger[];
  /** Seconds without a read or write after which the volume server dismounts it; null: never. */
  idleSeconds: number | null;
}

export const NO_POLICY: DismountPolicy = { dismountOn: [], idleSeconds: null };

/** A week: a longer idle limit is almost certainly a typo. */
const MAX_IDLE_SECONDS = 7 * 24 * 3600;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `3s`, `15m`, `1h30m` or `2d` into seconds; `off`, `none` and `0`
 * mean no idle limit (null). Throws a usage error naming `what` (the flag or config key).
 */
export function parseDuration(text: string, what: string): number | null {
  const t = text.trim();
  if (t === 'off' || t === 'none' || t === '0') return null;
  if (!/^(\d+[smhd])+$/.test(t))
    throw new VaultError('usage', `${what}: "${text}" is not a duration`, 'write it like 30s, 15m, 1h30m or 2d, or "off"');
  let seconds = 0;
  for (const m of t.matchAll(/(\d+)([smhd])/g)) seconds += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  if (seconds < 1 || seconds > MAX_IDLE_SECONDS)
    throw new VaultError('usage', `${what}: ${text} is out of range`, 'an idle limit is 1s to 7d, or "off"');
  return seconds;
}

/** 900 → "15m", 5400 → "1h30m", 3 → "3s". */
export function formatDuration(seconds: number): string {
  let rest = seconds;
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS).reverse()) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}

/** Parses `lock,sleep` (or `none`) into triggers in canonical order. */
export function parseTriggers(items: readonly string[], what: string): Trigger[] {
  const names = items.map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 1 && names[0] === 'none') return [];
  for (const n of names) {
    if (!(TRIGGERS as readonly string[]).includes(n))
      throw new VaultError('usage', `${what}: unknown event "${n}"`, `choose from ${TRIGGERS.join(', ')}, or "none"`);
  }
  return TRIGGERS.filter((t) => names.includes(t));
}

/** "on lock, sleep; idle 15m", or "none". */
export function describePolicy(p: DismountPolicy): string {
  const parts: string[] = [];
  if (p.dismountOn.length) parts.push(`on ${p.dismountOn.join(', ')}`);
  if (p.idleSeconds !== null) parts.push(`idle ${formatDuration(p.idleSeconds)}`);
  return parts.length ? parts.join('; ') : 'none';
}
