/**
 * A real terminal for tests of what a person sees: a tmux pane (its own server socket, 100×30)
 * running an interactive bash, driven with send-keys and read back as screen text (capture-pane),
 * so a test checks the lines as drawn (columns, wrapping, redraws), not only the bytes written.
 *
 * The shell starts in `dir` with the prompt "$ ", `vault` as a function running the built CLI, and
 * $K holding the cheap KDF flags.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

let panes = 0;

export interface Pane {
  /** tmux send-keys: literal text (`-l`) or key names (Enter, BSpace, Down, C-c). */
  type(text: string): void;
  keys(...names: string[]): void;
  /** The visible screen, one string per row, trailing blanks cut (a prompt "Passphrase: " reads "Passphrase:"). */
  screen(): string[];
  /** Waits until `re` matches the screen (rows joined with "\n"); returns the rows. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string[]>;
  close(): void;
}

function tmux(socket: string, args: string[]): string {
  const r = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

/** A new pane with a shell in `dir`, where `vault` runs `cli`. */
export function openPane(dir: string, cli: string, kdf: string[]): Pane {
  const socket = `vault-test-${process.pid}-${++panes}`;
  const rc = path.join(dir, `.bashrc-${panes}`);
  writeFileSync(rc, [`PS1='$ '`, `cd ${JSON.stringify(dir)}`, `vault() { ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} "$@"; }`, `K='${kdf.join(' ')}'`, ''].join('\n'));
  tmux(socket, ['new-session', '-d', '-x', '100', '-y', '30', `bash --noprofile --rcfile ${rc} -i`]);
  const socketPath = tmux(socket, ['display-message', '-p', '#{socket_path}']).trim();
  const screen = () =>
    tmux(socket, ['capture-pane', '-p'])
      .split('\n')
      .map((l) => l.trimEnd());
  const pane: Pane = {
    type: (text) => void tmux(socket, ['send-keys', '-l', text]),
    keys: (...names) => void tmux(socket, ['send-keys', ...names]),
    screen,
    async waitFor(re, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const rows = screen();
        if (re.test(rows.join('\n'))) return rows;
        if (Date.now() > until) throw new Error(`screen never matched ${re}:\n${rows.join('\n')}`);
        await new Promise((r) => setTimeout(r, 40));
      }
    },
    close: () => {
      spawnSync('tmux', ['-L', socket, 'kill-server']);
      rmSync(socketPath, { force: true }); // tmux leaves its socket file behind
    },
  };
  return pane;
}

/** The rows of `screen` from the last one starting with `$ <command>` on, without the shell's next prompt. */
export function since(screen: string[], command: string): string[] {
  const at = screen.map((l) => l.startsWith(`$ ${command}`)).lastIndexOf(true);
  if (at < 0) throw new Error(`no "$ ${command}" on the screen:\n${screen.join('\n')}`);
  const rows = screen.slice(at);
  while (rows.length > 1 && (rows.at(-1) === '' || rows.at(-1) === '$')) rows.pop();
  return rows;
}
