import type { Command } from 'commander';
import { isVaultError } from '../../errors.js';
import { candidateHeaders, closeContainer, formatUuid, openContainer, readHeaderCopies } from '../../volume/container.js';
import { resolveContainer } from '../../mount/lifecycle.js';
import { info, warn } from '../output.js';
import { gatherKdfInput } from '../secrets.js';
import { openUnlocked } from '../unlock.js';
import { formatSize } from '../sizes.js';

export function registerInfo(program: Command): void {
  program
    .command('info <container>')
    .description('show the container format, geometry and keyslots (never a secret unless --dump-master-key)')
    .option('--json', 'print JSON for scripts')
    .option('--dump-master-key', 'after a passphrase, print the master key in hex (for recovery and verification)')
    .option('--password-stdin', 'read the passphrase from standard input (with --dump-master-key)')
    .option('--keyfile <file>', 'keyfile (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .action(async (container: string, o: { json?: boolean; dumpMasterKey?: boolean; passwordStdin?: boolean; keyfile?: string[] }) => {
      if (o.dumpMasterKey) {
        const x = await openUnlocked(container, gatherKdfInput(o), { readOnly: true });
        try {
          warn('the master key below decrypts this container whatever its passphrases: anyone who sees it can read everything, forever');
          process.stdout.write(`${Buffer.from(x.u.masterKey).toString('hex')}\n`);
        } finally {
          x.close();
        }
        return;
      }
      const c = openContainer(resolveContainer(container), true);
      try {
        const copies = readHeaderCopies(c);
        const { candidates, warnings } = candidateHeaders(c, copies);
        for (const w of warnings) warn(w);
        const h = candidates[0]!;
        const copyState = (r: typeof copies.primary) => (r.ok ? `valid, sequence ${r.header.sequence}` : isVaultError(r.error) ? `unusable: ${r.error.message}` : 'unusable');
        const data = {
          format: 'vault',
          version: h.version,
          uuid: formatUuid(h.uuid),
          cipher: h.cipher,
          sectorSize: h.sectorSize,
          dataOffset: h.dataOffset,
          dataSize: h.dataSize,
          sequence: h.sequence.toString(),
          headers: { primary: copyState(copies.primary), secondary: copyState(copies.secondary) },
          keyslots: h.keyslots.flatMap((s, i) => (s.state === 'active' ? [{ slot: i, kdf: 'argon2id', ...s.kdf }] : [])),
        };
        if (o.json) {
          process.stdout.write(JSON.stringify(data, null, 2) + '\n');
          return;
        }
        info(`format:      vault version ${data.version}`);
        info(`uuid:        ${data.uuid}`);
        info(`cipher:      ${data.cipher}, ${data.sectorSize}-byte sectors`);
        info(`data:        offset ${data.dataOffset}, size ${data.dataSize} (${formatSize(data.dataSize)})`);
        info(`headers:     primary ${data.headers.primary}; secondary ${data.headers.secondary}`);
        info('keyslots:');
        for (const s of data.keyslots) info(`  ${s.slot}: argon2id, ${s.memoryKiB / 1024} MiB, ${s.iterations} iterations, ${s.parallelism} lanes`);
      } finally {
        closeContainer(c);
      }
    });
}
