/**
 * The server's side of an early start (prelaunch.ts, protocol.ts's AWAIT_FDS_FLAG): take the log,
 * the container and the key pipe from the CLI and put them where a server launched with them has
 * them.
 */
import { closeSync } from 'node:fs';
import { nativeAddon } from '../crypto/native.js';
import { PASSED_FD_COUNT, SERVER_FD } from './protocol.js';

/**
 * Waits for the CLI's one SCM_RIGHTS message on the config socket (fd 6) and puts its descriptors
 * at fds 1 and 2 (log), 3 (container) and 4 (key pipe), over the /dev/null that held their places.
 * False when the CLI gave up first (end of file). Blocks this thread meanwhile: the server has
 * nothing else to do before its config, and loads its FUSE code before it calls this.
 */
export function adoptDescriptors(): boolean {
  const addon = nativeAddon();
  const fds = addon.recvFds(SERVER_FD.config, PASSED_FD_COUNT);
  if (fds === null) return false;
  const [logFd, containerFd, keyFd] = fds as [number, number, number];
  try {
    // fds 0 to 6 are all open (/dev/null or the pipes): what arrives lands above them.
    if (fds.some((fd) => fd <= SERVER_FD.config)) throw new Error(`a descriptor from the CLI arrived at ${fds.join(', ')}, among the server's own`);
    for (const [from, to] of [[logFd, 1], [logFd, 2], [containerFd, SERVER_FD.container], [keyFd, SERVER_FD.key]] as const) {
      const err = addon.dup2(from, to);
      if (err !== 0) throw new Error(`dup2 of the CLI's descriptor to fd ${to} failed (errno ${err})`);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  return true;
}
