/** The user who ran `sudo vault …`: new filesystems and FAT/exFAT mounts belong to them. */
export function invokingUser(): { uid: number; gid: number } | undefined {
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (Number.isInteger(uid) && Number.isInteger(gid) && uid > 0) return { uid, gid };
  return undefined;
}
