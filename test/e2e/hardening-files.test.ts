/**
 * Issue 13 (files): what a local user who owns the directory holding a container, and can write
 * /tmp and /run/lock, can make root do while root runs vault. Every attack runs as a real
 * unprivileged user (test/support/unprivileged.ts), races with a real racer (test/support/racer.c,
 * compiled here) for many attempts, and checks that a root-owned canary in a root-only directory
 * is byte for byte untouched and that vault either works safely or refuses with one line and the
 * documented exit code.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { HEADER_SIZE } from '../../src/format/constants.js';
import { parseHeaderCopy, serializeHeaderCopy } from '../../src/format/header.js';
import { localUser, runAs, spawnAs, type LocalUser } from '../support/unprivileged.js';
import { CLI, FAST_KDF, ROOT, e2eSuite, ok, sha256File, vault } from './harness.js';

const suite = e2eSuite('hardening-files');
/** Race attempts: vault runs per race test (each with hundreds of swaps by the racer); 12 in CI,
 *  100 in `npm run test:long`. */
const RUNS = Number(process.env.VAULT_HARDENING_RUNS ?? 12);

let mallory: LocalUser;
let rootDir: string; // root 0700: the canary lives here
let canary: string;
let canarySum: string;
let mdir: string; // mallory's own directory, where root's containers are
let racerBin: string;

function canaryUntouched(): void {
  expect(sha256File(canary), 'the root-owned canary changed').toBe(canarySum);
  expect(statSync(canary).uid).toBe(0);
}

/** The one line vault prints for a refusal (plus an optional hint line). */
function oneLine(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('hint: ') && !l.startsWith('vault: warning'));
  expect(lines.length, stderr).toBe(1);
  expect(lines[0]).toMatch(re);
}

interface Racer {
  stop(): Promise<{ swaps: number; hits: number }>;
}

function startRacer(mode: 'partial' | 'swap' | 'plant', dir: string, name: string): Racer {
  const child: ChildProcess = spawnAs(mallory, racerBin, [mode, dir, name, canary]);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const [swaps, hits] = out.trim().split(' ').map(Number);
      return { swaps: swaps ?? 0, hits: hits ?? 0 };
    },
  };
}

/** Empties mallory's directory (as root) between attempts, keeping nothing of the last one. */
function clearMalloryDir(): void {
  for (const n of readdirSync(mdir)) rmSync(path.join(mdir, n), { recursive: true, force: true });
}

/** Whether `pw` opens the container (info --dump-master-key: 0 yes, 3 no). */
function opens(file: string, pw: string): number {
  return vault(['info', file, '--dump-master-key', '--password-stdin'], `${pw}\n`).status;
}

