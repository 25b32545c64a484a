/**
 * Failed container I/O, seen from the volume server: the native data path counts every read,
 * write, sync and hole punch of the container that the host refused, by errno, and keeps the
 * latest (native/fuse_io.c vf_container_error); this tells the rest of vault. When the count
 * changes it rewrites io-errors.json in the volume's directory, which `vault list` reads
 * (src/mount/state.ts), and logs the latest failure.
 */
import { writeIoErrors, type IoErrorReport } from '../mount/state.js';
import type { FuseStats } from './fuse-addon.js';

/** How often the counters are looked at: a stats() call, cheap; `vault list` sees a failure this soon. */
const EVERY_MS = 200;

export function ioErrorReport(st: Pick<FuseStats, 'containerErrors' | 'lastContainerError'>): IoErrorReport {
  const { eio, enospc, erofs, other } = st.containerErrors;
  const l = st.lastContainerError;
  return {
    count: eio + enospc + erofs + other,
    eio,
    enospc,
    erofs,
    other,
    last: l ? { op: l.op, errno: l.errno, offset: l.offset, at: new Date(l.atMs).toISOString() } : null,
  };
}

/**
 * Polls the counters; stop() looks once more, so that failures of the last moments before a
 * dismount (which reads the record after the server exits, to tell the user) are recorded too.
 */
export function watchIoErrors(o: { fuseDir: string; stats: () => FuseStats; log: (m: string) => void }): { stop(): void } {
  let seen = 0;
  const check = () => {
    const report = ioErrorReport(o.stats());
    if (report.count === seen) return;
    seen = report.count;
    const l = report.last;
    o.log(`container I/O errors: ${report.count}${l ? ` (last: ${l.errno} on ${l.op}${l.offset === null ? '' : ` at offset ${l.offset}`})` : ''}`);
    try {
      writeIoErrors(o.fuseDir, report);
    } catch (e) {
      o.log(`could not record the I/O errors for vault list: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(check, EVERY_MS);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      check();
    },
  };
}
