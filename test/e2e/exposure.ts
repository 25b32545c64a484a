/**
 * Where a secret must never show up while a volume is mounted: what its volume server exposes to
 * other processes (/proc/<pid>/cmdline and environ) and the files of its state directory (state.json,
 * server.log, owner, …). Used by leaks.test.ts for the passphrase and master key, and by the token
 * and recovery-key tests for PINs and recovery keys given at the mount that is up.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { RUN_DIR } from './harness.js';

/** The forms a secret could take where it leaked: raw bytes, hex (either case), base64, UTF-16 (a V8 string). */
export function secretForms(secret: Buffer): Buffer[] {
  const hex = secret.toString('hex');
  return [secret, Buffer.from(hex), Buffer.from(hex.toUpperCase()), Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('latin1'), 'utf16le')];
}

/** For every mounted volume of this run directory: its server's argv and environment, and each file of its state directory. */
export function exposedByVolumes(): [what: string, bytes: Buffer][] {
  const out: [string, Buffer][] = [];
  const ids = readdirSync(RUN_DIR).filter((d) => d !== 'locks');
  if (ids.length === 0) throw new Error(`no volume is mounted (${RUN_DIR}): a leak check would look at nothing`);
  for (const id of ids) {
    const dir = path.join(RUN_DIR, id);
    const { serverPid } = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as { serverPid: number };
    out.push(['server cmdline', readFileSync(`/proc/${serverPid}/cmdline`)], ['server environ', readFileSync(`/proc/${serverPid}/environ`)]);
    for (const f of readdirSync(dir)) if (statSync(path.join(dir, f)).isFile()) out.push([f, readFileSync(path.join(dir, f))]); // fuse/: the mount itself
  }
  return out;
}

/** The names (as exposedByVolumes gives them) of the places where any of `needles` appears. */
export function whereExposed(needles: Buffer[], exposed = exposedByVolumes()): string[] {
  return exposed.filter(([, bytes]) => needles.some((n) => bytes.includes(n))).map(([what]) => what);
}
