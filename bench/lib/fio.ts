/**
 * fio: build one job from a small description, run it with --output-format=json, and reduce the
 * report to the figures the benchmark compares. One job, one file, no job files: the exact command
 * lands in the results JSON, so anyone can rerun a single cell by hand.
 */
import { runAs, describeFailure, StepError, type AsUser } from './proc.js';

export interface FioJob {
  name: string;
  filename: string;
  rw: 'write' | 'read' | 'randread' | 'randwrite';
  bs: string;
  sizeBytes: number;
  ioengine: 'psync' | 'libaio';
  iodepth?: number;
  direct?: boolean;
  /** Seconds, time-based; otherwise the job ends after sizeBytes. */
  runtimeS?: number;
  endFsync?: boolean;
  /** Run fio as this user (a rootless route's mount, which only its owner can use). */
  asUser?: AsUser;
}

export interface FioResult {
  /** Bytes transferred in the measured direction. */
  ioBytes: number;
  /** Job time in seconds as fio counts it (includes end_fsync: see seqThroughput's check). */
  runtimeS: number;
  /** io bytes / runtime, in bytes per second. */
  bytesPerS: number;
  iops: number;
  /** Mean and 99th-percentile completion latency, microseconds. */
  clatMeanUs: number | null;
  clatP99Us: number | null;
  /** Whether O_DIRECT was in effect (false when it was asked for, refused, and replaced). */
  direct: boolean;
  /** Wall time of the fio process, seconds: a sanity check on runtimeS. */
  wallS: number;
  command: string;
  note?: string;
}

export function fioArgs(j: FioJob): string[] {
  const a = [
    `--name=${j.name}`,
    `--filename=${j.filename}`,
    `--rw=${j.rw}`,
    `--bs=${j.bs}`,
    `--size=${j.sizeBytes}`,
    `--ioengine=${j.ioengine}`,
    `--iodepth=${j.iodepth ?? 1}`,
    `--direct=${j.direct ? 1 : 0}`,
    // No preallocation: writing into fallocated (unwritten) extents is a different ext4 path from
    // plain appends, and gocryptfs emulates fallocate; every setup should do the same plain writes.
    '--fallocate=none',
    // The same random offsets in every setup, so the setups are compared on the same work.
    '--randrepeat=1',
    '--output-format=json',
  ];
  if (j.runtimeS !== undefined) a.push('--time_based=1', `--runtime=${j.runtimeS}`);
  if (j.endFsync) a.push('--end_fsync=1');
  return a;
}

interface FioDirStats {
  io_bytes: number;
  bw_bytes: number;
  iops: number;
  runtime: number;
  clat_ns?: { mean?: number; percentile?: Record<string, number> };
}
interface FioJobReport {
  jobname: string;
  error: number;
  job_runtime?: number;
  read: FioDirStats;
  write: FioDirStats;
}

/** fio may print warnings before its JSON document (e.g. about unsupported options): skip to it. */
export function parseFioJson(stdout: string): FioJobReport {
  const start = stdout.indexOf('{');
  if (start < 0) throw new StepError('fio printed no JSON');
  const doc = JSON.parse(stdout.slice(start)) as { jobs?: FioJobReport[] };
  const job = doc.jobs?.[0];
  if (!job) throw new StepError('fio JSON has no job');
  return job;
}

export function summarise(job: FioJobReport, rw: FioJob['rw'], direct: boolean, wallS: number, command: string): FioResult {
  const d = rw === 'write' || rw === 'randwrite' ? job.write : job.read;
  // job_runtime (ms) is the whole job including the end_fsync; the per-direction runtime can stop
  // before the fsync. Use the longer one so a write that is only in the page cache is not counted
  // as done.
  const runtimeMs = Math.max(job.job_runtime ?? 0, d.runtime);
  const runtimeS = runtimeMs / 1000;
  const pct = d.clat_ns?.percentile;
  return {
    ioBytes: d.io_bytes,
    runtimeS,
    bytesPerS: runtimeS > 0 ? d.io_bytes / runtimeS : 0,
    iops: d.iops,
    clatMeanUs: d.clat_ns?.mean !== undefined ? d.clat_ns.mean / 1000 : null,
    clatP99Us: pct?.['99.000000'] !== undefined ? pct['99.000000'] / 1000 : null,
    direct,
    wallS,
    command,
  };
}

