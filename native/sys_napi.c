/* The syscalls Node does not expose; see sys_napi.h. Moved out of vault_native.c as is. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, renameat2 */
#endif
#define NAPI_VERSION 8

#include "sys_napi.h"
#include "napi_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>   /* BLKDISCARD */
#include <linux/loop.h> /* LOOP_CTL_GET_FREE, LOOP_CONFIGURE */

#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK
#define CHECK_GOTO VAULT_CHECK_GOTO

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

/* ------------------------------------------------------------------------------------------ */
/* Process hardening, file locks, pipes                                                         */

/* hardenProcess(): void. Non-dumpable: no core dumps, and ptrace attach and /proc/<pid>/mem
   reads need CAP_SYS_PTRACE. */
napi_value harden_process(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) vault_throw_errno(env, "prctl", "PR_SET_DUMPABLE", errno);
  return NULL;
}

/* isDumpable(): boolean. */
napi_value is_dumpable(napi_env env, napi_callback_info info) {
  napi_value result;
  int r = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  (void)info;
  if (r < 0) {
    vault_throw_errno(env, "prctl", "PR_GET_DUMPABLE", errno);
    return NULL;
  }
  CHECK(napi_get_boolean(env, r != 0, &result));
  return result;
}

/* flock(fd, exclusive, nonBlocking): number (0 or an errno; EWOULDBLOCK when held elsewhere).
   A blocking call blocks the JS thread. */
napi_value flock_fd(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  int fd, r;
  bool exclusive, non_blocking;
  if (!vault_arg_count(env, info, 3, argv) || !vault_arg_fd(env, argv[0], &fd) || !vault_arg_bool(env, argv[1], "exclusive", &exclusive) ||
      !vault_arg_bool(env, argv[2], "nonBlocking", &non_blocking))
    return NULL;
  do {
    r = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (non_blocking ? LOCK_NB : 0));
  } while (r != 0 && errno == EINTR);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

/* pipe(): [readFd, writeFd], both O_CLOEXEC (child_process clears it on the fds it passes on). */
napi_value make_pipe(napi_env env, napi_callback_info info) {
  napi_value result = NULL, rv, wv;
  int fds[2];
  (void)info;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    vault_throw_errno(env, "pipe2", "pipe", errno);
    return NULL;
  }
  CHECK_GOTO(napi_create_array_with_length(env, 2, &result), fail);
  CHECK_GOTO(napi_create_int32(env, fds[0], &rv), fail);
  CHECK_GOTO(napi_create_int32(env, fds[1], &wv), fail);
  CHECK_GOTO(napi_set_element(env, result, 0, rv), fail);
  CHECK_GOTO(napi_set_element(env, result, 1, wv), fail);
  return result;
fail:
  close(fds[0]);
  close(fds[1]);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Descriptors over a unix socket: the CLI hands a server it launched early (src/server/prelaunch.ts)
   its log, container and key pipe once it has them. */

#define MAX_PASSED_FDS 8
#define PASSED_FDS_BYTE 'F'

typedef union {
  char buf[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS)];
  struct cmsghdr align;
} fd_control;

/* sendFds(socket, fds): number. One sendmsg(2) of a single byte carrying `fds` (1 to 8, SCM_RIGHTS)
   on a unix stream socket: 0, or the errno (EAGAIN: a full non-blocking socket; EPIPE: no peer). */
napi_value send_fds(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, item;
  int sock, fds[MAX_PASSED_FDS];
  uint32_t n;
  bool is_array;
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &sock)) return NULL;
  CHECK(napi_is_array(env, argv[1], &is_array));
  if (is_array) CHECK(napi_get_array_length(env, argv[1], &n));
  if (!is_array || n == 0 || n > MAX_PASSED_FDS) {
    vault_throw_range_error(env, "sendFds: fds must be an array of 1 to 8 descriptors");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_get_element(env, argv[1], i, &item));
    if (!vault_arg_fd(env, item, &fds[i])) return NULL;
  }
  fd_control control;
  memset(&control, 0, sizeof control);
  char byte = PASSED_FDS_BYTE;
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  ssize_t r;
  do r = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, r == 1 ? 0 : r < 0 ? errno : EIO, &result));
  return result;
}

/* recvFds(socket, count): number[] | null. Waits (blocking the JS thread) in recvmsg(2) for the one
   byte sendFds sends, which must carry exactly `count` descriptors; they arrive close-on-exec. null
   at end of file: the peer closed without sending. Anything else throws, and closes whatever came. */
