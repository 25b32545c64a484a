/**
 * What the rootless setups (issue 15: vault-udisks, vault-fuse2fs) need on the machine, made for
 * one run and undone through the cleanup stack, so that the machine is left as it was found:
 *
 * - an ordinary user, `vault-bench` (made with useradd when missing, and then removed again with
 *   its home), with a login's environment: HOME, XDG_RUNTIME_DIR=/run/user/<uid> (0700, made
 *   here as logind would, removed again if it was made here), the private system bus;
 * - the real daemons (rootless-stack.ts: dbus-daemon, systemd-udevd unless one runs, polkitd,
 *   udisksd), started once for the whole run, before the first setup, so that every setup (root's
 *   included) runs beside the same idle daemons;
 * - `vault setup-rootless --user vault-bench`: the polkit rule, user_allow_other in
 *   /etc/fuse.conf, group vault and the membership. Undone by putting /etc/fuse.conf and the rule
 *   back byte for byte (mode and owner too), the membership and (if this run made it, and nobody
 *   else is in it) group vault. Other sessions' tests on the same machine toggle the same
 *   machine-wide settings, so the undo is compare-and-restore: a file that someone else changed
 *   after this run's setup is left as they left it (and the report says so), and before every
 *   mount the settings are checked again and, if someone undid them, set up again (reported too);
 * - the user's volumes: each setup dismounts its own (as the user, by mount point); a sweep entry
 *   (run before the daemons stop, since udisksd has to unmount and delete its loop devices) then
 *   dismounts whatever of the user's volumes under this run's work dir is still there.
 *
 * Every command of the user's runs through setpriv --reuid --regid --init-groups --reset-env, so
 * it has the user's credentials and supplementary groups (group vault, read from /etc/group) and
 * inherits nothing of root's environment; RLIMIT_MEMLOCK is root's soft limit, a login's 8 MiB on
 * this machine (the volume servers lock their key, and their I/O buffers only where that has room).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CleanupStack } from './cleanup.js';
import { progress } from './log.js';
import { run, runOk, StepError, type AsUser } from './proc.js';
import { startRootlessStack, type RootlessStack } from './rootless-stack.js';
import { loopDevices, mountTable, under } from './system.js';
import { VaultCli } from './vault.js';
import { FUSE_CONF, POLKIT_RULE, POLKIT_RULE_FILE, SETUP_FILES, VAULT_GROUP, groupMembers, userAllowOther } from '../../src/system/rootless-setup.js';
import { LOOP_DIO_RULE, LOOP_DIO_RULE_FILE } from '../../src/system/loop-dio-rule.js';

export const BENCH_USER = 'vault-bench';
const USER_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';

/** The programs the rootless setups need beyond the root ones (Debian: scripts/setup-system.sh --bench). */
export const ROOTLESS_TOOLS = [
  'dbus-daemon', 'gdbus', 'pkcheck', 'fuse2fs', 'fusermount3', 'setpriv', 'useradd', 'userdel', 'gpasswd',
  '/usr/libexec/udisks2/udisksd', '/usr/lib/polkit-1/polkitd',
];

interface SavedFile {
  file: string;
  bytes: Buffer | null;
  mode: number;
  uid: number;
  gid: number;
}

