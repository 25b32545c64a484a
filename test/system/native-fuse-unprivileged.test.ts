/**
 * The volume server run by an ordinary user (issue 15, "vault without root"): the real server
 * (dist/src/server/main.js, with its fds 3-6 as protocol.ts describes) started as a local user
 * through setpriv, on a container file that user owns and opens, mounting a directory that user
 * owns. As a user it cannot call mount(2): the addon mounts through fusermount3 (native/fuse_user.c)
 * and unmounts with `fusermount3 -u -z`.
 *
 * Both transports: io_uring runs with the kernel's enable_uring switched on (and put back after).
 * Data is checked from both sides: the user reads back what it wrote through the block file, and
 * root decrypts the container independently with node:crypto's aes-256-xts.
 *
 * Needs root (to make the user and run setpriv), /dev/fuse, fusermount3, python3 and a built tree
 * (`npm run build`). /etc/fuse.conf is left alone (another suite toggles user_allow_other): the
 * allowRoot test takes it as it finds it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chainKeyBytes, type CipherName } from '../../src/crypto/cipher-chain.js';
import { nativeAddon } from '../../src/crypto/native.js';
import { SERVER_FD, type ServerConfig, type ServerStatus } from '../../src/server/protocol.js';
import { fuseUringSupported, setEnableUring } from '../support/fuse-uring.js';
import { commandExists, requirementsMet } from '../support/requirements.js';
import { localUser, runAs, spawnAs, type LocalUser } from '../support/unprivileged.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = path.join(REPO, 'dist/src/server/main.js');
const MiB = 1 << 20;
const DATA_OFFSET = MiB;
const DATA_SIZE = 32 * MiB;
const SECTOR = 4096;

function missingRequirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!existsSync('/usr/bin/fusermount3') && !existsSync('/bin/fusermount3')) missing.push('fusermount3');
  for (const tool of ['setpriv', 'useradd', 'python3']) if (!commandExists(tool)) missing.push(tool);
  if (!existsSync(SERVER)) missing.push(`${SERVER} (npm run build)`);
  return missing;
}
const missing = missingRequirements();
requirementsMet('native-fuse-unprivileged', missing);
if (missing.length === 0 && !fuseUringSupported()) requirementsMet('native-fuse-unprivileged (io_uring)', ['a kernel with CONFIG_FUSE_IO_URING']);

/** The mountinfo line of the mount on `dir`, split: [mount options, fs type, super options]. */
function mountOn(dir: string): { options: string[]; fstype: string; superOptions: string[] } | null {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === dir)
    .pop();
  if (line === undefined) return null;
  const f = line.split(' ');
  const sep = f.indexOf('-');
  return { options: f[5]!.split(','), fstype: f[sep + 1]!, superOptions: f[sep + 3]!.split(',') };
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir));
}

/** Decrypts whole sectors of the data area with node:crypto (spec §8; tweak of sector i is i). */
function decrypt(container: string, key: Buffer, from: number, len: number): Buffer {
  const first = Math.floor(from / SECTOR);
  const count = Math.ceil((from + len) / SECTOR) - first;
  const raw = Buffer.alloc(count * SECTOR);
  const fd = openSync(container, 'r');
  try {
    readSync(fd, raw, 0, raw.length, DATA_OFFSET + first * SECTOR);
  } finally {
    closeSync(fd);
  }
  const out = Buffer.alloc(raw.length);
  for (let i = 0; i < count; i++) {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64LE(BigInt(first + i));
    const d = createDecipheriv('aes-256-xts', key, iv);
    Buffer.concat([d.update(raw.subarray(i * SECTOR, (i + 1) * SECTOR)), d.final()]).copy(out, i * SECTOR);
  }
  return out.subarray(from - first * SECTOR, from - first * SECTOR + len);
}

