/**
 * Where vault's own package lives, found from this module's location, so the same code works from
 * src/ (vitest), from dist/src/ (a checkout) and from an installed package (`npm install -g`): the
 * nearest ancestor holding a package.json named "vault". The native addon and the version are read
 * from there.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  name?: unknown;
  version?: unknown;
}

let found: { root: string; pkg: PackageJson } | null = null;

function findPackage(): { root: string; pkg: PackageJson } {
  if (found) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
        if (pkg.name === 'vault') return (found = { root: dir, pkg });
      } catch {
        // Not ours (or unreadable): keep walking up.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find vault's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The directory holding vault's package.json. */
export function packageRoot(): string {
  return findPackage().root;
}

/** vault's version, from its package.json (the one place it is written). */
export function packageVersion(): string {
  const v = findPackage().pkg.version;
  if (typeof v !== 'string') throw new Error(`vault's package.json (in ${packageRoot()}) has no version`);
  return v;
}
