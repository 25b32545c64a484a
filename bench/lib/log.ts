/**
 * Progress lines for the person watching: always on stderr, so stdout stays free for the table
 * (or, with --json, for the JSON document). Each line carries the time since start, because the
 * machine is noisy and "which step took how long" is the first question when a run looks odd.
 */
const started = process.hrtime.bigint();

export function elapsedS(): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export function progress(message: string): void {
  process.stderr.write(`[${elapsedS().toFixed(1).padStart(6)}s] ${message}\n`);
}

/** Milliseconds on a monotonic clock: wall-clock jumps must not show up as slow mounts. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
