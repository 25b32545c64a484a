/**
 * Issue 20: the independent spec reader (test/support/spec-reader, written from spec/format.md alone)
 * agrees with every conformance vector of spec/vectors/: each container case gives the expected
 * failure class (printed as `spec-reader: <class>: …`), or opens the expected copy with the expected
 * geometry and plaintext; each single header copy is validated (`--copy`) to the expected class.
 * No mounts: the reader only reads files.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const DIR = path.join(ROOT, 'spec/vectors');
const READER = path.join(ROOT, 'test/support/spec-reader/vault_spec_reader.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Manifest;

interface Case { passphrase: string; keyfiles_hex?: string[]; expect: string; opened?: string; warns?: boolean; sector_size?: number; data_size?: number; plaintext_sha256?: string }
interface Manifest {
  containers: Array<{ name: string; file: string; cases: Case[] }>;
  header_copies: Array<{ name: string; file: string; position: 'primary' | 'secondary'; expect: string }>;
}
interface Run { status: number; stdout: string; stderr: string }

const TMP = mkdtempSync(path.join(tmpdir(), 'vault-spec-vectors-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

function reader(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [READER, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && status === -1) reject(err);
      else resolve({ status, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

/** The class the reader reported: `ok`, or the <class> of its `spec-reader: <class>: …` line. */
function classOf(r: Run): string {
  if (r.status === 0) return 'ok';
  const m = /^spec-reader: ([a-z-]+): /m.exec(r.stderr.replace(/^spec-reader: warning: .*$/gm, ''));
  return m ? m[1]! : `exit ${r.status}`;
}

/** Runs `jobs` two at a time (two cores). */
async function pool<T>(jobs: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

async function runCase(vector: Manifest['containers'][number], c: Case, n: number): Promise<void> {
  const container = path.join(TMP, `${vector.name}.vol`);
  const out = path.join(TMP, `${vector.name}-${n}.plain`);
  const args = [container, out];
  (c.keyfiles_hex ?? []).forEach((hex, k) => {
    const kf = path.join(TMP, `${vector.name}-${n}-key${k}`);
    writeFileSync(kf, Buffer.from(hex, 'hex'));
    args.push('--keyfile', kf);
  });
  const r = await reader(args, `${c.passphrase}\n`);
  const what = `${vector.name} case ${n}: ${r.stderr}`;
  expect(classOf(r), what).toBe(c.expect);
  if (c.expect !== 'ok') return;
  expect(r.stderr, what).toContain(`${c.opened} copy`);
  expect(r.stderr, what).toContain(`sector_size ${c.sector_size}, ${c.data_size} bytes`);
  expect(/spec-reader: warning:/.test(r.stderr), `${what} (warns)`).toBe(c.warns);
  const plain = readFileSync(out);
  expect(plain.length, what).toBe(c.data_size);
  expect(createHash('sha256').update(plain).digest('hex'), what).toBe(c.plaintext_sha256);
}

describe('spec reader on the conformance vectors (spec/vectors)', () => {
  it('agrees with every container case and every header copy', async () => {
    for (const v of manifest.containers) writeFileSync(path.join(TMP, `${v.name}.vol`), gunzipSync(readFileSync(path.join(DIR, v.file))));
    const jobs: Array<() => Promise<void>> = [];
    for (const v of manifest.containers) v.cases.forEach((c, n) => jobs.push(() => runCase(v, c, n)));
    for (const position of ['primary', 'secondary'] as const) {
      const copies = manifest.header_copies.filter((h) => h.position === position);
      jobs.push(async () => {
        const r = await reader(['--copy', position, ...copies.map((h) => path.join(DIR, h.file))]);
        const got = new Map(r.stdout.trim().split('\n').map((line) => line.split('\t').reverse() as [string, string]));
        for (const h of copies) expect(got.get(path.join(DIR, h.file)), `${h.name}: ${r.stderr}`).toBe(h.expect);
      });
    }
    expect(manifest.header_copies.length + jobs.length).toBeGreaterThan(50);
    await pool(jobs);
  }, 60_000);
});
