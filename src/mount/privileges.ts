/** What root-only commands need, checked before any secret is asked. */
import { VaultError } from '../errors.js';

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0)
    throw new VaultError('privilege', `${what} needs root privileges`, `run it with sudo: sudo vault ${what.replace(/^vault /, '')}`);
}
