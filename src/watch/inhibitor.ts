/**
 * A logind "delay" inhibitor for sleep, so the watcher can dismount before the machine suspends.
 *
 * logind hands an inhibitor out as a file descriptor and keeps it until the last copy is closed.
 * Node cannot receive descriptors over D-Bus (it has no SCM_RIGHTS on sockets), so the descriptor
 * lives in a helper process: `systemd-inhibit --mode=delay … sh -c 'echo held; read -r _'`.
 * systemd-inhibit calls Inhibit, keeps the fd, and runs the shell, whose "held" line tells us the
 * lock is taken. The shell waits on a pipe from the watcher: closing the pipe releases the
 * inhibitor, and so does the watcher's death (the pipe closes with it), so a crashed watcher can
 * never leave the machine delayed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { toolPath } from '../mount/run.js';
import { busEnv, type BusTarget } from '../system/bus-address.js';

const TAKE_TIMEOUT_MS = 10_000;
const RELEASE_TIMEOUT_MS = 5_000;

export class SleepInhibitor {
  private holder: ChildProcess | null = null;

  constructor(private readonly bus: BusTarget) {}

  get held(): boolean {
    return this.holder !== null;
  }

  /** Takes the inhibitor (a no-op when held). Rejects with systemd-inhibit's message on failure. */
  async take(): Promise<void> {
    if (this.holder) return;
    const child = spawn(
      'systemd-inhibit',
      ['--what=sleep', '--mode=delay', '--who=vault', '--why=dismount vault volumes before sleep', 'sh', '-c', 'echo held; read -r _'],
      { stdio: ['pipe', 'pipe', 'pipe'], env: busEnv(this.bus, toolPath()) },
    );
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => fail('systemd-inhibit did not take the inhibitor in time'), TAKE_TIMEOUT_MS);
      const fail = (msg: string) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(msg));
      };
      child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2048)));
      child.on('error', (e) => fail(`cannot run systemd-inhibit: ${e.message}`));
      child.on('exit', (code) => fail(stderr.trim() || `systemd-inhibit exited with status ${code}`));
      createInterface({ input: child.stdout! }).once('line', (line) => {
        if (line !== 'held') return fail(`systemd-inhibit said: ${line}`);
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve();
      });
    });
    child.stdin!.on('error', () => undefined); // the holder may already be gone when we release
    // If the helper dies on its own, the inhibitor is gone with it.
    child.on('exit', () => {
      if (this.holder === child) this.holder = null;
    });
    this.holder = child;
  }

  /** Releases the inhibitor and waits until the descriptor is closed (the helper has exited). */
  async release(): Promise<void> {
    const child = this.holder;
    if (!child) return;
    this.holder = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), RELEASE_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
