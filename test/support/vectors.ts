/**
 * The conformance vectors of spec/vectors/ for tests: a fresh, writable copy of a container vector,
 * and their passphrase (test/fixtures/vectors/build.ts makes them with it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const VECTORS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../spec/vectors');

/** Every vector container opens with this passphrase (those of failure class `wrong-passphrase` aside). */
export const VECTOR_PASSPHRASE = 'vault conformance vector';

/** Writes a fresh copy of container vector `name` to `<dir>/<as>.vol`; its path. */
export function vectorCopy(dir: string, name: string, as = name): string {
  const file = path.join(dir, `${as}.vol`);
  writeFileSync(file, gunzipSync(readFileSync(path.join(VECTORS_DIR, 'containers', `${name}.vol.gz`))));
  return file;
}