napi_value recv_fds(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL, v;
  int sock, got[MAX_PASSED_FDS];
  size_t count, n = 0;
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &sock) || !vault_arg_index(env, argv[1], "count", MAX_PASSED_FDS, &count))
    return NULL;
  fd_control control;
  char byte = 0;
  struct iovec iov = {&byte, 1};
  struct msghdr msg;
  ssize_t r;
  for (;;) {
    memset(&control, 0, sizeof control);
    msg = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (r >= 0 || errno == EINTR) {
      if (r >= 0) break;
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      vault_throw_errno(env, "recvmsg", "descriptors from the CLI", errno);
      return NULL;
    }
    struct pollfd p = {sock, POLLIN, 0};
    (void)poll(&p, 1, -1);
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (n < MAX_PASSED_FDS) got[n++] = fd;
      else close(fd);
    }
  }
  if (r == 0 && n == 0) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  if (r != 1 || byte != PASSED_FDS_BYTE || (msg.msg_flags & MSG_CTRUNC) || n != count) {
    for (size_t i = 0; i < n; i++) close(got[i]);
    vault_throw_error(env, "ERR_VAULT_PROTOCOL", "recvFds: the CLI's message did not carry the descriptors expected");
    return NULL;
  }
  CHECK_GOTO(napi_create_array_with_length(env, n, &result), fail);
  for (size_t i = 0; i < n; i++) {
    CHECK_GOTO(napi_create_int32(env, got[i], &v), fail);
    CHECK_GOTO(napi_set_element(env, result, (uint32_t)i, v), fail);
  }
  return result;
fail:
  for (size_t i = 0; i < n; i++) close(got[i]);
  return NULL;
}

/* dup2(oldfd, newfd): 0 or the errno. newfd is not close-on-exec, like the descriptors a process
   inherits from its parent. */
napi_value dup2_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int from, to, r;
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &from) || !vault_arg_fd(env, argv[1], &to)) return NULL;
  do r = dup2(from, to);
  while (r < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, r < 0 ? errno : 0, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Kernel capability probes (src/system/capabilities.ts). Each returns 0 or the errno the kernel
   gave, and changes nothing it keeps: the socket is closed at once. */

/* socket(domain, type, 0), closed again: 0 when the kernel offers that family (AF_ALG: 38). */
napi_value probe_socket(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t domain, type;
  int fd, err = 0;
  if (!vault_arg_count(env, info, 2, argv)) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &domain));
  CHECK(napi_get_value_int32(env, argv[1], &type));
  fd = socket(domain, type | SOCK_CLOEXEC, 0);
  if (fd < 0)
    err = errno;
  else
    close(fd);
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

/* prctl(PR_SET_IO_FLUSHER, on): a process that serves a block device's I/O (a loop device over
   our FUSE file) marks itself so memory reclaim cannot deadlock on it. Needs CAP_SYS_RESOURCE. */
napi_value set_io_flusher(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  bool on;
  if (!vault_arg_count(env, info, 1, argv) || !vault_arg_bool(env, argv[0], "on", &on)) return NULL;
  int r = prctl(PR_SET_IO_FLUSHER, on ? 1 : 0, 0, 0, 0);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

/* umount2(path, flags): 0 or the errno. src/mount/filesystem.ts passes a path inside a directory
   it holds by descriptor (/proc/self/fd/N/name) with UMOUNT_NOFOLLOW, after checking that the
   name is the mount it means (issue 13): umount(8) would canonicalise the path first. */
napi_value umount_path(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char target[4096];
  size_t len;
  int32_t flags;
  if (!vault_arg_count(env, info, 2, argv)) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[0], target, sizeof target, &len));
  CHECK(napi_get_value_int32(env, argv[1], &flags));
  if (len + 1 >= sizeof target) {
    CHECK(napi_create_int32(env, ENAMETOOLONG, &result));
    return result;
  }
  int r = umount2(target, flags);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

/* blkDiscard(fd, offset, length): ioctl(BLKDISCARD) over [offset, offset + length) of the block
   device open on fd (for writing): 0 or the errno. src/mount/discards.ts refuses one discard on a
   fresh loop device this way (what blkdiscard(8) does, without a process and a tool to find). */
