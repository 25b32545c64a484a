/*
 * fuse_classic.c: the classic FUSE transport. Worker i reads requests with read(2) from its own
 * /dev/fuse descriptor (worker 0 from the mounting one, the others from clones made with
 * FUSE_DEV_IOC_CLONE, so the kernel spreads requests over them), hands each to vf_dispatch() and
 * writev()s the reply: header and body, the body straight from where the operation left it.
 *
 * A request is read VF_REQ_SKEW bytes into a page-aligned buffer, so that a WRITE's data starts on
 * a page boundary (see VF_REQ_SKEW). Workers exit on ENODEV (unmounted, or the connection was
 * aborted) or when the session is stopping.
 */
#include "fuse_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

int vf_classic_open(vf_session *s, int i) {
  uint32_t master = (uint32_t)s->dev_fd;
  int fd, err;
  if (i == 0) {
    s->workers[0].fd = s->dev_fd;
    return 0;
  }
  fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  if (ioctl(fd, FUSE_DEV_IOC_CLONE, &master) != 0) {
    err = errno;
    close(fd);
    return err;
  }
  s->workers[i].fd = fd;
  return 0;
}

/* Sends `rep` for request `unique`. 0, or the errno of a reply the kernel refused. */
static int send_reply(vf_worker *w, uint64_t unique, const vf_reply *rep) {
  struct fuse_out_header out = {.len = (uint32_t)sizeof out, .error = -rep->err, .unique = unique};
  struct iovec iov[2] = {{&out, sizeof out}, {(void *)rep->body, rep->len}};
  int cnt = 1;
  if (rep->err == 0 && rep->len > 0) {
    out.len += (uint32_t)rep->len;
    cnt = 2;
  }
  for (;;) {
    if (writev(w->fd, iov, cnt) >= 0) return 0;
    if (errno == EINTR) continue;
    /* ENOENT: the request was interrupted meanwhile; ENODEV: the connection is gone (the next read
       says so). Neither is an error of ours. */
    if (errno == ENOENT || errno == ENODEV) return 0;
    vf_io_error(w, "writing a FUSE reply", errno);
    return errno;
  }
}

/* Handles the request of n bytes in w->req. */
static void handle(vf_worker *w, size_t n) {
  struct fuse_in_header *h = (struct fuse_in_header *)w->req;
  vf_req r = {.h = h, .arg = w->req + sizeof *h, .arglen = n - sizeof *h, .out = w->data, .out_cap = w->data_len};
  vf_reply rep;
  int err;
  if (h->len != n) {
    rep = (vf_reply){.err = EIO};
    (void)send_reply(w, h->unique, &rep);
    return;
  }
  if (h->opcode == FUSE_WRITE && r.arglen >= sizeof(struct fuse_write_in)) {
    /* The data follows fuse_write_in, page-aligned thanks to VF_REQ_SKEW. */
    r.payload = w->req + sizeof *h + sizeof(struct fuse_write_in);
    r.payload_len = r.arglen - sizeof(struct fuse_write_in);
    r.arglen = sizeof(struct fuse_write_in);
  }
  vf_dispatch(w, &r, &rep);
  if (rep.none) return;
  err = send_reply(w, h->unique, &rep);
  if (h->opcode == FUSE_INIT) vf_init_answered(w->s, rep.err != 0 ? rep.err : err);
}

void *vf_classic_worker(void *arg) {
  vf_worker *w = arg;
  vf_session *s = w->s;
  for (;;) {
    ssize_t n;
    if (atomic_load(&s->stopping)) break;
    n = read(w->fd, w->req, VF_REQ_BUF);
    if (n < 0) {
      int e = errno;
      if (e == EINTR || e == EAGAIN || e == ENOENT) continue;
      if (e == ENODEV) break; /* unmounted, or the connection was aborted */
      vf_fatal_error(s, "reading /dev/fuse", e);
      break;
    }
    if ((size_t)n < sizeof(struct fuse_in_header)) {
      vf_fatal_error(s, "reading /dev/fuse: short request", EPROTO);
      break;
    }
    handle(w, (size_t)n);
  }
  vf_worker_exit(w);
  return NULL;
}
