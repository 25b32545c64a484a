/**
 * What a person sees on a real terminal (a tmux pane, test/support/tmux.ts): the passphrase prompt
 * (stars, Backspace over a two-byte character, a mismatch and its retry, each line at column 0),
 * Ctrl-C leaving a sane terminal, the weak-passphrase confirmation, the create wizard (arrow keys,
 * Enter, a size it refuses), flags that skip its questions, and confirmations (overwriting a file,
 * removing the last-but-one keyslot). The screen text is checked row by row.
 *
 * Needs tmux and a built tree (`npm run build`). The commands use no root except the wizard's ext4
 * create, which formats through vault's normal route (root: its loop device; a user: FUSE).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandExists, requirementsMet } from '../support/requirements.js';
import { openPane, since, type Pane } from '../support/tmux.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/cli/main.js');
const FAST_KDF = ['--kdf-memory', '1', '--kdf-iterations', '1', '--kdf-parallelism', '1'];
const STRONG = 'Trombone-Galaxy-Pickle-e';
const STARS = '*'.repeat(STRONG.length);

const missing = [...(commandExists('tmux') ? [] : ['tmux (scripts/setup-system.sh --test)']), ...(existsSync(CLI) ? [] : [`${CLI} (npm run build)`])];
const run = requirementsMet('tty', missing);

let dir: string;
let pane: Pane | null = null;
beforeAll(() => void (dir = mkdtempSync(path.join(tmpdir(), 'vault-tty-'))));
afterEach(() => pane?.close());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vault(args: string[], input: string) {
  return spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
}

/** Starts `command` (after `vault`) in a fresh pane; its exit status is printed as rc=N when it ends. */
async function start(command: string): Promise<Pane> {
  pane = openPane(dir, CLI, FAST_KDF);
  await pane.waitFor(/^\$$/m); // the shell's prompt (its trailing blank cut)
  pane.type(`vault ${command}; echo rc=$?`);
  pane.keys('Enter');
  return pane;
}

/** Types a passphrase and Enter once `prompt` is the last thing on the screen. */
async function answer(p: Pane, prompt: RegExp, text: string): Promise<void> {
  await p.waitFor(prompt);
  p.type(text);
  p.keys('Enter');
}

