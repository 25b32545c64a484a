/*
 * fuse_ops.c: the volume server's FUSE operations. One request in (vf_req), one reply out
 * (vf_reply), whatever transport carried them; the transports (fuse_classic.c, fuse_uring.c) only
 * move bytes.
 *
 * The filesystem: nodeid 1 is the root directory (0700), nodeid 2 the file `volume` (0600, or 0400
 * read-only), whose size is the data area's size and never changes. Files are opened with
 * FOPEN_DIRECT_IO (no page cache of plaintext in the kernel) and FOPEN_PARALLEL_DIRECT_WRITES
 * (writes to the one inode are not serialised by the kernel), unless the session serves a
 * user-space filesystem driver (pageCache: fuse2fs's 4 KiB requests would each be a round trip).
 */
#include "fuse_internal.h"
#include "fuse_uring_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>

/* Small replies are built in the transport's reply buffer (at least 4096 bytes). */
static void *out_struct(const vf_req *r, size_t len) {
  memset(r->out, 0, len);
  return r->out;
}

static void reply_err(vf_reply *rep, int err) {
  rep->err = err;
  rep->len = 0;
}

static void reply_body(vf_reply *rep, const void *body, size_t len) {
  rep->err = 0;
  rep->body = body;
  rep->len = len;
}

/* ------------------------------------------------------------------------------------------ */
/* Attributes                                                                                   */

static void fill_attr(vf_session *s, uint64_t nodeid, struct fuse_attr *a) {
  int i = nodeid == VF_ROOT_ID ? 0 : 1;
  memset(a, 0, sizeof *a);
  a->ino = nodeid;
  if (i == 0) {
    a->mode = S_IFDIR | 0700;
    a->nlink = 2;
    a->size = 4096;
    a->blocks = 8;
  } else {
    a->mode = S_IFREG | (s->read_only ? 0400 : 0600);
    a->nlink = 1;
    a->size = s->data_size;
    a->blocks = (s->data_size + 511) / 512;
  }
  a->blksize = 4096;
  a->uid = s->owner_uid;
  a->gid = s->owner_gid;
  pthread_mutex_lock(&s->attr_lock);
  a->atime = (uint64_t)s->times[i][0].tv_sec;
  a->atimensec = (uint32_t)s->times[i][0].tv_nsec;
  a->mtime = (uint64_t)s->times[i][1].tv_sec;
  a->mtimensec = (uint32_t)s->times[i][1].tv_nsec;
  a->ctime = (uint64_t)s->times[i][2].tv_sec;
  a->ctimensec = (uint32_t)s->times[i][2].tv_nsec;
  pthread_mutex_unlock(&s->attr_lock);
}

static void reply_attr(vf_worker *w, const vf_req *r, vf_reply *rep, uint64_t nodeid) {
  struct fuse_attr_out *out = out_struct(r, sizeof *out);
  out->attr_valid = VF_TTL;
  fill_attr(w->s, nodeid, &out->attr);
  reply_body(rep, out, sizeof *out);
}

static bool known_node(uint64_t nodeid) { return nodeid == VF_ROOT_ID || nodeid == VF_FILE_ID; }

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                   */

static void op_init(vf_worker *w, const vf_req *r, vf_reply *rep) {
  vf_session *s = w->s;
  const struct fuse_init_in *in = (const void *)r->arg;
  struct fuse_init_out *out;
  uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS;
  if (s->async_dio) want |= FUSE_ASYNC_DIO;
  /* A page-cached block file (fuse route): the kernel gathers a user-space filesystem's small
     writes into large ones, and reads ahead. */
  if (s->page_cache) want |= FUSE_WRITEBACK_CACHE;
  if (r->arglen < offsetof(struct fuse_init_in, flags2) || in->major < 7) return reply_err(rep, EPROTO);
  out = out_struct(r, sizeof *out);
  out->major = FUSE_KERNEL_VERSION;
  out->minor = in->major > 7 || in->minor > FUSE_KERNEL_MINOR_VERSION ? FUSE_KERNEL_MINOR_VERSION : in->minor;
  out->max_readahead = in->max_readahead;
  out->flags = in->flags & want;
  out->max_background = VF_MAX_BACKGROUND;
  out->congestion_threshold = VF_CONGESTION;
  out->max_write = s->max_request;
  out->time_gran = 1;
  out->max_pages = (uint16_t)(s->max_request / 4096);
  /* FUSE over io_uring: accepted when the session has queue threads ready for it (fuse_uring.c). */
  if (s->nrings > 0 && (in->flags & FUSE_INIT_EXT) && r->arglen >= sizeof *in && (in->flags2 & VF_FLAGS2_OVER_IO_URING)) {
    out->flags |= FUSE_INIT_EXT;
    out->flags2 = VF_FLAGS2_OVER_IO_URING;
    s->uring_offered = true;
  }
  reply_body(rep, out, out->minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof *out);
}

