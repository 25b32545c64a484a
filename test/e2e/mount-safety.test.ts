/**
 * Issue 3, the safety properties around a mount: only root reaches the plaintext, a failed mount
 * undoes everything, mount points are validated, and a volume made under sudo belongs to the user.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VECTOR_PASSPHRASE, vectorCopy } from '../support/vectors.js';
import { FAST_KDF, RUN_DIR, declareIf, e2eSuite, forEachTransport, leftovers, ok, sha256File, transportIndependent, vault } from './harness.js';

const suite = e2eSuite('mount-safety');
const run = suite.run;
const PW = 'safety first\n';
const NOBODY = 65534;

function create(name: string, fs: string, env: Record<string, string> = {}): string {
  const file = path.join(suite.dir, name);
  ok(vault(['create', file, '--size', '32M', '--fs', fs, '--password-stdin', ...FAST_KDF], PW, env), `create ${name}`);
  return file;
}

forEachTransport(suite, (t) => {
  const itOnce = declareIf(transportIndependent(t)); // checks made before any server exists
  describe.runIf(run)('mount safety', () => {
    it('only root can reach the decrypted block file', () => {
      const file = create('private.vol', 'ext4');
      ok(vault(['mount', file, '--password-stdin'], PW));
      const v = JSON.parse(ok(vault(['list', '--json'])).stdout)[0];
      expect(statSync(path.dirname(v.fuseDir)).mode & 0o777).toBe(0o700);
      expect(statSync(RUN_DIR).mode & 0o777).toBe(0o700);
      expect(statSync(v.blockFile).mode & 0o777).toBe(0o600);
      const asNobody = spawnSync('head', ['-c', '16', v.blockFile], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
      expect(asNobody.status).not.toBe(0);
      expect(asNobody.stderr).toMatch(/Permission denied/);
      const loopAsNobody = spawnSync('head', ['-c', '16', v.loopDevice], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
      expect(loopAsNobody.status).not.toBe(0);
      ok(vault(['dismount', file]));
    });

    it('a mount that fails half-way undoes every step', () => {
      const file = create('nofs.vol', 'none');
      const before = sha256File(file);
      const r = vault(['mount', file, '--password-stdin'], PW);
      expect(r.status).toBe(7);
      expect(r.stderr).toMatch(/no filesystem/);
      expect(r.stderr).toMatch(/--no-filesystem/);
      expect(leftovers()).toEqual([]);
      expect(existsSync('/media/vault/root/nofs')).toBe(false);
      expect(sha256File(file)).toBe(before);
    });

    itOnce('--header-copy: copies that disagree mount read-only from the copy named, each with its own size; after `header repair --header-copy` the container mounts read-write as that copy', () => {
      // spec/vectors: both copies authentic with sequence 1, the primary with 2 sectors of 4096, the secondary with 4.
      const file = vectorCopy(suite.dir, 'copies-disagree-size', 'disagree');
      const VP = `${VECTOR_PASSPHRASE}\n`;
      const before = sha256File(file);
      expect(vault(['mount', file, '--no-filesystem', '--password-stdin'], VP)).toMatchObject({ status: 5, stderr: expect.stringMatching(/disagree.*--header-copy primary/s) });
      const serve = (args: string[]) => {
        const m = ok(vault(['mount', file, '--no-filesystem', ...args, '--password-stdin'], VP), `mount ${args.join(' ')}`);
        const dev = m.stdout.trim();
        const v = (JSON.parse(ok(vault(['list', '--json'])).stdout) as Array<{ container: string; readOnly: boolean }>).find((x) => x.container === file)!;
        const data = readFileSync(dev);
        ok(vault(['dismount', dev]));
        return { stderr: m.stderr, readOnly: v.readOnly, data };
      };
      const p = serve(['--header-copy', 'primary']);
      const s = serve(['--header-copy', 'secondary']);
      for (const [x, name] of [[p, 'primary'], [s, 'secondary']] as const) {
        expect(x.readOnly).toBe(true);
        expect(x.stderr).toMatch(/--header-copy mounts read-only/);
        expect(x.stderr).toMatch(new RegExp(`using the ${name} header copy alone`));
      }
      expect([p.data.length, s.data.length]).toEqual([8192, 16384]);
      expect(s.data.subarray(0, 8192).equals(p.data), 'one master key, one data offset: the first two sectors are the same').toBe(true);
      expect(sha256File(file), 'read-only mounts wrote nothing').toBe(before);
      ok(vault(['header', 'repair', file, '--header-copy', 'secondary', '--yes', '--password-stdin'], VP), 'header repair');
      const after = serve([]);
      expect(after.readOnly).toBe(false);
      expect(after.data.equals(s.data)).toBe(true);
      expect(leftovers()).toEqual([]);
    });

    itOnce('refuses unusable mount points with exit code 2, touching nothing', () => {
      const file = create('mp.vol', 'ext4');
      const notEmpty = path.join(suite.dir, 'full');
      mkdirSync(notEmpty);
      writeFileSync(path.join(notEmpty, 'x'), 'x');
      const aFile = path.join(suite.dir, 'afile');
      writeFileSync(aFile, 'x');
      for (const [mp, msg] of [
        [path.join(suite.dir, 'missing'), /does not exist/],
        [notEmpty, /not empty/],
        [aFile, /not a directory/],
      ] as const) {
        const r = vault(['mount', file, mp, '--password-stdin'], PW);
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toMatch(msg);
        expect(leftovers()).toEqual([]);
      }
      // inside another vault volume
      ok(vault(['mount', file, '--password-stdin'], PW));
      const inner = path.join('/media/vault/root/mp', 'inner');
      mkdirSync(inner);
      const other = create('other.vol', 'ext4');
      const r = vault(['mount', other, inner, '--password-stdin'], PW);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/inside the mounted vault volume/);
      ok(vault(['dismount', file]));
    });

    itOnce('under sudo, the new filesystem belongs to the invoking user', () => {
      const sudo = { SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY) };
      for (const fs of ['ext4', 'vfat', 'exfat']) {
        const file = create(`owned-${fs}.vol`, fs, sudo);
        ok(vault(['mount', file, '--password-stdin'], PW, sudo));
        const mp = `/media/vault/nobody/owned-${fs}`;
        const st = statSync(mp);
        expect([st.uid, st.gid], fs).toEqual([NOBODY, NOBODY]);
        const w = spawnSync('sh', ['-c', `echo hi > ${mp}/mine.txt`], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
        expect(w.status, `${fs}: ${w.stderr}`).toBe(0);
        ok(vault(['dismount', mp]));
      }
    });
  });
});
