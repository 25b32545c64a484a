/**
 * The machine-wide files `vault setup-rootless` writes (SETUP_FILES), saved before a suite that
 * runs it and put back byte for byte after, whatever happened in between.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SETUP_FILES } from '../../src/system/rootless-setup.js';

/** Saves the files now; the returned function restores them (a file that did not exist is removed). */
export function snapshotSetupFiles(): () => void {
  const saved = SETUP_FILES.map((f) => [f, existsSync(f) ? readFileSync(f) : null] as const);
  return () => {
    for (const [f, bytes] of saved) {
      if (bytes === null) rmSync(f, { force: true });
      else writeFileSync(f, bytes);
    }
  };
}