function createIn(dir: string, name: string, pw: string, size = '4M'): string {
  const file = path.join(dir, name);
  ok(vault(['create', file, '--size', size, '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], `${pw}\n`), 'create');
  return file;
}

describe.runIf(suite.run)('hardening: files root opens in directories another user controls', () => {
  beforeAll(() => {
    mallory = localUser();
    chmodSync(suite.dir, 0o755);
    rootDir = path.join(suite.dir, 'root');
    mkdirSync(rootDir, { mode: 0o700 });
    canary = path.join(rootDir, 'canary');
    writeFileSync(canary, randomBytes(6 << 20), { mode: 0o644 }); // large enough to serve as a 4 MiB container
    canarySum = sha256File(canary);
    mdir = path.join(suite.dir, 'mallory');
    mkdirSync(mdir, { mode: 0o755 });
    chownSync(mdir, mallory.uid, mallory.gid);
    const bin = path.join(suite.dir, 'bin');
    mkdirSync(bin, { mode: 0o755 });
    racerBin = path.join(bin, 'racer');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', racerBin, path.join(ROOT, 'test/support/racer.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
  });

  it(`create: the partial file swapped for a symlink to a root file while root creates, ${RUNS} creates (ext4 and none)`, async () => {
    const racer = startRacer('partial', mdir, '.c.vol.vault-partial-');
    const statuses: number[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        const fs = i % 2 === 0 ? 'ext4' : 'none';
        const r = vault(['create', path.join(mdir, 'c.vol'), '--size', '4M', '--fs', fs, '--password-stdin', ...FAST_KDF], 'pw\n');
        statuses.push(r.status);
        if (r.status !== 0) {
          expect(r.status, r.stderr).toBe(8);
          oneLine(r.stderr, /^vault: the temporary file beside \S+c\.vol was replaced while vault wrote it; nothing was created$/);
          expect(existsSync(path.join(mdir, 'c.vol'))).toBe(false);
        }
        canaryUntouched();
        clearMalloryDir();
      }
    } finally {
      const { swaps, hits } = await racer.stop();
      console.log(`create race: ${RUNS} creates, racer ${swaps} swaps, ${hits} partial files taken; exits ${JSON.stringify(statuses)}`);
      expect(hits).toBeGreaterThan(0);
      expect(swaps).toBeGreaterThanOrEqual(200);
    }
    canaryUntouched();
  });

  it('create: planted "stale partial" names (a directory, a symlink to a root file, a FIFO, her own file) are left alone; a real stale one is removed', () => {
    const prefix = '.d.vol.vault-partial-';
    const planted = { dir: `${prefix}999991-deadbeef`, link: `${prefix}999992-deadbeef`, fifo: `${prefix}999993-deadbeef`, file: `${prefix}999994-deadbeef` };
    const r = runAs(mallory, 'sh', ['-c', `cd "$1" && mkdir "$2" && ln -s "$3" "$4" && mkfifo "$5" && echo hers > "$6"`, 'sh', mdir, planted.dir, canary, planted.link, planted.fifo, planted.file]);
    expect(r.status, r.stderr).toBe(0);
    const stale = path.join(mdir, `${prefix}999995-deadbeef`); // what a create killed with -9 leaves: root's, 0600
    writeFileSync(stale, 'x', { mode: 0o600 });
    const c = vault(['create', path.join(mdir, 'd.vol'), '--size', '4M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], 'pw\n');
    ok(c);
    expect(c.stderr).toMatch(/removed \S+999995-deadbeef, left by an interrupted create/);
    expect(existsSync(stale)).toBe(false);
    expect(lstatSync(path.join(mdir, planted.dir)).isDirectory()).toBe(true);
    expect(lstatSync(path.join(mdir, planted.link)).isSymbolicLink()).toBe(true);
    expect(lstatSync(path.join(mdir, planted.fifo)).isFIFO()).toBe(true);
    expect(readFileSync(path.join(mdir, planted.file), 'utf8')).toBe('hers\n');
    canaryUntouched();
    clearMalloryDir();
  });

  it(`header lock: symlinks planted in a fresh /run/lock/vault (private mount namespace), ${RUNS} passwd runs`, () => {
    const file = createIn(mdir, 'l.vol', 'p0');
    chownSync(file, mallory.uid, mallory.gid); // her container, in her directory
    const st = statSync(file);
    // Inside `unshare -m`: a fresh tmpfs on /run/lock, mallory's racer planting <dev>-<ino>.lock -> canary
    // (what made the old vault truncate it), and root running passwd RUNS times.
    const script = path.join(suite.dir, 'lock-attack.sh');
    writeFileSync(
      script,
      `set -e
mount -t tmpfs -o mode=1777 tmpfs /run/lock
setpriv --reuid ${mallory.uid} --regid ${mallory.gid} --init-groups --reset-env -- "${racerBin}" plant /run/lock/vault ${st.dev}-${st.ino}.lock "${canary}" > "$1/racer.out" &
RACER=$!
sleep 0.2
i=0
while [ $i -lt ${RUNS} ]; do
  printf 'p%d\\np%d\\n' $i $((i + 1)) | "${process.execPath}" "${CLI}" passwd "${file}" --password-stdin ${FAST_KDF.join(' ')} > /dev/null 2>> "$1/passwd.err" || echo "passwd $i failed" >> "$1/passwd.err"
  i=$((i + 1))
done
kill -TERM $RACER; wait $RACER || true
test -L /run/lock/vault/${st.dev}-${st.ino}.lock
`,
    );
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', script, suite.dir], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(path.join(suite.dir, 'passwd.err'), 'utf8')).not.toMatch(/failed/);
    const [swaps] = readFileSync(path.join(suite.dir, 'racer.out'), 'utf8').trim().split(' ').map(Number);
    console.log(`lock race: ${RUNS} passwd runs, racer planted ${swaps} symlinks`);
    expect(swaps).toBeGreaterThan(RUNS);
    canaryUntouched();
    expect(opens(file, `p${RUNS}`)).toBe(0);
    clearMalloryDir();
  });

  it('header lock: a run directory that another user made is refused (exit 8), not adopted', () => {
    const file = createIn(mdir, 'r.vol', 'pw');
    const st = statSync(file);
    const run = path.join(mdir, 'run');
    const r = runAs(mallory, 'sh', ['-c', 'mkdir -p "$1/locks" && ln -s "$2" "$1/locks/$3"', 'sh', run, canary, `${st.dev}-${st.ino}.lock`]);
    expect(r.status, r.stderr).toBe(0);
    const p = vault(['passwd', file, '--password-stdin', ...FAST_KDF], 'pw\nnew\n', { VAULT_RUN_DIR: run });
    expect(p.status, p.stderr).toBe(8);
    oneLine(p.stderr, new RegExp(`^vault: refusing to use ${run}: it belongs to uid ${mallory.uid}, not 0$`));
    canaryUntouched();
    expect(opens(file, 'pw')).toBe(0);
    clearMalloryDir();
  });

  it(`one open per command: the container swapped for a symlink to a root file during passwd, ${RUNS} runs`, async () => {
    const file = createIn(mdir, 's.vol', 'q0');
    let pw = 0;
    const statuses: number[] = [];
    const racer = startRacer('swap', mdir, 's.vol');
    try {
      for (let i = 0; i < RUNS; i++) {
        const r = vault(['passwd', file, '--password-stdin', ...FAST_KDF], `q${pw}\nq${pw + 1}\n`);
        statuses.push(r.status);
        if (r.status === 0) pw++;
        else {
          // refused for safety (8), or the path named the canary or nothing at that instant (5): never a write
          expect([5, 8], r.stderr).toContain(r.status);
          oneLine(r.stderr, /^vault: /);
        }
        canaryUntouched();
      }
    } finally {
      const { swaps } = await racer.stop();
      console.log(`container swap race: ${RUNS} passwd runs, racer ${swaps} swaps; exits ${JSON.stringify(statuses)}`);
      expect(swaps).toBeGreaterThanOrEqual(200);
    }
    canaryUntouched();
    expect(opens(file, `q${pw}`)).toBe(0);
    clearMalloryDir();
  });

  it('keyfiles and backup files: a FIFO cannot hang root, a symlink is not followed, a planted name is not created through', () => {
    const file = createIn(mdir, 'k.vol', 'pw');
    const r = runAs(mallory, 'sh', ['-c', 'cd "$1" && mkfifo fifo && ln -s "$2" link && ln -s "$3" newlink', 'sh', mdir, canary, path.join(rootDir, 'made-by-root')]);
    expect(r.status, r.stderr).toBe(0);
    const fifo = path.join(mdir, 'fifo');
    const link = path.join(mdir, 'link');
    const newlink = path.join(mdir, 'newlink');
    const timed = (args: string[], input: string) => {
      const t = Date.now();
      const res = vault(args, input);
      expect(Date.now() - t, `${args.join(' ')} waited`).toBeLessThan(20_000);
      return res;
    };
    // keyfile: a FIFO (the old open blocked until a writer came), and a symlink to a root file as key material
    let x = timed(['passwd', file, '--password-stdin', '--keyfile', fifo, ...FAST_KDF], 'pw\nnew\n');
    expect(x.status, x.stderr).toBe(2);
    oneLine(x.stderr, /^vault: keyfile \S+fifo is not a regular file$/);
    x = timed(['keyslot', 'add', file, '--password-stdin', '--new-keyfile', link, ...FAST_KDF], 'pw\n\n');
    expect(x.status, x.stderr).toBe(8);
    oneLine(x.stderr, /^vault: keyfile \S+link is a symbolic link$/);
    // header backup files: read (restore) and created (backup, keyfile generate)
    for (const bad of [fifo, link]) {
      x = timed(['header', 'restore', file, bad, '--force', '--password-stdin'], 'pw\n');
      expect(x.status, x.stderr).toBe(bad === fifo ? 2 : 8);
    }
    for (const args of [['header', 'backup', file, newlink], ['keyfile', 'generate', newlink]]) {
      x = timed(args, '');
      expect(x.status, x.stderr).toBe(2);
      oneLine(x.stderr, /already exists$/);
    }
    expect(existsSync(path.join(rootDir, 'made-by-root'))).toBe(false);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    canaryUntouched();
    expect(opens(file, 'pw')).toBe(0);
    clearMalloryDir();
  });

  describe('header restore: the UUID is public, the backup must prove itself', () => {
    /** A backup with every copy's geometry changed and its checksum recomputed (the MAC cannot be: she lacks the key). */
    function forge(raw: Buffer, change: (h: ReturnType<typeof parseHeaderCopy>) => void): Buffer {
      const out = Buffer.from(raw);
      for (const copy of [0, 1] as const) {
        const h = parseHeaderCopy(raw.subarray(copy * HEADER_SIZE, (copy + 1) * HEADER_SIZE), copy);
        change(h);
        serializeHeaderCopy(h, h.mac).copy(out, copy * HEADER_SIZE);
      }
      return out;
    }

    /** Mallory writes `bytes` as her own file in her directory. */
    function hers(name: string, bytes: Buffer): string {
      const f = path.join(mdir, name);
      const src = path.join(suite.dir, `${name}.src`);
      writeFileSync(src, bytes, { mode: 0o644 });
      const r = runAs(mallory, 'cp', [src, f]);
      rmSync(src);
      expect(r.status, r.stderr).toBe(0);
      expect(statSync(f).uid).toBe(mallory.uid);
      expect(readFileSync(f).equals(bytes)).toBe(true);
      return f;
    }

    function smash(file: string): void {
      const size = statSync(file).size;
      const fd = openSync(file, 'r+');
      writeSync(fd, randomBytes(HEADER_SIZE), 0, HEADER_SIZE, 0);
      writeSync(fd, randomBytes(HEADER_SIZE), 0, HEADER_SIZE, size - HEADER_SIZE);
      fsyncSync(fd);
      closeSync(fd);
    }

    it('a forged geometry (secondary copy inside the data area) or altered copy is refused, with or without readable headers; the real backup restores', () => {
      const file = createIn(mdir, 'h.vol', 'pw', '8M');
      const backup = path.join(rootDir, 'h.bak');
      ok(vault(['header', 'backup', file, backup]));
      const raw = readFileSync(backup);
      const smaller = hers('smaller.bak', forge(raw, (h) => (h.dataSize -= 1 << 20)));
      const altered = hers('altered.bak', forge(raw, (h) => (h.sequence += 5n)));
      for (const damaged of [false, true]) {
        if (damaged) smash(file);
        const before = sha256File(file);
        let x = vault(['header', 'restore', file, smaller, '--force', '--password-stdin'], 'pw\n');
        expect(x.status, x.stderr).toBe(5);
        oneLine(x.stderr, /^vault: the backup describes a container of \d+ bytes; \S+h\.vol has \d+$/);
        x = vault(['header', 'restore', file, altered, '--force', '--password-stdin'], 'pw\n');
        expect(x.status, x.stderr).toBe(5);
        oneLine(x.stderr, /^vault: a header copy in the backup fails its MAC: it was altered$/);
        x = vault(['header', 'restore', file, backup, '--force', '--password-stdin'], 'not the passphrase\n');
        expect(x.status, x.stderr).toBe(3);
        expect(sha256File(file), 'a refused restore wrote to the container').toBe(before);
      }
      ok(vault(['header', 'restore', file, backup, '--force', '--password-stdin'], 'pw\n'));
      expect(opens(file, 'pw')).toBe(0);
      canaryUntouched();
      clearMalloryDir();
    });

    it("a backup of another container with the same (public) UUID does not open with this container's passphrase", () => {
      const file = createIn(mdir, 'u.vol', 'pw');
      const other = createIn(mdir, 'v.vol', 'hers');
      const bak = path.join(rootDir, 'v.bak');
      ok(vault(['header', 'backup', other, bak]));
      const mine = readFileSync(file).subarray(0, HEADER_SIZE);
      const uuid = parseHeaderCopy(mine, 0).uuid;
      const forged = hers('same-uuid.bak', forge(readFileSync(bak), (h) => (h.uuid = uuid)));
      const before = sha256File(file);
      const x = vault(['header', 'restore', file, forged, '--force', '--password-stdin'], 'pw\n');
      expect(x.status, x.stderr).toBe(3);
      expect(sha256File(file)).toBe(before);
      rmSync(bak);
      clearMalloryDir();
    });
  });
});
