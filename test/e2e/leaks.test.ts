/**
 * Issue 6, nothing leaked: the passphrase and the master key stay out of everything a process
 * exposes (argv, environment, state files, logs, memory), the volume server is not dumpable and
 * keeps its key in locked memory, and the CLI wipes the passphrase before it exits.
 *
 * (That the decrypted data never reaches the container is mount.test.ts's "no plaintext on disk".)
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, FAST_KDF, RUN_DIR, e2eSuite, ok, serverPidOf, vault } from './harness.js';
import { describeHit, runPaused, scanMemory } from './memscan.js';
import { exposedByVolumes, secretForms, whereExposed } from './exposure.js';
import { localUser, runAs } from '../support/unprivileged.js';
import { runPausedOnTty } from './pty.js';
import { requirementsMet } from '../support/requirements.js';

const suite = e2eSuite('leaks');
const FIXTURES = path.resolve(import.meta.dirname, '../../../shared/fixtures/veracrypt');
// A user's clone may lack ../shared; on CI a missing fixture fails the run (test/support/requirements.ts).
const haveFixtures = requirementsMet('leaks (hidden-volume /proc test)', existsSync(FIXTURES) ? [] : [`fixtures at ${FIXTURES}`]);

function containsAny(haystack: Buffer, needles: Buffer[]): boolean {
  return needles.some((n) => haystack.includes(n));
}

/**
 * Every form a typed passphrase could take in the CLI's heap: its UTF-8 bytes (as typed); a V8
 * string of it in UTF-16LE, or one byte per character (Latin-1) when every character fits; its
 * ASCII part alone in both; and a JS array of its bytes (small integers, 8 bytes each, the value in
 * the upper half: what the old prompt's number[] left behind at every growth).
 */
function typedForms(pw: string): Buffer[] {
  const utf8 = Buffer.from(pw, 'utf8');
  const ascii = pw.replace(/[^\x20-\x7e]/g, '');
  const smis = Buffer.alloc(utf8.length * 8);
  utf8.forEach((c, i) => (smis[i * 8 + 4] = c));
  const latin1 = [...pw].every((ch) => ch.charCodeAt(0) <= 0xff) ? [Buffer.from(pw, 'latin1')] : [];
  return [utf8, Buffer.from(pw, 'utf16le'), ...latin1, Buffer.from(ascii, 'latin1'), Buffer.from(ascii, 'utf16le'), smis];
}

/** Local addresses of the TCP sockets process pid listens on (its descriptors matched by inode). */
function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const rows = ['tcp', 'tcp6'].flatMap((t) => readFileSync(`/proc/${pid}/net/${t}`, 'utf8').split('\n').slice(1));
  return rows.map((l) => l.trim().split(/\s+/)).filter((c) => c[3] === '0A' && inodes.has(c[9]!)).map((c) => c[1]!);
}

/** SIGUSR1 is Node's "start the inspector": any process of the same user may send it. */
async function inspectorAfterSigusr1(pid: number): Promise<string[]> {
  process.kill(pid, 'SIGUSR1');
  await new Promise((r) => setTimeout(r, 700));
  return listeningSockets(pid);
}

/** A passphrase unlikely to occur by chance anywhere: 40 printable random characters. */
function uniquePassphrase(): Buffer {
  return Buffer.from(`leak-${randomBytes(30).toString('base64url')}`);
}

