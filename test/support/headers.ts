/** Builders of valid headers for tests. */
import { randomBytes } from 'node:crypto';
import { sealKeyslot } from '../../src/crypto/keyslot.js';
import { computeHeaderMac, generateMasterKey } from '../../src/crypto/master-key.js';
import { headerChecksum, serializeHeaderCopy } from '../../src/format/header.js';
import { OFF } from '../../src/format/constants.js';
import type { CopyIndex, Header } from '../../src/format/types.js';
import { newHeader } from '../../src/volume/container.js';

export function sampleHeader(opts: { sectorSize?: 512 | 4096; dataSize?: number; activeSlots?: number[] } = {}) {
  const mk = generateMasterKey();
  const header = newHeader({ sectorSize: opts.sectorSize ?? 4096, dataOffset: 1 << 20, dataSize: opts.dataSize ?? 1 << 24 });
  const kek = randomBytes(32);
  for (const i of opts.activeSlots ?? [0, 5]) {
    header.keyslots[i] = sealKeyslot(kek, mk, header.uuid, i, { memoryKiB: 1024 + i, iterations: 1 + i, parallelism: 1 + (i % 4) }, randomBytes(32));
  }
  return { header, mk, kek };
}

export function sealedCopy(header: Header, mk: Uint8Array, copy: CopyIndex = 0): Buffer {
  const h = { ...header, copy };
  return serializeHeaderCopy(h, computeHeaderMac(mk, h));
}

/** Rewrites the checksum after a deliberate edit, so the edit reaches the structural checks. */
export function fixChecksum(b: Buffer): Buffer {
  headerChecksum(b).copy(b, OFF.checksum);
  return b;
}
