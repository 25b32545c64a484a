/**
 * `vault resize` of LUKS containers whose data segment runs to the end of the file: LUKS1 always,
 * LUKS2 when the segment's size is "dynamic" (what cryptsetup luksFormat makes). Their headers
 * (both LUKS2 copies included) sit before the data and say nothing of its size, so the container
 * is resized by its length alone, the filesystem inside as for vault (spec/interop-luks.md §6).
 * A LUKS2 segment of fixed size is refused, as cryptsetup refuses it (lib/setup.c crypt_resize:
 * "Can not resize LUKS2 device with static size"): the format fixes that size in both JSON copies.
 */
import { VaultError } from '../errors.js';
import { keyfilePolicy, type FormatAdapter } from '../formats/types.js';
import type { Luks2InfoJson } from '../formats/info-json.js';
import { unlockVolume } from '../formats/index.js';
import type { ContainerFile } from '../volume/container-file.js';
import { growToEnd, shrinkToEnd } from '../volume/resize.js';
import { plannedDataSize, type SizeRequest } from './resize-size.js';
import { resizeOffline } from './resize-offline.js';
import { gatherSecret, type SecretOptions } from './secrets.js';

/** Refuses, before any passphrase, a LUKS2 container whose data segment has a fixed size. */
export function requireDynamicSegment(c: ContainerFile, adapter: FormatAdapter): void {
  if (adapter.name !== 'luks2') return;
  const json = adapter.info?.(c, { readOnly: true }).json as Luks2InfoJson | undefined;
  const fixed = json?.segments.find((s) => s.size !== 'dynamic');
  if (!json || fixed)
    throw new VaultError(
      'unsupported-feature',
      `${c.path} is a LUKS2 container whose data segment has a fixed size (${fixed?.size ?? 'unknown'} bytes), which the format does not let grow or shrink (cryptsetup refuses it too); the container was not changed`,
      'make a new container of the size you want and copy the files into it',
    );
}

export async function resizeLuks(
  c: ContainerFile,
  adapter: FormatAdapter,
  o: SecretOptions & { quick?: boolean },
  req: SizeRequest | undefined,
  signal: AbortSignal,
): Promise<void> {
  const v = await unlockVolume(adapter, c, gatherSecret(o, keyfilePolicy(adapter)), { readOnly: false });
  try {
    const dataSize = req ? plannedDataSize(req, { ...v, trailer: 0 }) : undefined;
    // A "plain" IV wraps at IV sector 2^32: never grow a data area into (or further past) the wrap.
    // A volume already past it opens (with a warning) and may shrink.
    if (dataSize !== undefined && v.maxDataSize !== undefined && dataSize > v.maxDataSize && dataSize > v.dataSize) {
      const spec = (v.engine ?? '').replace(/\/\d+$/, '');
      throw new VaultError(
        'unsupported-feature',
        `${c.path} uses ${spec}, whose 32-bit IV gives distinct IVs to at most ${v.maxDataSize} bytes of data here; a data area of ${dataSize} bytes would repeat them; the container was not changed`,
        `stay below that size, or re-encrypt it to ${spec.replace(/-plain$/, '-plain64')} with \`cryptsetup reencrypt --cipher ${spec.replace(/-plain$/, '-plain64')}\``,
      );
    }
    await resizeOffline({
      c, volume: v, dataSize, quick: !!o.quick, signal, overhead: v.dataOffset,
      growFile: (size, g) => growToEnd(c, v, size, g),
      shrinkFile: (size) => shrinkToEnd(c, v, size),
    });
  } finally {
    v.key.dispose();
  }
}