/** Reads a descriptor to its end (the status pipe), at most `ms`. */
function readAll(fd: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(4096);
    const deadline = Date.now() + ms;
    const poll = () => {
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return reject(e);
          if (Date.now() > deadline) return reject(new Error(`no status within ${ms} ms`));
          return void setTimeout(poll, 10);
        }
        if (n === 0) return resolve(Buffer.concat(chunks).toString('utf8'));
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
    };
    poll();
  });
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the server did not exit within ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

interface Server {
  child: ChildProcess;
  status: ServerStatus;
  dir: string;
  mnt: string;
  vol: string;
  container: string;
  key: Buffer;
  log(): string;
}

// Python as the user: the block file is the user's alone, and these run with the user's identity.
const PY_WRITE_READ = `
import os, sys
vol, src = sys.argv[1], sys.argv[2]
ranges = [tuple(map(int, r.split(':'))) for r in sys.argv[3:]]
data = open(src, 'rb').read()
fd = os.open(vol, os.O_RDWR)
at = 0
for off, n in ranges:
    assert os.pwrite(fd, data[at:at + n], off) == n
    at += n
os.fsync(fd)
at = 0
for off, n in ranges:
    back = b''
    while len(back) < n:
        back += os.pread(fd, n - len(back), off + len(back))
    assert back == data[at:at + n], 'read back differs at %d' % off
    at += n
os.close(fd)
print('ok')
`;

// Holds the block file open until told (the file argv[2] appears), then reads it once more.
const PY_HOLD = `
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
print('open', flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
try:
    os.pread(fd, 4096, 0)
    print('read', flush=True)
except OSError as e:
    print(os.strerror(e.errno), flush=True)
`;

const TRANSPORTS = ['classic', 'io_uring'] as const;

