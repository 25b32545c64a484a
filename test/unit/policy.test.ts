/** Issue 7: durations, trigger lists and the config file's strict validation. */
import { describe, expect, it } from 'vitest';
import { describePolicy, formatDuration, parseDuration, parseTriggers } from '../../src/mount/policy.js';
import { parseConfig } from '../../src/cli/config.js';

describe('durations', () => {
  it('parses seconds, minutes, hours, days and combinations; off means none', () => {
    expect(parseDuration('3s', 'x')).toBe(3);
    expect(parseDuration('15m', 'x')).toBe(900);
    expect(parseDuration('1h30m', 'x')).toBe(5400);
    expect(parseDuration('2d', 'x')).toBe(172800);
    for (const off of ['off', 'none', '0']) expect(parseDuration(off, 'x')).toBeNull();
  });
  it('refuses what is not a duration, and limits outside 1 s to 7 days', () => {
    for (const bad of ['15', '5 m', '1.5h', 'm5', '-3s', '', '0s', '8d']) expect(() => parseDuration(bad, '--idle'), bad).toThrow(/--idle/);
  });
  it('formats back to the shortest form', () => {
    expect([3, 900, 5400, 86400 + 61].map(formatDuration)).toEqual(['3s', '15m', '1h30m', '1d1m1s']);
  });
});

describe('triggers', () => {
  it('are lock and sleep, in a fixed order without duplicates; none is the empty list', () => {
    expect(parseTriggers(['sleep', 'lock', 'sleep'], 'x')).toEqual(['lock', 'sleep']);
    expect(parseTriggers(['none'], 'x')).toEqual([]);
    expect(() => parseTriggers(['lock', 'lid'], '--dismount-on')).toThrow(/--dismount-on: unknown event "lid"/);
  });
  it('describe a policy for vault list', () => {
    expect(describePolicy({ dismountOn: ['lock', 'sleep'], idleSeconds: 900 })).toBe('on lock, sleep; idle 15m');
    expect(describePolicy({ dismountOn: [], idleSeconds: null })).toBe('none');
  });
});

describe('config file', () => {
  const f = '/etc/vault/config.json';
  it('gives the default policy; both keys are optional', () => {
    expect(parseConfig('{"dismountOn": ["lock"], "idle": "15m"}', f)).toEqual({ dismountOn: ['lock'], idleSeconds: 900 });
    expect(parseConfig('{}', f)).toEqual({ dismountOn: [], idleSeconds: null });
    expect(parseConfig('{"idle": null}', f)).toEqual({ dismountOn: [], idleSeconds: null });
    expect(parseConfig('{"allowDiscards": true}', f)).toEqual({ dismountOn: [], idleSeconds: null, allowDiscards: true });
    expect(parseConfig('{"allowDiscards": false}', f)).toEqual({ dismountOn: [], idleSeconds: null, allowDiscards: false });
  });
  it('is validated strictly, and every error names the file', () => {
    const bad: [string, RegExp][] = [
      ['[]', /must hold a JSON object/],
      ['{"dismountOn": ["lock"], "Idle": "5m"}', /unknown key "Idle"/],
      ['{"dismountOn": "lock"}', /must be a list/],
      ['{"dismountOn": [1]}', /must be a list/],
      ['{"dismountOn": ["suspend"]}', /unknown event "suspend"/],
      ['{"idle": 900}', /must be a duration string/],
      ['{"idle": "15 min"}', /is not a duration/],
      ['{"idle": ', /not valid JSON/],
      ['{"allowDiscards": "yes"}', /"allowDiscards" must be true or false/],
    ];
    for (const [text, msg] of bad) {
      expect(() => parseConfig(text, f), text).toThrow(msg);
      expect(() => parseConfig(text, f), text).toThrow(f);
    }
  });
});
