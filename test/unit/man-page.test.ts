/**
 * Issue 16: the man page (man/vault.1.md, rendered to vault.1 at build) cannot drift from the
 * program: every command, subcommand, alias and long option of the real commander program appears
 * in the page's section for that command, and every exit code in EXIT STATUS.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { allCommands, commandTree } from '../../src/cli/completion/tree.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { ENV } from '../../src/env.js';

const page = readFileSync(new URL('../../man/vault.1.md', import.meta.url), 'utf8');

/** The text under a heading, up to the next heading of any level. */
function section(heading: RegExp): string | null {
  const lines = page.split('\n');
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return null;
  const end = lines.findIndex((l, i) => i > start && /^#{1,3} /.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('man page', async () => {
  const tree = commandTree(await buildProgram(['node', 'vault']));
  const commands = allCommands(tree).filter((c) => c.path.length > 0 && c.subcommands.length === 0);

  it('has a section for every command and subcommand, naming its aliases and every long option', () => {
    expect(commands.length).toBeGreaterThan(15);
    for (const c of commands) {
      const text = section(new RegExp(`^### vault ${escape(c.path.join(' '))}( |$)`));
      expect(text, `no "### vault ${c.path.join(' ')}" section in man/vault.1.md`).not.toBeNull();
      for (const a of c.aliases) expect(text, `${c.path.join(' ')}: alias ${a}`).toContain(`vault ${a}`);
      for (const o of c.options) if (o.long && o.long !== '--help') expect(text, `${c.path.join(' ')}: ${o.long}`).toContain(`\`${o.long}\``);
    }
  });

  it('lists the global options, every exit code and the files and environment', () => {
    const global = section(/^## GLOBAL OPTIONS/)!;
    for (const o of tree.options) expect(global, o.long).toContain(`\`${o.long}\``);
    const exits = section(/^## EXIT STATUS/)!;
    for (const [name, code] of Object.entries(EXIT)) expect(exits, `exit code ${code} (${name})`).toMatch(new RegExp(`^\\* ${code}:`, 'm'));
    const env = section(/^## ENVIRONMENT/)!;
    for (const v of Object.keys(ENV)) // src/env.ts: every VAULT_* variable vault reads
      expect(env).toContain(`\`${v}\``);
    const files = section(/^## FILES/)!;
    for (const f of ['/run/vault/', '$XDG_RUNTIME_DIR/vault/', '/etc/vault/config.json', '~/.config/vault/config.json']) expect(files).toContain(`\`${f}\``);
  });
});
