/**
 * What a test file needs from the machine. Where something is truly missing (a developer's clone
 * without ../shared, a machine without loop devices) the file skips, loudly. On CI (CI=true)
 * a missing requirement fails the run instead: there everything must run.
 */
import { spawnSync } from 'node:child_process';

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status === 0;
}

/** True when nothing is missing; otherwise warns and returns false, or throws on CI. */
export function requirementsMet(suite: string, missing: readonly string[]): boolean {
  if (missing.length === 0) return true;
  const msg = `\n!!!!! ${suite}: TESTS SKIPPED: missing ${missing.join(', ')} !!!!!\n`;
  if (process.env['CI']) throw new Error(`${msg}(on CI a missing requirement is a failure)`);
  console.warn(msg);
  return false;
}
