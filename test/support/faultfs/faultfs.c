/*
 * faultfs: a fault-injecting FUSE passthrough, for tests only (test/e2e/io-faults.test.ts). It
 * serves one backing directory (flat: files only) and can make reads and/or writes of a byte range
 * of its files fail with a chosen errno, or be delayed, so that vault's volume server meets a
 * misbehaving disk under its container through the real kernel path (no LD_PRELOAD: the server's
 * I/O is not intercepted, the filesystem under it misbehaves).
 *
 *   faultfs <backing dir> <mountpoint> [libfuse options, e.g. -f -o allow_other,default_permissions]
 *
 * Control: the file `.faultfs` in the mount's root (root only). Writing it replaces the rules with
 * the lines written, one rule a line; the write returns once they are in force:
 *   <read|write|rw|punch> <start> <end|max> <EIO|ENOSPC|EROFS|EOPNOTSUPP|delay|short> [ms]
 * e.g. "write 1048576 2097152 EIO", "rw 0 max delay 200", or "punch 0 max EOPNOTSUPP" (a host
 * filesystem that cannot punch holes: fallocate PUNCH_HOLE fails, other modes are writes). An empty
 * write (or "off") clears them.
 * An operation matches a rule when its byte range meets [start, end). `short` makes an operation
 * that starts before `start` stop there (a short read or write, as a filling disk gives); the
 * caller's next operation, from `start` on, goes through. Reading `.faultfs` gives
 * "faults <n> delays <m>": how many operations were failed (or cut short) and delayed so far.
 * Files are opened direct_io, so every read and write reaches this process (no page cache above).
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CTL "/.faultfs"
#define MAX_RULES 16
enum { R = 1, W = 2, P = 4 };

typedef struct {
  int ops;
  uint64_t start, end;
  int err;      /* 0: delay (ms) or short */
  unsigned ms;
  int short_io;
} rule;

static int backing = -1; /* the backing directory */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static rule rules[MAX_RULES];
static int nrules;
static uint64_t faults, delays;

/* A path below the mount as a path relative to the backing directory ("." for the root). */
static const char *rel(const char *path) { return path[1] == '\0' ? "." : path + 1; }

static int parse_rules(const char *text, rule *out) {
  int n = 0;
  const char *line = text;
  while (*line != '\0') {
    char ops[8], start[32], end[32], what[16];
    unsigned ms = 0;
    const char *nl = strchr(line, '\n');
    int k = sscanf(line, "%7s %31s %31s %15s %u", ops, start, end, what, &ms);
    if (k >= 1 && strcmp(ops, "off") != 0) {
      rule r = {0};
      if (k < 4 || n == MAX_RULES) return -EINVAL;
      r.ops = strcmp(ops, "read") == 0 ? R : strcmp(ops, "write") == 0 ? W : strcmp(ops, "rw") == 0 ? R | W : strcmp(ops, "punch") == 0 ? P : 0;
      r.start = strtoull(start, NULL, 0);
      r.end = strcmp(end, "max") == 0 ? UINT64_MAX : strtoull(end, NULL, 0);
      r.err = strcmp(what, "EIO") == 0 ? EIO : strcmp(what, "ENOSPC") == 0 ? ENOSPC : strcmp(what, "EROFS") == 0 ? EROFS : strcmp(what, "EOPNOTSUPP") == 0 ? EOPNOTSUPP : 0;
      r.ms = ms;
      r.short_io = strcmp(what, "short") == 0;
      if (r.ops == 0 || r.end <= r.start || (r.err == 0 && !r.short_io && (strcmp(what, "delay") != 0 || k < 5))) return -EINVAL;
      out[n++] = r;
    }
    if (nl == NULL) break;
    line = nl + 1;
  }
  return n;
}

/* Applies the rules to an operation on [off, off + *len): 0 to go on (with *len cut short by a
   `short` rule), or the errno to fail with. */
static int inject(int op, uint64_t off, size_t *len) {
  unsigned ms = 0;
  int err = 0;
  size_t cut = *len;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < nrules; i++) {
    const rule *r = &rules[i];
    if (!(r->ops & op) || off >= r->end || off + *len <= r->start) continue;
    if (r->err != 0 && err == 0) err = r->err;
    if (r->short_io && off < r->start && r->start - off < cut) cut = (size_t)(r->start - off);
    if (r->err == 0 && r->ms > ms) ms = r->ms;
  }
  if (err != 0 || cut != *len) faults++;
  else if (ms != 0) delays++;
  if (err == 0) *len = cut;
  pthread_mutex_unlock(&lock);
  if (err == 0 && ms != 0) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
  }
  return err;
}

static void *ffs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->direct_io = 1;
  cfg->use_ino = 1;
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
  return NULL;
}