napi_value blk_discard(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  int fd;
  double offset, length;
  if (!vault_arg_count(env, info, 3, argv) || !vault_arg_fd(env, argv[0], &fd) || !vault_arg_number(env, argv[1], "offset", &offset) ||
      !vault_arg_number(env, argv[2], "length", &length))
    return NULL;
  if (offset < 0 || length <= 0 || offset > 9007199254740991.0 || length > 9007199254740991.0 || offset != (double)(uint64_t)offset ||
      length != (double)(uint64_t)length) {
    vault_throw_range_error(env, "offset and length must be whole numbers, length above 0");
    return NULL;
  }
  uint64_t range[2] = {(uint64_t)offset, (uint64_t)length};
  int r = ioctl(fd, BLKDISCARD, range);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

/* How many free devices loopAttach tries: another process can bind the device LOOP_CTL_GET_FREE
   named before our LOOP_CONFIGURE does (EBUSY); a fresh one is then asked for. */
#define LOOP_ATTACH_TRIES 8

/* loopAttach(fileFd, readOnly, directIo, blockSize): binds the file open on fileFd to a free loop
   device with LOOP_CONFIGURE (Linux 5.8+), in one ioctl: backing file, read-only, direct I/O and
   logical block size (0: the kernel's). Returns the device number N of /dev/loopN, or -errno.
   What losetup --find --show does, without a process (10-16 ms of every mount): src/mount/loop.ts
   reads back from sysfs what the kernel granted. */
napi_value loop_attach(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  int fd, err = EBUSY, n = -1;
  bool read_only, direct_io;
  double block_size;
  if (!vault_arg_count(env, info, 4, argv) || !vault_arg_fd(env, argv[0], &fd) || !vault_arg_bool(env, argv[1], "readOnly", &read_only) ||
      !vault_arg_bool(env, argv[2], "directIo", &direct_io) || !vault_arg_number(env, argv[3], "blockSize", &block_size))
    return NULL;
  if (block_size != 0 && block_size != 512 && block_size != 1024 && block_size != 2048 && block_size != 4096) {
    vault_throw_range_error(env, "blockSize must be 0, 512, 1024, 2048 or 4096");
    return NULL;
  }
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) err = errno;
  for (int attempt = 0; ctl >= 0 && attempt < LOOP_ATTACH_TRIES; attempt++) {
    char dev_path[32];
    int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (nr < 0) {
      err = errno;
      break;
    }
    snprintf(dev_path, sizeof dev_path, "/dev/loop%d", nr);
    int dev = open(dev_path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (dev < 0) {
      err = errno;
      if (err == ENOENT || err == ENXIO) continue; /* removed between the two calls */
      break;
    }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t)fd;
    cfg.block_size = (uint32_t)block_size;
    cfg.info.lo_flags = (read_only ? LO_FLAGS_READ_ONLY : 0) | (direct_io ? LO_FLAGS_DIRECT_IO : 0);
    int r = ioctl(dev, LOOP_CONFIGURE, &cfg);
    err = r == 0 ? 0 : errno;
    close(dev);
    if (r == 0) {
      n = nr;
      break;
    }
    if (err != EBUSY) break;
  }
  if (ctl >= 0) close(ctl);
  CHECK(napi_create_int32(env, n >= 0 ? n : -err, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Directory-relative file operations (src/system/fs-at.ts). Each takes one name inside an open
   directory: never a path, so nothing is walked by name but that last component. Results are
   errno numbers (openat: the fd, or -errno), as for flock, so callers map them to VaultErrors. */

/* A single path component: not empty, not "." or "..", no '/'. */
static bool get_name(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    vault_throw_type_error(env, "name must be a string");
    return false;
  }
  if (len == 0 || len >= size - 1 || strchr(buf, '/') != NULL || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0) {
    vault_throw_range_error(env, "name must be one path component");
    return false;
  }
  return true;
}

/* openat(dirFd, name, flags, mode): the new fd (always O_CLOEXEC), or -errno. */
napi_value openat_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  char name[NAME_MAX + 2];
  int dir_fd, fd;
  int32_t flags, mode;
  if (!vault_arg_count(env, info, 4, argv) || !vault_arg_fd(env, argv[0], &dir_fd) || !get_name(env, argv[1], name, sizeof name)) return NULL;
  CHECK(napi_get_value_int32(env, argv[2], &flags));
  CHECK(napi_get_value_int32(env, argv[3], &mode));
  do {
    fd = openat(dir_fd, name, flags | O_CLOEXEC, (mode_t)mode);
  } while (fd < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, fd >= 0 ? fd : -errno, &result));
  return result;
}

/* renameat2(dirFd, old, dirFd, new, noReplace ? RENAME_NOREPLACE : 0): 0 or an errno. */
napi_value renameat_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  char from[NAME_MAX + 2], to[NAME_MAX + 2];
  int dir_fd;
  bool no_replace;
  if (!vault_arg_count(env, info, 4, argv) || !vault_arg_fd(env, argv[0], &dir_fd) || !get_name(env, argv[1], from, sizeof from) ||
      !get_name(env, argv[2], to, sizeof to) || !vault_arg_bool(env, argv[3], "noReplace", &no_replace))
    return NULL;
  int r = renameat2(dir_fd, from, dir_fd, to, no_replace ? RENAME_NOREPLACE : 0);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

/* unlinkat(dirFd, name, 0): 0 or an errno (a directory is never removed: EISDIR). */
napi_value unlinkat_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char name[NAME_MAX + 2];
  int dir_fd;
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &dir_fd) || !get_name(env, argv[1], name, sizeof name)) return NULL;
  int r = unlinkat(dir_fd, name, 0);
  CHECK(napi_create_int32(env, r == 0 ? 0 : errno, &result));
  return result;
}

