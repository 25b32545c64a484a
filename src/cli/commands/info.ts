import type { Command } from 'commander';
import { VaultError } from '../../errors.js';
import { closeContainer, openContainer, type ContainerFile } from '../../volume/container-file.js';
import { resolveContainer } from '../../volume/container-file.js';
import { detectFormat, unlockVolume, useHeaderCopy } from '../../formats/index.js';
import { keyfilePolicy } from '../../formats/types.js';
import { formatLabel } from '../../formats/types.js';
import type { FormatInfo, UnlockOptions, UnlockedVolume } from '../../formats/types.js';
import type { GeometryInfoJson } from '../../formats/info-json.js';
import { info, warn } from '../output.js';
import { gatherSecret } from '../secrets.js';
import { withSecretOptions } from '../secret-options.js';
import { addFormatOptions, formatChoice, type FormatCliOptions } from '../format-options.js';

interface InfoCliOptions extends FormatCliOptions {
  json?: boolean;
  dumpMasterKey?: boolean;
  passwordStdin?: boolean;
  keyfile?: string[];
}

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info <container>')
    .description('show the container format, geometry and keyslots (never a secret unless --dump-master-key); VeraCrypt/TrueCrypt need the password')
    .option('--json', 'print JSON for scripts')
    .option('--dump-master-key', 'after a passphrase, print the master key in hex (for recovery and verification)');
  withSecretOptions(cmd);
  addFormatOptions(cmd).action(async (container: string, o: InfoCliOptions) => {
    if (o.dumpMasterKey && o.json) throw new VaultError('usage', '--dump-master-key prints the key alone, never as JSON', 'drop --json');
    const choice = formatChoice(o);
    const c = openContainer(resolveContainer(container), true);
    let headerFile: ContainerFile | undefined;
    try {
      if (choice.headerPath) headerFile = openContainer(resolveContainer(choice.headerPath), true);
      const adapter = await detectFormat(c, { ...(choice.type ? { type: choice.type } : {}), ...(headerFile ? { headerFile } : {}) });
      useHeaderCopy(adapter.name, c, choice.headerCopy);
      const opts: UnlockOptions = {
        readOnly: true,
        ...(choice.slot !== undefined ? { slot: choice.slot } : {}),
        ...(choice.pim !== undefined ? { pim: choice.pim } : {}),
        ...(choice.hidden ? { hidden: true } : {}),
        ...(choice.useBackupHeader ? { useBackupHeader: true } : {}),
        ...(choice.hash ? { hash: choice.hash } : {}),
        ...(choice.system ? { system: true } : {}),
        ...(headerFile ? { headerFile } : {}),
      };
      if (!o.dumpMasterKey && adapter.info) {
        show(adapter.info(c, opts), !!o.json);
        return;
      }
      // The master key, or metadata that only the password reveals (VeraCrypt's KDF and volume type).
      const volume = await unlockVolume(adapter, c, gatherSecret(o, keyfilePolicy(adapter)), opts);
      try {
        for (const w of volume.warnings) warn(w);
        if (o.dumpMasterKey) {
          warn('the master key below decrypts this container whatever its passphrases: anyone who sees it can read everything, forever');
          process.stdout.write(`${volume.key.withBytes((k) => k.toString('hex'))}\n`);
          return;
        }
        show(volume.info ?? geometryInfo(volume), !!o.json);
      } finally {
        volume.key.dispose();
      }
    } finally {
      if (headerFile) closeContainer(headerFile);
      closeContainer(c);
    }
  });
}

/** What every unlocked volume can show, for formats that add nothing of their own. */
function geometryInfo(v: UnlockedVolume): FormatInfo {
  const json: GeometryInfoJson = { format: v.format, uuid: v.uuid, sectorSize: v.sectorSize, dataOffset: v.dataOffset, dataSize: v.dataSize };
  return {
    format: v.format,
    fields: [
      ['format', formatLabel(v.format)],
      ...(v.uuid ? [['uuid', v.uuid] as [string, string]] : []),
      ['cipher', `aes-256-xts, ${v.sectorSize}-byte sectors`],
      ['data', `offset ${v.dataOffset}, size ${v.dataSize}`],
    ],
    json,
  };
}

function show(fi: FormatInfo, json: boolean): void {
  for (const w of fi.warnings ?? []) warn(w);
  if (json) {
    process.stdout.write(JSON.stringify(fi.json, null, 2) + '\n');
    return;
  }
  // Labels line up in one column; indented labels (list items under a heading) keep their indent.
  for (const [label, value] of fi.fields) info(value === '' ? `${label}:` : label.startsWith(' ') ? `${label}: ${value}` : `${`${label}:`.padEnd(13)}${value}`);
}
