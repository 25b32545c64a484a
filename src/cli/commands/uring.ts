import type { Command } from 'commander';
import { envValue } from '../../env.js';
import { VaultError } from '../../errors.js';
import { requireRoot } from '../../mount/privileges.js';
import { fuseOverIoUring, ioUringPolicy, ioUringUsable, setFuseOverIoUring } from '../../system/capabilities.js';
import { info } from '../output.js';

/**
 * `vault uring status|enable|disable`: the kernel's switch for FUSE over io_uring
 * (/sys/module/fuse/parameters/enable_uring, off by default). vault never flips it by itself; root
 * does, here or by hand. It applies to FUSE servers mounted afterwards, machine-wide, until reboot
 * (to keep it: `fuse.enable_uring=1` on the kernel command line, or `options fuse enable_uring=1`
 * in /etc/modprobe.d when fuse is a module). With it on, volume servers with the default transport
 * ('auto') use io_uring; VAULT_FUSE_TRANSPORT=classic keeps /dev/fuse.
 */
export function registerUring(program: Command): void {
  const cmd = program.command('uring').description('show or switch FUSE over io_uring (the kernel\'s enable_uring; root, machine-wide)');
  cmd
    .command('status', { isDefault: true })
    .description('whether FUSE over io_uring is on, and which transport new volumes get')
    .option('--json', 'print JSON for scripts')
    .action((o: { json?: boolean }) => {
      const state = fuseOverIoUring();
      const policy = ioUringPolicy();
      const usable = ioUringUsable(policy);
      const env = envValue('VAULT_FUSE_TRANSPORT') || 'auto';
      const transport = env !== 'auto' ? env : state === 'on' && usable ? 'io_uring' : 'classic';
      if (o.json) {
        process.stdout.write(JSON.stringify({ enableUring: state, ioUringPolicy: policy, newVolumesUse: transport }, null, 2) + '\n');
        return;
      }
      info(`FUSE over io_uring: ${state === 'absent' ? 'not in this kernel (CONFIG_FUSE_IO_URING)' : state}`);
      info(`io_uring: kernel.io_uring_disabled says ${policy}`);
      info(`volumes mounted now use: ${transport}${env !== 'auto' ? ' (VAULT_FUSE_TRANSPORT)' : ''}`);
    });
  for (const [name, value] of [['enable', 'Y'], ['disable', 'N']] as const)
    cmd
      .command(name)
      .description(`${name === 'enable' ? 'switch on' : 'switch off'} FUSE over io_uring for FUSE mounts made from now on (root; until reboot)`)
      .action(() => {
        requireRoot(`vault uring ${name}`);
        if (fuseOverIoUring() === 'absent')
          throw new VaultError('missing-component', 'this kernel has no FUSE over io_uring', 'it needs Linux 6.14 or later built with CONFIG_FUSE_IO_URING');
        setFuseOverIoUring(value === 'Y');
        info(`FUSE over io_uring is ${value === 'Y' ? 'on' : 'off'} for volumes mounted from now on (mounted ones keep their transport)`);
      });
}
