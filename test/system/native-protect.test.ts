/**
 * Hidden-volume protection in the native volume server (native/fuse_protect.c): writes into
 * [protectStart, protectEnd) of the data area are refused with EIO, the session latches read-only
 * (EROFS for every later write) and stats() says so; nothing reaches the protected bytes of the
 * container, whatever the shape of the write (whole sectors, a read-modify-write crossing the
 * edge, a zeroing or a hole punch). Classic transport; needs root and /dev/fuse.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nativeAddon } from '../../src/crypto/native.js';
import { serveNative } from '../../src/server/native-frontend.js';
import type { ServerConfig } from '../../src/server/protocol.js';
import { requirementsMet } from '../support/requirements.js';

const missing = [...(process.getuid?.() !== 0 ? ['root'] : []), ...(existsSync('/dev/fuse') ? [] : ['/dev/fuse'])];
const run = requirementsMet('native-protect', missing);
const root = mkdtempSync(path.join(tmpdir(), 'vault-nprot-'));
chmodSync(root, 0o700);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const OFFSET = 131072;
const SIZE = 1 << 20;
const START = 512 * 1024;
const END = 768 * 1024;

async function serve(name: string, extra: Partial<ServerConfig> = {}) {
  const dir = path.join(root, name);
  const mnt = path.join(dir, 'fuse');
  mkdirSync(mnt, { recursive: true, mode: 0o700 });
  const container = path.join(dir, 'c');
  const fd = openSync(container, 'w+');
  ftruncateSync(fd, OFFSET + SIZE); // sparse: any byte written into the protected range shows
  const [r, w] = nativeAddon().pipe();
  writeSync(w, randomBytes(64));
  closeSync(w);
  const config: ServerConfig = {
    volumeId: name, containerPath: container, fuseDir: mnt, readOnly: false, sectorSize: 512, dataOffset: OFFSET, dataSize: SIZE,
    firstTweak: String(OFFSET / 512), tweakStep: '1', transport: 'classic', idleSeconds: null, protectedRange: { start: START, end: END }, ...extra,
  };
  try {
    const server = await serveNative(config, fd, r, {});
    return { server, vol: path.join(mnt, 'volume'), protectedBytes: () => readFileSync(container).subarray(OFFSET + START, OFFSET + END), close: async () => (await server.stop(), closeSync(fd)) };
  } catch (e) {
    closeSync(fd);
    throw e;
  } finally {
    closeSync(r);
  }
}

function writeAt(file: string, data: Buffer, at: number): string | null {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, at);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'unknown';
  } finally {
    closeSync(fd);
  }
}

describe.runIf(run)('hidden-volume protection in the volume server', () => {
  it('writes up to the edge pass; a read-modify-write crossing it fails with EIO; every write after fails with EROFS', async () => {
    const v = await serve('rmw');
    try {
      expect(writeAt(v.vol, randomBytes(4096), START - 4096)).toBe(null);
      expect(writeAt(v.vol, randomBytes(4096), END)).toBe(null); // after the range: fine too
      expect(v.server.stats().protectionTripped).toBe(false);
      expect(writeAt(v.vol, randomBytes(700), START - 300)).toBe('EIO');
      expect(v.server.stats().protectionTripped).toBe(true);
      expect(v.server.stats().lastError).toMatch(/protected hidden volume/);
      expect(writeAt(v.vol, randomBytes(512), 0)).toBe('EROFS');
      expect(v.protectedBytes().every((b) => b === 0)).toBe(true);
    } finally {
      await v.close();
    }
  });

  it('a zeroing or a hole punch reaching the range is refused too', async () => {
    const v = await serve('punch', { allowDiscards: true });
    try {
      const punch = spawnSync('fallocate', ['--punch-hole', '--offset', String(END - 4096), '--length', '8192', v.vol], { encoding: 'utf8' });
      expect(punch.status).not.toBe(0);
      expect(punch.stderr).toMatch(/Input\/output error/);
      expect(v.server.stats().protectionTripped).toBe(true);
      expect(v.protectedBytes().every((b) => b === 0)).toBe(true);
    } finally {
      await v.close();
    }
    const z = await serve('zero');
    try {
      const zero = spawnSync('fallocate', ['--zero-range', '--offset', String(START), '--length', '4096', z.vol], { encoding: 'utf8' });
      expect(zero.status).not.toBe(0);
      expect(z.server.stats().protectionTripped).toBe(true);
    } finally {
      await z.close();
    }
  });

  it('a range outside the data area is refused before serving', async () => {
    await expect(serve('bad', { protectedRange: { start: START, end: SIZE + 512 } })).rejects.toThrow(/protectStart\/protectEnd/);
  });
});
