/*
 * vault's own namespace and data stress (issue 20), written for this project: N worker processes,
 * each in its own subdirectory of DIR and in a shared one, doing random operations on a small set of
 * names so that they collide with each other and with the other workers.
 *
 *   fsstress -d DIR [-p procs] [-t seconds] [-n ops per worker] [-s seed] [-m max file size]
 *
 * Errors a racing namespace gives (ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, ...) are counted as
 * expected; anything else (EIO, EUCLEAN, EROFS, ENOSPC while the filesystem still has room, ...)
 * stops every worker and fails the run (exit 1) with the operation, the path and the error. At the
 * end it prints, per operation, how many succeeded and how many met an expected error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define OPS(X) X(creat) X(mkdir) X(rmdir) X(unlink) X(rename) X(link) X(symlink) X(readlink) \
  X(write) X(append) X(read) X(truncate) X(fallocate) X(punch) X(setxattr) X(getxattr) \
  X(chmod) X(fsync) X(fdatasync) X(sync) X(readdir) X(stat)
#define ENUM(n) OP_##n,
#define NAME(n) #n,
enum { OPS(ENUM) OP_COUNT };
static const char *names[OP_COUNT] = { OPS(NAME) };

/* Shared with the parent: a stop flag (set by a failing worker) and each worker's own counters. */
struct counts { unsigned long ok[OP_COUNT], expected[OP_COUNT], enospc; };
struct shared { volatile int stop; struct counts w[]; };
static struct shared *sh;
static unsigned long *my_ok, *my_expected, *my_enospc;

static const char *root;
static int worker;
static uint64_t max_size = 1 << 20;
static unsigned char wbuf[65536], rbuf[65536];

static uint64_t state;
static uint64_t rnd(void) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static unsigned below(unsigned n) { return (unsigned)(rnd() % n); }

/*
 * A random path: in this worker's tree or the shared one, mostly shallow (up to two directory
 * levels of d0..d3), its last name one of d0..d3 (what mkdir makes, so deeper paths exist) or
 * f0..f7 (for mkdir, always a d name).
 */
static void pick(char *out, size_t n, int dir) {
  static const int depths[] = { 0, 0, 1, 2 };
  int shared = below(4) == 0;
  int depth = depths[below(4)];
  int len = shared ? snprintf(out, n, "%s/shared", root) : snprintf(out, n, "%s/w%d", root, worker);
  for (int i = 0; i < depth; i++) len += snprintf(out + len, n - (size_t)len, "/d%u", below(4));
  if (dir || below(3) == 0) snprintf(out + len, n - (size_t)len, "/d%u", below(4));
  else snprintf(out + len, n - (size_t)len, "/f%u", below(8));
}

/* Whether the filesystem is (nearly) full, so ENOSPC is the truth and not a bug. */
static int fs_full(void) {
  struct statvfs sv;
  if (statvfs(root, &sv) != 0) return 0;
  uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, total = (uint64_t)sv.f_blocks * sv.f_frsize;
  return avail < (8u << 20) || avail < total / 50 || sv.f_favail < 64;
}

/* Counts the outcome of op; an error outside `allowed` (a 0-terminated list) fails the run. */
static void outcome(int op, int r, const char *p1, const char *p2, const int *allowed) {
  if (r >= 0) { my_ok[op]++; return; }
  int e = errno;
  for (const int *a = allowed; *a; a++)
    if (e == *a) { my_expected[op]++; return; }
  if (e == ENOSPC && fs_full()) { my_expected[op]++; (*my_enospc)++; return; }
  fprintf(stderr, "fsstress: FAILED: worker %d: %s %s%s%s: %s (errno %d)\n", worker, names[op], p1,
          p2 ? " -> " : "", p2 ? p2 : "", strerror(e), e);
  sh->stop = 2;
  exit(1);
}

#define NS ENOENT, ENOTDIR, ELOOP
static const int e_create[] = { NS, EEXIST, EISDIR, 0 };
static const int e_rmdir[] = { NS, ENOTEMPTY, EEXIST, EBUSY, 0 };
static const int e_unlink[] = { NS, EISDIR, 0 };
static const int e_rename[] = { NS, EEXIST, ENOTEMPTY, EISDIR, EINVAL, EBUSY, 0 };
static const int e_link[] = { NS, EEXIST, EPERM, EMLINK, 0 };
static const int e_readlink[] = { NS, EINVAL, 0 };
static const int e_open[] = { NS, EISDIR, 0 };
static const int e_xattr[] = { NS, ENODATA, EPERM, ERANGE, 0 };
static const int e_path[] = { NS, 0 };

