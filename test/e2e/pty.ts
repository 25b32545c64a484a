/**
 * Running the CLI on a real pseudo-terminal, as a person types: the passphrase goes through
 * /dev/tty and vault's own masked prompt (src/cli/passphrase.ts), not --password-stdin.
 *
 * A small python3 program (its pty module) opens the terminal, starts the CLI on it with the pause
 * hook (test/support/hooks.ts, preloaded), answers each prompt (output ending in ":") with the next answer and a carriage return, and
 * reports the CLI's pid on its stdout. The answers reach it on its stdin, hex-encoded, so they are in
 * no argv or environment.
 */
import { spawn } from 'node:child_process';
import { whenPaused, type Paused } from './memscan.js';
import { HOOKS_ARGV } from '../support/cli-hooks.js';

const DRIVER = String.raw`
import binascii, os, pty, sys
answers = [binascii.unhexlify(l) for l in sys.stdin.read().split()]
pid, fd = pty.fork()
if pid == 0:
    os.environ['VAULT_TEST_PAUSE_BEFORE_EXIT'] = '1'
    os.execv(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
seen, tail = b'', b''
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    seen += data
    tail += data
    if answers and tail.rstrip().endswith(b':'):
        os.write(fd, answers.pop(0) + b'\r')
        tail = b''
sys.stderr.buffer.write(seen)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
`;

/** Runs `cli args` on a pseudo-terminal, typing `answers` at its prompts; resolves once it paused before exit. */
export function runPausedOnTty(cli: string, args: string[], answers: Buffer[]): Promise<Paused> {
  const driver = spawn('python3', ['-c', DRIVER, process.execPath, ...HOOKS_ARGV, cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let pid: number | undefined;
  let out = '';
  let terminal = '';
  driver.stdout.on('data', (d) => {
    out += d;
    if (/^\d+\n/.test(out)) pid = Number(out.split('\n')[0]);
  });
  driver.stderr.on('data', (d) => (terminal += d));
  const done = new Promise<number>((r) => driver.on('close', (s) => r(s ?? -1)));
  driver.stdin.end(answers.map((a) => a.toString('hex')).join('\n') + '\n');
  return whenPaused(() => pid, { done, stderr: () => terminal }, `vault ${args[0]} on a terminal`);
}
