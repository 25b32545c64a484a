/** How the CLI talks to people: one-line messages on stderr, `hint:` lines, nothing else. */
let quiet = false;

export function setQuiet(q: boolean): void {
  quiet = q;
}

export function info(msg: string): void {
  if (!quiet) process.stdout.write(msg + '\n');
}

export function warn(msg: string): void {
  process.stderr.write(`vault: warning: ${msg}\n`);
}

export function isTerminal(): boolean {
  return process.stderr.isTTY === true;
}

/** A progress line with throughput and ETA, redrawn in place; only on a terminal. */
export function progress(label: string, done: number, total: number, startedMs: number): void {
  if (!isTerminal() || quiet) return;
  const elapsed = (Date.now() - startedMs) / 1000;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const eta = rate > 0 ? (total - done) / rate : 0;
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(
    `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${((done / total) * 100).toFixed(0).padStart(3)}%  ` +
      `${(rate / 1e6).toFixed(0)} MB/s  ETA ${eta.toFixed(0)} s   ` + (done >= total ? '\n' : ''),
  );
}
