/**
 * Listens to the signals of one bus name through `gdbus monitor --dest <name>` (GLib's own tool,
 * package libglib2.0-bin), and keeps listening: when the bus goes away (dbus-daemon restarted),
 * gdbus exits, and the monitor starts it again until it connects. Only signals sent by the
 * current owner of the name reach it (the bus filters by sender), so on the system bus only
 * logind itself can trigger a dismount.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { toolPath } from '../mount/run.js';
import { busEnv, type BusTarget } from '../system/bus-address.js';
import { parseMonitorLine, type BusEvent } from './events.js';

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

export interface MonitorHandlers {
  onEvent(e: BusEvent): void;
  /** The connection was lost (or could not be made); it is retried. */
  onDisconnect(reason: string): void;
  log(m: string): void;
}

export class BusMonitor {
  private child: ChildProcess | null = null;
  private stopped = false;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | null = null;
  /** Whether the last attempt got as far as a working connection (to log outages only once). */
  private connected = false;
  private firstAttempt = true;

  constructor(
    readonly bus: BusTarget,
    readonly name: string,
    private readonly h: MonitorHandlers,
  ) {}

  start(): void {
    if (this.stopped) return;
    const child = spawn('gdbus', ['monitor', `--${this.bus.kind}`, '--dest', this.name], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: busEnv(this.bus, toolPath()),
      ...(this.bus.as ? { uid: this.bus.as.uid, gid: this.bus.as.gid } : {}),
    });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4096);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('Monitoring signals')) {
        // Connected and subscribed: a later outage is news again.
        if (!this.connected && !this.firstAttempt) this.h.log(`${this.bus.kind} bus: connected again (${this.bus.address})`);
        this.firstAttempt = false;
        this.connected = true;
        this.retryMs = FIRST_RETRY_MS;
        return;
      }
      const e = parseMonitorLine(line);
      if (e) this.h.onEvent(e);
    });
    child.on('error', (e) => this.ended(child, `cannot run gdbus: ${e.message}`));
    child.on('exit', (code, sig) => this.ended(child, stderr.trim().split('\n').pop() || `gdbus monitor exited (${sig ?? `status ${code}`})`));
  }

  private ended(child: ChildProcess, reason: string): void {
    if (this.child !== child) return; // 'error' and 'exit' can both arrive; or stopped meanwhile
    this.child = null;
    if (this.stopped) return;
    if (this.connected) this.h.log(`${this.bus.kind} bus: lost ${this.name} (${reason}); reconnecting`);
    else if (this.firstAttempt) this.h.log(`${this.bus.kind} bus: cannot reach ${this.bus.address} for ${this.name} (${reason}); retrying`);
    this.connected = false;
    this.firstAttempt = false;
    this.h.onDisconnect(reason);
    this.timer = setTimeout(() => this.start(), this.retryMs);
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.child?.kill('SIGTERM');
    this.child = null;
  }
}
