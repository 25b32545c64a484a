import type { Scope } from '../mount/state.js';

/**
 * The user who ran `sudo vault …`: new filesystems and FAT/exFAT mounts belong to them. Only root
 * acts for another user: an ordinary user's SUDO_UID (`sudo -u alice` run by bob, a shell started
 * from one) names someone this process cannot act for, so it is ignored.
 */
export function invokingUser(): { uid: number; gid: number } | undefined {
  if ((process.geteuid?.() ?? 0) !== 0) return undefined;
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (Number.isInteger(uid) && Number.isInteger(gid) && uid > 0) return { uid, gid };
  return undefined;
}

/**
 * Whose volumes this invocation acts on (issue 13): under sudo only the invoking user's, so the
 * README's sudoers lines (`dismount --all --force`, `watch --bus session`) cannot reach another
 * user's volumes or processes; plain root acts on all; anyone else on their own.
 */
export function actingScope(): Scope {
  const u = invokingUser();
  if (u) return u.uid;
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? 'all' : uid;
}

