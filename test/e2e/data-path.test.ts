/**
 * Issue 4, correctness under speed: whatever serves the block file must return exactly what was
 * written at exactly that offset, under concurrent, unaligned, mixed-size I/O.
 * - fio --verify=crc32c over the raw block file and over the mounted filesystem, 4 jobs at once;
 * - every sector written concurrently with a pattern naming its own index, then every sector checked.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { FAST_KDF, e2eSuite, forEachTransport, ok, vault } from './harness.js';

const suite = e2eSuite('data-path');
const run = suite.run;
const PW = 'data path\n';

function fio(args: string[]) {
  // cwd: fio drops verify-state files in its working directory.
  const r = spawnSync('fio', ['--output-format=json', '--verify_state_save=0', ...args], { encoding: 'utf8', timeout: 300_000, cwd: suite.dir });
  const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  const errors = report.jobs.map((j: { error: number }) => j.error);
  return { status: r.status, errors, stderr: r.stderr, report };
}

function mountRaw(name: string, sectorSize: string) {
  const file = path.join(suite.dir, name);
  ok(vault(['create', file, '--size', '160M', '--fs', 'none', '--sector-size', sectorSize, '--password-stdin', ...FAST_KDF], PW));
  ok(vault(['mount', file, '--no-filesystem', '--password-stdin'], PW));
  return { file, vol: JSON.parse(ok(vault(['list', '--json'])).stdout)[0] as { blockFile: string; loopDevice: string } };
}

forEachTransport(suite, () => {
  describe.runIf(run)('data path correctness', () => {
    for (const ss of ['512', '4096']) {
      it(`fio --verify=crc32c on the raw block file: 4 jobs, mixed sizes and alignments (${ss}-byte sectors)`, () => {
        const { file, vol } = mountRaw(`fio-raw-${ss}.vol`, ss);
        // Buffered and unaligned: every write size from 1 KiB to 64 KiB at any 1 KiB offset.
        const unaligned = fio([
          '--name=unaligned', `--filename=${vol.blockFile}`, '--rw=randwrite', '--bsrange=1k-64k', '--bs_unaligned=1',
          '--numjobs=4', '--size=24M', '--offset_increment=32M', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1',
          '--ioengine=psync', '--group_reporting=0',
        ]);
        expect(unaligned.errors, unaligned.stderr).toEqual([0, 0, 0, 0]);
        // O_DIRECT through the loop device, sector-aligned sizes up to 1 MiB, queue depth 8.
        const direct = fio([
          '--name=direct', `--filename=${vol.loopDevice}`, '--rw=randwrite', '--bsrange=4k-1m', '--blockalign=4k',
          '--numjobs=4', '--size=24M', '--offset_increment=32M', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1',
          '--ioengine=libaio', '--iodepth=8', '--direct=1',
        ]);
        expect(direct.errors, direct.stderr).toEqual([0, 0, 0, 0]);
        ok(vault(['dismount', file]));
      });
    }

    it('fio --verify=crc32c on the mounted ext4 filesystem, 4 jobs at once', () => {
      const file = path.join(suite.dir, 'fio-fs.vol');
      ok(vault(['create', file, '--size', '256M', '--fs', 'ext4', '--password-stdin', ...FAST_KDF], PW));
      const mp = path.join(suite.dir, 'fio-mp');
      spawnSync('mkdir', [mp]);
      ok(vault(['mount', file, mp, '--password-stdin'], PW));
      const r = fio([
        '--name=fsverify', `--directory=${mp}`, '--rw=randrw', '--bsrange=512-256k', '--bs_unaligned=1', '--numjobs=4',
        '--size=32M', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--fsync=16', '--ioengine=psync',
      ]);
      expect(r.errors, r.stderr).toEqual([0, 0, 0, 0]);
      const direct = fio([
        '--name=fsdirect', `--directory=${mp}`, '--rw=randwrite', '--bs=4k', '--numjobs=4', '--size=16M', '--direct=1',
        '--ioengine=libaio', '--iodepth=16', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1',
      ]);
      expect(direct.errors, direct.stderr).toEqual([0, 0, 0, 0]);
      ok(vault(['dismount', mp]));
    });

    it('no request returns data from another offset: sector-unique patterns written concurrently, every sector verified', async () => {
      const { file, vol } = mountRaw('pattern.vol', '4096');
      const sectors = 16384; // 64 MiB of 4 KiB sectors
      // Four writers interleave 8-sector chunks (chunk c goes to writer c mod 4); four readers then each
      // check a quarter of the volume through the loop device. Every sector names its own index.
      const script = path.join(suite.dir, 'pattern.cjs');
      writeFileSync(script, `
        const fs = require('fs');
        const [mode, dev, k, n] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
        const fd = fs.openSync(dev, mode === 'write' ? 'r+' : 'r');
        const b = Buffer.alloc(4096 * 8);
        let bad = 0;
        const fill = (s) => { for (let j = 0; j < 8; j++) b.fill('<sector ' + (s + j) + '>', j * 4096, (j + 1) * 4096); };
        if (mode === 'write') {
          for (let s = k * 8; s < n; s += 32) { fill(s); fs.writeSync(fd, b, 0, b.length, s * 4096); }
          fs.fsyncSync(fd);
        } else {
          const want = Buffer.alloc(b.length);
          for (let s = k * (n / 4); s < (k + 1) * (n / 4); s += 8) {
            fs.readSync(fd, want, 0, want.length, s * 4096);
            fill(s);
            for (let j = 0; j < 8; j++) if (!want.subarray(j * 4096, (j + 1) * 4096).equals(b.subarray(j * 4096, (j + 1) * 4096))) bad++;
          }
        }
        process.stdout.write(String(bad));
      `);
      const all = (mode: string, dev: string) =>
        Promise.all([0, 1, 2, 3].map((k) => new Promise<string>((resolve) => {
          const c = spawn(process.execPath, [script, mode, dev, String(k), String(sectors)]);
          let out = '';
          c.stdout.on('data', (d) => (out += d));
          c.on('close', (code) => resolve(code === 0 ? out : `exit ${code}`));
        })));
      expect(await all('write', vol.blockFile)).toEqual(['0', '0', '0', '0']);
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      expect(await all('read', vol.loopDevice)).toEqual(['0', '0', '0', '0']);
      ok(vault(['dismount', file]));
    });
  });
});