/* Opens p for data; -1 with errno on failure (a directory: EISDIR). */
static int open_data(const char *p, int flags) {
  int fd = open(p, flags | O_NOFOLLOW, 0644);
  if (fd < 0 && errno == ELOOP) errno = ENOENT; /* a symlink: not a data file */
  return fd;
}

static void data_op(int op, const char *p) {
  /* The writing ones create the file if it is missing, as an application would. */
  int fd = open_data(p, op == OP_read ? O_RDONLY : O_CREAT | (op == OP_append ? O_WRONLY | O_APPEND : O_WRONLY));
  if (fd < 0) { outcome(op, -1, p, NULL, e_open); return; }
  struct stat st;
  int r = fstat(fd, &st);
  uint64_t size = r == 0 ? (uint64_t)st.st_size : 0;
  uint64_t off = below((unsigned)max_size), len = 1 + below(sizeof wbuf);
  if (off + len > max_size) len = max_size - off;
  if (r == 0) switch (op) {
  case OP_write:
  case OP_append:
    for (uint64_t i = 0; i < len; i++) wbuf[i] = (unsigned char)(off + i + worker);
    if (op == OP_append && size + len > max_size) { r = ftruncate(fd, 0); if (r == 0) size = 0; }
    if (r == 0) r = op == OP_write ? (int)pwrite(fd, wbuf, len, (off_t)off) : (int)write(fd, wbuf, len);
    break;
  case OP_read: r = (int)pread(fd, rbuf, sizeof rbuf, size ? (off_t)below((unsigned)size) : 0); break;
  case OP_truncate: r = ftruncate(fd, (off_t)below((unsigned)max_size)); break;
  case OP_fallocate: r = fallocate(fd, below(2) ? FALLOC_FL_KEEP_SIZE : 0, (off_t)off, (off_t)len); break;
  case OP_punch: r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len); break;
  }
  outcome(op, r < 0 ? -1 : 0, p, NULL, e_open); /* EISDIR: a directory opened for read */
  if (close(fd) < 0) outcome(op, -1, p, "(close)", e_path);
}

static void one_op(void) {
  char p[512], q[512];
  int op = (int)below(OP_COUNT);
  pick(p, sizeof p, op == OP_mkdir || op == OP_rmdir);
  pick(q, sizeof q, 0);
  int r = 0;
  switch (op) {
  case OP_creat: r = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644); if (r >= 0) close(r); outcome(op, r, p, NULL, e_create); break;
  case OP_mkdir: outcome(op, mkdir(p, 0755), p, NULL, e_create); break;
  case OP_rmdir: outcome(op, rmdir(p), p, NULL, e_rmdir); break;
  case OP_unlink: outcome(op, unlink(p), p, NULL, e_unlink); break;
  case OP_rename: outcome(op, rename(p, q), p, q, e_rename); break;
  case OP_link: outcome(op, link(p, q), p, q, e_link); break;
  case OP_symlink: {
    /* relative targets, dangling or not, sometimes pointing back up */
    char t[64];
    snprintf(t, sizeof t, "%s%c%u", below(3) ? "" : "../", below(2) ? 'f' : 'd', below(12));
    outcome(op, symlink(t, q), t, q, e_create);
    break;
  }
  case OP_readlink: { char t[512]; outcome(op, (int)readlink(p, t, sizeof t), p, NULL, e_readlink); break; }
  case OP_write: case OP_append: case OP_read: case OP_truncate: case OP_fallocate: case OP_punch:
    data_op(op, p);
    break;
  case OP_setxattr: {
    char name[16], val[256];
    snprintf(name, sizeof name, "user.x%u", below(4));
    size_t n = 1 + below(sizeof val);
    memset(val, 'a' + worker % 26, n);
    outcome(op, lsetxattr(p, name, val, n, 0), p, name, e_xattr);
    break;
  }
  case OP_getxattr: {
    char name[16], val[256];
    snprintf(name, sizeof name, "user.x%u", below(4));
    outcome(op, (int)lgetxattr(p, name, val, sizeof val), p, name, e_xattr);
    break;
  }
  case OP_chmod: outcome(op, chmod(p, below(2) ? 0644 : 0755), p, NULL, e_path); break;
  case OP_fsync: case OP_fdatasync: case OP_sync: {
    int fd = open(p, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) errno = ENOENT;
    if (fd < 0) { outcome(op, -1, p, NULL, e_path); break; }
    r = op == OP_fsync ? fsync(fd) : op == OP_fdatasync ? fdatasync(fd) : syncfs(fd);
    outcome(op, r, p, NULL, e_path);
    close(fd);
    break;
  }
  case OP_readdir: {
    char *slash = strrchr(p, '/');
    if (below(2)) *slash = 0; /* the parent, which exists more often */
    DIR *d = opendir(p);
    if (!d) { outcome(op, -1, p, NULL, e_path); break; }
    errno = 0;
    while (readdir(d)) {}
    r = errno ? -1 : 0;
    closedir(d);
    outcome(op, r, p, NULL, e_path);
    break;
  }
  case OP_stat: { struct stat st; outcome(op, lstat(p, &st), p, NULL, e_path); break; }
  }
}

