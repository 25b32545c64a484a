/**
 * Loads vault's native addon (native/build/Release/vault_native.node) by path from the repository
 * root, so it works from src/ (vitest) and from dist/src/ (compiled) alike. The addon is required:
 * there is no slower fallback that would keep keys in JS memory (README, "Data path").
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest ancestor of this module holding vault's package.json. */
function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'vault') return dir;
      } catch {
        // Not ours (or unreadable): keep walking up.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find vault's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const ADDON_PATH = path.join('native', 'build', 'Release', 'vault_native.node');

let addon: unknown = null;

/**
 * The addon's exports (typed by src/crypto/native.ts and src/server/fuse-addon.ts, each for its
 * own part). Throws an Error saying how to build it when it cannot be loaded.
 */
export function loadVaultAddon(): unknown {
  if (addon !== null) return addon;
  try {
    addon = createRequire(import.meta.url)(path.join(findRepoRoot(), ADDON_PATH)) as unknown;
  } catch (err) {
    throw new Error(
      `vault: the native addon (${ADDON_PATH}) is missing or does not load: ${err instanceof Error ? err.message : String(err)}. ` +
        'Build it with `npm run build:native` (needs make, a C compiler and liburing-dev: run scripts/setup-system.sh).',
      { cause: err },
    );
  }
  return addon;
}
