/**
 * What the bench runs of the vault under test. `cliPath` names a checkout's dist/src/cli/main.js
 * (the default, or --vault-cli). Its commands run as an installed `vault` runs them: through
 * dist/bundle/vault.cjs (scripts/bundle.mjs), whose volume servers are dist/bundle/vault-server.cjs;
 * a checkout built before the bundles existed runs its modules, and its servers are
 * dist/src/server/main.js.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

function distDir(cliPath: string): string {
  return path.resolve(path.dirname(cliPath), '..', '..');
}

/** The script `node` runs for each vault command. */
export function cliEntry(cliPath: string): string {
  const bundled = path.join(distDir(cliPath), 'bundle', 'vault.cjs');
  return existsSync(bundled) ? bundled : cliPath;
}

/** The scripts a volume server of this vault runs as (either way of starting it). */
export function serverEntries(cliPath: string): string[] {
  const dist = distDir(cliPath);
  return [path.join(dist, 'bundle', 'vault-server.cjs'), path.join(dist, 'src', 'server', 'main.js')];
}
