import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fsyncSync, openSync, writeSync } from 'node:fs';
import { VaultError } from '../../errors.js';
import { wipe } from '../../crypto/wipe.js';
import { info } from '../output.js';

export function registerKeyfile(program: Command): void {
  program
    .command('keyfile')
    .description('keyfiles')
    .command('generate <path>')
    .description('write a new keyfile of 64 random bytes (mode 0600)')
    .action((file: string) => {
      let fd: number;
      try {
        fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new VaultError(code === 'EEXIST' ? 'exists' : 'io', code === 'EEXIST' ? `${file} already exists` : `cannot create ${file}: ${code}`);
      }
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
