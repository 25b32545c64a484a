/**
 * Every command's usage errors, through the real commander program (buildProgram, with its
 * exitOverride) in this process: unknown options, missing arguments and option values, bad values
 * and options that conflict. Each is refused before anything is opened, asked or mounted, so the
 * whole file runs in milliseconds; each asserts the error's code and that its message names the
 * problem, and that main.ts would exit with 2 (CLI_ABI.md, "Exit codes").
 */
import { describe, expect, it } from 'vitest';
import { CommanderError, type Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { isVaultError } from '../../src/errors.js';
import { EXIT, exitCodeFor } from '../../src/cli/exit-codes.js';

interface Refusal {
  /** commander's code (commander.unknownOption, …) or the VaultError's ('usage'). */
  code: string;
  /** The message main.ts prints: commander's line on stderr, or the VaultError's message and hint. */
  text: string;
  exit: number;
}

const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];

/** Runs `vault ...args` in-process and returns how it was refused; fails if it was not. */
async function refusal(...args: string[]): Promise<Refusal> {
  const argv = ['node', 'vault', ...args];
  const program = await buildProgram(argv);
  let stderr = '';
  for (const c of all(program)) c.configureOutput({ writeOut: () => {}, writeErr: (s) => void (stderr += s) });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.code, text: stderr, exit: e.exitCode === 0 ? EXIT.ok : EXIT.usage };
    if (isVaultError(e)) return { code: e.code, text: `${e.message}\n${e.hint ?? ''}`, exit: exitCodeFor(e.code) };
    throw e;
  }
  throw new Error(`vault ${args.join(' ')} was accepted`);
}

type Case = [args: string[], code: string, names: RegExp];

const UNKNOWN = 'commander.unknownOption';
const MISSING_ARG = 'commander.missingArgument';
const MISSING_VALUE = 'commander.optionMissingArgument';
const MANDATORY = 'commander.missingMandatoryOptionValue';
const EXCESS = 'commander.excessArguments';

