/*
 * fuse_user.c: what the volume server does differently when it runs as an ordinary user
 * (euid != 0), where mount(2) of a FUSE filesystem needs privileges it has not got.
 *
 * Mounting: through fusermount3, libfuse's setuid helper, by its protocol (libfuse lib/mount.c,
 * fuse_mount_fusermount/receive_fd): a socketpair, one end given to fusermount3 as fd 3 and named
 * by _FUSE_COMMFD in an otherwise empty environment; fusermount3 opens /dev/fuse, mounts with
 * user_id/group_id of the caller, sends the descriptor back with SCM_RIGHTS and exits. Its stderr
 * comes back through a pipe, so that its reason (no user_allow_other in /etc/fuse.conf, a mount
 * point it refuses) is in the thrown error. It is run by absolute path, never through PATH.
 *
 * allow_root: fusermount3 knows no such kernel option; like libfuse, we mount allow_other and
 * refuse every request of anyone but the owner and root (fuse_ops.c, vf_dispatch).
 *
 * Unmounting: `fusermount3 -u -z -- dir` (only while the mount is ours: fuse_mount.c). A user can
 * write no fusectl abort file unless fusectl is mounted (fsopen needs CAP_SYS_ADMIN); stopping then
 * relies on the lazy unmount (nothing holds the file: the connection ends with the mount) or on
 * closing every /dev/fuse descriptor once the workers are out (the last close aborts it).
 *
 * Locked memory: root locks without limit; a user within RLIMIT_MEMLOCK (often 8 MiB), which the
 * I/O buffers (about 2 MiB per worker) overrun. The key and the AES key schedules are always
 * locked (failing with an error that names RLIMIT_MEMLOCK); the I/O buffers only if they fit.
 */
#include "fuse_internal.h"
#include "napi_util.h"
#include "secure_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSERMOUNT_TIMEOUT_MS 30000
#define COMM_ENV "_FUSE_COMMFD=3"

static const char *const FUSERMOUNT_PATHS[] = {"/usr/bin/fusermount3", "/bin/fusermount3"};

static const char *fusermount_path(void) {
  for (size_t i = 0; i < sizeof FUSERMOUNT_PATHS / sizeof FUSERMOUNT_PATHS[0]; i++)
    if (access(FUSERMOUNT_PATHS[i], X_OK) == 0) return FUSERMOUNT_PATHS[i];
  return NULL;
}

/* Moves fd to a descriptor >= 10 (close-on-exec), so that the child's dup2 onto 2 and 3 never has
   source equal to target (which would leave close-on-exec set). */
static int high_fd(int fd) {
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return h;
}

/*
 * Starts fusermount3 with `args` (NULL-terminated, after argv[0]): stdin and stdout /dev/null,
 * stderr `err_w` (or /dev/null), `comm` as fd 3 named by _FUSE_COMMFD (or none), nothing else
 * open, the environment empty but for that, default signal dispositions. posix_spawn (a vfork-like
 * clone): nothing of ours runs in the child. Returns its pid, or -errno.
 */
