/**
 * `vault doctor`'s verdict from made-up facts: which misses fail the run (those of this user's
 * route), which are optional, and the fix each one names. Also: every package a fix names is one
 * scripts/setup-system.sh or `vault setup-rootless` installs, and the text and JSON renderings.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluate, type DoctorFacts, type DoctorReport, type ReportItem } from '../../src/system/doctor.js';
import { TOOL_PACKAGES } from '../../src/system/doctor-item.js';
import { memlockLimit } from '../../src/system/doctor-facts.js';
import { ROOTLESS_PACKAGES } from '../../src/system/rootless-setup.js';
import { doctorJson, renderDoctor } from '../../src/cli/commands/doctor.js';
import { schemaErrors } from '../support/schemas.js';

/** A machine with everything: root's view. */
function healthy(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    euid: 0,
    user: 'root',
    addon: { ok: true },
    dumpable: false,
    devFuse: 'usable',
    fusermount3: { path: '/usr/bin/fusermount3', setuid: true },
    tools: Object.fromEntries(Object.keys(TOOL_PACKAGES).map((t) => [t, `/usr/bin/${t}`])),
    loopControl: true,
    freeLoop: '/dev/loop0',
    loopLimits: { discardMaxBytes: 4096, writeZeroesMaxBytes: 4096 },
    kernelFs: { ext4: true, vfat: true, exfat: true },
    capabilities: ['CAP_SYS_RESOURCE', 'io_uring', 'FUSE over io_uring', 'AF_ALG', 'UHID'].map((name) => ({ name, available: true, detail: 'here', uses: 'something' })),
    fuseUring: 'on',
    udisks: { ok: true, how: 'owned' },
    logind: { ok: true, how: 'owned' },
    sessionBus: { ok: true, how: 'owned' },
    allowOther: true,
    group: { gid: 990, members: ['alice'] },
    groups: [0],
    polkitRule: true,
    loopDioRule: true,
    polkit: null,
    runtimeDir: null,
    memlock: 8 << 20,
    ...over,
  };
}

/** The same machine as alice (uid 1000, in group vault) sees it. */
function alice(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return healthy({
    euid: 1000,
    user: 'alice',
    groups: [1000, 990],
    polkit: { allowed: true, detail: 'pkcheck: allowed' },
    runtimeDir: { ok: true, dir: '/run/user/1000' },
    ...over,
  });
}

function item(r: DoctorReport, id: string): ReportItem {
  const found = r.groups.flatMap((g) => g.items).filter((i) => i.id === id);
  expect(found.length, id).toBeGreaterThan(0);
  return found[0]!;
}

const noBus = { ok: false as const, busReachable: false, why: 'the system bus is not reachable (no socket)' };

