/**
 * Issue 7, the policy and scripted dismount: --dismount-on/--idle and their config-file defaults
 * (strictly validated), `vault list` showing the policy, `dismount --all --force --quiet` for
 * screen lockers, and a forced dismount that cannot unmount normally falling back to a lazy one.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FAST_KDF, e2eSuite, leftovers, ok, vault } from './harness.js';
import { localUser } from '../support/unprivileged.js';

const suite = e2eSuite('policy');
const run = suite.run;
const PW = 'policy wonk\n';

function create(name: string): string {
  const file = path.join(suite.dir, `${name}.vol`);
  ok(vault(['create', file, '--size', '32M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW), `create ${name}`);
  return file;
}

function config(name: string, body: string): Record<string, string> {
  const file = path.join(suite.dir, `${name}.json`);
  writeFileSync(file, body);
  return { VAULT_CONFIG: file };
}

function serverAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe.runIf(run)('auto-dismount policy', () => {
  it('defaults come from the config file, flags override them, and list shows the policy', () => {
    const file = create('conf');
    const env = config('good', JSON.stringify({ dismountOn: ['sleep', 'lock'], idle: '15m' }));
    ok(vault(['mount', file, '--password-stdin'], PW, env));
    expect(JSON.parse(ok(vault(['list', '--json'])).stdout)[0].policy).toEqual({ dismountOn: ['lock', 'sleep'], idleSeconds: 900 });
    expect(ok(vault(['list'])).stdout).toMatch(/auto-dismount: on lock, sleep; idle 15m/);
    ok(vault(['dismount', file]));
    ok(vault(['mount', file, '--password-stdin', '--dismount-on', 'none', '--idle', 'off'], PW, env));
    expect(JSON.parse(ok(vault(['list', '--json'])).stdout)[0].policy).toEqual({ dismountOn: [], idleSeconds: null });
    expect(ok(vault(['list'])).stdout).toMatch(/auto-dismount: none/);
    ok(vault(['dismount', file]));
    ok(vault(['mount', file, '--password-stdin', '--dismount-on', 'sleep', '--idle', '1h30m'], PW));
    expect(JSON.parse(ok(vault(['list', '--json'])).stdout)[0].policy).toEqual({ dismountOn: ['sleep'], idleSeconds: 5400 });
    ok(vault(['dismount', file]));
  });

  it('a bad config file or flag is a usage error (exit 2) naming the problem, before anything is mounted', () => {
    const file = create('bad');
    const cases: [Record<string, string>, string[], RegExp][] = [
      [config('unknown', '{"dismountOn": ["lock"], "idel": "5m"}'), [], /unknown key "idel"/],
      [config('trigger', '{"dismountOn": ["lid"]}'), [], /"dismountOn": unknown event "lid"/],
      [config('type', '{"dismountOn": "lock"}'), [], /"dismountOn" must be a list/],
      [config('idle', '{"idle": "5 minutes"}'), [], /"idle": "5 minutes" is not a duration/],
      [config('json', '{"idle": '), [], /not valid JSON/],
      [{}, ['--idle', '0s'], /--idle: 0s is out of range/],
      [{}, ['--dismount-on', 'lock,reboot'], /--dismount-on: unknown event "reboot"/],
    ];
    for (const [env, flags, msg] of cases) {
      const r = vault(['mount', file, '--password-stdin', ...flags], PW, env);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      if (env.VAULT_CONFIG) expect(r.stderr).toContain(env.VAULT_CONFIG);
      expect(leftovers()).toEqual([]);
    }
  });

  it("a config file another user owns or can write is refused (exit 8); a FIFO there does not hang vault", () => {
    const file = create('untrusted');
    const user = localUser();
    const theirs = config('theirs', '{"idle": "off"}');
    chownSync(theirs.VAULT_CONFIG!, user.uid, user.gid);
    const open = config('open', '{"idle": "off"}');
    chmodSync(open.VAULT_CONFIG!, 0o666);
    for (const [env, msg] of [[theirs, /belongs to uid/], [open, /others can write it/]] as const) {
      const r = vault(['mount', file, '--password-stdin'], PW, env);
      expect(r.status, r.stderr).toBe(8);
      expect(r.stderr).toMatch(msg);
      expect(leftovers()).toEqual([]);
    }
    const fifo = path.join(suite.dir, 'fifo.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = vault(['mount', file, '--password-stdin'], PW, { VAULT_CONFIG: fifo });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/not a regular file/);
  });

  it('dismount --all --force --quiet: silent and exit 0, with volumes mounted and with none', () => {
    const files = [create('q1'), create('q2')];
    for (const f of files) ok(vault(['mount', f, '--password-stdin', '--dismount-on', 'lock'], PW));
    const r = vault(['dismount', '--all', '--force', '--quiet']);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, '', '']);
    expect(leftovers()).toEqual([]);
    const again = vault(['dismount', '--all', '--force', '--quiet']);
    expect([again.status, again.stdout, again.stderr]).toEqual([0, '', '']);
  });

  it('forced dismount of a filesystem that cannot be unmounted: lazy unmount, server stopped, and it says so', () => {
    const file = create('lazy');
    const mp = path.join(suite.dir, 'mp-lazy');
    mkdirSync(mp);
    ok(vault(['mount', file, mp, '--password-stdin'], PW));
    const v = JSON.parse(ok(vault(['list', '--json'])).stdout)[0];
    // A filesystem mounted inside keeps it busy with no process to end.
    mkdirSync(path.join(mp, 'inner'));
    expect(spawnSync('mount', ['-t', 'tmpfs', 'w7-inner', path.join(mp, 'inner')]).status).toBe(0);
    const plain = vault(['dismount', mp]);
    expect(plain.status, plain.stderr).toBe(4);
    const r = ok(vault(['dismount', mp, '--force']));
    expect(r.stdout).toMatch(/detached .* lazily/);
    expect(r.stdout).toMatch(/stopped the volume server; key wiped/);
    expect(serverAlive(v.serverPid)).toBe(false);
    expect(existsSync(v.blockFile)).toBe(false);
    expect(leftovers()).toEqual([]);
  });
});