static pid_t spawn_fusermount(const char *path, const char *const args[], int comm, int err_w) {
  const char *argv[8];
  char *envp[] = {comm >= 0 ? (char *)COMM_ENV : NULL, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t none, all;
  pid_t pid;
  int n = 0, rc;
  argv[n++] = "fusermount3";
  while (*args != NULL && n < 7) argv[n++] = *args++;
  argv[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (err_w >= 0) {
    posix_spawn_file_actions_adddup2(&fa, err_w, 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  if (comm >= 0) posix_spawn_file_actions_adddup2(&fa, comm, 3);
  posix_spawn_file_actions_addclosefrom_np(&fa, comm >= 0 ? 4 : 3);
  posix_spawnattr_init(&at);
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all); /* Node ignores SIGPIPE; exec would keep that */
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  rc = posix_spawn(&pid, path, &fa, &at, (char *const *)argv, envp);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -rc;
}

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits for fd to be readable until FUSERMOUNT_TIMEOUT_MS after t0: 0, or ETIMEDOUT. */
static int wait_readable(int fd, const struct timespec *t0) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (;;) {
    long left = FUSERMOUNT_TIMEOUT_MS - ms_since(t0);
    int rc = poll(&p, 1, left > 0 ? (int)left : 0);
    if (rc > 0) return 0;
    if (rc == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

/* Reaps the child (killed if still there after the timeout): its exit status, or -1. */
static int reap(pid_t pid, const struct timespec *t0) {
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r < 0 && errno != EINTR) return -1;
    if (ms_since(t0) > FUSERMOUNT_TIMEOUT_MS) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      return -1;
    }
    nanosleep(&(struct timespec){0, 2000000}, NULL);
  }
}

/* The descriptor fusermount3 sends (SCM_RIGHTS, close-on-exec), or -1: it exited without one. */
static int receive_fd(int sock, const struct timespec *t0) {
  char byte;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
  struct cmsghdr *c;
  ssize_t n;
  int fd;
  if (wait_readable(sock, t0) != 0) return -1;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return -1;
  c = CMSG_FIRSTHDR(&msg);
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
    return -1;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* Reads what fusermount3 wrote to stderr (until it closes it), one line, into out. */
static void read_stderr(int fd, char *out, size_t cap, const struct timespec *t0) {
  size_t len = 0;
  out[0] = '\0';
  while (len + 1 < cap && wait_readable(fd, t0) == 0) {
    ssize_t n = read(fd, out + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  out[len] = '\0';
  while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ')) out[--len] = '\0';
  for (char *p = out; *p != '\0'; p++)
    if (*p == '\n') *p = ' ';
}

/* The options given to fusermount3 (it adds fd, rootmode, user_id and group_id itself). */
static void mount_options(const vf_session *s, char *buf, size_t cap) {
  snprintf(buf, cap, "%s,nosuid,nodev,fsname=vault,subtype=vault,max_read=%u%s", s->read_only ? "ro" : "rw",
           s->max_request, s->allow_root ? ",allow_other" : "");
}

int vf_fusermount_mount(vf_session *s, char *msg, size_t cap) {
  char opts[160], err_text[512] = "";
  const char *path = fusermount_path();
  const char *args[] = {"-o", opts, "--", s->mount_dir, NULL};
  struct timespec t0;
  int sv[2], ep[2], fd = -1, status;
  pid_t pid;
  if (path == NULL) {
    snprintf(msg, cap, "fusermount3: not found (neither /usr/bin/fusermount3 nor /bin/fusermount3; install "
                       "fuse3, or run vault as root)");
    return -1;
  }
  mount_options(s, opts, sizeof opts);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    snprintf(msg, cap, "socketpair for fusermount3: %s", strerror(errno));
    return -1;
  }
  if (pipe2(ep, O_CLOEXEC) != 0) {
    snprintf(msg, cap, "pipe for fusermount3: %s", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  sv[1] = high_fd(sv[1]);
  ep[1] = high_fd(ep[1]);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid = sv[1] >= 0 && ep[1] >= 0 ? spawn_fusermount(path, args, sv[1], ep[1]) : -EMFILE;
  if (sv[1] >= 0) close(sv[1]);
  if (ep[1] >= 0) close(ep[1]);
  if (pid > 0) {
    fd = receive_fd(sv[0], &t0);
    read_stderr(ep[0], err_text, sizeof err_text, &t0);
  }
  close(sv[0]);
  close(ep[0]);
  if (pid <= 0) {
    snprintf(msg, cap, "cannot run %s: %s", path, strerror(-pid));
    return -1;
  }
  status = reap(pid, &t0);
  if (fd < 0) {
    char how[48] = "killed, or no answer in time";
    if (status >= 0) snprintf(how, sizeof how, "exit status %d", status);
    snprintf(msg, cap, "%s -o %s -- %s failed (%s): %s%s", path, opts, s->mount_dir, how,
             err_text[0] != '\0' ? err_text : "no message",
             strstr(err_text, "user_allow_other") != NULL ? " (allowRoot needs user_allow_other in /etc/fuse.conf)" : "");
  }
  return fd;
}

bool vf_fusermount_unmount(const char *dir) {
  const char *path = fusermount_path();
  const char *args[] = {"-u", "-z", "--", dir, NULL};
  struct timespec t0;
  pid_t pid;
  if (path == NULL) return false;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid = spawn_fusermount(path, args, -1, -1);
  return pid > 0 && reap(pid, &t0) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* RLIMIT_MEMLOCK                                                                               */

/* Bytes locked by this process now (VmLck), or 0 if unknown. */
static size_t locked_now(void) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[128];
  unsigned long kb = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmLck: %lu kB", &kb) == 1) break;
  fclose(f);
  return (size_t)kb * 1024;
}

/* Room left for what the workers lock after this check: Kuznyechik's key schedules (a page per
   worker), and slack (libgcrypt's pool is locked before, by vault_cipher_prepare, so counted). */
#define SCHEDULE_RESERVE(n) (64 * 1024 + (size_t)(n) * 16 * 1024)

bool vf_io_lock_fits(const vf_session *s) {
  struct rlimit rl;
  size_t need = SCHEDULE_RESERVE(s->nthreads), data = vf_data_len(s);
  if (geteuid() == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return true;
  need += (size_t)s->nclassic * (vault_secure_map_len(VF_REQ_MEM) + vault_secure_map_len(data));
  need += (size_t)s->nrings * (vault_secure_map_len(data) + vf_uring_locked_bytes(s));
  return locked_now() + need <= rl.rlim_cur;
}

void vf_throw_memlock(napi_env env, const char *what, int err) {
  struct rlimit rl;
  char msg[512];
  if ((err != ENOMEM && err != EPERM && err != EAGAIN) || geteuid() == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
      rl.rlim_cur == RLIM_INFINITY) {
    snprintf(msg, sizeof msg, "cannot lock %s in memory", what);
    vault_throw_errno(env, "mlock", msg, err);
    return;
  }
  snprintf(msg, sizeof msg,
           "cannot lock %s in memory (mlock: %s): RLIMIT_MEMLOCK is %llu KiB and %zu KiB are locked already. "
           "Raise the limit (ulimit -l; memlock in /etc/security/limits.conf; LimitMEMLOCK= for a systemd "
           "service) or run vault as root",
           what, strerror(err), (unsigned long long)rl.rlim_cur / 1024, locked_now() / 1024);
  vault_throw_error(env, "ERR_VAULT_MEMLOCK", msg);
}
