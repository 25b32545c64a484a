/**
 * One exerciser session on a TortureVolume (issue 20): mount, run the tool in the mounted ext4,
 * dismount, `e2fsck -fn` on the plaintext. fsx's file is checked beyond its own run, from the
 * model the own fsx saved: after dropping the page cache (the reads then come through vault), and
 * after a dismount, e2fsck and a fresh mount.
 */
import path from 'node:path';
import { dropCaches } from '../../bench/lib/system.js';
import { runFsstress, runFsx, verifyFsx, type FsstressOptions, type FsxOptions, type ToolRun, type Tools } from './tools.js';
import type { TortureVolume } from './volume.js';

export interface SessionResult {
  tool: 'fsx' | 'fsstress';
  passed: boolean;
  ops: number | null;
  /** The tool's own run. */
  seconds: number;
  /** Every command that ran, in order (tool, checks, e2fsck). */
  commands: string[];
  counts: Record<string, number>;
  /** Why it failed (the first failing step and the end of its output); '' when it passed. */
  failure: string;
}

const tail = (s: string, lines = 80) => s.trim().split('\n').slice(-lines).join('\n');

class Steps {
  readonly commands: string[] = [];
  failure = '';
  /** Records a step; the first failing one is the session's failure. */
  add(what: string, r: { passed: boolean; command: string; output: string }): boolean {
    this.commands.push(r.command);
    if (!r.passed && !this.failure) this.failure = `${what} failed: ${r.command}\n${tail(r.output)}`;
    return r.passed;
  }
}

/** Mounts, runs body, dismounts, and (with fsck) checks the filesystem, whatever body did. */
async function withMount<T>(vol: TortureVolume, steps: Steps, body: (mp: string) => Promise<T>, fsck = true): Promise<T> {
  const mp = await vol.mount();
  try {
    return await body(mp);
  } finally {
    await vol.dismount();
    if (fsck) {
      const f = await vol.fsck();
      steps.add('e2fsck -fn after dismount', { passed: f.clean, command: f.command, output: f.output });
    }
  }
}

export async function fsxSession(vol: TortureVolume, tools: Tools, ownFsx: string, o: Omit<FsxOptions, 'model'> & { workDir: string }): Promise<SessionResult> {
  const steps = new Steps();
  const model = path.join(o.workDir, `fsx-${o.seed}.model`);
  const own = tools.kind === 'own';
  let run: ToolRun | null = null;
  await withMount(vol, steps, async (mp) => {
    const file = path.join(mp, 'fsx.file');
    run = await runFsx(tools, file, { ...o, model });
    if (!steps.add('fsx', run) || !own) return;
    await dropCaches();
    steps.add('fsx -c after drop_caches', await verifyFsx(ownFsx, file, model));
  });
  if (own && !steps.failure) {
    await withMount(vol, steps, async (mp) => {
      steps.add('fsx -c after a remount', await verifyFsx(ownFsx, path.join(mp, 'fsx.file'), model));
    }, false); // only read since the e2fsck above
  }
  const r = run as ToolRun | null;
  return { tool: 'fsx', passed: !steps.failure, ops: r?.ops ?? null, seconds: r?.seconds ?? 0, commands: steps.commands, counts: r?.counts ?? {}, failure: steps.failure };
}

export async function fsstressSession(vol: TortureVolume, tools: Tools, o: FsstressOptions): Promise<SessionResult> {
  const steps = new Steps();
  let run: ToolRun | null = null;
  await withMount(vol, steps, async (mp) => {
    run = await runFsstress(tools, path.join(mp, 'fsstress'), o);
    steps.add('fsstress', run);
  });
  const r = run as ToolRun | null;
  return { tool: 'fsstress', passed: !steps.failure, ops: r?.ops ?? null, seconds: r?.seconds ?? 0, commands: steps.commands, counts: r?.counts ?? {}, failure: steps.failure };
}