describe('vault doctor: the verdict', () => {
  it('a complete machine: everything ok, no fixes, exit 0', () => {
    for (const f of [healthy(), alice()]) {
      const r = evaluate(f);
      expect(r.ok).toBe(true);
      expect(r.missing).toEqual([]);
      for (const i of r.groups.flatMap((g) => g.items)) {
        expect(i.status, i.id).toBe('ok');
        expect(i.fix, i.id).toBeNull();
      }
    }
    expect(evaluate(alice()).route).toEqual({ name: 'udisks', note: null });
    expect(evaluate(healthy()).route).toEqual({ name: 'root', note: null });
  });

  it("root: a missing tool of root's route fails, with the apt-get command as root types it (no sudo)", () => {
    const r = evaluate(healthy({ tools: { ...healthy().tools, 'mkfs.ext4': null, losetup: null } }));
    expect(r.ok).toBe(false);
    expect(r.missing).toEqual(['tool:mkfs.ext4', 'tool:losetup']);
    expect(item(r, 'tool:mkfs.ext4').fix).toBe('apt-get install e2fsprogs');
    expect(item(r, 'tool:losetup').fix).toBe('apt-get install mount');
  });

  it('root: no /dev/fuse or no loop devices fail; the fix loads the module', () => {
    const r = evaluate(healthy({ devFuse: 'missing', loopControl: false, freeLoop: null }));
    expect(r.missing).toEqual(['dev-fuse', 'loop-control', 'loop-free']);
    expect(item(r, 'dev-fuse').fix).toBe('modprobe fuse');
    expect(item(r, 'loop-control').fix).toBe('modprobe loop');
  });

  it('root: no free loop device is fine while /dev/loop-control can make one', () => {
    const r = evaluate(healthy({ freeLoop: null, loopLimits: null }));
    expect(r.ok).toBe(true);
    expect(item(r, 'loop-free').detail).toMatch(/on demand/);
    expect(item(r, 'loop-discard').status).toBe('unknown');
  });

  it("root: what users need (udisks, fuse2fs) is reported but never fails root's run", () => {
    const r = evaluate(healthy({ udisks: noBus, logind: noBus, allowOther: false, group: null, tools: { ...healthy().tools, fuse2fs: null } }));
    expect(r.ok).toBe(true);
    expect(item(r, 'user-allow-other')).toMatchObject({ status: 'missing', needed: false, fix: 'vault setup-rootless --user NAME' });
    expect(item(r, 'tool:fuse2fs')).toMatchObject({ status: 'missing', needed: false });
    // per-user checks are not made as root
    expect(r.groups.flatMap((g) => g.items).map((i) => i.id)).not.toContain('polkit');
  });

  it('optional extras (io_uring, exfat, vfat, auto-dismount) never fail the run', () => {
    const f = healthy({
      kernelFs: { ext4: true, vfat: false, exfat: false },
      tools: { ...healthy().tools, 'mkfs.exfat': null, 'mount.exfat-fuse': null, 'systemd-inhibit': null },
      capabilities: [
        { name: 'io_uring', available: false, detail: 'kernel.io_uring_disabled says disabled', uses: 'x' },
        { name: 'FUSE over io_uring', available: false, detail: 'the kernel has no enable_uring parameter', uses: 'x' },
      ],
      fuseUring: 'absent',
      logind: { ok: false, busReachable: true, why: 'nothing owns org.freedesktop.login1 on the system bus' },
      sessionBus: null,
    });
    for (const who of [f, { ...f, ...alice(), kernelFs: f.kernelFs, tools: f.tools, capabilities: f.capabilities, fuseUring: f.fuseUring, logind: f.logind, sessionBus: null }]) {
      const r = evaluate(who);
      expect(r.ok).toBe(true);
      expect(item(r, 'kernel:exfat')).toMatchObject({ status: 'missing', needed: false });
      expect(item(r, 'kernel:vfat').status).toBe('ok'); // through fusefat
      expect(item(r, 'io-uring')).toMatchObject({ status: 'missing', needed: false });
      expect(item(r, 'logind')).toMatchObject({ status: 'missing', needed: false });
    }
    expect(item(evaluate(f), 'fuse-uring').fix).toMatch(/Linux 6\.14/);
    expect(item(evaluate(f), 'io-uring').fix).toBe('sysctl kernel.io_uring_disabled=0');
    expect(item(evaluate(alice({ fuseUring: 'off', capabilities: f.capabilities })), 'fuse-uring').fix).toBe('sudo vault uring enable');
  });

  it('a user with udisks: fuse2fs is not needed', () => {
    const r = evaluate(alice({ tools: { ...healthy().tools, fuse2fs: null } }));
    expect(r.route.name).toBe('udisks');
    expect(r.ok).toBe(true);
    expect(item(r, 'tool:fuse2fs')).toMatchObject({ status: 'missing', needed: false, fix: 'sudo apt-get install fuse2fs' });
  });

  it('a user without udisks takes the fuse route (as chooseRoute does), and then needs fuse2fs', () => {
    const ok = evaluate(alice({ udisks: noBus }));
    expect(ok.route).toEqual({ name: 'fuse', note: 'not udisks: the system bus is not reachable (no socket)' });
    expect(ok.ok).toBe(true);
    expect(item(ok, 'system-bus')).toMatchObject({ status: 'missing', needed: false });

    const r = evaluate(alice({ udisks: noBus, tools: { ...healthy().tools, fuse2fs: null } }));
    expect(r.missing).toEqual(['tool:fuse2fs']);
    expect(item(r, 'tool:fuse2fs').fix).toBe('sudo apt-get install fuse2fs');
  });

  it('polkit refusing, or no user_allow_other, sends a user to the fuse route, with setup-rootless as the fix', () => {
    for (const f of [alice({ polkit: { allowed: false, detail: 'pkcheck: not allowed' } }), alice({ allowOther: false })]) {
      const r = evaluate(f);
      expect(r.route.name).toBe('fuse');
      expect(r.route.note).toMatch(/polkit|user_allow_other/);
      expect(r.ok).toBe(true);
    }
    const r = evaluate(alice({ polkit: { allowed: false, detail: 'pkcheck: not allowed' } }));
    expect(item(r, 'polkit').fix).toBe('sudo vault setup-rootless --user alice');
  });

  it("a user listed in group vault but not in this login's groups is told to log in again", () => {
    const r = evaluate(alice({ groups: [1000] }));
    expect(item(r, 'member')).toMatchObject({ status: 'missing', fix: 'newgrp vault (or log in again)' });
    expect(r.ok).toBe(true); // pkcheck allowed it all the same (an active local session)
    expect(item(evaluate(alice({ polkitRule: null })), 'polkit-rule')).toMatchObject({ status: 'unknown', needed: false });
    expect(item(evaluate(alice({ groups: [1000], group: { gid: 990, members: [] } })), 'member').fix).toBe('sudo vault setup-rootless --user alice');
  });

  it("a user's own needs: setuid fusermount3, XDG_RUNTIME_DIR, locked memory", () => {
    const r = evaluate(
      alice({
        fusermount3: { path: '/usr/bin/fusermount3', setuid: false },
        runtimeDir: { ok: false, why: 'XDG_RUNTIME_DIR is not set', fix: 'log in through a session that has one' },
        memlock: 16 * 1024,
      }),
    );
    expect(r.missing).toEqual(['fusermount3', 'runtime-dir', 'memlock']);
    expect(item(r, 'fusermount3').fix).toBe('sudo chmod u+s /usr/bin/fusermount3');
    expect(item(r, 'runtime-dir').fix).toBe('log in through a session that has one');
    expect(item(r, 'memlock').detail).toMatch(/16 KiB/);
    expect(evaluate(alice({ fusermount3: null })).missing).toEqual(['fusermount3']);
    expect(evaluate(alice({ memlock: null })).ok).toBe(true); // unlimited
  });

  it("a user does not need root's loop devices", () => {
    const r = evaluate(alice({ loopControl: false, freeLoop: null, tools: { ...healthy().tools, losetup: null } }));
    expect(r.ok).toBe(true);
    expect(item(r, 'loop-control')).toMatchObject({ status: 'missing', needed: false, fix: 'sudo modprobe loop' });
  });

  it('without gdbus the buses are unknown, not missing', () => {
    const gone = { ok: false as const, busReachable: false, why: 'gdbus is not installed' };
    const r = evaluate(alice({ tools: { ...healthy().tools, gdbus: null }, udisks: gone, logind: gone }));
    expect(item(r, 'system-bus').status).toBe('unknown');
    expect(item(r, 'udisksd').status).toBe('unknown');
    expect(item(r, 'tool:gdbus').fix).toBe('sudo apt-get install libglib2.0-bin');
  });

  it('the addon missing fails every user', () => {
    const r = evaluate(alice({ addon: { ok: false, why: 'cannot load' }, dumpable: null }));
    expect(r.missing).toEqual(['addon']);
    expect(item(r, 'core-dumps').status).toBe('unknown');
  });
});

