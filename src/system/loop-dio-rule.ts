/**
 * A udev rule that `vault setup-rootless` installs (issue 15): direct I/O for the loop devices
 * udisks2 attaches to an ordinary user's vault volume, as vault's root route sets it itself.
 *
 * udisks 2.9's LoopSetup has no direct I/O option, and the user cannot open /dev/loopN to ask the
 * kernel. Without it, the loop driver goes through the page cache of the FUSE block file and
 * serves one request at a time: random 4 KiB I/O at queue depth 16 ran at about 0.45× the root
 * route, and at its level with direct I/O (bench/RESULTS.md, "Issue 15").
 *
 * The rule matches only loop devices whose backing file is a vault block file in a user's runtime
 * directory (/run/user/<uid>/vault/<id>/fuse/volume); all it does is switch direct I/O on, which
 * changes how the device reaches its own file and nothing a user could use against another.
 */
import { unlinkSync } from 'node:fs';
import type { Step } from './rootless-setup.js';
import { readOptional, writeFileAtomic } from './atomic-file.js';
import { run } from '../mount/run.js';

export const LOOP_DIO_RULE_FILE = '/etc/udev/rules.d/60-vault-loop-dio.rules';

export const LOOP_DIO_RULE = `# Written by \`vault setup-rootless\`, removed by \`vault setup-rootless --undo\`; vault rewrites it.
# Direct I/O for the loop devices udisks2 attaches to an ordinary user's vault volume (its block
# file in /run/user/<uid>/vault/<id>/fuse/volume), as vault does for its own loop devices as root.
ACTION=="change", SUBSYSTEM=="block", KERNEL=="loop[0-9]*", ATTR{loop/backing_file}=="/run/user/[0-9]*/vault/[0-9a-f]*/fuse/volume", ATTR{loop/dio}=="0", RUN+="/usr/sbin/losetup --direct-io=on /dev/%k"
`;

/** Tells a running udevd to read its rules again (no udevd: nothing to tell). */
function reloadUdev(): void {
  run('udevadm', ['control', '--reload']);
}

export function loopDioStep(file = LOOP_DIO_RULE_FILE): Step {
  const current = () => readOptional(file);
  return {
    name: 'udev rule',
    explain: () =>
      `${current() === null ? `write ${file}` : `rewrite ${file} (it is not what this vault writes)`}: direct I/O for the loop devices ` +
      "udisks2 attaches to users' vault volumes (udisks cannot ask for it; without it random I/O runs at about half the speed)",
    check: () => current() === LOOP_DIO_RULE,
    apply: () => {
      writeFileAtomic(file, LOOP_DIO_RULE, { mode: 0o644, uid: 0, gid: 0 });
      reloadUdev();
    },
    undo: () =>
      current() === null
        ? { explain: `${file} does not exist: nothing to undo` }
        : {
            explain: `remove ${file}`,
            run: () => {
              unlinkSync(file);
              reloadUdev();
            },
          },
  };
}
