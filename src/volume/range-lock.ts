/**
 * Exclusive locks on ranges of sectors. A write holds the lock on every sector it touches, so a
 * read-modify-write of a partial sector can never interleave with another write to that sector
 * and lose its update. Few requests are in flight at once, so a list beats a per-sector map.
 */
export class RangeLock {
  private held: { start: number; end: number; released: Promise<void> }[] = [];

  /** Waits until [start, end) overlaps no held range, then holds it. Returns the release function. */
  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      const clash = this.held.find((r) => r.start < end && start < r.end);
      if (!clash) break;
      await clash.released;
    }
    let release!: () => void;
    const entry = { start, end, released: new Promise<void>((r) => (release = r)) };
    this.held.push(entry);
    return () => {
      this.held = this.held.filter((r) => r !== entry);
      release();
    };
  }
}