describe('vault doctor: packages and output', () => {
  it('every package a fix names is one that scripts/setup-system.sh or vault setup-rootless installs (or dbus-user-session)', () => {
    const script = readFileSync(new URL('../../scripts/setup-system.sh', import.meta.url), 'utf8');
    const listed = new Set([...script.matchAll(/^\w+=\(([^)]*)\)/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)));
    for (const p of ROOTLESS_PACKAGES) listed.add(p);
    expect(listed.size).toBeGreaterThan(10);
    const r = evaluate(healthy({ tools: Object.fromEntries(Object.keys(TOOL_PACKAGES).map((t) => [t, null])) }));
    const named = r.groups.flatMap((g) => g.items).flatMap((i) => [...(i.fix ?? '').matchAll(/apt-get install (\S+)/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(10);
    for (const p of new Set([...named, ...Object.values(TOOL_PACKAGES)])) expect(listed.has(p) || p === 'dbus-daemon', p).toBe(true);
  });

  it('reads RLIMIT_MEMLOCK from /proc/self/limits', () => {
    expect(memlockLimit('Limit  Soft Limit  Hard Limit  Units\nMax locked memory         8388608              8388608              bytes\n')).toBe(8388608);
    expect(memlockLimit('Max locked memory         unlimited            unlimited            bytes\n')).toBeNull();
  });

  it('text: symbols on a terminal, words elsewhere, each miss followed by its fix, and the verdict', () => {
    const r = evaluate(alice({ udisks: noBus, tools: { ...healthy().tools, fuse2fs: null, 'mkfs.exfat': null } }));
    const plain = renderDoctor(r, false);
    expect(plain).toMatch(/^you are alice \(uid 1000\): `vault mount` goes through fuse \(not udisks: the system bus/);
    expect(plain).toMatch(/\n {2}missing +fuse2fs +not installed \(Debian package fuse2fs\)[^\n]*\n +fix: sudo apt-get install fuse2fs\n/);
    expect(plain).toMatch(/\n {2}optional +mkfs\.exfat +not installed/);
    expect(plain).toMatch(/\n {2}ok +mkfs\.ext4 +\/usr\/bin\/mkfs\.ext4: /);
    expect(plain).toMatch(/missing what vault needs to create and mount volumes for you: tool:fuse2fs/);
    expect(plain).not.toMatch(/[✓✗–]/);
    const tty = renderDoctor(r, true);
    expect(tty).toMatch(/\n {2}✗ fuse2fs/);
    expect(tty).toMatch(/\n {2}– mkfs\.exfat/);
    expect(tty).toMatch(/\n {2}✓ mkfs\.ext4/);
    expect(renderDoctor(evaluate(healthy()), false)).toMatch(/everything vault needs to create and mount volumes for you is here\n/);
  });

  it('--json matches spec/doctor.schema.json', () => {
    for (const f of [healthy(), alice({ udisks: noBus, sessionBus: null, tools: { ...healthy().tools, fuse2fs: null } })]) {
      const r = evaluate(f);
      const out = JSON.parse(doctorJson(r, r.ok ? 0 : 6)) as unknown;
      expect(schemaErrors('doctor', out)).toEqual([]);
    }
    expect(schemaErrors('doctor', { version: 1 }).length).toBeGreaterThan(0); // the check does reject
  });
});
