/**
 * The strength estimate of new passphrases (src/cli/strength.ts): weak and strong examples get the
 * expected class from the real zxcvbn-ts run in its hardened child, and the CLI prints the warning
 * on stderr with --password-stdin (and uses the passphrase), says nothing for a strong one, and
 * still refuses an empty one without a keyfile. Needs `npm run build` (the child and the CLI run
 * from dist/); no root.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { estimateStrength, STRONG_SCORE, weaknessText } from '../../src/cli/strength.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/cli/main.js');
const FAST_KDF = ['--kdf-memory', '1', '--kdf-iterations', '1', '--kdf-parallelism', '1'];
const STRONG = 'Trombone-Galaxy-Pickle-e';
let dir: string;
beforeAll(() => void (dir = mkdtempSync(path.join(tmpdir(), 'vault-strength-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vault(args: string[], input: string) {
  return spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', timeout: 60_000 });
}

describe('passphrase strength', () => {
  it('a patterned passphrase is weak; four uncommon words are strong', async () => {
    const [weak, strong] = await Promise.all(['Summer2024!', 'correct horse battery staple'].map((pw) => estimateStrength(Buffer.from(pw))));
    expect(weak!.score).toBeLessThan(STRONG_SCORE);
    expect(strong!.score).toBeGreaterThanOrEqual(STRONG_SCORE);
  });

  it('the child that reads the passphrase gets no environment: NODE_OPTIONS cannot preload code into it', async () => {
    const marker = path.join(dir, 'preloaded');
    const preload = path.join(dir, 'preload.cjs');
    writeFileSync(preload, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, process.argv.join(' '));\n`);
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `--require ${preload}`;
    try {
      const s = await estimateStrength(Buffer.from('password1'));
      expect(s.score).toBe(0); // the estimate itself still ran
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
    expect(existsSync(marker)).toBe(false);
    // The same preload does run in a child that inherits the environment: the check above can fail.
    spawnSync(process.execPath, ['-e', ''], { env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } });
    expect(existsSync(marker)).toBe(true);
  });

  it('a common password is weak, and the warning says why and what to do, in zxcvbn\'s words', async () => {
    const s = await estimateStrength(Buffer.from('password1'));
    expect(s).toEqual({ score: 0, warning: 'This is a commonly used password.', suggestions: ['Add more words that are less common.'] });
    expect(weaknessText(s)).toBe(
      'the new passphrase is weak (strength 0 of 4): it can be guessed by someone who gets a copy of the container. This is a commonly used password. Add more words that are less common.',
    );
  });

  it('create --password-stdin: a weak passphrase is warned about on stderr and used; a strong one is not; an empty one is refused', () => {
    const weak = vault(['create', path.join(dir, 'weak.vol'), '--size', '2M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], 'password1\n');
    expect(weak.status, weak.stderr).toBe(0);
    expect(weak.stderr).toContain('vault: warning: the new passphrase is weak (strength 0 of 4): it can be guessed by someone who gets a copy of the container. This is a commonly used password.');
    expect(vault(['info', path.join(dir, 'weak.vol'), '--password-stdin'], 'password1').status).toBe(0);

    const strong = vault(['create', path.join(dir, 'strong.vol'), '--size', '2M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], `${STRONG}\n`);
    expect(strong.status, strong.stderr).toBe(0);
    expect(strong.stderr).not.toContain('passphrase is weak');

    const empty = vault(['create', path.join(dir, 'empty.vol'), '--size', '2M', '--fs', 'none', '--quick', '--password-stdin', ...FAST_KDF], '\n');
    expect(empty.status).toBe(2);
    expect(empty.stderr).toBe('vault: the passphrase is empty\nhint: an empty passphrase is allowed only together with a keyfile\n');
  });

  it('passwd --password-stdin warns about a weak new passphrase only', () => {
    const file = path.join(dir, 'strong.vol');
    const r = vault(['passwd', file, '--password-stdin', ...FAST_KDF], `${STRONG}\nqwerty123\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^vault: warning: the new passphrase is weak \(strength 0 of 4\)/m);
    expect(vault(['info', file, '--password-stdin'], 'qwerty123').status).toBe(0);
  });
});