static void op_lookup(vf_worker *w, const vf_req *r, vf_reply *rep) {
  const struct fuse_in_header *h = r->h;
  struct fuse_entry_out *out;
  if (h->nodeid != VF_ROOT_ID) return reply_err(rep, h->nodeid == VF_FILE_ID ? ENOTDIR : ENOENT);
  if (r->arglen != sizeof VF_FILE_NAME || memcmp(r->arg, VF_FILE_NAME, sizeof VF_FILE_NAME) != 0)
    return reply_err(rep, ENOENT);
  out = out_struct(r, sizeof *out);
  out->nodeid = VF_FILE_ID;
  out->generation = 1;
  out->entry_valid = VF_TTL;
  out->attr_valid = VF_TTL;
  fill_attr(w->s, VF_FILE_ID, &out->attr);
  reply_body(rep, out, sizeof *out);
}

static bool time_from(struct timespec *dst, bool now, uint64_t sec, uint32_t nsec) {
  if (now) return clock_gettime(CLOCK_REALTIME, dst) == 0;
  dst->tv_sec = (time_t)sec;
  dst->tv_nsec = nsec < 1000000000u ? (long)nsec : 0;
  return true;
}

static void op_setattr(vf_worker *w, const vf_req *r, vf_reply *rep) {
  vf_session *s = w->s;
  const struct fuse_in_header *h = r->h;
  const struct fuse_setattr_in *in = (const void *)r->arg;
  uint32_t v, cur_mode;
  int i;
  if (!known_node(h->nodeid)) return reply_err(rep, ENOENT);
  if (r->arglen < sizeof *in) return reply_err(rep, EINVAL);
  if (s->read_only) return reply_err(rep, EROFS);
  v = in->valid;
  i = h->nodeid == VF_ROOT_ID ? 0 : 1;
  cur_mode = i == 0 ? 0700u : 0600u;
  /* The shape never changes: a size other than the data area's, another mode or owner: EPERM.
     Setting what already is (the size some tools truncate to, the same mode) is accepted. */
  if ((v & FATTR_SIZE) && (i == 0 || in->size != s->data_size)) return reply_err(rep, EPERM);
  if ((v & FATTR_MODE) && (in->mode & 07777) != cur_mode) return reply_err(rep, EPERM);
  if (((v & FATTR_UID) && in->uid != s->owner_uid) || ((v & FATTR_GID) && in->gid != s->owner_gid))
    return reply_err(rep, EPERM);
  if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_CTIME)) {
    struct timespec t[3];
    pthread_mutex_lock(&s->attr_lock);
    memcpy(t, s->times[i], sizeof t);
    pthread_mutex_unlock(&s->attr_lock);
    if (v & FATTR_ATIME) time_from(&t[0], v & FATTR_ATIME_NOW, in->atime, in->atimensec);
    if (v & FATTR_MTIME) time_from(&t[1], v & FATTR_MTIME_NOW, in->mtime, in->mtimensec);
    if (v & FATTR_CTIME) time_from(&t[2], false, in->ctime, in->ctimensec);
    pthread_mutex_lock(&s->attr_lock);
    memcpy(s->times[i], t, sizeof t);
    pthread_mutex_unlock(&s->attr_lock);
  }
  reply_attr(w, r, rep, h->nodeid);
}

static void op_open(vf_worker *w, const vf_req *r, vf_reply *rep, bool dir) {
  vf_session *s = w->s;
  const struct fuse_in_header *h = r->h;
  const struct fuse_open_in *in = (const void *)r->arg;
  struct fuse_open_out *out;
  if (!known_node(h->nodeid)) return reply_err(rep, ENOENT);
  if (r->arglen < sizeof *in) return reply_err(rep, EINVAL);
  if (dir && h->nodeid != VF_ROOT_ID) return reply_err(rep, ENOTDIR);
  if (!dir && h->nodeid != VF_FILE_ID) return reply_err(rep, EISDIR);
  if (!dir && s->read_only && (in->flags & O_ACCMODE) != O_RDONLY) return reply_err(rep, EROFS);
  out = out_struct(r, sizeof *out);
  out->open_flags = dir ? FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR : s->open_flags;
  reply_body(rep, out, sizeof *out);
}