const EINVAL = 22;

/** The fio command line as run: with the setpriv wrapper when it ran as a user. */
function commandLine(as: AsUser | undefined, args: string[]): string {
  return (as ? as.argv('fio', args) : ['fio', ...args]).join(' ');
}

/**
 * Runs one job. A job asking for O_DIRECT that fails with EINVAL (a FUSE filesystem that does not
 * support it) is rerun buffered and says so in `note`, instead of failing the whole setup.
 */
export async function runFio(j: FioJob): Promise<FioResult> {
  const timeoutMs = ((j.runtimeS ?? 0) + 20 * 60) * 1000;
  const attempt = async (job: FioJob) => {
    const args = fioArgs(job);
    const r = await runAs(job.asUser, 'fio', args, { timeoutMs });
    let report: FioJobReport | null = null;
    try {
      report = parseFioJson(r.stdout);
    } catch {
      report = null;
    }
    return { r, report, command: commandLine(job.asUser, args) };
  };
  const first = await attempt(j);
  const failed = (a: typeof first) => a.r.code !== 0 || a.report === null || a.report.error !== 0;
  if (!failed(first)) return summarise(first.report!, j.rw, !!j.direct, first.r.ms / 1000, first.command);

  const einval = first.report?.error === EINVAL || /invalid argument/i.test(first.r.stderr + first.r.stdout);
  if (j.direct && einval) {
    const second = await attempt({ ...j, direct: false });
    if (!failed(second)) {
      return {
        ...summarise(second.report!, j.rw, false, second.r.ms / 1000, second.command),
        note: 'O_DIRECT refused (EINVAL): measured buffered instead',
      };
    }
    throw new StepError(`fio ${j.name} failed with and without O_DIRECT: ${describeFailure(second.r)}`);
  }
  const why = first.report && first.report.error !== 0 ? `fio job error ${first.report.error}; ` : '';
  throw new StepError(`fio ${j.name}: ${why}${describeFailure(first.r)}`);
}

export interface FioMultiResult {
  files: number;
  /** Bytes over all jobs. */
  ioBytes: number;
  /** The longest job's time (end_fsync included), seconds: all jobs start together. */
  runtimeS: number;
  /** Aggregate: ioBytes / runtimeS. */
  bytesPerS: number;
  wallS: number;
  command: string;
}

/**
 * One fio process, one job per file, all started together (the options before the first --name
 * are global in fio's command line): aggregate throughput of several volumes loaded at once.
 */
export async function runFioMulti(j: Omit<FioJob, 'name' | 'filename'>, files: readonly string[]): Promise<FioMultiResult> {
  const global = fioArgs({ ...j, name: 'x', filename: 'x' }).filter((a) => !a.startsWith('--name=') && !a.startsWith('--filename='));
  const args = [...global, ...files.flatMap((f, i) => [`--name=v${i}`, `--filename=${f}`])];
  const r = await runAs(j.asUser, 'fio', args, { timeoutMs: ((j.runtimeS ?? 0) + 30 * 60) * 1000 });
  const command = commandLine(j.asUser, args);
  let jobs: FioJobReport[] = [];
  try {
    const start = r.stdout.indexOf('{');
    jobs = (JSON.parse(r.stdout.slice(start)) as { jobs?: FioJobReport[] }).jobs ?? [];
  } catch {
    jobs = [];
  }
  if (r.code !== 0 || jobs.length !== files.length || jobs.some((x) => x.error !== 0))
    throw new StepError(`fio (${files.length} jobs): ${describeFailure(r)}`);
  const write = j.rw === 'write' || j.rw === 'randwrite';
  let ioBytes = 0;
  let runtimeMs = 0;
  for (const job of jobs) {
    const d = write ? job.write : job.read;
    ioBytes += d.io_bytes;
    runtimeMs = Math.max(runtimeMs, job.job_runtime ?? 0, d.runtime);
  }
  const runtimeS = runtimeMs / 1000;
  return { files: files.length, ioBytes, runtimeS, bytesPerS: runtimeS > 0 ? ioBytes / runtimeS : 0, wallS: r.ms / 1000, command };
}
