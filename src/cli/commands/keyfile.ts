import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, writeSync } from 'node:fs';
import { createNewFile } from '../../system/safe-open.js';
import { wipe } from '../../crypto/wipe.js';
import { info } from '../output.js';

export function registerKeyfile(program: Command): void {
  program
    .command('keyfile')
    .description('keyfiles')
    .command('generate <path>')
    .description('write a new keyfile of 64 random bytes (mode 0600)')
    .action((file: string) => {
      const fd = createNewFile(file, 'keyfile');
      const bytes = randomBytes(64);
      try {
        writeSync(fd, bytes);
        fsyncSync(fd);
      } finally {
        wipe(bytes);
        closeSync(fd);
      }
      info(`wrote a 64-byte keyfile to ${file}`);
    });
}
