#!/usr/bin/env node
/**
 * The volume server: a detached process that holds one unlocked volume's key and serves its
 * decrypted data area as a file through FUSE, until SIGTERM or until its FUSE mount disappears.
 * Started by the CLI (src/server/spawn.ts); see protocol.ts for its file descriptors.
 *
 * The native addon serves the file: FUSE spoken on /dev/fuse by native threads (native/fuse_*.c),
 * over io_uring where the kernel offers it; the key goes from the pipe into the addon's locked
 * memory and never enters JS.
 */
import { closeSync, fstatSync, read, writeSync } from 'node:fs';
import { hardenProcess, isDumpable } from '../crypto/process-hardening.js';
import { isVaultError } from '../errors.js';
import { writeServerPid } from '../mount/state.js';
import type { FuseStats } from './fuse-addon.js';
import { adoptDescriptors } from './adopt.js';
import { AWAIT_FDS_FLAG, BLOCK_FILE_NAME, MAX_CONFIG_BYTES, SERVER_FD, type FuseTransport, type ServerConfig, type ServerStatus } from './protocol.js';

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} vault-server[${process.pid}] ${msg}\n`);
}

function report(status: ServerStatus): void {
  try {
    writeSync(SERVER_FD.status, JSON.stringify(status) + '\n');
    closeSync(SERVER_FD.status);
  } catch {
    // The CLI went away; nothing to tell.
  }
}

/**
 * The config from its pipe (fd 6, up to EOF): never from argv, which every user can read. The CLI
 * launches the server before it has unlocked the volume (spawn.ts), so this may wait for as long
 * as a passphrase prompt; null means the CLI gave up (end-of-file before any byte).
 */
function readConfig(): Promise<ServerConfig | null> {
  // fs.read on the descriptor (a blocking read in libuv's pool) rather than a net.Socket: node:net
  // is 5 ms of the server's start, on the mount's path.
  const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
  return new Promise((resolve, reject) => {
    const next = (size: number) =>
      read(SERVER_FD.config, buf, size, buf.length - size, null, (err, n) => {
        if (err) return reject(err);
        if (n > 0 && size + n > MAX_CONFIG_BYTES) return reject(new Error(`the config on fd ${SERVER_FD.config} is longer than ${MAX_CONFIG_BYTES} bytes`));
        if (n > 0) return next(size + n);
        closeSync(SERVER_FD.config);
        resolve(size === 0 ? null : (JSON.parse(buf.toString('utf8', 0, size)) as ServerConfig));
      });
    next(0);
  });
}

/** What main() needs from the server once it serves. */
interface Serving {
  stop(): Promise<void>;
  /** Settles when serving ended by itself (FUSE unmounted from outside, fatal error). */
  ended: Promise<string>;
  /** Time (ms since the epoch) of the last read or write, for the idle limit. */
  lastIoMs(): number;
  transport: FuseTransport;
  /** Why that transport (FuseStats.transportNote). */
  transportNote: string;
  /** FuseStats.ioBuffersLocked. */
  ioBuffersLocked: boolean;
  grow(dataSize: number): void;
  /** FuseStats.protectionTripped. */
  protectionTripped(): boolean;
  stats(): FuseStats;
}

async function serve(config: ServerConfig, frontend: Promise<typeof import('./native-frontend.js')>): Promise<Serving> {
  // 16 workers: on 2 cores, 4 KiB random I/O at queue depth 16 measured 0.70x plain with 16 threads
  // against 0.48x with 8 (bench/RESULTS.md); threads mostly wait on pread/pwrite.
  const { serveNative, tuningFromEnv } = await frontend;
  const server = await serveNative(config, SERVER_FD.container, SERVER_FD.key, { threads: 16, ...tuningFromEnv() });
  closeSync(SERVER_FD.key);
  return {
    stop: () => server.stop(),
    ended: server.done.then((end) => `${end.reason}${end.message ? `: ${end.message}` : ''}`),
    lastIoMs: () => server.stats().lastIoMs,
    transport: server.stats().transport,
    transportNote: server.stats().transportNote,
    ioBuffersLocked: server.stats().ioBuffersLocked,
    grow: (dataSize) => server.grow(dataSize),
    protectionTripped: () => server.stats().protectionTripped,
    stats: () => server.stats(),
  };
}

async function main(): Promise<void> {
  // Before the key arrives: no core dumps and no ptrace by non-root. (Not mlockall: V8 releases
  // its own pages with madvise(MADV_DONTNEED), which fails on locked pages and aborts the process.
  // The key itself sits in locked pages of its own; see SECURITY.md.)
  hardenProcess();
  const frontend = import('./native-frontend.js'); // loads while the CLI unlocks the volume
  frontend.catch(() => undefined); // a failure is reported where serve() awaits it
  if (process.argv.includes(AWAIT_FDS_FLAG)) {
    await frontend.catch(() => undefined); // loaded first: the wait for descriptors blocks this thread
    if (!adoptDescriptors()) process.exit(0); // the CLI gave up before it had a volume: nothing was sent
  }
  log(`process hardening: ${isDumpable() ? 'STILL DUMPABLE' : 'not dumpable (no core dumps, no ptrace by non-root)'}`);
  const config = await readConfig();
  if (config === null) {
    log('the CLI gave up before sending a config (no key was sent); exiting');
    process.exit(0);
  }
  // Say who serves this volume before anything else, so that a CLI killed mid-mount leaves a server
  // the next `vault list` can find and stop. No directory means that cleanup already ran: give up.
  try {
    writeServerPid(config.fuseDir);
  } catch (e) {
    report({ ok: false, code: 'mount-failed', message: `the volume directory is gone: ${(e as Error).message}` });
    process.exit(1);
  }

  let serving: Serving;
  try {
    serving = await serve(config, frontend);
  } catch (e) {
    // io_uring asked for (VAULT_FUSE_TRANSPORT) but switched off: the message says how to switch it on.
    if (isVaultError(e, 'missing-component')) report({ ok: false, code: e.code, message: e.message });
    else report({ ok: false, code: 'mount-failed', message: `FUSE mount failed: ${(e as Error).message}` });
    process.exit(1);
  }
  log(`serving ${config.containerPath} (${config.dataSize} bytes, ${config.readOnly ? 'read-only' : 'read-write'}, transport ${serving.transport}: ${serving.transportNote})`);
  if (!serving.ioBuffersLocked)
    log('RLIMIT_MEMLOCK has no room for the I/O buffers: only the key and its schedules are locked (raise `ulimit -l` to lock the buffers too)');

  let watches: { stop(): void }[] = [];
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    for (const w of watches) w.stop();
    log(`stopping: ${why}`);
    await serving.stop();
    log('key wiped; exiting');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => undefined); // the CLI's terminal closing is not a reason to stop
  process.on('SIGUSR2', () => growToFile(config, serving));
  // When the FUSE mount is gone (unmounted by `vault dismount` or by hand), nothing can reach the
  // volume any more: wipe the key and exit.
  void serving.ended.then((why) => stop(why));

  report({ ok: true, pid: process.pid, blockFile: `${config.fuseDir}/${BLOCK_FILE_NAME}`, transport: serving.transport });
  try {
    watches = await startWatches(config, serving);
  } catch (e) {
    // A volume whose idle limit or protection record cannot run is not served on without them.
    return stop(`the server's watches did not start: ${(e as Error).message}`);
  }
  if (stopping) for (const w of watches) w.stop(); // a stop that came while they loaded
}