describe.runIf(suite.run)('nothing leaked', () => {
  it('passphrase and master key: not in argv, environment, state files or logs; server not dumpable, key locked, no passphrase in its memory', async () => {
    const pw = uniquePassphrase();
    const file = path.join(suite.dir, 'leak.vol');
    const mnt = path.join(suite.dir, 'mnt');
    mkdirSync(mnt);
    ok(vault(['create', file, '--size', '32M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], Buffer.concat([pw, Buffer.from('\n')])));
    const key = Buffer.from(ok(vault(['info', file, '--dump-master-key', '--password-stdin'], pw)).stdout.trim(), 'hex');
    expect(key.length).toBe(64);
    const secrets = [...secretForms(pw), ...secretForms(key), ...secretForms(key.subarray(0, 32)), ...secretForms(key.subarray(32))];

    // The CLI while it waits for the passphrase: its argv and environment hold none of it.
    const cli = spawn(process.execPath, [CLI, '--debug', 'mount', file, mnt, '--password-stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let cliErr = '';
    cli.stderr.on('data', (d) => (cliErr += d));
    // The CLI has hardened itself once it launched the server, which it does before reading stdin.
    for (let i = 0; i < 100 && readFileSync(`/proc/${cli.pid}/task/${cli.pid}/children`, 'utf8').trim() === ''; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(`/proc/${cli.pid}/task/${cli.pid}/children`, 'utf8').trim(), 'the CLI launched its server').not.toBe('');
    expect(containsAny(readFileSync(`/proc/${cli.pid}/cmdline`), secrets)).toBe(false);
    expect(containsAny(readFileSync(`/proc/${cli.pid}/environ`), secrets)).toBe(false);
    // No inspector on SIGUSR1 (a same-user process would get a debugger with the passphrase in reach).
    expect(await inspectorAfterSigusr1(cli.pid!), 'the CLI opened an inspector on SIGUSR1').toEqual([]);
    cli.stdin.end(pw);
    expect(await new Promise((r) => cli.on('close', r)), cliErr).toBe(0);
    expect(cliErr).not.toMatch(/Debugger listening/);

    const pid = serverPidOf(mnt);
    expect(await inspectorAfterSigusr1(pid), 'the server opened an inspector on SIGUSR1').toEqual([]);
    // The check above can see an inspector: a plain Node process does open one on SIGUSR1.
    const control = spawn(process.execPath, ['--inspect-port=0', '-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await inspectorAfterSigusr1(control.pid!)).toHaveLength(1);
    control.kill();
    // Exercise the data path, so the log and every cipher context have seen I/O too.
    writeFileSync(path.join(mnt, 'data'), randomBytes(4 << 20));
    spawnSync('sync');
    const volDirs = readdirSync(RUN_DIR).filter((d) => d !== 'locks').map((d) => path.join(RUN_DIR, d)); // locks/: empty header-lock files
    expect(volDirs.length).toBe(1);
    const exposed = exposedByVolumes();
    expect(exposed.map(([n]) => n)).toEqual(expect.arrayContaining(['server cmdline', 'server environ', 'state.json', 'server.log', 'owner']));
    expect(whereExposed(secrets, exposed), 'a secret appears there').toEqual([]);

    // Not dumpable: the server checks prctl(PR_GET_DUMPABLE) after hardening itself and logs it.
    expect(readFileSync(path.join(volDirs[0]!, 'server.log'), 'utf8')).toMatch(/process hardening: not dumpable/);
    expect(readFileSync(path.join(volDirs[0]!, 'server.log'), 'utf8')).not.toMatch(/Debugger listening/);
    // The key sits in locked memory.
    const vmLck = Number(/^VmLck:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    expect(vmLck).toBeGreaterThan(0);

    const pieces = [0, 16, 32, 48].map((o) => key.subarray(o, o + 16));
    const hits = scanMemory(pid, [pw, key, ...pieces]);
    const pwHits = hits.filter((h) => h.needle === 0);
    expect(pwHits.map(describeHit), 'the passphrase is in the server memory').toEqual([]);
    const keyHits = hits.filter((h) => h.needle === 1);
    // The server holds the raw key exactly once, in a locked mapping of its own.
    expect(keyHits.map(describeHit)).toHaveLength(1);
    expect(keyHits[0]!.mapping.lockedKb, describeHit(keyHits[0]!)).toBeGreaterThan(0);
    // An expanded AES key schedule begins with 16-byte pieces of the key: each such copy (libgcrypt's,
    // one set per worker thread) must sit in locked memory too, or it could be swapped out.
    const pieceHits = hits.filter((h) => h.needle >= 2);
    expect(pieceHits.length).toBeGreaterThan(4);
    expect(pieceHits.filter((h) => h.mapping.lockedKb === 0).map(describeHit), 'key material in unlocked memory').toEqual([]);

    ok(vault(['dismount', mnt]));
  }, 120_000);

  it.runIf(haveFixtures)('another user reading the server of a VeraCrypt hidden volume in /proc learns neither the container nor the hidden offset', () => {
    const file = path.join(suite.dir, 'vc-hidden.vol');
    copyFileSync(path.join(FIXTURES, 'vc_1-sha512-xts-aes-hidden'), file);
    const mnt = path.join(suite.dir, 'hidden');
    mkdirSync(mnt);
    const pw = 'bbbbbbbbbbbb'; // the fixture's hidden-volume password (test/e2e/veracrypt.test.ts)
    const info = JSON.parse(ok(vault(['info', file, '--json', '--hidden', '--password-stdin'], pw)).stdout) as { dataOffset: number; dataSize: number };
    ok(vault(['mount', file, mnt, '--hidden', '--read-only', '--password-stdin'], pw));
    try {
      const pid = serverPidOf(mnt);
      const mallory = localUser();
      const cmdline = runAs(mallory, 'cat', [`/proc/${pid}/cmdline`]);
      expect(cmdline.status, cmdline.stderr).toBe(0); // world-readable: what is in it is the point
      expect(cmdline.stdout).toContain('server/main.js');
      // The environment of a non-dumpable process is root's to read only; check root's view too.
      const environ = runAs(mallory, 'cat', [`/proc/${pid}/environ`]);
      const views: [string, string][] = [
        ['cmdline', cmdline.stdout],
        ['environ (as the user)', environ.stdout],
        ['environ (as root)', readFileSync(`/proc/${pid}/environ`, 'latin1')],
      ];
      for (const [what, text] of views) {
        for (const needle of [file, path.basename(file), String(info.dataOffset), String(info.dataSize), 'dataOffset', 'containerPath'])
          expect(text, `${what} shows ${needle}`).not.toContain(needle);
      }
    } finally {
      ok(vault(['dismount', mnt]));
    }
  }, 120_000);

  for (const [name, extra] of [['create', 'éüß'], ['mount', '日本語ü']] as const) {
    it(`vault ${name} typed on a real terminal (non-ASCII "${extra}") keeps no copy of the passphrase in any encoding`, async () => {
      const pw = `leak-${randomBytes(24).toString('base64url')}-${extra}`;
      const bytes = Buffer.from(pw);
      const file = path.join(suite.dir, `tty-${name}.vol`);
      const mnt = path.join(suite.dir, `tty-${name}`);
      mkdirSync(mnt);
      if (name === 'mount') ok(vault(['create', file, '--size', '16M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], bytes));
      const args = name === 'create' ? ['create', file, '--size', '16M', '--fs', 'none', '--quick', ...FAST_KDF] : ['mount', file, mnt];
      const p = await runPausedOnTty(CLI, args, name === 'create' ? [bytes, bytes] : [bytes]);
      let hits;
      try {
        hits = scanMemory(p.pid, typedForms(pw));
      } finally {
        process.kill(p.pid, 'SIGCONT');
      }
      const terminal = () => p.stderr();
      expect(await p.done, terminal()).toBe(0);
      expect(terminal()).toMatch(name === 'create' ? /New passphrase: \*+\r?\n.*Repeat passphrase: \*+/s : /Passphrase: \*+/);
      expect(terminal(), 'the typed passphrase was echoed').not.toContain(pw.slice(0, 20));
      expect(hits.map((h) => `form ${h.needle}: ${describeHit(h)}`), `vault ${name} still holds the typed passphrase`).toEqual([]);
      if (name === 'mount') ok(vault(['dismount', mnt]));
      else ok(vault(['info', file, '--password-stdin'], bytes)); // the typed passphrase is the one set
    }, 120_000);
  }

  for (const [name, argsOf, lines] of [
    ['mount', (f: string, m: string) => ['mount', f, m, '--password-stdin'], 1],
    ['passwd', (f: string) => ['passwd', f, '--password-stdin', ...FAST_KDF], 2],
    ['create', (f: string) => ['create', `${f}.new`, '--size', '16M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], 1],
  ] as const) {
    it(`vault ${name} wipes the passphrase before it exits: its memory holds no copy`, async () => {
      const file = path.join(suite.dir, `wipe-${name}.vol`);
      const mnt = path.join(suite.dir, `wipe-${name}`);
      mkdirSync(mnt);
      const pw = uniquePassphrase();
      ok(vault(['create', file, '--size', '16M', '--fs', 'ext4', '--quick', '--password-stdin', ...FAST_KDF], Buffer.concat([pw, Buffer.from('\n')])));
      const newPw = uniquePassphrase();
      const input = Buffer.concat([pw, Buffer.from('\n'), ...(lines === 2 ? [newPw, Buffer.from('\n')] : [])]);
      const p = await runPaused(CLI, argsOf(file, mnt), input);
      let hits;
      try {
        hits = scanMemory(p.pid, [pw, newPw, Buffer.from(pw.toString('latin1'), 'utf16le')]);
      } finally {
        process.kill(p.pid, 'SIGCONT');
      }
      expect(await p.done, p.stderr()).toBe(0);
      expect(hits.map(describeHit), `vault ${name} still holds the passphrase when it exits`).toEqual([]);
      if (name === 'mount') ok(vault(['dismount', mnt]));
    }, 120_000);
  }
});
