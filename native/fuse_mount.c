/*
 * fuse_mount.c: the session's mount. mount(2) of fuse.vault on the mount point as root (through
 * fusermount3 as an ordinary user: fuse_user.c), finding our mount in mountinfo (by the anonymous
 * device it got), unmounting it only while it is still ours, and aborting the FUSE connection
 * through fusectl.
 */
#include "fuse_internal.h"
#include "napi_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
/* Decodes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_mountinfo(char *p) {
  char *o = p;
  while (*p) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 4;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
}

/*
 * Scans /proc/self/mountinfo for the topmost mount on `dir`. Returns true when there is one, with
 * its device and whether it is a fuse.vault mount. (Later lines are mounted later, so the last
 * match is the one a path lookup sees.)
 */
static bool top_mount(const char *dir, unsigned *maj, unsigned *min, bool *is_vault) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  if (f == NULL) return false;
  while (getline(&line, &cap, f) > 0) {
    char *save = NULL, *tok, *mp = NULL, *fstype = NULL;
    unsigned a = 0, b = 0;
    int field = 0;
    bool sep = false;
    for (tok = strtok_r(line, " \n", &save); tok != NULL; tok = strtok_r(NULL, " \n", &save), field++) {
      if (field == 2 && sscanf(tok, "%u:%u", &a, &b) != 2) break;
      if (field == 4) mp = tok;
      if (sep) {
        fstype = tok;
        break;
      }
      if (field >= 6 && strcmp(tok, "-") == 0) sep = true;
    }
    if (mp == NULL || fstype == NULL) continue;
    unescape_mountinfo(mp);
    if (strcmp(mp, dir) != 0) continue;
    found = true;
    *maj = a;
    *min = b;
    *is_vault = strcmp(fstype, "fuse.vault") == 0;
  }
  free(line);
  fclose(f);
  return found;
}

/* Detaches our mount if it is still the one on mount_dir (never someone else's mounted over or
   after it). JS thread. */
void vf_unmount_if_ours(vf_session *s) {
  unsigned maj, min;
  bool vault;
  if (!s->mounted) return;
  if (!top_mount(s->mount_dir, &maj, &min, &vault)) {
    s->mounted = false; /* gone: unmounted from outside */
    return;
  }
  if (!vault || (s->have_dev && (maj != s->dev_major || min != s->dev_minor)))
    return; /* covered by another mount: not ours to unmount by path */
  if (s->unprivileged ? vf_fusermount_unmount(s->mount_dir)
                      : (umount2(s->mount_dir, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT))
    s->mounted = false;
}

/*
 * Aborts the connection: writes to its abort file in fusectl. Where fusectl is not mounted (it
 * often is not), a detached instance is made with the mount API (fsopen/fsmount: no mount point,
 * nothing visible to anyone, gone when its descriptor is closed).
 */
void vf_abort_connection(vf_session *s) {
  char name[48];
  int dir, fd, fs;
  if (!s->have_dev) return;
  /* The directory is named after the kernel's dev_t: major << 20 | minor. */
  snprintf(name, sizeof name, "%u/abort", (s->dev_major << 20) | s->dev_minor);
  dir = open("/sys/fs/fuse/connections", O_PATH | O_DIRECTORY | O_CLOEXEC);
  fd = dir >= 0 ? openat(dir, name, O_WRONLY | O_CLOEXEC) : -1;
  if (fd < 0) {
    if (dir >= 0) close(dir);
    dir = -1;
    fs = fsopen("fusectl", FSOPEN_CLOEXEC);
    if (fs >= 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0) dir = fsmount(fs, FSMOUNT_CLOEXEC, 0);
    if (fs >= 0) close(fs);
    fd = dir >= 0 ? openat(dir, name, O_WRONLY | O_CLOEXEC) : -1;
  }
  if (fd >= 0) {
    if (write(fd, "1", 1) < 0) { /* nothing else to try here; the workers are signalled next */
    }
    close(fd);
  }
  if (dir >= 0) close(dir);
}

/* As root: our own /dev/fuse descriptor, and mount(2). */
static bool mount_as_root(napi_env env, vf_session *s) {
  char opts[160], what[PATH_MAX + 64];
  s->dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (s->dev_fd < 0) {
    vault_throw_errno(env, "open", "/dev/fuse", errno);
    return false;
  }
  snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,max_read=%u", s->dev_fd, s->max_request);
  if (mount("vault", s->mount_dir, "fuse.vault", MS_NOSUID | MS_NODEV | (s->read_only ? MS_RDONLY : 0), opts) != 0) {
    snprintf(what, sizeof what, "mounting FUSE on %s", s->mount_dir);
    vault_throw_errno(env, "mount", what, errno);
    return false;
  }
  return true;
}

bool vf_mount(napi_env env, vf_session *s) {
  char msg[PATH_MAX + 900];
  bool vault = false;
  s->owner_uid = geteuid();
  s->owner_gid = getegid();
  s->unprivileged = s->owner_uid != 0;
  if (!s->unprivileged) {
    if (!mount_as_root(env, s)) return false;
  } else if ((s->dev_fd = vf_fusermount_mount(s, msg, sizeof msg)) < 0) {
    vault_throw_error(env, "ERR_VAULT_FUSERMOUNT", msg);
    return false;
  }
  s->mounted = true;
  vf_live_add(s);
  s->have_dev = top_mount(s->mount_dir, &s->dev_major, &s->dev_minor, &vault) && vault;
  return true;
}