/**
 * The idle limit, the hidden-volume protection and the I/O-error record, loaded once the CLI has
 * been told the volume serves: they are not on the mount's path (the idle watch alone brings in
 * child_process, 7 ms of a server's start).
 */
async function startWatches(config: ServerConfig, serving: Serving): Promise<{ stop(): void }[]> {
  const [{ watchIdle }, { watchProtection }, { watchIoErrors }] = await Promise.all([
    import('./idle.js'),
    import('./protection-watch.js'),
    import('./io-error-watch.js'),
  ]);
  const watches = [watchIoErrors({ fuseDir: config.fuseDir, stats: serving.stats, log })];
  if (config.idleSeconds !== null)
    watches.push(watchIdle({ volumeId: config.volumeId, fuseDir: config.fuseDir, idleSeconds: config.idleSeconds, lastIoMs: serving.lastIoMs, log }));
  if (config.protectedRange) watches.push(watchProtection({ fuseDir: config.fuseDir, tripped: serving.protectionTripped, log }));
  return watches;
}

/**
 * SIGUSR2: `vault resize` grew this vault container while mounted (spec/format.md §12): its data
 * area now ends where its secondary header copy starts, 4096 bytes before the end of the file.
 * Serve that much; the native side refuses anything smaller than now or outside the file.
 */
function growToFile(config: ServerConfig, serving: Serving): void {
  try {
    const room = fstatSync(SERVER_FD.container).size - config.dataOffset - 4096;
    const dataSize = Math.floor(room / config.sectorSize) * config.sectorSize;
    serving.grow(dataSize);
    log(`grown to ${dataSize} bytes`);
  } catch (e) {
    log(`grow refused: ${(e as Error).message}`);
  }
}

main().catch((e) => {
  log(`fatal: ${(e as Error).stack ?? e}`);
  report({ ok: false, code: 'internal', message: (e as Error).message });
  process.exit(1);
});
