/**
 * The LUKS1 format adapter: the dm-crypt ciphers of src/formats/luks/dm-cipher.ts (the keyslots'
 * material under the same cipher), PBKDF2 keyslots (the header's one hash for PBKDF2, AF and the
 * volume-key digest), 512-byte sectors whose IV counts from 0 at the data offset. Rules and sources: spec/interop-luks.md.
 */
import { VaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import { readAtSync } from '../../volume/fd-io.js';
import type { ContainerFile } from '../../volume/container-file.js';
import { LUKS_HASHES, type LuksHash } from '../luks/af.js';
import { luksGeometry } from '../luks/geometry.js';
import { checkLuksKdfBounds } from '../luks/kdf.js';
import { luksPassphrase } from '../luks/secret.js';
import { openFirstKeyslot, type KeyslotAttempt } from '../luks/try-keyslots.js';
import type { FormatAdapter, FormatInfo, UnlockOptions, UnlockSecret, UnlockedVolume } from '../types.js';
import type { Luks1InfoJson } from '../info-json.js';
import { luks1Signature } from '../signatures.js';
import { LUKS1_HEADER_SIZE, parseLuks1Header, type Luks1Header } from './header.js';
import { printable, quote } from '../luks/quote.js';
import { ivWrapWarning, parseDmCipher, volumeCipher, type DmCipher } from '../luks/dm-cipher.js';

function metadataFile(c: ContainerFile, o: UnlockOptions): ContainerFile {
  return o.headerFile ?? c;
}

function readHeader(c: ContainerFile, o: UnlockOptions): Luks1Header {
  const m = metadataFile(c, o);
  const h = parseLuks1Header(readAtSync(m.fd, LUKS1_HEADER_SIZE, 0), m.path);
  if (h.headerEnd > m.size) throw new VaultError('truncated', `${m.path} is truncated: its LUKS1 keyslot area needs ${h.headerEnd} bytes`);
  return h;
}

const cipherSpec = (h: Luks1Header) => `${h.cipherName}-${h.cipherMode}`;

/** Refusals that need no derivation: cipher and key size, hash, iteration bounds. */
function checkSupported(h: Luks1Header): { hash: LuksHash; cipher: DmCipher } {
  const cipher = parseDmCipher('LUKS1', cipherSpec(h), h.keyBytes);
  if (!LUKS_HASHES.includes(h.hashSpec as LuksHash))
    throw new VaultError('unsupported-feature', `the LUKS1 hash ${quote(h.hashSpec)} is not supported (sha1, sha256, sha512)`);
  return { hash: h.hashSpec as LuksHash, cipher };
}

async function unlock(c: ContainerFile, secret: UnlockSecret, o: UnlockOptions): Promise<UnlockedVolume> {
  const h = readHeader(c, o);
  const { hash, cipher } = checkSupported(h);
  const digest = { hash, iterations: h.mkDigestIterations, salt: h.mkDigestSalt, digest: h.mkDigest };
  checkLuksKdfBounds({ type: 'pbkdf2', ...digest }, 'the volume key digest');
  const geometry = luksGeometry({
    path: c.path,
    fileSize: c.size,
    offset: BigInt(h.payloadOffset),
    size: null,
    sectorSize: 512,
    detached: o.headerFile !== undefined,
    metadataEnd: BigInt(h.headerEnd),
  });
  const wrap = ivWrapWarning(cipher, 0n, geometry.dataSize);
  let slots = h.keyslots;
  if (o.slot !== undefined) {
    slots = slots.filter((k) => k.id === o.slot);
    if (slots.length === 0) throw new VaultError('no-keyslot', `keyslot ${o.slot} is not active`);
  }
  if (slots.length === 0) throw new VaultError('no-keyslot', 'the LUKS1 header has no active keyslot');
  const attempts: KeyslotAttempt[] = slots.map((k) => {
    const kdf = { type: 'pbkdf2' as const, hash, iterations: k.iterations, salt: k.salt };
    checkLuksKdfBounds(kdf, `keyslot ${k.id}`);
    return { slot: { name: `keyslot ${k.id}`, kdf, areaOffset: k.materialOffset, keyLength: h.keyBytes, afHash: hash, area: cipher }, digest };
  });
  const passphrase = luksPassphrase(secret);
  try {
    const { key } = await openFirstKeyslot(metadataFile(c, o).fd, attempts, passphrase);
    return {
      format: 'luks1',
      key,
      sectorSize: 512,
      dataOffset: geometry.dataOffset,
      dataSize: geometry.dataSize,
      firstTweak: 0n,
      tweakStep: 1n,
      uuid: printable(h.uuid),
      warnings: wrap === null ? [] : [wrap],
      ...volumeCipher(cipher, 0n),
    };
  } finally {
    wipe(passphrase);
  }
}

function info(c: ContainerFile, o: UnlockOptions): FormatInfo {
  const h = readHeader(c, o);
  const fields: Array<[string, string]> = [
    ['format', 'LUKS1'],
    ['uuid', h.uuid],
    ['cipher', `${h.cipherName}-${h.cipherMode}, ${h.keyBytes * 8}-bit key`],
    ['hash', h.hashSpec],
    ['data offset', String(h.payloadOffset)],
    ...h.keyslots.map((k): [string, string] => [`keyslot ${k.id}`, `pbkdf2 ${h.hashSpec}, ${k.iterations} iterations`]),
  ];
  return {
    format: 'luks1',
    fields: fields.map(([k, v]) => [k, printable(v)]),
    json: {
      format: 'luks1',
      uuid: h.uuid,
      cipher: `${h.cipherName}-${h.cipherMode}`,
      keyBits: h.keyBytes * 8,
      hash: h.hashSpec,
      dataOffset: h.payloadOffset,
      keyslots: h.keyslots.map((k) => ({ slot: k.id, kdf: { type: 'pbkdf2', hash: h.hashSpec, iterations: k.iterations } })),
    } satisfies Luks1InfoJson,
  };
}

export const luks1Adapter: FormatAdapter = {
  name: 'luks1',
  ...luks1Signature,
  unlock,
  info,
};
