/**
 * Where vault's two programs start: the CLI, and the volume server it launches. Run from dist/src
 * (a checkout, the tests), they are the modules dist/src/cli/main.js and dist/src/server/main.js.
 * Run from the bundles (dist/bundle, made by scripts/bundle.mjs: what the installed `vault` runs),
 * they are the two bundles side by side: vault.cjs and vault-server.cjs. The bundler defines
 * __VAULT_BUNDLE__ and sets import.meta.url to the bundle's own file.
 */
import { fileURLToPath } from 'node:url';

declare const __VAULT_BUNDLE__: true | undefined;

const bundled = typeof __VAULT_BUNDLE__ !== 'undefined';

/** The volume server's script. */
export const SERVER_ENTRY = fileURLToPath(new URL(bundled ? './vault-server.cjs' : '../server/main.js', import.meta.url));

/** The CLI's script (an idle server runs `vault dismount` with it). */
export const CLI_ENTRY = fileURLToPath(new URL(bundled ? './vault.cjs' : '../cli/main.js', import.meta.url));