static void run_worker(uint64_t seed, unsigned long nops, time_t deadline) {
  state = seed * 1000003u + (uint64_t)worker;
  my_ok = sh->w[worker].ok;
  my_expected = sh->w[worker].expected;
  my_enospc = &sh->w[worker].enospc;
  char d[512];
  snprintf(d, sizeof d, "%s/w%d", root, worker);
  if (mkdir(d, 0755) < 0 && errno != EEXIST) { perror(d); sh->stop = 2; exit(1); }
  for (unsigned long i = 0; (!nops || i < nops) && !sh->stop; i++) {
    one_op();
    if (i % 64 == 0 && deadline && time(NULL) >= deadline) break;
  }
  exit(0);
}

int main(int argc, char **argv) {
  int procs = 4, opt;
  unsigned long nops = 0, seconds = 0;
  uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
  while ((opt = getopt(argc, argv, "d:p:t:n:s:m:")) != -1) {
    switch (opt) {
    case 'd': root = optarg; break;
    case 'p': procs = atoi(optarg); break;
    case 't': seconds = strtoul(optarg, NULL, 0); break;
    case 'n': nops = strtoul(optarg, NULL, 0); break;
    case 's': seed = strtoull(optarg, NULL, 0); break;
    case 'm': max_size = strtoull(optarg, NULL, 0); break;
    default: goto usage;
    }
  }
  if (!root || procs < 1 || (!nops && !seconds) || max_size < 2 || max_size > (1u << 30)) {
  usage:
    fprintf(stderr, "usage: fsstress -d DIR [-p procs] [-t seconds] [-n ops per worker] [-s seed] [-m max file size]\n"
                    "(at least one of -t and -n)\n");
    return 2;
  }
  sh = mmap(NULL, sizeof *sh + (size_t)procs * sizeof(struct counts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) { perror("mmap"); return 2; }
  char s[512];
  snprintf(s, sizeof s, "%s/shared", root);
  if (mkdir(root, 0755) < 0 && errno != EEXIST) { perror(root); return 2; }
  if (mkdir(s, 0755) < 0 && errno != EEXIST) { perror(s); return 2; }
  printf("fsstress: seed %" PRIu64 ", %d workers, %lu s, %lu ops each, dir %s\n", seed, procs, seconds, nops, root);
  fflush(stdout);
  time_t t0 = time(NULL), deadline = seconds ? t0 + (time_t)seconds : 0;
  pid_t *pids = calloc((size_t)procs, sizeof *pids);
  for (int i = 0; i < procs; i++) {
    pids[i] = fork();
    if (pids[i] == 0) { worker = i; run_worker(seed, nops, deadline); }
    if (pids[i] < 0) { perror("fork"); sh->stop = 2; break; }
  }
  int failed = 0;
  for (int i = 0; i < procs; i++) {
    int st;
    if (pids[i] <= 0) continue;
    if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      failed = 1;
      if (WIFSIGNALED(st)) fprintf(stderr, "fsstress: worker %d killed by signal %d\n", i, WTERMSIG(st));
    }
  }
  unsigned long total = 0, enospc = 0;
  for (int i = 0; i < OP_COUNT; i++) {
    unsigned long ok = 0, expected = 0;
    for (int w = 0; w < procs; w++) { ok += sh->w[w].ok[i]; expected += sh->w[w].expected[i]; }
    printf("fsstress-count %s %lu ok %lu expected-errors\n", names[i], ok, expected);
    total += ok + expected;
  }
  for (int w = 0; w < procs; w++) enospc += sh->w[w].enospc;
  printf("fsstress: %s: %lu ops in %ld s (%lu ENOSPC on a full filesystem)\n", failed ? "FAILED" : "PASSED", total,
         (long)(time(NULL) - t0), enospc);
  return failed ? 1 : 0;
}
