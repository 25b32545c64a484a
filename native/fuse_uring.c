/*
 * fuse_uring.c: the FUSE-over-io_uring transport (Linux 6.14+, CONFIG_FUSE_IO_URING, switched on by
 * root with /sys/module/fuse/parameters/enable_uring; Documentation/filesystems/fuse-io-uring.rst).
 *
 * The kernel keeps one queue per possible CPU and hands a request to the queue of the CPU that
 * issued it; once INIT has accepted io_uring, requests wait until every queue has a registered
 * entry. We run options.threads queue threads spread over the queues (at least one each; see
 * VF_URING_DEPTH for the measurements), each with its own 128-byte-SQE ring of VF_URING_DEPTH
 * entries, so that each queue has several requests served at once. An entry is a header buffer (struct fuse_uring_req_header: the fuse_in/out_header, the
 * op's first argument, the commit id and payload size) and a payload buffer of max_write bytes.
 * A thread registers its entries (FUSE_IO_URING_CMD_REGISTER, iov = header + payload); each
 * completion then carries one request, which goes to vf_dispatch(); the reply goes back in the
 * same buffers with FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which also asks for the next request.
 *
 * The classic /dev/fuse reader (worker 0) stays: INIT, and whatever the kernel still sends there
 * (FORGET, INTERRUPT, requests queued before every queue was registered).
 *
 * Data path: a READ of whole sectors is decrypted straight into the entry's payload (the reply);
 * a WRITE's data arrives page-aligned in the payload and is encrypted in place.
 *
 * Ending: completions fail with ENOTCONN once the connection is aborted (by the unmount, or by
 * vf_teardown through fusectl); a thread also leaves when woken by the session's signal while
 * stopping. Threads must not exit with a request in hand and the connection alive (the exit would
 * wait for that request forever), so teardown aborts the connection before it wakes them.
 */
#include "fuse_internal.h"
#include "fuse_uring_abi.h"
#include "secure_mem.h"

#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define ENABLE_URING_PARAM "/sys/module/fuse/parameters/enable_uring"
#define HEADER_MEM 4096 /* one page per entry header (the kernel pins it) */
_Static_assert(sizeof(struct fuse_uring_req_header) <= HEADER_MEM, "an entry header fits its page");

typedef struct {
  struct fuse_uring_req_header *hdr; /* HEADER_MEM bytes, locked */
  uint8_t *payload;                  /* payload_cap bytes, locked (plaintext) */
  struct iovec iov[2];
  uint32_t last_cmd;                 /* what to resubmit after EINTR/EAGAIN */
  uint64_t commit_id;
} vf_ring_ent;

struct vf_ring {
  struct io_uring ring;
  bool ring_ok;
  uint16_t qid;
  int depth;
  size_t payload_cap;
  vf_ring_ent ent[];
};

/* ------------------------------------------------------------------------------------------ */
/* Availability                                                                                 */

static int read_small(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "re");
  size_t n;
  if (f == NULL) return errno;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 0;
}

bool vf_uring_available(char *why, size_t cap) {
  char v[32];
  if (read_small(ENABLE_URING_PARAM, v, sizeof v) != 0) {
    snprintf(why, cap, "this kernel has no FUSE over io_uring (no %s: needs Linux 6.14+ with CONFIG_FUSE_IO_URING)",
             ENABLE_URING_PARAM);
    return false;
  }
  if (v[0] != 'Y' && v[0] != 'y' && v[0] != '1') {
    snprintf(why, cap, "FUSE over io_uring is switched off (%s is N)", ENABLE_URING_PARAM);
    return false;
  }
  if (read_small("/proc/sys/kernel/io_uring_disabled", v, sizeof v) == 0 && v[0] == '2') {
    snprintf(why, cap, "io_uring is disabled (kernel.io_uring_disabled = 2)");
    return false;
  }
  return true;
}

