#!/usr/bin/env node
/**
 * The volume server: a detached process that holds one unlocked volume's key and serves its
 * decrypted data area as a file through FUSE, until SIGTERM or until its FUSE mount disappears.
 * Started by the CLI (src/server/spawn.ts); see protocol.ts for its file descriptors.
 */
import { closeSync, writeSync } from 'node:fs';
import { KeyHandle } from '../crypto/key-handle.js';
import { hardenProcess } from '../crypto/process-hardening.js';
import { MASTER_KEY_SIZE } from '../format/constants.js';
import { EncryptedBlockFile } from '../volume/block-file.js';
import { isMountPoint } from '../mount/filesystem.js';
import { serveBlockFile, unmountFuse } from './fuse-frontend.js';
import { BLOCK_FILE_NAME, SERVER_FD, type ServerConfig, type ServerStatus } from './protocol.js';

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

async function main(): Promise<void> {
  // Before the key arrives: no core dumps and no ptrace by non-root. (Not mlockall: V8 releases
  // its own pages with madvise(MADV_DONTNEED), which fails on locked pages and aborts the process.
  // The key itself sits in locked pages of its own; see SECURITY.md.)
  if (!hardenProcess()) log('warning: native addon missing; the process stays dumpable');

  const config = JSON.parse(process.argv[process.argv.indexOf('--config') + 1]!) as ServerConfig;
  const key = KeyHandle.readFromFd(SERVER_FD.key, MASTER_KEY_SIZE);
  closeSync(SERVER_FD.key);

  const file = new EncryptedBlockFile(
    SERVER_FD.container,
    {
      dataOffset: config.dataOffset,
      dataSize: config.dataSize,
      sectorSize: config.sectorSize,
      firstTweak: BigInt(config.firstTweak),
      tweakStep: BigInt(config.tweakStep),
    },
    key,
    config.readOnly,
  );

  let fuse: Awaited<ReturnType<typeof serveBlockFile>>;
  try {
    fuse = await serveBlockFile(config.fuseDir, file, (e) => log(`I/O error: ${(e as Error).message}`));
  } catch (e) {
    key.dispose();
    report({ ok: false, code: 'mount-failed', message: `FUSE mount failed: ${(e as Error).message}` });
    process.exit(1);
  }
  log(`serving ${config.containerPath} (${config.dataSize} bytes, ${config.readOnly ? 'read-only' : 'read-write'})`);

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    clearInterval(watch);
    await unmountFuse(fuse);
    try {
      await file.sync();
    } catch (e) {
      log(`final sync failed: ${(e as Error).message}`);
    }
    key.dispose();
    log('key wiped; exiting');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => undefined); // the CLI's terminal closing is not a reason to stop
  // When the FUSE mount is gone (unmounted by hand or by `vault dismount`), nothing can reach the
  // volume any more: wipe the key and exit.
  const watch = setInterval(() => {
    if (!isMountPoint(config.fuseDir)) void stop('FUSE mount disappeared');
  }, 1000);

  report({ ok: true, pid: process.pid, blockFile: `${config.fuseDir}/${BLOCK_FILE_NAME}` });
}

main().catch((e) => {
  log(`fatal: ${(e as Error).stack ?? e}`);
  report({ ok: false, code: 'internal', message: (e as Error).message });
  process.exit(1);
});