for (const transport of TRANSPORTS)
  describe.skipIf(missing.length > 0 || (transport === 'io_uring' && !fuseUringSupported()))(`volume server run by an ordinary user (${transport} transport)`, () => {
    let user: LocalUser;
    let root: string;
    let uringWas: 'Y' | 'N' | undefined;
    let servers: Server[] = [];

    beforeAll(() => {
      user = localUser();
      root = mkdtempSync(path.join(tmpdir(), 'vault-ufuse-'));
      chmodSync(root, 0o711); // the user reaches its own directories below, and nothing else
      if (transport === 'io_uring') uringWas = setEnableUring('Y');
    });

    afterEach(async () => {
      for (const s of servers) {
        if (s.child.exitCode === null && s.child.signalCode === null) {
          s.child.kill('SIGKILL');
          await exited(s.child, 10_000);
        }
      }
      servers = [];
      // What a killed server leaves, the user can remove; nothing may stay mounted.
      for (const m of mountsUnder(root)) runAs(user, '/usr/bin/fusermount3', ['-u', '-z', '--', m]);
      expect(mountsUnder(root)).toEqual([]);
    });

    afterAll(() => {
      if (uringWas !== undefined) setEnableUring(uringWas);
      if (root) rmSync(root, { recursive: true, force: true });
    });

    /** Starts the server as the user on a new sparse container the user owns, in a directory it owns. */
    async function start(opts: { allowRoot?: boolean; memlockKiB?: number; cipher?: CipherName[]; threads?: number } = {}): Promise<Server> {
      const dir = mkdtempSync(path.join(root, 'v-'));
      const mnt = path.join(dir, 'fuse');
      const container = path.join(dir, 'c.vol');
      mkdirSync(mnt, { mode: 0o700 });
      const init = openSync(container, 'w');
      ftruncateSync(init, DATA_OFFSET + DATA_SIZE); // sparse, like a --quick container
      closeSync(init);
      for (const p of [dir, mnt, container]) chownSync(p, user.uid, user.gid);
      chmodSync(dir, 0o700);
      const key = randomBytes(opts.cipher ? chainKeyBytes(opts.cipher) : 64);
      const config: ServerConfig = {
        volumeId: path.basename(dir),
        containerPath: container,
        fuseDir: mnt,
        readOnly: false,
        sectorSize: SECTOR,
        dataOffset: DATA_OFFSET,
        dataSize: DATA_SIZE,
        firstTweak: '0',
        tweakStep: '1',
        transport,
        idleSeconds: null,
        ...(opts.allowRoot ? { allowRoot: true } : {}),
        ...(opts.cipher ? { cipher: opts.cipher } : {}),
      };
      const addon = nativeAddon();
      const [keyR, keyW] = addon.pipe();
      const [statusR, statusW] = addon.pipe();
      const [configR, configW] = addon.pipe();
      writeSync(keyW, key);
      closeSync(keyW);
      writeSync(configW, JSON.stringify(config));
      closeSync(configW);
      // The user opens the container itself (fd 3, as the CLI would hand it over).
      const limit = opts.memlockKiB === undefined ? [] : ['prlimit', `--memlock=${opts.memlockKiB * 1024}:${opts.memlockKiB * 1024}`, '--'];
      const argv = [
        ...limit,
        'setpriv',
        '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--reset-env', '--',
        ...(opts.threads === undefined ? [] : ['env', `VAULT_FUSE_THREADS=${opts.threads}`]),
        'sh', '-c', 'exec "$1" "$2" 3<>"$3"', 'sh', process.execPath, SERVER, container,
      ];
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'ignore', keyR, statusW, configR], cwd: '/' });
      expect(SERVER_FD).toEqual({ container: 3, key: 4, status: 5, config: 6 });
      closeSync(keyR);
      closeSync(statusW);
      closeSync(configR);
      let log = '';
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      let text: string;
      try {
        text = await readAll(statusR, 30_000);
      } finally {
        closeSync(statusR);
      }
      const server: Server = { child, status: JSON.parse(text) as ServerStatus, dir, mnt, vol: path.join(mnt, 'volume'), container, key, log: () => log };
      servers.push(server);
      return server;
    }

    async function serving(opts: { allowRoot?: boolean } = {}): Promise<Server> {
      const s = await start(opts);
      if (!s.status.ok) throw new Error(`the server failed: ${s.status.message}\n${s.log()}`);
      return s;
    }

    it('mounts through fusermount3: fuse.vault, user_id=<uid>, nosuid, nodev; the file is the user\'s, root gets EACCES', async () => {
      const t0 = Date.now();
      const s = await serving();
      console.log(`${transport}: serving as ${user.name} after ${Date.now() - t0} ms`);
      expect(s.status).toMatchObject({ ok: true, transport, blockFile: s.vol });
      const m = mountOn(s.mnt);
      expect(m).not.toBeNull();
      expect(m!.fstype).toBe('fuse.vault');
      expect(m!.options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
      expect(m!.superOptions).toEqual(expect.arrayContaining([`user_id=${user.uid}`, `group_id=${user.gid}`, `max_read=${MiB}`]));
      expect(m!.superOptions).not.toContain('allow_other'); // no allowRoot: nobody but the user
      const ls = runAs(user, 'stat', ['-c', '%u:%g %a %s', s.vol]);
      expect(ls.stdout.trim()).toBe(`${user.uid}:${user.gid} 600 ${DATA_SIZE}`);
      // FUSE refuses anyone but the mount's owner, root included.
      expect(() => openSync(s.vol, 'r')).toThrow(expect.objectContaining({ code: 'EACCES' }));
      expect(() => readFileSync(s.vol)).toThrow(/EACCES/);
      await expect.poll(s.log).toMatch(new RegExp(`transport ${transport}`));
    });

    it('the user writes and reads back several MiB at offsets; the container holds only ciphertext', async () => {
      const s = await serving();
      const ranges: [number, number][] = [
        [0, 3 * MiB],
        [7 * MiB + 1234, 2 * MiB + 777],
        [DATA_SIZE - MiB - 100, MiB + 100],
      ];
      const total = ranges.reduce((a, [, n]) => a + n, 0);
      const plain = randomBytes(total);
      const src = path.join(s.dir, 'plain.bin');
      writeFileSync(src, plain);
      chownSync(src, user.uid, user.gid);
      const t0 = Date.now();
      const r = runAs(user, 'python3', ['-c', PY_WRITE_READ, s.vol, src, ...ranges.map(([o, n]) => `${o}:${n}`)]);
      console.log(`${transport}: ${(total / MiB).toFixed(1)} MiB written, synced and read back by ${user.name} in ${Date.now() - t0} ms`);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('ok');
      rmSync(src);
      let at = 0;
      for (const [off, n] of ranges) {
        const want = plain.subarray(at, at + n);
        expect(decrypt(s.container, s.key, off, n).equals(want)).toBe(true);
        const raw = Buffer.alloc(n);
        const fd = openSync(s.container, 'r');
        readSync(fd, raw, 0, n, DATA_OFFSET + off);
        closeSync(fd);
        expect(raw.equals(want)).toBe(false);
        expect(raw.indexOf(want.subarray(0, 64))).toBe(-1);
        at += n;
      }
    });

    it('SIGTERM: the server unmounts with fusermount3 and exits promptly, even with the file held open', async () => {
      const s = await serving();
      const flag = path.join(s.dir, 'go');
      const holder = spawnAs(user, 'python3', ['-c', PY_HOLD, s.vol, flag]);
      let said = '';
      holder.stdout!.on('data', (d: Buffer) => (said += d.toString()));
      await expect.poll(() => said, { timeout: 10_000 }).toContain('open');
      const t0 = Date.now();
      s.child.kill('SIGTERM');
      expect(await exited(s.child, 10_000)).toBe(0);
      const ms = Date.now() - t0;
      console.log(`${transport}: SIGTERM to exit with the file held open: ${ms} ms`);
      expect(ms).toBeLessThan(5000);
      expect(mountOn(s.mnt)).toBeNull();
      await expect.poll(s.log).toMatch(/key wiped; exiting/);
      // The holder's descriptor is dead: the connection ended with the server.
      writeFileSync(flag, '');
      await new Promise((r) => holder.once('exit', r));
      expect(said.split('\n')[1]).toMatch(/^(Transport endpoint is not connected|No such device)$/);

      const quick = await serving();
      const t1 = Date.now();
      quick.child.kill('SIGTERM');
      expect(await exited(quick.child, 10_000)).toBe(0);
      console.log(`${transport}: SIGTERM to exit, file not open: ${Date.now() - t1} ms`);
      expect(mountOn(quick.mnt)).toBeNull();
    });

    it('kill -9: the mount is left dead (ENOTCONN or ECONNABORTED), and fusermount3 -u -z as the user removes it', async () => {
      const s = await serving();
      s.child.kill('SIGKILL');
      await exited(s.child, 10_000);
      const m = mountOn(s.mnt);
      expect(m?.fstype).toBe('fuse.vault'); // still mounted: nobody unmounted it
      const st = runAs(user, 'stat', [s.vol]);
      expect(st.status).not.toBe(0);
      // ENOTCONN once the kernel has aborted the connection; ECONNABORTED for a request queued just
      // before it did (the io_uring transport's ring lets go of /dev/fuse in a kernel worker, after
      // the process is reaped). Both say the same: the server is gone.
      expect(st.stderr).toMatch(/Transport endpoint is not connected|Software caused connection abort/);
      const u = runAs(user, '/usr/bin/fusermount3', ['-u', '-z', '--', s.mnt]);
      expect(u.status).toBe(0);
      expect(mountOn(s.mnt)).toBeNull();
    });

    it('allowRoot asks fusermount3 for allow_other, which takes user_allow_other in /etc/fuse.conf', async () => {
      const permitted = /^\s*user_allow_other\s*$/m.test(readFileSync('/etc/fuse.conf', 'utf8'));
      const s = await start({ allowRoot: true });
      if (!permitted) {
        // fusermount3's own words reach the status, for the CLI to explain.
        expect(s.status).toMatchObject({ ok: false, code: 'mount-failed' });
        expect(s.status.ok ? '' : s.status.message).toMatch(/fusermount3: option allow_other only allowed if 'user_allow_other' is set in \/etc\/fuse\.conf/);
        expect(await exited(s.child, 10_000)).toBe(1);
        expect(mountOn(s.mnt)).toBeNull();
        return;
      }
      expect(s.status.ok).toBe(true);
      expect(mountOn(s.mnt)!.superOptions).toEqual(expect.arrayContaining([`user_id=${user.uid}`, 'allow_other']));
      const fd = openSync(s.vol, 'r'); // root may, now
      expect(readSync(fd, Buffer.alloc(SECTOR), 0, SECTOR, 0)).toBe(SECTOR);
      closeSync(fd);
    });

    it('RLIMIT_MEMLOCK: the key is locked within the limit (I/O buffers too where it has room); too small a limit fails clearly', async () => {
      const shown = runAs(user, 'sh', ['-c', 'ulimit -l']).stdout.trim();
      const limitKiB = shown === 'unlimited' ? Infinity : Number(shown);
      const s = await serving();
      const pid = s.status.ok ? s.status.pid : 0;
      const lockedKiB = Number(/VmLck:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      console.log(`${transport}: RLIMIT_MEMLOCK ${shown} KiB, server locks ${lockedKiB} KiB`);
      expect(lockedKiB).toBeGreaterThan(0); // the key and its schedules
      expect(lockedKiB).toBeLessThanOrEqual(limitKiB);
      // 16 workers of about 2 MiB of I/O buffers each: 8 MiB (a common default) has no room for them.
      if (limitKiB < 32 * 1024) await expect.poll(s.log).toMatch(/RLIMIT_MEMLOCK has no room for the I\/O buffers/);
      // 256 KiB holds the key's page but not libgcrypt's secure pool (1 MiB at least), where the
      // key schedules live: libgcrypt would go on unlocked; the server refuses instead.
      const tiny = await start({ memlockKiB: 256 });
      expect(tiny.status).toMatchObject({ ok: false, code: 'mount-failed' });
      expect(tiny.status.ok ? '' : tiny.status.message).toMatch(/cannot lock the key schedules \(libgcrypt's secure pool\) in memory .*RLIMIT_MEMLOCK is 256 KiB.*Raise the limit/);
      expect(await exited(tiny.child, 10_000)).toBe(1);
      expect(mountOn(tiny.mnt)).toBeNull();
    });

    it('a Twofish cascade on 48 worker threads: every key schedule in locked memory (libgcrypt\'s pool is sized for them)', async () => {
      // ~52 KiB of schedules per worker: past the 1 MiB default pool, whose overflow libgcrypt
      // would leave unlocked; the server sizes the pool before it keys any worker, and checks.
      const s = await start({ cipher: ['serpent', 'twofish', 'aes'], threads: 48 });
      if (!s.status.ok) throw new Error(`the server failed: ${s.status.message}\n${s.log()}`);
      const lockedKiB = Number(/VmLck:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.status.pid}/status`, 'utf8'))![1]);
      const contexts = transport === 'io_uring' ? 96 : 48; // io_uring: as many queue threads again
      console.log(`${transport}: ${contexts} serpent-twofish-aes contexts, server locks ${lockedKiB} KiB`);
      expect(lockedKiB).toBeGreaterThanOrEqual(contexts * 48);
      const src = path.join(s.dir, 'plain.bin');
      writeFileSync(src, randomBytes(MiB));
      chownSync(src, user.uid, user.gid);
      const r = runAs(user, 'python3', ['-c', PY_WRITE_READ, s.vol, src, `${SECTOR}:${MiB}`]); // through every stage
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('ok');
    });
  });