static void op_readdir(const vf_req *r, vf_reply *rep) {
  static const struct {
    uint64_t ino;
    uint32_t type;
    const char *name;
  } ents[] = {{VF_ROOT_ID, 4 /* DT_DIR */, "."}, {VF_ROOT_ID, 4, ".."}, {VF_FILE_ID, 8 /* DT_REG */, VF_FILE_NAME}};
  const struct fuse_in_header *h = r->h;
  const struct fuse_read_in *in = (const void *)r->arg;
  uint8_t *buf = r->out;
  size_t used = 0, limit;
  if (h->nodeid != VF_ROOT_ID) return reply_err(rep, known_node(h->nodeid) ? ENOTDIR : ENOENT);
  if (r->arglen < sizeof *in) return reply_err(rep, EINVAL);
  limit = in->size < 256 ? in->size : 256;
  for (uint64_t i = in->offset; i < sizeof ents / sizeof ents[0]; i++) {
    size_t namelen = strlen(ents[i].name);
    size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
    struct fuse_dirent *d = (struct fuse_dirent *)(buf + used);
    if (used + rec > limit) break;
    memset(d, 0, rec);
    d->ino = ents[i].ino;
    d->off = i + 1; /* the offset of the next entry */
    d->namelen = (uint32_t)namelen;
    d->type = ents[i].type;
    memcpy(d->name, ents[i].name, namelen);
    used += rec;
  }
  reply_body(rep, buf, used);
}

static void op_statfs(vf_worker *w, const vf_req *r, vf_reply *rep) {
  struct fuse_statfs_out *out = out_struct(r, sizeof *out);
  out->st.blocks = w->s->data_size / 4096;
  out->st.files = 2;
  out->st.bsize = 4096; /* also the loop device's discard granularity */
  out->st.namelen = 255;
  out->st.frsize = 4096;
  reply_body(rep, out, sizeof *out);
}

/* A read of whole I/O units (fuse_io.c) that fits is decrypted straight into the reply buffer: no
   copy on our side. Anything else (a slice of a sector or a unit) goes through the worker's buffer. */
