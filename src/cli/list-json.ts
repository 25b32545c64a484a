/**
 * What `vault list --json` prints for each volume: part of the CLI contract (CLI_ABI.md, checked by
 * spec/list.schema.json). Built field by field from the state record, so that the record's
 * internals (how dismount finds the mount, guards against reused pids, ...) can change freely.
 */
import type { FormatName } from '../formats/types.js';
import { NO_POLICY, type DismountPolicy } from '../mount/policy.js';
import type { Route } from '../mount/route.js';
import type { VolumeStatus } from '../mount/dismount.js';
import { ioErrorsOf, protectionTripped, type IoErrorReport, type VolumeRecord } from '../mount/state.js';
import type { FuseTransport } from '../server/protocol.js';

export interface ListedVolume {
  /** The volume's id: its directory under the run directory (8 hex digits). */
  id: string;
  /** Absolute, symlink-free path of the container. */
  container: string;
  format: FormatName;
  /** null for VeraCrypt/TrueCrypt, which have none. */
  uuid: string | null;
  /** null with --no-filesystem. */
  mountpoint: string | null;
  /** null with --no-filesystem. */
  fsType: string | null;
  /** The decrypted block device; null through the fuse route (fuse2fs reads blockFile). */
  loopDevice: string | null;
  /** The decrypted volume as one file, served by the volume server. */
  blockFile: string;
  /** The FUSE mount that holds blockFile. */
  fuseDir: string;
  readOnly: boolean;
  /** Mounted with --allow-discards: fstrim and discard mounts punch holes in the container. */
  allowDiscards: boolean;
  /**
   * mount --protect-hidden: "on" while no write reached the hidden volume, "tripped" once one was
   * refused (the volume is read-only since, and readOnly says true); "off" without protection.
   */
  hiddenProtection: 'off' | 'on' | 'tripped';
  /** How the volume reached its user: root, udisks or fuse. */
  route: Route;
  /** How the volume server talks to the kernel; null in records from before the io_uring transport. */
  transport: FuseTransport | null;
  /** Whose volume it is. */
  ownerUid: number;
  serverPid: number;
  /** ISO 8601, UTC. */
  mountedAt: string;
  policy: DismountPolicy;
  /** server-died: its server was gone; vault cleaned it up (or its user will) while listing. */
  state: VolumeStatus['state'];
  /** Reads, writes, syncs and hole punches of the container that the host refused, by errno, and the latest. */
  ioErrors: IoErrorReport;
}

export function listedVolume(v: VolumeStatus): ListedVolume {
  const r = v.record;
  const protection = hiddenProtectionOf(r);
  return {
    id: r.id,
    container: r.container,
    // Records written before formats existed say `vault-v1`.
    format: (r.format === 'vault-v1' ? 'vault' : r.format) as FormatName,
    uuid: r.uuid,
    mountpoint: r.mountpoint,
    fsType: r.fsType,
    loopDevice: r.loopDevice,
    blockFile: r.blockFile,
    fuseDir: r.fuseDir,
    readOnly: r.readOnly || protection === 'tripped',
    allowDiscards: r.allowDiscards ?? false,
    hiddenProtection: protection,
    route: r.route ?? 'root',
    transport: r.transport ?? null,
    ownerUid: r.ownerUid ?? 0,
    serverPid: r.serverPid,
    mountedAt: r.mountedAt,
    policy: r.policy ?? NO_POLICY,
    state: v.state,
    ioErrors: ioErrorsOf(r),
  };
}

export function hiddenProtectionOf(r: VolumeRecord): ListedVolume['hiddenProtection'] {
  if (!r.protectHidden) return 'off';
  return protectionTripped(r) ? 'tripped' : 'on';
}