const CASES: Record<string, Case[]> = {
  vault: [
    [['frobnicate'], 'commander.unknownCommand', /unknown command 'frobnicate'/],
    [['--frobnicate'], UNKNOWN, /unknown option '--frobnicate'/],
  ],
  create: [
    [['create', 'c.vc', '--size', '16M', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['create', '--size', '16M'], MISSING_ARG, /missing required argument 'container'/],
    [['create', 'c.vc'], 'usage', /required option '--size <size>' not specified/], // without a terminal; on one, the wizard asks
    [['create', 'c.vc', '--size'], MISSING_VALUE, /option '--size <size>' argument missing/],
    [['create', 'c.vc', '--size', 'lots'], 'usage', /invalid size "lots"/],
    [['create', 'c.vc', '--size', '0'], 'usage', /invalid size "0"/],
    [['create', 'c.vc', '--size', '16M', '--fs', 'ntfs'], 'usage', /unknown filesystem "ntfs"/],
    [['create', 'c.vc', '--size', '16M', '--sector-size', '1024'], 'usage', /--sector-size must be 512 or 4096/],
    [['create', 'c.vc', '--size', '16M', '--kdf-memory', '0'], 'usage', /--kdf-memory must be an integer from 1 to 4096/],
    [['create', 'c.vc', '--size', '16M', '--kdf-iterations', 'many'], 'usage', /--kdf-iterations must be an integer/],
    [['create', 'c.vc', '--size', '16M', '--kdf-parallelism', '17'], 'usage', /--kdf-parallelism must be an integer from 1 to 16/],
    [['create', 'c.vc', 'extra', '--size', '16M'], EXCESS, /too many arguments for 'create'/],
  ],
  mount: [
    [['mount'], MISSING_ARG, /missing required argument 'container'/],
    [['mount', 'c.vc', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['mount', 'c.vc', '--via', 'carrier-pigeon'], 'usage', /--via carrier-pigeon: unknown route[^]*udisks, fuse/],
    [['mount', 'c.vc', '--idle', 'soon'], 'usage', /--idle: "soon" is not a duration/],
    [['mount', 'c.vc', '--idle', '30d'], 'usage', /--idle: 30d is out of range/],
    [['mount', 'c.vc', '--dismount-on', 'lunch'], 'usage', /--dismount-on: unknown event "lunch"/],
    [['mount', 'c.vc', '--type', 'zip'], 'usage', /unknown container format "zip"[^]*vault, luks2, luks1, veracrypt, truecrypt/],
    [['mount', 'c.vc', '--slot', 'first'], 'usage', /--slot must be a keyslot number, got "first"/],
    [['mount', 'c.vc', '--pim', '-1'], 'usage', /--pim must be a whole number/],
    [['mount', 'c.vc', '--keyfile'], MISSING_VALUE, /option '--keyfile <file>' argument missing/],
    [['mount', 'c.vc', '--token-only', '--no-tokens'], 'usage', /--token-only and --no-tokens contradict each other/],
    [['mount', 'c.vc', '--token-pin-stdin', '--password-stdin'], 'usage', /--token-pin-stdin and --password-stdin both read standard input/],
    [['mount', 'c.vc', '/mnt/x', '--no-filesystem'], 'usage', /--no-filesystem mounts no filesystem: it takes no mount point/],
    [['mount', 'c.vc', '--no-filesystem', '--fs-options', 'noatime'], 'usage', /--no-filesystem mounts no filesystem: it takes no --fs-options/],
    [['mount', 'c.vc', '--read-only', '--allow-discards'], 'usage', /--allow-discards: a read-only mount writes nothing/],
    [['mount', 'c.vc', '--fs-options', 'noatime,discard'], 'usage', /--fs-options discard needs --allow-discards/],
  ],
  dismount: [
    [['dismount'], 'usage', /name a volume to dismount, or use --all/],
    [['dismount', '/mnt/x', '--all'], 'usage', /either a volume or --all, not both/],
    [['unmount', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['dismount', 'a', 'b'], EXCESS, /too many arguments for 'dismount'/],
  ],
  list: [
    [['list', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['list', 'extra'], EXCESS, /too many arguments for 'list'/],
  ],
  passwd: [
    [['passwd'], MISSING_ARG, /missing required argument 'container'/],
    [['passwd', 'c.vc', '--slot', 'x'], 'usage', /--slot must be a number, got "x"/],
    [['passwd', 'c.vc', '--slot', '8'], 'usage', /--slot 8: a vault container has keyslots 0 to 7/],
    [['passwd', 'c.vc', '--kdf-memory', '9999999'], 'usage', /--kdf-memory must be an integer from 1 to 4096/],
    [['passwd', 'c.vc', '--new-keyfile'], MISSING_VALUE, /option '--new-keyfile <file>' argument missing/],
  ],
  keyslot: [
    [['keyslot', 'list'], MISSING_ARG, /missing required argument 'container'/],
    [['keyslot', 'list', 'c.vc', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['keyslot', 'add'], MISSING_ARG, /missing required argument 'container'/],
    [['keyslot', 'add', 'c.vc', '--slot', '-1'], 'usage', /--slot must be a number, got "-1"/],
    [['keyslot', 'add', 'c.vc', '--slot', '99'], 'usage', /--slot 99: a vault container has keyslots 0 to 7/],
    [['keyslot', 'add', 'c.vc', '--kdf-iterations', '0'], 'usage', /--kdf-iterations must be an integer from 1 to 64/],
    [['keyslot', 'remove', 'c.vc'], MANDATORY, /required option '--slot <n>' not specified/],
    [['keyslot', 'remove', 'c.vc', '--slot', 'last'], 'usage', /--slot must be a number, got "last"/],
    [['keyslot', 'remove', '--slot', '1'], MISSING_ARG, /missing required argument 'container'/],
    [['keyslot', 'rotate', 'c.vc'], 'commander.unknownCommand', /unknown command 'rotate'/],
  ],
  keyfile: [
    [['keyfile', 'generate'], MISSING_ARG, /missing required argument 'path'/],
    [['keyfile', 'generate', 'k', '--size', '32'], UNKNOWN, /unknown option '--size'/],
    [['keyfile', 'shred', 'k'], 'commander.unknownCommand', /unknown command 'shred'/],
  ],
  header: [
    [['header', 'backup', 'c.vc'], MISSING_ARG, /missing required argument 'file'/],
    [['header', 'restore', 'c.vc'], MISSING_ARG, /missing required argument 'file'/],
    [['header', 'restore', 'c.vc', 'b', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['header', 'repair'], MISSING_ARG, /missing required argument 'container'/],
    [['header', 'repair', 'c.vc', '--keyfile'], MISSING_VALUE, /option '--keyfile <file>' argument missing/],
  ],
  info: [
    [['info'], MISSING_ARG, /missing required argument 'container'/],
    [['info', 'c.vc', '--dump-master-key', '--json'], 'usage', /--dump-master-key prints the key alone, never as JSON/],
    [['info', 'c.vc', '--type', 'bitlocker'], 'usage', /unknown container format "bitlocker"/],
    [['info', 'c.vc', '--pim', '99999999'], 'usage', /--pim must be a whole number from 0 to 2147468/],
    [['info', 'c.vc', '--slot', '1000'], 'usage', /--slot must be a keyslot number, got "1000"/],
  ],
  benchmark: [
    [['benchmark', '--quick'], UNKNOWN, /unknown option '--quick'/],
    [['benchmark', 'xts'], EXCESS, /too many arguments for 'benchmark'/],
    [['benchmark', '--kdf-memory', '5000'], 'usage', /--kdf-memory must be an integer from 1 to 4096/],
  ],
  watch: [
    [['watch', '--bus', 'school'], 'usage', /--bus: unknown bus "school"[^]*system, session, all/],
    [['watch', '--bus'], MISSING_VALUE, /option '--bus <bus>' argument missing/],
  ],
  uring: [
    [['uring', 'status', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['uring', 'enable', 'now'], EXCESS, /too many arguments for 'enable'/],
  ],
  doctor: [
    [['doctor', '--fix'], UNKNOWN, /unknown option '--fix'/],
    [['doctor', 'fuse'], EXCESS, /too many arguments for 'doctor'/],
  ],
  completion: [
    [['completion'], 'usage', /name a shell: vault completion bash\|zsh\|fish/],
    [['completion', 'tcsh'], 'commander.invalidArgument', /value 'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish/],
    [['completion', 'bash', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
  ],
  enroll: [
    [['enroll'], MISSING_ARG, /missing required argument 'container'/],
    [['enroll', 'c.vc'], 'usage', /give exactly one of --recovery-key, --tpm2, --fido2 or --wipe-slot/],
    [['enroll', 'c.vc', '--recovery-key', '--wipe-slot', '1'], 'usage', /give exactly one of/],
    [['enroll', 'c.vc', '--wipe-slot', 'pin'], 'usage', /--wipe-slot takes a keyslot number \(0 to 7\), tpm2, fido2 or recovery; got "pin"/],
    [['enroll', 'c.vc', '--wipe-slot', '8'], 'usage', /--wipe-slot takes a keyslot number/],
    [['enroll', 'c.vc', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['enroll', 'c.vc', '--tpm2', '--tpm2-pcrs', '24'], 'usage', /--tpm2-pcrs: "24" is not a PCR number[^]*0 to 23/],
    [['enroll', 'c.vc', '--tpm2', '--tpm2-pcrs', '7+secure'], 'usage', /--tpm2-pcrs: "secure" is not a PCR number/],
  ],
  reencrypt: [
    [['reencrypt'], MISSING_ARG, /missing required argument 'container'/],
    [['reencrypt', 'c.vc', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
    [['reencrypt', 'c.vc', '--sector-size', '1024'], 'usage', /--sector-size must be 512 or 4096/],
    [['reencrypt', 'c.vc', '--slot-keyfile', 'key'], 'usage', /--slot-keyfile takes N:FILE/],
    [['reencrypt', 'c.vc', '--slot-keyfile', '8:key'], 'usage', /N from 0 to 7/],
  ],
  resize: [
    [['resize'], MISSING_ARG, /missing required argument 'target'/],
    [['resize', 'c.vc', '--size'], MISSING_VALUE, /option '--size <size>' argument missing/],
    [['resize', 'c.vc', '--size', 'lots'], 'usage', /invalid size "lots"/],
    [['resize', 'c.vc', '--size', '0'], 'usage', /invalid size "0"/],
    [['resize', 'c.vc', '--size', '+-5M'], 'usage', /invalid size "-5M"/],
    [['resize', 'c.vc', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
  ],
  'setup-rootless': [
    [['setup-rootless', '--user'], MISSING_VALUE, /option '--user <name>' argument missing/],
    [['setup-rootless', '--bogus'], UNKNOWN, /unknown option '--bogus'/],
  ],
};

describe('usage errors, in-process through the commander program', () => {
  for (const [command, cases] of Object.entries(CASES))
    describe(command, () => {
      for (const [args, code, names] of cases)
        it(`vault ${args.join(' ')}`, async () => {
          const r = await refusal(...args);
          expect(r.code).toBe(code);
          expect(r.text).toMatch(names);
          expect(r.exit).toBe(EXIT.usage);
        });
    });

  it('covers every command the program has', async () => {
    const program = await buildProgram(['node', 'vault']);
    expect(Object.keys(CASES).filter((c) => c !== 'vault').sort()).toEqual(program.commands.map((c) => c.name()).sort());
  });

  it('commander errors are printed once, prefixed "vault:" like every other error', async () => {
    const r = await refusal('list', '--bogus');
    expect(r.text).toBe("vault: unknown option '--bogus'\n");
  });
});