static void op_read(vf_worker *w, const vf_req *r, vf_reply *rep) {
  vf_session *s = w->s;
  const struct fuse_in_header *h = r->h;
  const struct fuse_read_in *in = (const void *)r->arg;
  uint64_t off, first, last, mask = s->io_size - 1;
  uint8_t *dst;
  size_t len;
  int err;
  if (h->nodeid != VF_FILE_ID) return reply_err(rep, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (r->arglen < sizeof *in) return reply_err(rep, EINVAL);
  off = in->offset;
  len = in->size < VF_MAX_IO ? in->size : VF_MAX_IO; /* the kernel never asks for more */
  atomic_store_explicit(&w->c.last_io_ms, vf_now_ms(), memory_order_relaxed);
  if (off >= s->data_size || len == 0) return reply_body(rep, r->out, 0);
  if (len > s->data_size - off) len = (size_t)(s->data_size - off);
  first = off >> s->sector_shift;
  last = (off + len - 1) >> s->sector_shift;
  dst = ((off | len) & mask) == 0 && len <= r->out_cap ? r->out : vf_worker_data(w);
  if (dst == NULL) return reply_err(rep, ENOMEM);
  err = vf_read_sectors(w, dst, first, last - first + 1);
  if (err != 0) return reply_err(rep, err);
  vf_count_add(&w->c.reads, 1);
  vf_count_add(&w->c.bytes_read, len);
  reply_body(rep, dst + (off - (first << s->sector_shift)), len);
}

static void op_write(vf_worker *w, const vf_req *r, vf_reply *rep) {
  vf_session *s = w->s;
  const struct fuse_in_header *h = r->h;
  const struct fuse_write_in *in = (const void *)r->arg;
  struct fuse_write_out *out;
  uint64_t off;
  size_t len;
  int err;
  if (h->nodeid != VF_FILE_ID) return reply_err(rep, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (r->arglen < sizeof *in || r->payload_len < in->size || in->size > VF_MAX_IO) return reply_err(rep, EINVAL);
  if (s->read_only) return reply_err(rep, EROFS);
  off = in->offset;
  len = in->size;
  atomic_store_explicit(&w->c.last_io_ms, vf_now_ms(), memory_order_relaxed);
  if (len > 0) {
    /* A fixed-size file: starting at or past the end, no space; running past it, too big. */
    if (off >= s->data_size) return reply_err(rep, ENOSPC);
    if (len > s->data_size - off) return reply_err(rep, EFBIG);
    err = vf_write_range(w, r->payload, off, len);
    if (err != 0) return reply_err(rep, err);
  }
  vf_count_add(&w->c.writes, 1);
  vf_count_add(&w->c.bytes_written, len);
  out = out_struct(r, sizeof *out);
  out->size = (uint32_t)len;
  reply_body(rep, out, sizeof *out);
}

static void op_fallocate(vf_worker *w, const vf_req *r, vf_reply *rep) {
  vf_session *s = w->s;
  const struct fuse_in_header *h = r->h;
  const struct fuse_fallocate_in *in = (const void *)r->arg;
  uint64_t off, end;
  uint32_t mode;
  bool punch;
  if (h->nodeid != VF_FILE_ID) return reply_err(rep, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (r->arglen < sizeof *in) return reply_err(rep, EINVAL);
  mode = in->mode;
  off = in->offset;
  if (in->length == 0 || __builtin_add_overflow(in->offset, in->length, &end)) return reply_err(rep, EINVAL);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    /* Preallocation: every byte of the data area already exists. Growing the file is not possible. */
    return reply_err(rep, mode == 0 && end > s->data_size ? EFBIG : 0);
  }
  /* A hole punch is a discard: refused (EOPNOTSUPP: the loop device then stops sending discards,
     and fstrim says "not supported") unless the session allows discards. Never ENOSYS, which would
     make the kernel stop sending every FALLOCATE, zero-range too. */
  punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  if (mode != FALLOC_FL_ZERO_RANGE && mode != (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE) && !(punch && s->allow_discards))
    return reply_err(rep, EOPNOTSUPP);
  if (s->read_only) return reply_err(rep, EROFS);
  if (end > s->data_size) {
    if (!(mode & FALLOC_FL_KEEP_SIZE)) return reply_err(rep, EFBIG);
    end = s->data_size; /* KEEP_SIZE: nothing exists past the end to zero */
  }
  atomic_store_explicit(&w->c.last_io_ms, vf_now_ms(), memory_order_relaxed);
  if (off >= end) return reply_err(rep, 0);
  reply_err(rep, punch ? vf_discard_range(w, off, end) : vf_zero_range(w, off, end));
}

/* allow_root (mounted allow_other by a user): whether a request of anyone but the owner and root
   goes through anyway. As libfuse's fuse_req_check_allow_root: what the kernel sends on behalf of
   an opener or of itself (READ/WRITE of writeback and readahead, RELEASE ...), and no-reply ops. */
static bool others_may(uint32_t op) {
  switch (op) {
    case FUSE_INIT: case FUSE_READ: case FUSE_WRITE: case FUSE_FSYNC: case FUSE_RELEASE: case FUSE_READDIR:
    case FUSE_FSYNCDIR: case FUSE_RELEASEDIR: case FUSE_NOTIFY_REPLY: case FUSE_READDIRPLUS:
    case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_INTERRUPT: case FUSE_DESTROY:
      return true;
    default:
      return false;
  }
}

void vf_dispatch(vf_worker *w, const vf_req *r, vf_reply *rep) {
  const struct fuse_in_header *h = r->h;
  int err;
  memset(rep, 0, sizeof *rep);
  if (w->s->allow_root && w->s->unprivileged && h->uid != w->s->owner_uid && h->uid != 0 && !others_may(h->opcode))
    return reply_err(rep, EACCES);
  switch (h->opcode) {
    case FUSE_INIT:
      return op_init(w, r, rep);
    case FUSE_LOOKUP:
      return op_lookup(w, r, rep);
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      rep->none = true; /* no reply; our two inodes are never forgotten, and requests are short */
      return;
    case FUSE_GETATTR:
      if (!known_node(h->nodeid)) return reply_err(rep, ENOENT);
      return reply_attr(w, r, rep, h->nodeid);
    case FUSE_SETATTR:
      return op_setattr(w, r, rep);
    case FUSE_OPEN:
      return op_open(w, r, rep, false);
    case FUSE_OPENDIR:
      return op_open(w, r, rep, true);
    case FUSE_READDIR:
      return op_readdir(r, rep);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_DESTROY:
      return reply_err(rep, 0);
    case FUSE_ACCESS:
      /* Only the owner (and root with allow_root) reaches this mount; MS_RDONLY is the kernel's. */
      return reply_err(rep, known_node(h->nodeid) ? 0 : ENOENT);
    case FUSE_STATFS:
      return op_statfs(w, r, rep);
    case FUSE_READ:
      return op_read(w, r, rep);
    case FUSE_WRITE:
      return op_write(w, r, rep);
    case FUSE_FLUSH:
    case FUSE_FSYNC:
      err = vf_sync_container(w->s);
      return reply_err(rep, err != 0 ? vf_container_error(w, "sync", err, -1) : 0);
    case FUSE_FALLOCATE:
      return op_fallocate(w, r, rep);
    default:
      return reply_err(rep, ENOSYS);
  }
}

void vf_init_answered(vf_session *s, int err) {
  pthread_mutex_lock(&s->life);
  s->init_done = true;
  s->init_error = err;
  pthread_cond_broadcast(&s->life_cond);
  pthread_mutex_unlock(&s->life);
}
