/**
 * native/token_libs.c: libfido2 and tpm2-tss are opened when a token is first used, not when the
 * addon loads. The addon must load without them, and a token call must then fail with what to
 * install. A child process finds stand-ins for both (empty shared objects with their names, first
 * on LD_LIBRARY_PATH): they open, but lack every function.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build/Release/vault_native.node');
const dir = mkdtempSync(path.join(tmpdir(), 'vault-token-libs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function standIns(): void {
  const src = path.join(dir, 'empty.c');
  writeFileSync(src, 'int vault_stand_in;\n');
  for (const lib of ['libfido2.so.1', 'libtss2-esys.so.0', 'libtss2-mu.so.0', 'libtss2-rc.so.0', 'libtss2-tctildr.so.0']) {
    const r = spawnSync('cc', ['-shared', '-fPIC', `-Wl,-soname,${lib}`, '-o', path.join(dir, lib), src], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cc failed: ${r.stderr}`);
  }
}

/** Runs `body` (JS, with `a` the addon) in a node whose LD_LIBRARY_PATH finds the stand-ins first. */
function withStandIns(body: string): { status: number | null; stdout: string; stderr: string } {
  const script = `const a = require(${JSON.stringify(ADDON)}); (async () => { ${body} })().catch((e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); });`;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', LD_LIBRARY_PATH: dir } });
}

describe('token libraries opened at first use', () => {
  standIns();

  it('the addon loads and works without them; a FIDO2 call says to install libfido2-1', () => {
    const r = withStandIns(`console.log(JSON.stringify({ dumpable: typeof a.isDumpable() })); a.fido2Devices();`);
    const [first, second] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    expect(first).toEqual({ dumpable: 'boolean' });
    expect(second!.code).toBe('ERR_VAULT_MISSING_LIBRARY');
    expect(second!.message).toMatch(/libfido2 cannot be loaded \(libfido2\.so\.1 has no fido_\w+\): install the Debian package libfido2-1/);
  });

  it('a TPM2 call says which tpm2-tss packages to install', () => {
    const r = withStandIns(`await a.tpm2UnsealAsync(new Uint8Array(8), new Uint8Array(8), 1, null, null);`);
    const e = JSON.parse(r.stdout.trim()) as Record<string, string>;
    expect(e.code).toBe('ERR_VAULT_MISSING_LIBRARY');
    expect(e.message).toMatch(/tpm2-tss cannot be loaded \(libtss2-esys\.so\.0 has no Esys_\w+\): install the Debian packages libtss2-esys-3\.0\.2-0/);
  });
});
