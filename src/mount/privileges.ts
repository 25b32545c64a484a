/** What mounting and dismounting need of the user and the machine, checked before any secret is asked. */
import { existsSync } from 'node:fs';
import { VaultError } from '../errors.js';

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0)
    throw new VaultError('privilege', `${what} needs root privileges`, `run it with sudo: sudo vault ${what.replace(/^vault /, '')}`);
}

/** Everything mounting needs, checked before any passphrase is asked or any container written. */
export function requireMountPrivileges(what: string): void {
  requireRoot(what);
  if (!existsSync('/dev/fuse'))
    throw new VaultError('missing-component', '/dev/fuse is missing: the FUSE kernel module is not loaded', 'run `modprobe fuse` as root');
}