function saveFile(file: string): SavedFile {
  if (!existsSync(file)) return { file, bytes: null, mode: 0, uid: 0, gid: 0 };
  const st = statSync(file);
  return { file, bytes: readFileSync(file), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

const readOptional = (file: string): Buffer | null => (existsSync(file) ? readFileSync(file) : null);
const sameBytes = (a: Buffer | null, b: Buffer | null): boolean => (a === null ? b === null : b !== null && a.equals(b));

/**
 * Puts a file back as it was (bytes, mode, owner; removed if it did not exist) when it is still as
 * this run's setup left it (`mine`); leaves it alone when someone else changed it since. Says what it did.
 */
function restoreFile(s: SavedFile, mine: Buffer | null | undefined): string | null {
  const now = readOptional(s.file);
  if (!sameBytes(now, s.bytes) && (mine === undefined || !sameBytes(now, mine)))
    return `${s.file} was changed by someone else during the run: left as they left it`;
  if (s.bytes === null) {
    if (now === null) return null;
    rmSync(s.file, { force: true });
    return `removed ${s.file}`;
  }
  let did: string | null = null;
  if (now === null || !now.equals(s.bytes)) {
    writeFileSync(s.file, s.bytes);
    did = `restored ${s.file}`;
  }
  const st = statSync(s.file);
  if ((st.mode & 0o7777) !== s.mode) chmodSync(s.file, s.mode);
  if (st.uid !== s.uid || st.gid !== s.gid) chownSync(s.file, s.uid, s.gid);
  return did;
}

function idOf(name: string): { uid: number; gid: number; home: string } | null {
  const r = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === name);
  return r ? { uid: Number(r[2]), gid: Number(r[3]), home: r[5]! } : null;
}

class BenchUser implements AsUser {
  readonly cwd = '/';
  constructor(
    readonly name: string,
    readonly uid: number,
    readonly gid: number,
    readonly home: string,
    readonly busAddress: string,
  ) {}

  get runtimeDir(): string {
    return `/run/user/${this.uid}`;
  }

  /** The environment a login gives (pam_systemd's XDG_RUNTIME_DIR), plus the private system bus. */
  env(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return {
      PATH: USER_PATH,
      HOME: this.home,
      USER: this.name,
      LOGNAME: this.name,
      LANG: 'C.UTF-8',
      XDG_RUNTIME_DIR: this.runtimeDir,
      DBUS_SYSTEM_BUS_ADDRESS: this.busAddress,
      ...extra,
    };
  }

  argv(cmd: string, args: readonly string[], extraEnv: Readonly<Record<string, string>> = {}): string[] {
    const kv = Object.entries(this.env(extraEnv)).map(([k, v]) => `${k}=${v}`);
    return ['setpriv', '--reuid', String(this.uid), '--regid', String(this.gid), '--init-groups', '--reset-env', '--', 'env', ...kv, cmd, ...args];
  }
}

export class Rootless {
  /** Facts about this part of the run for the report (versions, limits, what was made). */
  readonly notes: string[] = [];

  /** The files as this run's latest `vault setup-rootless` left them (compare-and-restore). */
  private readonly mine = new Map<string, Buffer | null>();

  private constructor(
    readonly user: BenchUser,
    readonly vault: VaultCli,
    readonly stack: RootlessStack,
    private readonly workDir: string,
    private readonly cliPath: string,
  ) {}

  /**
   * Makes everything above, each piece registered on `cleanup` the moment it exists. On failure the
   * pieces made so far are undone by the caller's cleanup as usual.
   */
  static async start(cleanup: CleanupStack, cliPath: string, workDir: string): Promise<Rootless> {
    // What setup-rootless changes, as it is now: put back last (pushed first).
    const files = SETUP_FILES.map(saveFile);
    const groupWas = groupMembers();
    let rl: Rootless | null = null;
    cleanup.push('rootless: restore /etc/fuse.conf, the polkit and udev rules and group vault', async () => {
      const did: string[] = [];
      for (const f of files) {
        const d = restoreFile(f, rl?.mine.get(f.file));
        if (d) did.push(d);
      }
      // The membership (userdel already took it when this run made the user), then the group if
      // this run made it and nobody else joined it meanwhile.
      if (groupMembers()?.includes(BENCH_USER) && !groupWas?.includes(BENCH_USER)) {
        await runOk('gpasswd', ['-d', BENCH_USER, VAULT_GROUP], { cleanup: true });
        did.push(`${BENCH_USER} out of group ${VAULT_GROUP}`);
      }
      const now = groupMembers();
      if (groupWas === null && now !== null) {
        if (now.length === 0) {
          await runOk('groupdel', [VAULT_GROUP], { cleanup: true });
          did.push(`removed group ${VAULT_GROUP}`);
        } else did.push(`group ${VAULT_GROUP} (made by this run) left: ${now.join(', ')} joined it meanwhile`);
      }
      if (did.length) progress(`rootless: ${did.join('; ')}`);
      for (const d of did.filter((x) => /someone else|meanwhile/.test(x))) rl?.notes.push(`rootless cleanup: ${d}`);
    });

    // The user: made if missing (and then removed again, home and all).
    let id = idOf(BENCH_USER);
    if (id === null) {
      await runOk('useradd', ['--create-home', '--shell', '/bin/sh', '--user-group', '--comment', 'vault bench (npm run bench)', BENCH_USER]);
      cleanup.push(`rootless: userdel --remove ${BENCH_USER}`, async () => {
        const r = await run('userdel', ['--remove', BENCH_USER], { cleanup: true });
        // userdel exits 12 when it could not remove the mail spool; the account is gone all the same.
        if (r.code !== 0 && r.code !== 12) throw new StepError(`userdel --remove ${BENCH_USER} failed (exit ${r.code}): ${r.stderr.trim()}`);
      });
      id = idOf(BENCH_USER);
      if (id === null) throw new StepError(`useradd ${BENCH_USER} left no passwd entry`);
      progress(`rootless: made user ${BENCH_USER} (uid ${id.uid}); removed again at the end`);
    } else {
      progress(`rootless: user ${BENCH_USER} exists (uid ${id.uid}): used as it is, kept`);
    }
    // The runtime dir logind would make, and the base of /media/<user> udisksd makes.
    const made: string[] = [];
    const ensureDir = (dir: string, mode: number, uid: number, gid: number): void => {
      if (existsSync(dir)) return;
      mkdirSync(dir, { mode });
      chmodSync(dir, mode);
      chownSync(dir, uid, gid);
      made.push(dir);
    };
    ensureDir('/run/user', 0o755, 0, 0);
    const runtime = `/run/user/${id.uid}`;
    const runtimeExisted = existsSync(runtime);
    ensureDir(runtime, 0o700, id.uid, id.gid);
    const vaultState = path.join(runtime, 'vault');
    const stateExisted = existsSync(vaultState);
    const mediaExisted = existsSync(`/media/${BENCH_USER}`);
    cleanup.push('rootless: remove the runtime dirs made for the user', async () => {
      // Made here: all of it (vault's state of this run's volumes is in it). Not made here: only
      // vault's state dir, and only if this run made it.
      if (!runtimeExisted) rmSync(runtime, { recursive: true, force: true });
      else if (!stateExisted) rmSync(vaultState, { recursive: true, force: true });
      for (const d of made.filter((x) => x !== runtime).reverse()) {
        try {
          rmdirSync(d);
        } catch {
          // someone else's entries appeared meanwhile: leave it
        }
      }
      if (!mediaExisted) {
        try {
          rmdirSync(`/media/${BENCH_USER}`); // udisksd's, empty once its mounts are gone
        } catch {
          // never made, or not empty
        }
      }
    });

    // The work dir is root's 0700: let the user pass through to its own setup dirs (0700 each).
    chmodSync(workDir, 0o711);

    const stack = await startRootlessStack();
    cleanup.push('rootless: stop dbus-daemon, polkitd, udisksd (and the udevd it started)', () => stack.stop());
    const user = new BenchUser(BENCH_USER, id.uid, id.gid, id.home, stack.env.DBUS_SYSTEM_BUS_ADDRESS);
    rl = new Rootless(user, new VaultCli(cliPath, '', user), stack, workDir, cliPath);
    const self: Rootless = rl;
    // Runs before the daemons stop: udisksd unmounts and deletes what the user's volumes hold.
    cleanup.push(`rootless: dismount ${BENCH_USER}'s volumes of this run`, async () => {
      const actions = await self.sweep();
      if (actions.length) progress(`rootless sweep: ${actions.join('; ')}`);
    });

    await self.setup();
    self.notes.push(`rootless: ${await versions()}; user ${BENCH_USER} (uid ${id.uid}), RLIMIT_MEMLOCK ${memlock()}`);
    return self;
  }

  /** `vault setup-rootless --user vault-bench`, and what it left in the files it writes. */
  private async setup(): Promise<string[]> {
    const r = await runOk(process.execPath, [this.cliPath, 'setup-rootless', '--user', BENCH_USER], { env: { ...process.env, ...this.stack.env } });
    const lines = r.stdout.split('\n').filter(Boolean);
    for (const line of lines) progress(`  setup-rootless: ${line}`);
    for (const f of SETUP_FILES) this.mine.set(f, readOptional(f));
    return lines;
  }

  /** What of `vault setup-rootless --user vault-bench` is not in place now (someone else undid it). */
  private missingSetup(): string[] {
    const out: string[] = [];
    const conf = readOptional(FUSE_CONF);
    if (conf === null || !userAllowOther(conf.toString('utf8'))) out.push(`user_allow_other in ${FUSE_CONF}`);
    if (readOptional(POLKIT_RULE_FILE)?.toString('utf8') !== POLKIT_RULE) out.push(POLKIT_RULE_FILE);
    if (readOptional(LOOP_DIO_RULE_FILE)?.toString('utf8') !== LOOP_DIO_RULE) out.push(LOOP_DIO_RULE_FILE);
    if (!groupMembers()?.includes(BENCH_USER)) out.push(`${BENCH_USER} in group ${VAULT_GROUP}`);
    return out;
  }

  /**
   * Before every mount of the user's: a udevd runs (udisksd needs its probe of the new loop
   * device), and the machine-wide settings are still as setup-rootless made them, or they are made again (another session's test on this machine may have put its own
   * saved copy back), and the report says so.
   */
  async ensureSetup(): Promise<void> {
    // udevd is machine-wide: the stack uses one that already runs, which another session may stop.
    if (await this.stack.ensureUdevd()) {
      const n = 'rootless: the systemd-udevd this run relied on (someone else\'s) had stopped: started one of its own';
      progress(`WARNING: ${n}`);
      this.notes.push(n);
    }
    const missing = this.missingSetup();
    if (missing.length === 0) return;
    const n = `rootless: ${missing.join(', ')} went missing during the run (someone else changed it): vault setup-rootless was run again`;
    progress(`WARNING: ${n}`);
    this.notes.push(n);
    await this.setup();
  }

  /** Makes `dir` (made by root under the work dir) the user's, 0700. */
  giveToUser(...dirs: string[]): void {
    for (const d of dirs) {
      chownSync(d, this.user.uid, this.user.gid);
      chmodSync(d, 0o700);
    }
  }

  /** The user's vault state dir (volume records, block-file FUSE mounts). */
  get stateDir(): string {
    return path.join(this.user.runtimeDir, 'vault');
  }

  /** Dismounts every volume of the user's whose container lies in this run's work dir. */
  async sweep(): Promise<string[]> {
    const actions: string[] = [];
    let recs: { container: string; mountpoint: string | null }[] = [];
    try {
      recs = await this.vault.list();
    } catch (e) {
      actions.push(`vault list as ${BENCH_USER} failed: ${(e as Error).message}`);
    }
    for (const rec of recs) {
      if (!under(this.workDir, rec.container)) continue;
      const target = rec.mountpoint ?? rec.container;
      const r = await this.vault.exec(['dismount', target, '--force', '--quiet'], { cleanup: true });
      actions.push(`vault dismount ${target} --force as ${BENCH_USER}${r.code === 0 ? '' : ` — FAILED: ${r.stderr.trim().split('\n')[0]}`}`);
    }
    return actions;
  }

  /**
   * What of the user's volumes is still there (the kernel's tables, the user's state): mounts on
   * /media/<user>, on the state dir or the work dir, loop devices on a block file in the state dir,
   * volume servers whose log is there. Readable after the dirs are gone.
   */
  leftovers(): string[] {
    const out: string[] = [];
    const state = this.stateDir;
    const media = `/media/${BENCH_USER}`;
    for (const m of mountTable())
      if (under(state, m.mountpoint) || under(media, m.mountpoint) || (under(this.workDir, m.mountpoint) && m.fstype.startsWith('fuse')))
        out.push(`mount ${m.mountpoint} (${m.fstype})`);
    for (const l of loopDevices()) if (under(state, l.backingFile)) out.push(`loop device ${l.device} → ${l.backingFile}`);
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        // The status line, not the owner of /proc/<pid>: a non-dumpable server's is root.
        const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        if (Number(uid) !== this.user.uid) continue;
        out.push(`process ${pid} of ${BENCH_USER}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 100)}`);
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  /** The server pid of a volume's record is a process whose stdout is the user's state dir. */
  ownsServer(pid: number): boolean {
    try {
      return under(this.stateDir, readlinkSync(`/proc/${pid}/fd/1`));
    } catch {
      return false;
    }
  }
}

/** Debian versions of what the routes run on: kernel ext4 via udisks2, or fuse2fs. */
async function versions(): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'udisks2', 'polkitd', 'fuse2fs', 'fuse3', 'dbus-daemon']);
  return r.stdout.trim().split('\n').filter(Boolean).join(', ') || 'package versions unknown';
}

/** This process's RLIMIT_MEMLOCK soft limit, which the user's processes inherit through setpriv. */
function memlock(): string {
  const m = /^Max locked memory\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const v = m?.[1];
  if (!v) return 'unknown';
  return v === 'unlimited' ? v : `${Number(v) / 2 ** 20} MiB`;
}
