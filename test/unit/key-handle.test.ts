// KeyHandle and the native process helpers (locked memory, pipes, dumpability, flock). The addon
// is required: without it every test here fails.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyHandle } from '../../src/crypto/key-handle.js';
import { nativeAddon } from '../../src/crypto/native.js';
import { xtsEncrypt } from '../../src/crypto/xts.js';

function randomKey(): Buffer {
  for (;;) {
    const k = randomBytes(64);
    if (!k.subarray(0, 32).equals(k.subarray(32))) return k;
  }
}

function keyBytes(k: KeyHandle): Buffer {
  return k.withBytes((b) => Buffer.from(b));
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const scratch = mkdtempSync(path.join(tmpdir(), 'vault-key-handle-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A real pipe as two fds (pipe2 with O_CLOEXEC, through the addon). */
function makePipe(): [number, number] {
  return nativeAddon().pipe();
}

describe('KeyHandle', () => {
  it('fromBytes copies the key and wipes the caller\'s bytes', () => {
    const original = randomKey();
    const bytes = Buffer.from(original);
    const k = KeyHandle.fromBytes(bytes);
    expect(bytes.every((b) => b === 0)).toBe(true);
    expect(keyBytes(k).equals(original)).toBe(true);
    k.dispose();
  });

  it('fromBytes wipes a view into a larger buffer, and only the view', () => {
    const big = Buffer.alloc(100, 0xaa);
    randomKey().copy(big, 10);
    const k = KeyHandle.fromBytes(big.subarray(10, 74));
    expect(big.subarray(10, 74).every((b) => b === 0)).toBe(true);
    expect(big.subarray(0, 10).every((b) => b === 0xaa)).toBe(true);
    expect(big.subarray(74).every((b) => b === 0xaa)).toBe(true);
    k.dispose();
  });

  it('holds keys of other lengths too', () => {
    for (const len of [1, 32, 100, 4096, 5000]) {
      const src = randomBytes(len);
      const k = KeyHandle.fromBytes(Buffer.from(src));
      expect(k.length).toBe(len);
      expect(keyBytes(k).equals(src)).toBe(true);
      k.dispose();
    }
  });

  it('refuses a 64-byte key with equal halves (and still wipes the bytes)', () => {
    const half = randomBytes(32);
    const bytes = Buffer.concat([half, half]);
    const err = thrown(() => KeyHandle.fromBytes(bytes));
    expect(err).toMatchObject({ code: 'ERR_VAULT_XTS_EQUAL_HALVES' });
    expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it('validates arguments', () => {
    expect(() => KeyHandle.fromBytes('key' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => KeyHandle.fromBytes(new Uint8Array(0))).toThrow(RangeError);
    expect(() => KeyHandle.fromBytes(new Uint8Array(65537))).toThrow(RangeError);
    expect(() => KeyHandle.readFromFd(-1, 64)).toThrow(RangeError);
    expect(() => KeyHandle.readFromFd(0, 0)).toThrow(RangeError);
    expect(() => KeyHandle.readFromFd(0, 1.5)).toThrow(RangeError);
    expect(() => KeyHandle.readFromFd('0' as unknown as number, 64)).toThrow(TypeError);
  });

  it('withBytes exposes a temporary copy and zeroes it afterwards', () => {
    const original = randomKey();
    const k = KeyHandle.fromBytes(Buffer.from(original));
    let seen: Buffer | undefined;
    const result = k.withBytes((b) => {
      seen = b;
      expect(b.equals(original)).toBe(true);
      b.fill(1); // scribbling on the copy must not change the key
      return 42;
    });
    expect(result).toBe(42);
    expect(seen!.every((b) => b === 0)).toBe(true);
    expect(keyBytes(k).equals(original)).toBe(true);
    // Also zeroed when fn throws.
    expect(() =>
      k.withBytes((b) => {
        seen = b;
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(seen!.every((b) => b === 0)).toBe(true);
    // An async fn would see a zeroed copy: refused.
    expect(() => k.withBytes(async () => 1)).toThrow(/synchronous/);
    k.dispose();
  });

  it('dispose is idempotent and any later use throws', () => {
    const k = KeyHandle.fromBytes(randomKey());
    expect(k.disposed).toBe(false);
    k.dispose();
    k.dispose();
    expect(k.disposed).toBe(true);
    expect(k.length).toBe(64);
    const code = { code: 'ERR_VAULT_KEY_DISPOSED' };
    expect(thrown(() => k.withBytes(() => 0))).toMatchObject(code);
    expect(thrown(() => k.writeToFd(1))).toMatchObject(code);
    expect(thrown(() => xtsEncrypt(k, Buffer.alloc(512), { sectorSize: 512, firstTweak: 0n }))).toMatchObject(code);
  });

  it('writeToFd / readFromFd round-trip through a real pipe', () => {
    const original = randomKey();
    const k = KeyHandle.fromBytes(Buffer.from(original));
    const [r, w] = makePipe();
    try {
      k.writeToFd(w);
      const back = KeyHandle.readFromFd(r, 64);
      expect(keyBytes(back).equals(original)).toBe(true);
      back.dispose();
    } finally {
      closeSync(r);
      closeSync(w);
      k.dispose();
    }
  });

  it('readFromFd assembles short reads from a child process writing in pieces', async () => {
    const original = randomKey();
    const [r, w] = makePipe();
    // The child inherits the write end as fd 3 and writes 10 + 20 + 34 bytes with pauses.
    const script =
      `const fs = require('node:fs'); const k = Buffer.from('${original.toString('hex')}', 'hex');` +
      `fs.writeSync(3, k.subarray(0, 10));` +
      `setTimeout(() => { fs.writeSync(3, k.subarray(10, 30)); setTimeout(() => fs.writeSync(3, k.subarray(30)), 50); }, 50);`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit', w] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    closeSync(w);
    try {
      const k = KeyHandle.readFromFd(r, 64); // blocks this thread until all 64 bytes arrived
      expect(keyBytes(k).equals(original)).toBe(true);
      k.dispose();
    } finally {
      closeSync(r);
    }
    expect(await exited).toBe(0);
  });

  it('readFromFd fails on end of file before the full length', () => {
    const [r, w] = makePipe();
    writeSync(w, randomBytes(10));
    closeSync(w);
    try {
      const err = thrown(() => KeyHandle.readFromFd(r, 64));
      expect(err).toMatchObject({ code: 'ERR_VAULT_KEY_SHORT_READ' });
      expect((err as Error).message).toMatch(/after 10 of 64 bytes/);
    } finally {
      closeSync(r);
    }
  });

  it('writeToFd reports a closed pipe as EPIPE', () => {
    const k = KeyHandle.fromBytes(randomKey());
    const [r, w] = makePipe();
    closeSync(r);
    try {
      expect(thrown(() => k.writeToFd(w))).toMatchObject({ code: 'EPIPE' });
    } finally {
      closeSync(w);
      k.dispose();
    }
  });
});

function vmLckKiB(): number {
  const m = /^VmLck:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m === null) throw new Error('no VmLck in /proc/self/status');
  return Number(m[1]);
}

describe('native key memory and process helpers', () => {
  it('locks key pages: VmLck grows by a page per handle and shrinks on dispose', () => {
    const before = vmLckKiB();
    const handles = Array.from({ length: 4 }, () => KeyHandle.fromBytes(randomKey()));
    const during = vmLckKiB();
    expect(during - before).toBeGreaterThanOrEqual(4 * 4);
    for (const h of handles) h.dispose();
    expect(vmLckKiB()).toBeLessThanOrEqual(before);
  });

  it('locks memory for keys read from an fd too', () => {
    const [r, w] = makePipe();
    writeSync(w, randomKey());
    closeSync(w);
    const before = vmLckKiB();
    const k = KeyHandle.readFromFd(r, 64);
    closeSync(r);
    expect(vmLckKiB()).toBeGreaterThan(before);
    k.dispose();
    expect(vmLckKiB()).toBe(before);
  });

  it('pipe() returns two close-on-exec fds', () => {
    const native = nativeAddon();
    const [r, w] = native.pipe();
    try {
      for (const fd of [r, w]) {
        const flags = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
        const m = /^flags:\s+([0-7]+)$/m.exec(flags);
        expect(m).not.toBeNull();
        expect(Number.parseInt(m![1]!, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC
      }
    } finally {
      closeSync(r);
      closeSync(w);
    }
  });

  it('flock returns 0, or EWOULDBLOCK (without throwing) while another open file holds it', () => {
    const native = nativeAddon();
    const file = path.join(scratch, 'lockfile');
    const { EWOULDBLOCK, EBADF } = osConstants.errno;
    // flock locks belong to the open file description: two open()s conflict even in one process.
    const a = openSync(file, 'w');
    const b = openSync(file, 'r');
    try {
      expect(native.flock(a, true, true)).toBe(0);
      expect(native.flock(b, true, true)).toBe(EWOULDBLOCK);
      expect(native.flock(b, false, true)).toBe(EWOULDBLOCK);
      expect(native.flock(a, false, true)).toBe(0); // downgrade to shared
      expect(native.flock(b, false, true)).toBe(0); // shared + shared is fine
    } finally {
      closeSync(a);
      closeSync(b);
    }
    expect(native.flock(b, true, true)).toBe(EBADF); // returned, not thrown
  });

  it('the process is non-dumpable after hardenProcess()', () => {
    const native = nativeAddon();
    expect(native.isDumpable()).toBe(true); // a fresh vitest worker
    native.hardenProcess();
    expect(native.isDumpable()).toBe(false);
    native.hardenProcess(); // idempotent
    expect(native.isDumpable()).toBe(false);
  });
});
