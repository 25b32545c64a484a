/**
 * Exit codes: the stable contract for scripts (README "Exit codes"). Never reuse a retired number.
 */
import type { ErrorCode } from '../errors.js';

export const EXIT = {
  ok: 0,
  failure: 1, // anything not listed below
  usage: 2, // bad command line, input or config file
  wrongPassword: 3, // no keyslot opened with the passphrase/keyfiles/token given (a wrong PIN, a token that refused)
  busy: 4, // already mounted, locked by another vault, or the filesystem is in use
  notContainer: 5, // not a vault container, or its headers are damaged/unsupported
  privilege: 6, // needs root, or a system component (FUSE, loop devices, a tool, the security key) is missing
  io: 7, // an I/O or system tool failure (losetup, mount, mkfs, disk errors)
  refused: 8, // refused for safety: a path others can change, another user's volume, a filesystem type not allowed
  interrupted: 130, // stopped by SIGINT/SIGTERM; nothing half-made is left behind
} as const;

const BY_CODE: Record<ErrorCode, number> = {
  usage: EXIT.usage,
  'bad-config': EXIT.usage,
  exists: EXIT.usage,
  'kdf-bounds': EXIT.notContainer,
  'not-a-container': EXIT.notContainer,
  truncated: EXIT.notContainer,
  'unsupported-version': EXIT.notContainer,
  'unsupported-feature': EXIT.notContainer,
  'checksum-mismatch': EXIT.notContainer,
  'invalid-field': EXIT.notContainer,
  'header-tampered': EXIT.notContainer,
  'headers-damaged': EXIT.notContainer,
  'copies-disagree': EXIT.notContainer,
  'journal-damaged': EXIT.notContainer,
  'wrong-password': EXIT.wrongPassword,
  'no-keyslot': EXIT.wrongPassword,
  'token-refused': EXIT.wrongPassword,
  'token-pin-required': EXIT.wrongPassword,
  'token-unavailable': EXIT.privilege,
  busy: EXIT.busy,
  'already-mounted': EXIT.busy,
  'not-mounted': EXIT.usage,
  privilege: EXIT.privilege,
  'missing-component': EXIT.privilege,
  io: EXIT.io,
  'mount-failed': EXIT.io,
  interrupted: EXIT.interrupted,
  unsafe: EXIT.refused,
  'not-owner': EXIT.refused,
  internal: EXIT.failure,
};

export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code];
}
