import type { Command } from 'commander';
import { mountVolume } from '../../mount/lifecycle.js';
import { gatherKdfInput } from '../secrets.js';
import { info, warn } from '../output.js';
import { invokingUser } from '../owner.js';
import { abortOnSignals } from '../signals.js';

interface MountCliOptions {
  readOnly?: boolean;
  fsOptions?: string;
  filesystem: boolean; // commander's --no-filesystem
  passwordStdin?: boolean;
  keyfile?: string[];
}

export function registerMount(program: Command): void {
  program
    .command('mount <container> [mountpoint]')
    .description('unlock a container and mount its filesystem (default mount point: /media/vault/<name>)')
    .option('--read-only', 'open the container, the loop device and the filesystem read-only')
    .option('--fs-options <opts>', 'extra mount options for the filesystem, comma-separated')
    .option('--no-filesystem', 'only attach the decrypted block device and print its path')
    .option('--password-stdin', 'read the passphrase from standard input')
    .option('--keyfile <file>', 'use a keyfile (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .action(async (container: string, mountpoint: string | undefined, o: MountCliOptions) => {
      const { signal, dispose } = abortOnSignals();
      try {
        const owner = invokingUser();
        const r = await mountVolume({
          container,
          ...(mountpoint ? { mountpoint } : {}),
          readOnly: !!o.readOnly,
          ...(o.fsOptions ? { fsOptions: o.fsOptions } : {}),
          noFilesystem: !o.filesystem,
          kdfInput: () => gatherKdfInput(o),
          warn,
          ...(owner ? { owner } : {}),
          signal,
        });
        if (r.mountpoint) info(`mounted ${r.container} on ${r.mountpoint} (${r.fsType}${r.readOnly ? ', read-only' : ''})`);
        else info(r.loopDevice!);
      } finally {
        dispose();
      }
    });
}
