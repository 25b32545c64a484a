/**
 * A stack of undo steps for a multi-step operation: if a later step fails, everything already done
 * is undone in reverse order, so a failed mount leaves no FUSE mount, loop device, process or state.
 */
export class UndoStack {
  private steps: { what: string; fn: () => unknown }[] = [];

  push(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  /** Forget the steps: the operation succeeded and its effects are meant to stay. */
  commit(): void {
    this.steps = [];
  }

  /** Undo everything, newest first. Returns the steps that failed to undo. */
  async unwind(): Promise<string[]> {
    const failed: string[] = [];
    while (this.steps.length) {
      const { what, fn } = this.steps.pop()!;
      try {
        await fn();
      } catch (e) {
        failed.push(`${what}: ${(e as Error).message}`);
      }
    }
    return failed;
  }
}
