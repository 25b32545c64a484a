/**
 * A volume server that fails during its start (src/server/spawn.ts): the CLI says why in one error,
 * quoting the server's log (which goes away with the volume directory when the mount is undone),
 * and neither the config pipe's EPIPE/ECONNRESET nor the key write's EPIPE escapes as an unhandled
 * error or an "unexpected error". The stand-in servers are scripts that fail the way a broken
 * install does; the real server's start is covered by every e2e mount.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { isVaultError } from '../../src/errors.js';
import { handOver, launchServer, serverLogCause, type LaunchedServer } from '../../src/server/spawn.js';
import { prelaunchServer, takePrelaunched } from '../../src/server/prelaunch.js';
import type { ServerConfig } from '../../src/server/protocol.js';

let dir: string;
let containerFd: number;
const launched: LaunchedServer[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'vault-spawn-'));
  containerFd = openSync('/dev/null', 'r');
});

afterEach(() => {
  for (const s of launched.splice(0)) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  closeSync(containerFd);
  rmSync(dir, { recursive: true, force: true });
});

/** A config the stand-ins never read past; handOver only serialises it. */
const CONFIG = { volumeId: 'feedf00d' } as unknown as ServerConfig;

function launch(script: string): LaunchedServer {
  const entry = path.join(dir, 'server.mjs');
  writeFileSync(entry, script);
  const s = launchServer('feedf00d', containerFd, path.join(dir, 'server.log'), entry);
  launched.push(s);
  return s;
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(done()).toBe(true);
}

/** Hands a key to the stand-in and returns the error handOver rejects with (it must reject). */
async function refusal(s: LaunchedServer): Promise<Error> {
  const key = KeyHandle.fromBytes(Uint8Array.from({ length: 64 }, (_, i) => i));
  try {
    const e = await handOver(s, CONFIG, key).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(e).not.toBeNull();
    return e!;
  } finally {
    key.dispose();
  }
}

describe('a volume server that fails during its start', () => {
  it('died before reading anything: the error quotes Node’s reason from the log, not EPIPE', async () => {
    // As a broken build fails: Node cannot load the server's code and exits 1.
    const s = launch("throw new Error('stand-in: Cannot find module native/build/Release/vault_native.node');\n");
    await until(() => s.child.exitCode !== null);
    const e = await refusal(s);
    expect(isVaultError(e, 'internal')).toBe(true);
    expect(e.message).toMatch(/^the volume server exited during start \(status 1\): Error: stand-in: Cannot find module/);
    expect(e.message).not.toMatch(/EPIPE|Broken pipe|ECONNRESET/);
    expect((e as { hint?: string }).hint).toMatch(/vault doctor/);
  });

  it('exited with a line of its own last: the error quotes that line as the end of its log', async () => {
    const s = launch("process.stderr.write('stand-in vault-server: giving up\\n'); process.exit(3);\n");
    await until(() => s.child.exitCode !== null);
    const e = await refusal(s);
    expect(e.message).toBe('the volume server exited during start (status 3); its log ends with: stand-in vault-server: giving up');
  });

  it('closed the key pipe and still said ready: refused and stopped, never taken as serving', async () => {
    const ready = path.join(dir, 'ready');
    const s = launch(
      "import { closeSync, writeSync, writeFileSync } from 'node:fs';\n" +
        'closeSync(4);\n' + // the key pipe (SERVER_FD.key): the CLI's key write now fails with EPIPE
        'writeSync(5, JSON.stringify({ ok: true, pid: process.pid, blockFile: "/nonexistent", transport: "classic" }) + "\\n");\n' +
        `writeFileSync(${JSON.stringify(ready)}, '');\n` +
        'setTimeout(() => undefined, 60_000);\n',
    );
    await until(() => existsSync(ready));
    const e = await refusal(s);
    expect(isVaultError(e, 'internal')).toBe(true);
    expect(e.message).toMatch(/reported ready without taking the key/);
    await until(() => s.child.signalCode === 'SIGKILL'); // stopped, not left serving
  });
});

/**
 * `vault mount` starts its server before it has anything to give it (src/server/prelaunch.ts), and
 * hands the log, container and key pipe over later (SCM_RIGHTS). The stand-in takes them with the
 * server's own adoptDescriptors (dist/src/server/adopt.js, built by `npm run build`) and reports
 * what it found at fds 1, 3 and 4 as its status message.
 */
