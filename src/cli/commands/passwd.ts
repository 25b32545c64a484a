import type { Command } from 'commander';
import { changePassphrase } from '../../volume/keyslots.js';
import { addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../kdf-options.js';
import { info } from '../output.js';
import { gatherOldAndNew } from '../secrets.js';
import { withNewSecretOptions } from '../secret-options.js';
import { parseSlot, unlockOpened, withVaultContainer } from '../unlock.js';
import { wipe } from '../../crypto/wipe.js';

interface PasswdOptions extends KdfCliOptions {
  slot?: string;
  passwordStdin?: boolean;
  keyfile?: string[];
  newKeyfile?: string[];
}

export function registerPasswd(program: Command): void {
  const cmd = program
    .command('passwd <container>')
    .description('change the passphrase of one keyslot (the data area is not touched)')
    .option('--slot <n>', 'the keyslot to change (default: the one the old passphrase opens)');
  withNewSecretOptions(cmd);
  addKdfOptions(cmd).action(async (container: string, o: PasswdOptions) => {
    const slot = parseSlot(o.slot);
    await withVaultContainer(container, 'vault passwd', false, async (c) => {
      const { oldInput, newInput, warnWeak } = await gatherOldAndNew(o);
      try {
        const kdf = await kdfFromOptions(o);
        const x = await unlockOpened(c, oldInput, slot !== undefined ? { slot } : {});
        try {
          await changePassphrase(x.c, x.u, newInput, kdf);
          await warnWeak();
          info(`changed the passphrase of keyslot ${x.u.slot}`);
        } finally {
          x.close();
        }
      } finally {
        // Both: unlockOpened wipes oldInput, but a bad --kdf-* value throws before it runs.
        wipe(oldInput, newInput);
      }
    });
  });
}
