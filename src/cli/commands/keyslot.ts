import type { Command } from 'commander';
import { addKeyslot, removeKeyslot } from '../../volume/keyslots.js';
import { candidateHeaders, readHeaderCopies } from '../../volume/container.js';
import { addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../kdf-options.js';
import { info, warn } from '../output.js';
import { gatherKdfInput, gatherOldAndNew } from '../secrets.js';
import { withNewSecretOptions, withSecretOptions } from '../secret-options.js';
import { parseSlot, unlockOpened, withVaultContainer } from '../unlock.js';
import { VaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import type { ContainerFile } from '../../volume/container-file.js';
import { addYesOption, confirmOrStop, type YesOption } from '../confirm.js';

interface RemoveOptions extends YesOption {
  slot: string;
  force?: boolean;
  passwordStdin?: boolean;
  keyfile?: string[];
}

interface AddOptions extends KdfCliOptions {
  slot?: string;
  passwordStdin?: boolean;
  keyfile?: string[];
  newKeyfile?: string[];
}

export function registerKeyslot(program: Command): void {
  const keyslot = program.command('keyslot').description('list, add and remove keyslots');

  keyslot
    .command('list <container>')
    .description('show the keyslots and their KDF parameters (no passphrase needed)')
    .option('--json', 'print JSON for scripts')
    .action((container: string, o: { json?: boolean }) =>
      withVaultContainer(container, 'vault keyslot list', true, (c) => {
        const { candidates, warnings } = candidateHeaders(c, readHeaderCopies(c));
        for (const w of warnings) warn(w);
        const h = candidates[0]!;
        const tokenOf = (i: number) => h.tokens?.find((t) => t.slot === i)?.type ?? null;
        const slots = h.keyslots.map((s, i) => (s.state === 'active' ? { slot: i, state: 'active', kdf: 'argon2id', ...s.kdf, token: tokenOf(i) } : { slot: i, state: 'empty' }));
        if (o.json) process.stdout.write(JSON.stringify(slots, null, 2) + '\n');
        else
          for (const s of slots)
            info(
              s.state === 'active' && 'memoryKiB' in s
                ? `${s.slot}: active  argon2id  ${s.memoryKiB / 1024} MiB, ${s.iterations} iterations, ${s.parallelism} lanes${s.token ? `  (${s.token === 'recovery' ? 'recovery key' : `${s.token.toUpperCase()} token`})` : ''}`
                : `${s.slot}: empty`,
            );
      }),
    );

  const add = keyslot
    .command('add <container>')
    .description('add a keyslot for a new passphrase or keyfiles; needs an existing passphrase or keyfile')
    .option('--slot <n>', 'the keyslot to fill (default: the first empty one)');
  withNewSecretOptions(add);
  addKdfOptions(add).action(async (container: string, o: AddOptions) => {
    const slot = parseSlot(o.slot);
    await withVaultContainer(container, 'vault keyslot add', false, async (c) => {
      const { oldInput, newInput, warnWeak } = await gatherOldAndNew(o);
      try {
        const kdf = await kdfFromOptions(o);
        const x = await unlockOpened(c, oldInput);
        try {
          const r = await addKeyslot(x.c, x.u, newInput, kdf, slot);
          await warnWeak();
          info(`added keyslot ${r.slot}`);
        } finally {
          x.close();
        }
      } finally {
        // Both: unlockOpened wipes oldInput, but a bad --kdf-* value throws before it runs.
        wipe(oldInput, newInput);
      }
    });
  });

  const remove = keyslot
    .command('remove <container>')
    .description('remove a keyslot; its bytes are overwritten with random data')
    .requiredOption('--slot <n>', 'the keyslot to remove')
    .option('--force', 'allow removing the last keyslot (the data becomes unrecoverable); implies --yes');
  addYesOption(withSecretOptions(remove)).action(async (container: string, o: RemoveOptions) => {
    const slot = parseSlot(o.slot);
    if (slot === undefined) throw new VaultError('usage', '--slot is required');
    await withVaultContainer(container, 'vault keyslot remove', false, async (c) => {
      await confirmRemoval(c, slot, { yes: !!(o.yes || o.force) });
      const x = await unlockOpened(c, gatherKdfInput(o));
      try {
        const last = x.u.header.keyslots.filter((s) => s.state === 'active').length === 1;
        removeKeyslot(x.c, x.u, slot, !!o.force);
        if (last) warn(`keyslot ${slot} was the last one: nothing can open this container any more, and its data is unrecoverable`);
        info(`removed keyslot ${slot}`);
      } finally {
        x.close();
      }
    });
  });
}

/**
 * Removing a keyslot that leaves a single one asks first (or needs --yes): one forgotten passphrase
 * would then lose the data. Asked before the passphrase, from the public header; the last keyslot
 * itself needs --force, which answers for it.
 */
async function confirmRemoval(c: ContainerFile, slot: number, o: YesOption): Promise<void> {
  const active = candidateHeaders(c, readHeaderCopies(c)).candidates[0]!.keyslots.flatMap((s, i) => (s.state === 'active' ? [i] : []));
  if (active.length !== 2 || !active.includes(slot)) return;
  const other = active.find((i) => i !== slot)!;
  await confirmOrStop(o, `removing keyslot ${slot}`, `Remove keyslot ${slot}? Only keyslot ${other} will open the container then.`, 'not removed');
}
