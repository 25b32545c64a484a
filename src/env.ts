/**
 * Every VAULT_* environment variable vault reads, in one place, each with what it does, its
 * default and the values it takes. Code reads them only through envValue() (a unit test,
 * test/unit/env.test.ts, fails on any other read of one), so this list is complete by
 * construction; CLI_ABI.md ("Environment") documents the same list for people and scripts.
 *
 * `audience` says who may set it: 'user' variables are part of the CLI contract; 'test' and
 * 'bench' ones exist for the test suite and the benchmarks and may change without notice.
 */

export interface EnvVar {
  audience: 'user' | 'test' | 'bench';
  /** What it changes. */
  does: string;
  /** What happens when it is unset or empty. */
  default: string;
  /** The values it takes; anything else is an error or ignored, as said here. */
  values: string;
}

export const ENV = {
  VAULT_CONFIG: {
    audience: 'user',
    does: 'names the configuration file (the default auto-dismount policy of `vault mount`)',
    default: '/etc/vault/config.json for root; $XDG_CONFIG_HOME/vault/config.json (~/.config/vault/config.json) for other users',
    values: 'a path to a regular file; a missing file means no configuration',
  },
  VAULT_FUSE_TRANSPORT: {
    audience: 'user',
    does: 'how a new volume server talks to the kernel: FUSE over io_uring or classic /dev/fuse (read by `vault mount`, `vault create` and `vault uring status`)',
    default: 'auto: io_uring where the kernel offers it and it is switched on, classic otherwise',
    values: 'auto, io_uring, classic; any other value is a usage error (exit 2)',
  },
  VAULT_RUN_DIR: {
    audience: 'test',
    does: 'the directory of volume records, server logs and locks, instead of /run/vault (root) or $XDG_RUNTIME_DIR/vault (other users); tests use it to keep apart from real volumes',
    default: '/run/vault for root, $XDG_RUNTIME_DIR/vault otherwise',
    values: 'an absolute path; a directory another user made or can change is refused',
  },
  VAULT_FUSE_THREADS: {
    audience: 'bench',
    does: 'worker threads of a volume server',
    default: '16',
    values: 'an integer 1 to 64; other values are ignored',
  },
  VAULT_FUSE_MAX_REQUEST: {
    audience: 'bench',
    does: 'the largest FUSE read/write request, in bytes',
    default: '1048576 (1 MiB)',
    values: 'an integer 65536 to 67108864; other values are ignored',
  },
  VAULT_FUSE_DIRECT_IO: {
    audience: 'bench',
    does: 'whether the volume server opens the container with O_DIRECT (where its filesystem allows)',
    default: '1',
    values: '0 or 1; other values are ignored',
  },
  VAULT_FUSE_BUFFERED_WRITES: {
    audience: 'bench',
    does: 'whether, with O_DIRECT reads, the volume server writes the container through the page cache (fsync still reaches the disk)',
    default: '1',
    values: '0 or 1; other values are ignored',
  },
} as const satisfies Record<string, EnvVar>;

export type EnvName = keyof typeof ENV;

/** The value of a documented variable; undefined when unset. The only way vault reads VAULT_*. */
export function envValue(name: EnvName): string | undefined {
  return process.env[name];
}
