/**
 * Loads one of vault's native addons (native/build/Release/*.node) by path from the repository
 * root, so it works from src/ (vitest) and from dist/src/ (compiled) alike.
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

export function addonPath(file: string): string {
  return path.join('native', 'build', 'Release', file);
}

/**
 * Loads `file`, unless one of the `disabledBy` environment variables is '1' (tests use them to
 * exercise fallbacks). Never throws: the error says why the addon is absent.
 */
export function loadAddon<T>(file: string, disabledBy: string[]): { addon: T | null; error: Error | null } {
  const off = disabledBy.find((v) => process.env[v] === '1');
  if (off) return { addon: null, error: new Error(`${file} disabled by ${off}=1`) };
  try {
    return { addon: createRequire(import.meta.url)(path.join(findRepoRoot(), addonPath(file))) as T, error: null };
  } catch (err) {
    return { addon: null, error: err instanceof Error ? err : new Error(String(err)) };
  }
}