static int ffs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  if (strcmp(path, CTL) == 0) {
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = 0;
    return 0;
  }
  if (fi != NULL) return fstat((int)fi->fh, st) == 0 ? 0 : -errno;
  return fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int ffs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags fl) {
  (void)off, (void)fi, (void)fl;
  int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  struct dirent *e;
  if (d == NULL) return fd < 0 ? -errno : (close(fd), -ENOMEM);
  while ((e = readdir(d)) != NULL) fill(buf, e->d_name, NULL, 0, 0);
  closedir(d);
  return 0;
}

static int ffs_open(const char *path, struct fuse_file_info *fi) {
  int fd;
  if (strcmp(path, CTL) == 0) {
    fi->fh = UINT64_MAX;
    fi->direct_io = 1;
    return 0;
  }
  fd = openat(backing, rel(path), fi->flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW));
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int ffs_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  int fd = openat(backing, rel(path), fi->flags | O_CREAT, mode);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int ffs_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  if (fi->fh != UINT64_MAX) close((int)fi->fh);
  return 0;
}

static int ffs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  ssize_t n;
  int err;
  if (fi->fh == UINT64_MAX) {
    char text[64];
    int len;
    (void)path;
    pthread_mutex_lock(&lock);
    len = snprintf(text, sizeof text, "faults %llu delays %llu\n", (unsigned long long)faults, (unsigned long long)delays);
    pthread_mutex_unlock(&lock);
    if (off >= len) return 0;
    if ((size_t)(len - off) < size) size = (size_t)(len - off);
    memcpy(buf, text + off, size);
    return (int)size;
  }
  if ((err = inject(R, (uint64_t)off, &size)) != 0) return -err;
  n = pread((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int ffs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  ssize_t n;
  int err;
  (void)path;
  if (fi->fh == UINT64_MAX) {
    rule next[MAX_RULES];
    char *text = strndup(buf, size);
    int count = text == NULL ? -ENOMEM : parse_rules(text, next);
    free(text);
    if (count < 0) return count;
    pthread_mutex_lock(&lock);
    memcpy(rules, next, sizeof next);
    nrules = count;
    pthread_mutex_unlock(&lock);
    return (int)size;
  }
  if ((err = inject(W, (uint64_t)off, &size)) != 0) return -err;
  n = pwrite((int)fi->fh, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int ffs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  if (fi->fh == UINT64_MAX) return 0;
  return (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) == 0 ? 0 : -errno;
}

static int ffs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  int err;
  (void)path;
  if (fi->fh == UINT64_MAX) return -EOPNOTSUPP;
  size_t n = (size_t)len;
  if ((err = inject((mode & FALLOC_FL_PUNCH_HOLE) ? P : W, (uint64_t)off, &n)) != 0) return -err;
  if (n != (size_t)len) return -ENOSPC; /* fallocate has no short form */
  return fallocate((int)fi->fh, mode, off, len) == 0 ? 0 : -errno;
}

static int ffs_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  if (fi != NULL && fi->fh != UINT64_MAX) return ftruncate((int)fi->fh, size) == 0 ? 0 : -errno;
  if (strcmp(path, CTL) == 0) return 0;
  {
    int fd = openat(backing, rel(path), O_WRONLY);
    int rc = fd < 0 || ftruncate(fd, size) != 0 ? -errno : 0;
    if (fd >= 0) close(fd);
    return rc;
  }
}

static int ffs_unlink(const char *path) { return unlinkat(backing, rel(path), 0) == 0 ? 0 : -errno; }
static int ffs_rename(const char *from, const char *to, unsigned flags) {
  return renameat2(backing, rel(from), backing, rel(to), flags) == 0 ? 0 : -errno;
}
static int ffs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  return fchmodat(backing, rel(path), mode, 0) == 0 ? 0 : -errno;
}
static int ffs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  (void)fi;
  return fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}
static int ffs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  (void)fi;
  return utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}
static int ffs_statfs(const char *path, struct statvfs *st) {
  (void)path;
  return fstatvfs(backing, st) == 0 ? 0 : -errno;
}

static const struct fuse_operations ops = {
    .init = ffs_init,
    .getattr = ffs_getattr,
    .readdir = ffs_readdir,
    .open = ffs_open,
    .create = ffs_create,
    .release = ffs_release,
    .read = ffs_read,
    .write = ffs_write,
    .fsync = ffs_fsync,
    .fallocate = ffs_fallocate,
    .truncate = ffs_truncate,
    .unlink = ffs_unlink,
    .rename = ffs_rename,
    .chmod = ffs_chmod,
    .chown = ffs_chown,
    .utimens = ffs_utimens,
    .statfs = ffs_statfs,
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <backing dir> <mountpoint> [libfuse options]\n", argv[0]);
    return 2;
  }
  backing = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (backing < 0) {
    perror(argv[1]);
    return 1;
  }
  argv[1] = argv[0]; /* libfuse sees: faultfs <mountpoint> [options] */
  return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
