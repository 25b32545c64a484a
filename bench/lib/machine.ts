/**
 * The machine description stored with every result: numbers from two machines (or two kernels,
 * or two fio versions) are not comparable, and this is what tells them apart afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliEntry } from './entries.js';
import { run } from './proc.js';
import { filesystemOf, statfsType } from './system.js';

export interface MachineInfo {
  hostname: string;
  os: string | null;
  kernel: string;
  kernelBuild: string;
  arch: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  fio: string | null;
  gocryptfs: string | null;
  e2fsprogs: string | null;
  utilLinux: string | null;
  vault: { version: string | null; cli: string; /** What each command runs (entries.ts). */ runs: string; nativeAddon: boolean; buildFingerprint: string | null; newestBuildFile: string | null };
  underlyingFs: {
    workDir: string;
    statfsType: string;
    fstype: string | null;
    source: string | null;
    mountpoint: string | null;
    options: string | null;
  };
}

async function firstLine(cmd: string, args: string[]): Promise<string | null> {
  const r = await run(cmd, args, { timeoutMs: 10_000 });
  if (r.error !== undefined) return null;
  const text = (r.stdout.trim() || r.stderr.trim()).split('\n')[0];
  return text ? text.trim() : null;
}

function osName(): string | null {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    const debian = existsSync('/etc/debian_version') ? readFileSync('/etc/debian_version', 'utf8').trim() : null;
    return m ? `${m[1]}${debian ? ` (${debian})` : ''}` : debian;
  } catch {
    return null;
  }
}

/** `cliPath` is <root>/dist/src/cli/main.js of the vault under test (this checkout or --vault-cli). */
export async function machineInfo(workDir: string, cliPath: string): Promise<MachineInfo> {
  const fs = await filesystemOf(workDir);
  const fp = buildFingerprint(cliPath);
  const repoRoot = path.resolve(path.dirname(cliPath), '..', '..', '..');
  let version: string | null = null;
  try {
    version = (JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    version = null;
  }
  return {
    hostname: os.hostname(),
    os: osName(),
    kernel: os.release(),
    kernelBuild: os.version(),
    arch: os.arch(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    node: process.version,
    fio: await firstLine('fio', ['--version']),
    gocryptfs: await firstLine('gocryptfs', ['-version']),
    e2fsprogs: await firstLine('mke2fs', ['-V']),
    utilLinux: await firstLine('losetup', ['--version']),
    vault: {
      version,
      cli: cliPath,
      runs: cliEntry(cliPath),
      nativeAddon: existsSync(`${repoRoot}/native/build/Release/vault_native.node`),
      buildFingerprint: fp.hash,
      newestBuildFile: fp.newest,
    },
    underlyingFs: {
      workDir,
      statfsType: await statfsType(workDir),
      fstype: fs?.fstype ?? null,
      source: fs?.source ?? null,
      mountpoint: fs?.target ?? null,
      options: fs?.options ?? null,
    },
  };
}

/**
 * The code under test changes between runs (others work on src/ meanwhile) and the benchmark may
 * not ask git, so it fingerprints what it actually ran: SHA-256 over the built JavaScript under
 * dist/src and dist/bundle (paths and contents) and the native addon, plus the newest file's
 * modification time.
 */
function buildFingerprint(cliPath: string): { hash: string | null; newest: string | null } {
  const distSrc = path.resolve(path.dirname(cliPath), '..');
  const vaultRoot = path.resolve(distSrc, '..', '..');
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) files.push(p);
    }
  };
  try {
    walk(distSrc);
  } catch {
    return { hash: null, newest: null };
  }
  const bundles = path.join(distSrc, '..', 'bundle');
  if (existsSync(bundles)) for (const f of readdirSync(bundles)) if (f.endsWith('.cjs') || f.endsWith('.cjs.cache')) files.push(path.join(bundles, f));
  const addon = path.join(vaultRoot, 'native', 'build', 'Release', 'vault_native.node');
  if (existsSync(addon)) files.push(addon);
  files.sort();
  const h = createHash('sha256');
  let newest = 0;
  for (const f of files) {
    h.update(path.relative(distSrc, f)).update('\0').update(readFileSync(f)).update('\0');
    newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return { hash: h.digest('hex').slice(0, 16), newest: newest ? new Date(newest).toISOString() : null };
}

export function describeMachine(m: MachineInfo): string[] {
  const GiB = 2 ** 30;
  return [
    `${m.os ?? 'unknown OS'}, kernel ${m.kernel}, ${m.arch}`,
    `${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / GiB).toFixed(1)} GiB RAM`,
    `node ${m.node}, ${m.fio ?? 'fio missing'}, ${m.gocryptfs?.split(';')[0] ?? 'gocryptfs missing'}, ${m.e2fsprogs ?? ''}`,
    `vault ${m.vault.version ?? '?'} build ${m.vault.buildFingerprint ?? '?'} (newest file ${m.vault.newestBuildFile ?? '?'}), native addon ${m.vault.nativeAddon ? 'present' : 'MISSING'}, commands run ${m.vault.runs}`,
    `underlying filesystem: ${m.underlyingFs.fstype ?? m.underlyingFs.statfsType} on ${m.underlyingFs.source ?? '?'} ` +
      `(${m.underlyingFs.mountpoint ?? '?'}; ${m.underlyingFs.options ?? ''}), work dir ${m.underlyingFs.workDir}`,
  ];
}