/* The kernel's queue count: one per possible CPU (the highest index in cpu/possible, plus one). */
int vf_uring_queues(void) {
  char buf[256];
  int max = -1;
  if (read_small("/sys/devices/system/cpu/possible", buf, sizeof buf) == 0) {
    /* "0-3,8-11": every number is a CPU index (the separators are not signs). */
    for (char *p = buf; *p != '\0';) {
      char *end;
      unsigned long n;
      if (*p < '0' || *p > '9') {
        p++;
        continue;
      }
      n = strtoul(p, &end, 10);
      if ((long)n > max) max = (int)n;
      p = end;
    }
  }
  if (max < 0) max = (int)sysconf(_SC_NPROCESSORS_CONF) - 1;
  return max < 0 ? 1 : max + 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Rings                                                                                        */

void vf_ring_free(vf_worker *w) {
  vf_ring *r = w->ring;
  if (r == NULL) return;
  if (r->ring_ok) io_uring_queue_exit(&r->ring);
  for (int i = 0; i < r->depth; i++) {
    vault_secure_free(r->ent[i].hdr, HEADER_MEM);
    vault_secure_free(r->ent[i].payload, r->payload_cap);
  }
  free(r);
  w->ring = NULL;
}

/* The kernel refuses payload buffers smaller than max(8 KiB, max_write, max_pages pages). */
static size_t payload_cap(const vf_session *s) {
  return s->max_request > FUSE_MIN_READ_BUFFER ? s->max_request : FUSE_MIN_READ_BUFFER;
}

size_t vf_uring_locked_bytes(const vf_session *s) {
  return VF_URING_DEPTH * (HEADER_MEM + vault_secure_map_len(payload_cap(s)));
}

/* Worker w's ring for queue `qid`, with its entries' buffers. 0 or an errno (why says what). */
static int ring_create(vf_worker *w, uint16_t qid, char *why, size_t cap) {
  struct io_uring_params p;
  vf_ring *r = calloc(1, sizeof *r + VF_URING_DEPTH * sizeof(vf_ring_ent));
  int err = 0, rc;
  if (r == NULL) return ENOMEM;
  w->ring = r;
  r->qid = qid;
  r->depth = VF_URING_DEPTH;
  r->payload_cap = payload_cap(w->s);
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  p.cq_entries = 2 * VF_URING_DEPTH;
  rc = io_uring_queue_init_params(VF_URING_DEPTH, &r->ring, &p);
  if (rc < 0) {
    snprintf(why, cap, "cannot create an io_uring: %s", strerror(-rc));
    return -rc;
  }
  r->ring_ok = true;
  for (int i = 0; i < r->depth; i++) {
    vf_ring_ent *e = &r->ent[i];
    e->hdr = vault_secure_alloc_opt(HEADER_MEM, w->s->lock_io, &err);
    if (e->hdr != NULL) e->payload = vault_secure_alloc_opt(r->payload_cap, w->s->lock_io, &err);
    if (e->hdr == NULL || e->payload == NULL) {
      snprintf(why, cap, "cannot allocate %sio_uring buffers: %s", w->s->lock_io ? "locked " : "", strerror(err));
      return err;
    }
    e->iov[0] = (struct iovec){e->hdr, sizeof *e->hdr};
    e->iov[1] = (struct iovec){e->payload, r->payload_cap};
  }
  return 0;
}

int vf_uring_create(vf_session *s, char *why, size_t cap) {
  int nq = vf_uring_queues();
  for (int i = 0; i < s->nrings; i++) {
    int err = ring_create(&s->workers[s->nclassic + i], (uint16_t)(i % nq), why, cap);
    if (err != 0) return err;
  }
  return 0;
}

/* Queues entry e's command: REGISTER (its buffers) or COMMIT_AND_FETCH (the reply in them). The
   SQ has an SQE per entry, and an entry has one command at a time: there is always room. */
static void queue_cmd(vf_ring *r, int dev_fd, vf_ring_ent *e, uint32_t cmd) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
  struct fuse_uring_cmd_req *req;
  if (sqe == NULL) return;
  memset(sqe, 0, 128); /* SQE128: the command area runs past struct io_uring_sqe */
  req = (struct fuse_uring_cmd_req *)sqe->cmd;
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = dev_fd;
  sqe->cmd_op = cmd;
  io_uring_sqe_set_data(sqe, e);
  if (cmd == FUSE_IO_URING_CMD_REGISTER) {
    sqe->addr = (uint64_t)(uintptr_t)e->iov;
    sqe->len = 2;
  }
  req->qid = r->qid;
  req->commit_id = cmd == FUSE_IO_URING_CMD_REGISTER ? 0 : e->commit_id;
  e->last_cmd = cmd;
}

