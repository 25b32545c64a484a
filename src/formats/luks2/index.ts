/**
 * The LUKS2 format adapter (cryptsetup 2.x containers): recognise, unlock, describe.
 * Rules and sources: spec/interop-luks.md.
 */
import { wipe } from '../../crypto/wipe.js';
import type { ContainerFile } from '../../volume/container-file.js';
import { luksGeometry } from '../luks/geometry.js';
import { printable } from '../luks/quote.js';
import { ivWrapWarning, volumeCipher } from '../luks/dm-cipher.js';
import { luksPassphrase } from '../luks/secret.js';
import { openFirstKeyslot } from '../luks/try-keyslots.js';
import type { FormatAdapter, FormatInfo, UnlockOptions, UnlockSecret, UnlockedVolume } from '../types.js';
import { luks2Signature } from '../signatures.js';
import { luks2Info } from './info.js';
import { readLuks2Header, type Luks2Header } from './read.js';
import { checkTweakRange, dataSegment, keyslotsToTry } from './support.js';

function metadataFile(c: ContainerFile, o: UnlockOptions): ContainerFile {
  return o.headerFile ?? c;
}

function readHeader(c: ContainerFile, o: UnlockOptions): Luks2Header {
  const m = metadataFile(c, o);
  return readLuks2Header(m.fd, m.size, m.path);
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume> {
  const header = readHeader(c, o);
  const warnings = [...header.warnings];
  const { config } = header.metadata;
  // Everything that can refuse the container runs before the first key derivation.
  const seg = dataSegment(header.metadata);
  const geometry = luksGeometry({
    path: c.path,
    fileSize: c.size,
    offset: seg.offset,
    size: seg.size,
    sectorSize: seg.sectorSize,
    detached: o.headerFile !== undefined,
    metadataEnd: 2n * (config.jsonSize + 4096n) + config.keyslotsSize,
  });
  checkTweakRange(seg.ivTweak, BigInt(geometry.dataSize));
  const attempts = keyslotsToTry(header.metadata, o.slot, warnings);
  const passphrase = luksPassphrase(secret);
  try {
    const { key, slot } = await openFirstKeyslot(metadataFile(c, o).fd, attempts, passphrase);
    const cipher = attempts.find((a) => a.slot.name === slot)!.segmentCipher;
    const wrap = ivWrapWarning(cipher, seg.ivTweak, geometry.dataSize);
    if (wrap !== null) warnings.push(wrap);
    return {
      format: 'luks2',
      key,
      sectorSize: seg.sectorSize,
      dataOffset: geometry.dataOffset,
      dataSize: geometry.dataSize,
      // dm-crypt's plain64 IV counts 512-byte units even with larger sectors, from iv_tweak.
      firstTweak: seg.ivTweak,
      tweakStep: BigInt(seg.sectorSize / 512),
      uuid: printable(header.bin.uuid),
      warnings,
      ...volumeCipher(cipher, seg.ivTweak),
    };
  } finally {
    wipe(passphrase);
  }
}

export const luks2Adapter: FormatAdapter = {
  name: 'luks2',
  ...luks2Signature,
  unlock,
  info: (c: ContainerFile, o: UnlockOptions): FormatInfo => luks2Info(readHeader(c, o)),
};
