/**
 * Loads vault's native addon (native/build/Release/vault_native.node) by path from the package root
 * (src/system/package-root.ts), so it works from src/ (vitest), from dist/src/ and from an installed
 * package alike. The addon is required: there is no slower fallback that would keep keys in JS memory (README, "Data path").
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../system/package-root.js';

export const ADDON_PATH = path.join('native', 'build', 'Release', 'vault_native.node');

let addon: unknown = null;

/**
 * The addon's exports (typed by src/crypto/native.ts and src/server/fuse-addon.ts, each for its
 * own part). Throws an Error saying how to build it when it cannot be loaded.
 */
export function loadVaultAddon(): unknown {
  if (addon !== null) return addon;
  try {
    addon = createRequire(import.meta.url)(path.join(packageRoot(), ADDON_PATH)) as unknown;
  } catch (err) {
    throw new Error(
      `vault: the native addon (${ADDON_PATH}) is missing or does not load: ${err instanceof Error ? err.message : String(err)}. ` +
        'Build it with `npm run build:native` (needs make, a C compiler, liburing-dev, libgcrypt20-dev, libtss2-dev, libfido2-dev, libblkid-dev and libargon2-dev: run scripts/setup-system.sh).',
      { cause: err },
    );
  }
  return addon;
}