describe('a volume server started before the CLI has its descriptors', () => {
  const ADOPT = JSON.stringify(path.resolve(import.meta.dirname, '../../dist/src/server/adopt.js'));
  const STAND_IN =
    "import { readFileSync, readSync, writeSync } from 'node:fs';\n" +
    `const { adoptDescriptors } = await import(${ADOPT});\n` +
    "if (!adoptDescriptors()) { writeFileSync(process.env.GAVE_UP ?? '/dev/null', ''); process.exit(0); }\n" +
    "process.stderr.write('stand-in: adopted\\n');\n" +
    'const key = Buffer.alloc(64); let n = 0; while (n < 64) { const r = readSync(4, key, n, 64 - n, null); if (r === 0) break; n += r; }\n' +
    "const container = readFileSync('/proc/self/fd/3', 'utf8');\n" +
    "const args = process.argv.slice(2).join(' ');\n" +
    "writeSync(5, JSON.stringify({ ok: false, code: 'internal', message: `args=${args} container=${container} key=${key.subarray(0, n).toString('hex')}` }) + '\\n');\n";

  let early: ChildProcess | null = null;
  function prelaunch(script: string): string {
    const entry = path.join(dir, 'early.mjs');
    writeFileSync(entry, `import { writeFileSync } from 'node:fs';\n${script}`);
    early = prelaunchServer(entry);
    expect(early?.pid).toBeGreaterThan(0);
    return entry;
  }

  it('gets the log, the container and the key pipe over its config socket, and uses them as a launched one', async () => {
    const container = path.join(dir, 'container');
    writeFileSync(container, 'container bytes');
    const fd = openSync(container, 'r');
    try {
      const entry = prelaunch(STAND_IN);
      const s = launchServer('feedf00d', fd, path.join(dir, 'server.log'), entry);
      launched.push(s);
      const key = KeyHandle.fromBytes(Uint8Array.from({ length: 64 }, (_, i) => i));
      const e = await handOver(s, CONFIG, key).then(() => null, (err: unknown) => err as Error);
      key.dispose();
      // The early server (argv --await-fds, not --volume) read the container through fd 3 and the key through fd 4.
      expect(e?.message).toContain('args=--await-fds container=container bytes key=' + Buffer.from(Uint8Array.from({ length: 64 }, (_, i) => i)).toString('hex'));
      expect(readFileSync(path.join(dir, 'server.log'), 'utf8')).toBe('stand-in: adopted\n');
    } finally {
      closeSync(fd);
    }
  });

  it('exits on its own, having seen nothing, when the CLI gives up before handing anything over', async () => {
    const gaveUp = path.join(dir, 'gave-up');
    const entry = prelaunch(STAND_IN.replace("process.env.GAVE_UP ?? '/dev/null'", JSON.stringify(gaveUp)));
    const child = takePrelaunched(entry)!;
    expect(child).not.toBeNull();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // What the CLI's exit does to its end of the socket.
    ((child.stdio as unknown[])[6] as { destroy(): void }).destroy();
    expect(await exited).toBe(0);
    expect(existsSync(gaveUp)).toBe(true);
    expect(existsSync(path.join(dir, 'server.log'))).toBe(false);
  });

  it('dying with the descriptors unread: an error that says so, not an uncaught ECONNRESET', async () => {
    // It waits until the CLI has sent the descriptors, then exits without taking them.
    const entry = prelaunch("await new Promise((r) => setTimeout(r, 300));\nprocess.exit(7);\n");
    const s = launchServer('feedf00d', containerFd, path.join(dir, 'server.log'), entry);
    launched.push(s);
    expect(s.child.spawnargs).toContain('--await-fds');
    // It dies while the CLI still unlocks (before the handover): Node then drains its sockets.
    await until(() => s.child.exitCode !== null);
    await new Promise((r) => setTimeout(r, 50));
    const e = await refusal(s);
    expect(e.message).toMatch(/^the volume server exited during start \(status 7\)/);
    expect(e.message).not.toMatch(/ECONNRESET|EPIPE/);
  });

  it('is replaced by a server launched the usual way when it died before the handover', async () => {
    const entry = prelaunch(STAND_IN.replace('const { adoptDescriptors }', 'process.exit(5);\nconst { adoptDescriptors }'));
    await until(() => early!.exitCode !== null);
    const s = launchServer('feedf00d', containerFd, path.join(dir, 'server.log'), entry);
    launched.push(s);
    await until(() => s.child.exitCode !== null);
    expect(s.child.spawnargs).toContain('--volume'); // a fresh launch, with its descriptors from the start
    expect(s.child.exitCode).toBe(5);
  });
});

describe('serverLogCause', () => {
  const log = (text: string) => {
    const f = path.join(dir, 'some.log');
    writeFileSync(f, text);
    return serverLogCause(f);
  };

  it("picks Node's error line over the stack and version lines", () => {
    const text = [
      'node:internal/modules/esm/resolve:854',
      '  throw new ERR_MODULE_NOT_FOUND(packageName, fileURLToPath(base), null);',
      '        ^',
      '',
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'argon2' imported from /x/main.js",
      '    at packageResolve (node:internal/modules/esm/resolve:854:9)',
      '    at moduleResolve (node:internal/modules/esm/resolve:927:18) {',
      "  code: 'ERR_MODULE_NOT_FOUND'",
      '}',
      '',
      'Node.js v20.20.2',
      '',
    ].join('\n');
    expect(log(text)).toBe("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'argon2' imported from /x/main.js");
  });

  it("takes the server's last line when there is no error line", () => {
    expect(log('2026-12-07T00:00:00Z vault-server[1] process hardening: not dumpable\n2026-12-07T00:00:00Z vault-server[1] stopping: SIGTERM\n')).toBe(
      '2026-12-07T00:00:00Z vault-server[1] stopping: SIGTERM',
    );
  });

  it('is null for an empty or missing log, and bounds a long line', () => {
    expect(log('')).toBeNull();
    expect(serverLogCause(path.join(dir, 'absent.log'))).toBeNull();
    expect(log(`TypeError: ${'x'.repeat(1000)}\n`)!.length).toBe(301);
  });
});