/* Registers every entry of the ring. A refused registration completes at once: 0 or its errno. */
static int ring_register(vf_ring *r, int dev_fd) {
  struct io_uring_cqe *cqe;
  unsigned head;
  int rc;
  for (int i = 0; i < r->depth; i++) queue_cmd(r, dev_fd, &r->ent[i], FUSE_IO_URING_CMD_REGISTER);
  rc = io_uring_submit(&r->ring);
  if (rc < 0) return -rc;
  if (rc != r->depth) return EIO;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) return -cqe->res;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Serving                                                                                      */

/* Handles the request in entry e and queues its reply (with the fetch of the next request). */
static void handle(vf_worker *w, vf_ring *r, vf_ring_ent *e) {
  struct fuse_uring_req_header *hd = e->hdr;
  struct fuse_in_header *h = (struct fuse_in_header *)hd->in_out;
  struct fuse_out_header *oh = (struct fuse_out_header *)hd->in_out;
  size_t paylen = hd->ring_ent_in_out.payload_sz;
  uint64_t unique = h->unique;
  vf_req q = {.h = h, .out = e->payload, .out_cap = r->payload_cap};
  vf_reply rep = {.err = EIO};
  size_t oplen;
  e->commit_id = hd->ring_ent_in_out.commit_id;
  if (paylen <= r->payload_cap && h->len >= sizeof *h + paylen &&
      (oplen = h->len - sizeof *h - paylen) <= FUSE_URING_OP_IN_OUT_SZ) {
    /* The op's first argument is in op_in, the rest in the payload; an op whose first argument
       is empty (LOOKUP: the name) has all of it in the payload. */
    if (oplen == 0) {
      q.arg = e->payload;
      q.arglen = paylen;
    } else {
      q.arg = (const uint8_t *)hd->op_in;
      q.arglen = oplen;
      q.payload = e->payload;
      q.payload_len = paylen;
    }
    vf_dispatch(w, &q, &rep);
    if (rep.none) rep = (vf_reply){.err = ENOSYS}; /* every ring request needs its commit */
  }
  if (rep.err != 0) rep.len = 0;
  if (rep.len > 0 && rep.body != e->payload) memmove(e->payload, rep.body, rep.len);
  memset(oh, 0, sizeof *oh);
  oh->unique = unique;
  oh->error = -rep.err;
  oh->len = (uint32_t)(sizeof *oh + rep.len);
  hd->ring_ent_in_out.payload_sz = (uint32_t)rep.len;
  queue_cmd(r, w->s->dev_fd, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
}

/* Handles every completion there is. 0 to go on, 1 when the connection is gone, or -errno. */
static int reap(vf_worker *w, vf_ring *r) {
  struct io_uring_cqe *cqe;
  unsigned head, n = 0;
  int ret = 0;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    vf_ring_ent *e = io_uring_cqe_get_data(cqe);
    n++;
    if (cqe->res == 0) {
      handle(w, r, e);
    } else if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
      queue_cmd(r, w->s->dev_fd, e, e->last_cmd);
    } else if (cqe->res == -ENOTCONN || cqe->res == -ENODEV || cqe->res == -ECANCELED) {
      ret = 1; /* unmounted, or the connection was aborted */
    } else if (ret == 0) {
      ret = cqe->res;
    }
  }
  io_uring_cq_advance(&r->ring, n);
  return ret;
}

/* Runs on the queue's CPU: the kernel queues a request on the CPU that issued it, so the thread
   that serves it shares that CPU's caches. Best effort. */
static void pin_to_queue(uint16_t qid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(qid, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

void *vf_ring_worker(void *arg) {
  vf_worker *w = arg;
  vf_session *s = w->s;
  vf_ring *r = w->ring;
  int err;
  if (VF_URING_PIN) pin_to_queue(r->qid);
  err = ring_register(r, s->dev_fd);
  vf_ring_registered(s, err);
  while (err == 0 && !atomic_load(&s->stopping)) {
    int rc = io_uring_submit_and_wait(&r->ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      vf_fatal_error(s, "waiting on the FUSE io_uring", -rc);
      break;
    }
    rc = reap(w, r);
    if (rc == 1) break;
    if (rc < 0) {
      vf_fatal_error(s, "FUSE io_uring request", -rc);
      break;
    }
  }
  /* Send the replies of what was handled: no request stays in our hands. */
  (void)io_uring_submit(&r->ring);
  vf_worker_exit(w);
  return NULL;
}