describe.runIf(run)('on a terminal', () => {
  it('passphrase prompt: stars, Backspace over "é", a mismatch and its retry, each line at column 0', async () => {
    const p = await start('create a.vol --size 2M --fs none --quick $K');
    await p.waitFor(/^New passphrase:$/m);
    p.type(`${STRONG.slice(0, -1)}é`);
    p.keys('BSpace');
    p.type('e');
    p.keys('Enter');
    await answer(p, /^Repeat passphrase:$/m, 'wrong');
    await answer(p, /^Passphrases do not match\.\nNew passphrase:$/m, STRONG);
    await answer(p, /^Repeat passphrase:$/m, STRONG);
    const rows = since(await p.waitFor(/^rc=\d+$/m), 'vault create a.vol');
    expect(rows.slice(1, 6)).toEqual([
      `New passphrase: ${STARS}`,
      'Repeat passphrase: *****',
      'Passphrases do not match.',
      `New passphrase: ${STARS}`,
      `Repeat passphrase: ${STARS}`,
    ]);
    expect(rows).toContain('rc=0');
    expect(rows.some((r) => r.startsWith(`created ${path.join(dir, 'a.vol')}`))).toBe(true);
    // Backspace took both bytes of "é": the passphrase set ends in a plain "e".
    expect(vault(['info', path.join(dir, 'a.vol'), '--password-stdin'], STRONG).status).toBe(0);
  });

  it('three mismatches give up; Ctrl-C at the prompt restores the terminal (echo, line editing) and makes nothing', async () => {
    const p = await start('create b.vol --size 2M --fs none --quick $K');
    for (let i = 0; i < 3; i++) {
      await answer(p, /^New passphrase:$/m, 'one-thing');
      await answer(p, /^Repeat passphrase:$/m, 'another');
    }
    let rows = since(await p.waitFor(/^rc=\d+$/m), 'vault create b.vol');
    expect(rows.slice(-4)).toEqual(['Repeat passphrase: *******', 'vault: the passphrases do not match', 'hint: type the same passphrase twice', 'rc=2']);

    p.type('vault create b.vol --size 2M --fs none --quick $K; echo rc=$?');
    p.keys('Enter');
    await p.waitFor(/^New passphrase:$/m);
    p.type('abc');
    p.keys('C-c');
    await p.waitFor(/^rc=130$/m);
    p.type("stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e icanon -e isig | tr '\\n' ' '; echo");
    p.keys('Enter');
    rows = since(await p.waitFor(/^isig icanon echo$/m), 'vault create b.vol');
    expect(rows.slice(1, 4)).toEqual(['New passphrase: ***', 'vault: interrupted', 'rc=130']);
    // the typed command was echoed back by the terminal: echo is on again
    expect(rows[4]).toMatch(/^\$ stty -a/);
    expect(existsSync(path.join(dir, 'b.vol'))).toBe(false);
  });

  it('a weak passphrase: the warning, "Use it anyway?", No asks again, Yes uses it', async () => {
    const p = await start('create w.vol --size 2M --fs none --quick $K');
    await answer(p, /^New passphrase:$/m, 'password1');
    await answer(p, /^Repeat passphrase:$/m, 'password1');
    await p.waitFor(/^\? Use it anyway\? \(y\/N\)$/m);
    p.keys('n', 'Enter');
    await answer(p, /^New passphrase:$/m, 'password1');
    await answer(p, /^Repeat passphrase:$/m, 'password1');
    await p.waitFor(/No\n(.*\n)*\? Use it anyway\? \(y\/N\)$/m);
    p.keys('y', 'Enter');
    const rows = since(await p.waitFor(/^rc=\d+$/m), 'vault create w.vol');
    const warning = 'Warning: the new passphrase is weak (strength 0 of 4): it can be guessed by someone who gets a copy of the container. This is a commonly used password. Add more words that are less common.';
    // at 100 columns the warning wraps onto a second row (the first row's trailing blank is cut)
    const wrapped = [warning.slice(0, 100).trimEnd(), warning.slice(100)];
    expect(rows.slice(1, 11)).toEqual([
      'New passphrase: *********',
      'Repeat passphrase: *********',
      ...wrapped,
      '✔ Use it anyway? No',
      'New passphrase: *********',
      'Repeat passphrase: *********',
      ...wrapped,
      '✔ Use it anyway? Yes',
    ]);
    expect(rows).toContain('rc=0');
    expect(vault(['info', path.join(dir, 'w.vol'), '--password-stdin'], 'password1').status).toBe(0);
  });

  it('create wizard: size (free space shown, a bad size refused), filesystem and fill with the arrow keys, then the passphrase', async () => {
    const p = await start('create z.vol $K');
    await p.waitFor(/^\? Size \(e\.g\. 512M, 2G; [\d.]+ [KMGT]?i?B free in .*\):/m);
    p.type('1X');
    p.keys('Enter');
    await p.waitFor(/^> invalid size "1X": use a number with an optional unit, e\.g\. 512M, 2G or 1T$/m);
    p.keys('BSpace', 'BSpace');
    p.type('16M');
    p.keys('Enter');
    let rows = await p.waitFor(/^\? Filesystem:$/m);
    const at = rows.indexOf('? Filesystem:');
    expect(rows.slice(at, at + 7)).toEqual(['? Filesystem:', '❯ ext4', '  exfat', '  vfat', '  none', '', 'Linux: permissions, journal, large files. The usual choice.']);
    p.keys('Down', 'Down');
    await p.waitFor(/^❯ vfat$\n(.*\n)*^FAT32: any system reads it; files up to 4 GiB\.$/m);
    p.keys('Up', 'Up', 'Enter');
    await p.waitFor(/^\? Fill:$/m);
    p.keys('Down', 'Enter');
    await answer(p, /^New passphrase:$/m, STRONG);
    await answer(p, /^Repeat passphrase:$/m, STRONG);
    rows = since(await p.waitFor(/^rc=\d+$/m, 60_000), 'vault create z.vol');
    expect(rows.slice(1, 6)).toEqual([
      expect.stringMatching(/^✔ Size \(e\.g\. 512M, 2G; .* free in .*\): 16M$/),
      '✔ Filesystem: ext4',
      '✔ Fill: quick',
      `New passphrase: ${STARS}`,
      `Repeat passphrase: ${STARS}`,
    ]);
    expect(rows).toContain('rc=0');
    expect(rows.some((r) => /^created .*z\.vol \(ext4, 4096-byte sectors/.test(r))).toBe(true);
    const file = path.join(dir, 'z.vol');
    expect(statSync(file).size).toBe(16 * 2 ** 20);
    expect(statSync(file).blocks * 512).toBeLessThan(16 * 2 ** 20); // quick: sparse
    expect(vault(['info', file, '--password-stdin'], STRONG).status).toBe(0);
  });

  it('create: flags skip the questions they answer (--fs and --quick: only the size is asked); an existing file is asked about first', async () => {
    const p = await start('create s.vol --fs none --quick $K');
    await p.waitFor(/^\? Size .*:/m);
    p.type('2M');
    p.keys('Enter');
    await answer(p, /^New passphrase:$/m, STRONG);
    await answer(p, /^Repeat passphrase:$/m, STRONG);
    const rows = since(await p.waitFor(/^rc=\d+$/m), 'vault create s.vol');
    expect(rows.slice(1, 4)).toEqual([expect.stringMatching(/^✔ Size .*: 2M$/), `New passphrase: ${STARS}`, `Repeat passphrase: ${STARS}`]);
    expect(rows.join('\n')).not.toMatch(/Filesystem:|Fill:/);
    expect(rows).toContain('rc=0');

    // the same again: the file exists now, so create asks before anything else; No keeps it
    const before = statSync(path.join(dir, 's.vol')).mtimeMs;
    p.type('vault create s.vol --size 2M --fs none --quick $K; echo rc=$?');
    p.keys('Enter');
    await p.waitFor(/^\? \S+s\.vol already exists\. Overwrite it\? \(y\/N\)$/m);
    p.keys('n', 'Enter');
    const again = since(await p.waitFor(/^rc=2$/m), 'vault create s.vol --size');
    expect(again.slice(1)).toEqual([`✔ ${path.join(dir, 's.vol')} already exists. Overwrite it? No`, 'vault: nothing was created', 'rc=2']);
    expect(statSync(path.join(dir, 's.vol')).mtimeMs).toBe(before);
  });

  it('keyslot remove of the last-but-one slot asks first; Yes removes it', async () => {
    const file = path.join(dir, 'k.vol');
    expect(vault(['create', file, '--size', '2M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], `${STRONG}\n`).status).toBe(0);
    expect(vault(['keyslot', 'add', file, '--password-stdin', ...FAST_KDF], `${STRONG}\ncorrect horse battery staple\n`).status).toBe(0);
    const p = await start('keyslot remove k.vol --slot 1');
    await p.waitFor(/^\? Remove keyslot 1\? Only keyslot 0 will open the container then\. \(y\/N\)$/m);
    p.keys('y', 'Enter');
    await answer(p, /^Passphrase:$/m, STRONG);
    const rows = since(await p.waitFor(/^rc=\d+$/m), 'vault keyslot remove');
    expect(rows.slice(1)).toEqual(['✔ Remove keyslot 1? Only keyslot 0 will open the container then. Yes', `Passphrase: ${STARS}`, 'removed keyslot 1', 'rc=0']);
    const slots = JSON.parse(vault(['keyslot', 'list', file, '--json'], '').stdout) as { state: string }[];
    expect(slots.filter((s) => s.state === 'active')).toHaveLength(1);
  });
});
