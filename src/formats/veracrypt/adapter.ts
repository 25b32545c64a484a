/**
 * VeraCrypt and TrueCrypt volumes (placeholder while the adapter is written): recognised only as
 * the fallback, never by magic, since their headers are indistinguishable from random bytes.
 */
import { VaultError } from '../../errors.js';
import { readAtSync } from '../../volume/fd-io.js';
import type { ContainerFile } from '../../volume/container.js';
import type { FormatAdapter } from '../types.js';

/** Where VeraCrypt keeps the hidden volume's header; always random bytes, even with no hidden volume. */
const HIDDEN_HEADER_OFFSET = 65536;
const HEADER_SIZE = 512;

/**
 * Could this file be a VeraCrypt/TrueCrypt volume? VeraCrypt fills the hidden-header area with
 * random bytes on every volume, so 512 zero bytes there (vault's zero padding) rule it out.
 */
function claims(c: ContainerFile): boolean {
  if (c.size < 2 * 131072 + HEADER_SIZE) return false;
  return !readAtSync(c.fd, HEADER_SIZE, HIDDEN_HEADER_OFFSET).every((b) => b === 0);
}

export const veracryptAdapter: FormatAdapter = {
  name: 'veracrypt',
  recognises: () => false,
  claims,
  keyfilePolicy: { maxBytes: 1024 * 1024, prefix: true },
  unlock: async () => {
    throw new VaultError('unsupported-feature', 'VeraCrypt volumes are not supported yet');
  },
};
