/*
 * fuse_server: the native volume server (see fuse_server.h).
 *
 * Protocol: FUSE 7.38 as in <linux/fuse.h>, spoken directly on /dev/fuse. We mount with mount(2)
 * (we run as root), then N worker threads each read requests from their own descriptor (the first
 * one uses the mounting descriptor, the others clones made with FUSE_DEV_IOC_CLONE), handle them
 * and writev() the reply. No request ever reaches the JS thread.
 *
 * The filesystem: nodeid 1 is the root directory (0700), nodeid 2 the file `volume` (0600, or 0400
 * read-only), whose size is the data area's size and never changes. Files are opened with
 * FOPEN_DIRECT_IO (no page cache of plaintext in the kernel) and FOPEN_PARALLEL_DIRECT_WRITES
 * (writes to the one inode are not serialised by the kernel).
 *
 * Data path (spec/format.md §8): byte b of `volume` is byte b of the decrypted data area; sector i
 * lives at container offset dataOffset + i * sectorSize and is one XTS data unit with tweak
 * firstTweak + i * tweakStep.
 *  - READ: pread the covering whole sectors into the worker's buffer, decrypt in place, reply with
 *    the requested slice; short at the end of the data area.
 *  - WRITE: the plaintext sits in the worker's request buffer; whole sectors are encrypted there in
 *    place and pwritten. Partial head/tail sectors are read-modify-written in the data buffer.
 *    Every write holds the striped locks of the regions it touches while it writes (RMW: while it
 *    reads, merges and writes), so concurrent writes into one sector never lose an update; reads
 *    take no lock.
 *  - FALLOCATE zero-range / punch-hole: encrypted zeros over the range (never a hole in the
 *    container: a hole decrypts to garbage and shows which sectors were discarded).
 *  - FSYNC / FLUSH: fdatasync of the container, skipped when nothing was written since the last
 *    successful one.
 *
 * Secrets: the 64-byte key is read from a descriptor straight into locked pages (secure_mem), and
 * each worker has its own XTS context keyed from it. Request and data buffers hold plaintext, so
 * they are locked too, and wiped when the session ends.
 *
 * Lifecycle: serve() mounts and returns once the kernel's INIT has been answered. The workers exit
 * on ENODEV (connection gone: unmounted, or aborted). stop() unmounts (MNT_DETACH), gives the
 * workers a moment to see ENODEV, then aborts the connection (fusectl if mounted, else by waking
 * the workers with a signal so they close their descriptors), joins them and wipes everything.
 * When the last worker exits, a threadsafe function wakes the JS thread, which tears down (if
 * stop() has not) and resolves wait().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np, statx, O_DIRECT, pthread_kill */
#endif
#define NAPI_VERSION 8

#include "fuse_server.h"
#include "secure_mem.h"
#include "napi_util.h"
#include "xts_core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#if FUSE_KERNEL_VERSION != 7 || FUSE_KERNEL_MINOR_VERSION < 38
#error "needs <linux/fuse.h> for FUSE protocol 7.38 or later"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                   */

#define VF_MAX_IO (1u << 20)              /* max_write, max_read: 1 MiB */
#define VF_MAX_PAGES 256                  /* VF_MAX_IO / 4 KiB */
#define VF_REQ_BUF (VF_MAX_IO + 4096)     /* room for any request: headers + max_write of data */
/* Requests are read at this offset into a page-aligned buffer, so that a WRITE's data (after
   fuse_in_header and fuse_write_in) starts on a page boundary: aligned writes are encrypted in
   place and can go to an O_DIRECT container descriptor without a copy. */
#define VF_REQ_SKEW (4096 - sizeof(struct fuse_in_header) - sizeof(struct fuse_write_in))
#define VF_REQ_MEM (VF_REQ_SKEW + VF_REQ_BUF)
#define VF_MAX_THREADS 64
#define VF_DEFAULT_THREADS 8
#define VF_MIN_SECTOR 512
#define VF_MAX_SECTOR 65536
#define VF_STRIPES 1024                   /* striped write locks */
#define VF_LOCK_SHIFT 16                  /* one lock region: 64 KiB (or one sector if larger) */
#define VF_TTL 86400                      /* entry/attr timeout (s): the tree never changes */
#define VF_MAX_BACKGROUND 64
#define VF_CONGESTION 48
#define VF_INIT_TIMEOUT_S 30
#define VF_STOP_GRACE_MS 1000             /* after umount, before aborting the connection */

#define VF_ROOT_ID FUSE_ROOT_ID
#define VF_FILE_ID 2
#define VF_FILE_NAME "volume"

_Static_assert(VF_REQ_BUF >= FUSE_MIN_READ_BUFFER, "FUSE needs at least an 8 KiB read buffer");
_Static_assert(VF_REQ_BUF >= sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in) + VF_MAX_IO,
               "the kernel refuses reads into a buffer smaller than headers + max_write");

/* ------------------------------------------------------------------------------------------ */
/* Session                                                                                      */

typedef struct vf_session vf_session;

typedef struct {
  /* Per-worker counters, summed by stats(); relaxed atomics (only this worker writes them). */
  _Atomic uint64_t reads, writes, bytes_read, bytes_written, errors, last_io_ms;
} vf_counters;

typedef struct {
  vf_counters c; /* first: keeps each worker's hot counters on its own cache lines */
  vf_session *s;
  int fd;                /* /dev/fuse: the mounting descriptor (worker 0) or a clone */
  pthread_t tid;
  bool started;          /* JS thread */
  bool exited;           /* under s->life */
  vault_xts_ctx *xts;
  uint8_t *req_mem;      /* VF_REQ_MEM bytes, locked */
  uint8_t *req;          /* where requests are read: req_mem + VF_REQ_SKEW (see VF_REQ_SKEW) */
  uint8_t *data;         /* data_len bytes, locked: covering sectors of a read / RMW / zero range */
  size_t data_len;
} __attribute__((aligned(64))) vf_worker;

typedef enum { VF_RUNNING, VF_UNMOUNTED, VF_STOPPED, VF_ERROR } vf_reason;

struct vf_session {
  /* Configuration (immutable once the workers run). */
  char *mount_dir; /* realpath */
  int container_fd; /* our own dup, O_CLOEXEC */
  int io_fd;        /* what the data path uses: container_fd, or an O_DIRECT reopening of it */
  bool direct_io;   /* io_fd is O_DIRECT */
  uint64_t data_offset, data_size;
  uint32_t sector_size, sector_shift, lock_shift;
  uint64_t first_tweak, tweak_step;
  bool read_only, async_dio, parallel_writes;
  int nthreads;
  uint8_t *key; /* VAULT_XTS_KEY_LEN bytes of locked memory */
  uint32_t open_flags;
  uint32_t max_request; /* negotiated max_write and mount's max_read, <= VF_MAX_IO */

  /* FUSE connection. */
  int dev_fd;       /* the mounting descriptor */
  bool mounted;     /* JS thread: we mounted and have not seen it go */
  bool have_dev;
  unsigned dev_major, dev_minor; /* the mount's anonymous device: names it in mountinfo, fusectl */

  /* Data path. */
  pthread_mutex_t stripes[VF_STRIPES];
  pthread_mutex_t sync_lock;
  _Atomic uint64_t write_gen;  /* completed writes (incremented after their pwrite) */
  _Atomic uint64_t synced_gen; /* write_gen covered by the last successful fdatasync */
  pthread_mutex_t attr_lock;   /* times set through SETATTR */
  struct timespec times[2][3]; /* [root, file][atime, mtime, ctime] */
  struct timespec start;

  /* Lifecycle. */
  pthread_mutex_t life;
  pthread_cond_t life_cond;
  int running;         /* started workers not yet exited, plus serve()'s token while it starts them */
  bool init_done;
  int init_error;
  _Atomic bool stopping;
  bool failed;         /* a worker hit a fatal error */
  char message[256];   /* the first fatal error (wait()'s message) */
  char last_io_error[256]; /* the latest I/O error (stats().lastError) */
  vf_reason reason;    /* set when running reaches 0 */
  _Atomic bool torn_down;

  /* JS thread only. */
  bool mutexes_ready;
  napi_threadsafe_function tsfn;
  bool finished;        /* the tsfn callback ran: reason is final */
  napi_deferred *waiters;
  size_t nwaiters, capwaiters;
  int refs;             /* the External and the tsfn each hold one */
  bool cleanup_hook;    /* registered with napi_add_env_cleanup_hook */
  vf_session *live_prev, *live_next; /* in live_sessions while serving (see at_exit_unmount) */
  bool live;

  vf_worker workers[];
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void count_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Records an I/O failure seen while serving (a worker keeps serving). */
static void io_error(vf_worker *w, const char *what, int err) {
  vf_session *s = w->s;
  count_add(&w->c.errors, 1);
  pthread_mutex_lock(&s->life);
  snprintf(s->last_io_error, sizeof s->last_io_error, "%s: %s", what, strerror(err));
  pthread_mutex_unlock(&s->life);
}

/* Records a fatal failure of a worker (it exits). The first one is kept. */
static void fatal_error(vf_session *s, const char *what, int err) {
  pthread_mutex_lock(&s->life);
  if (!s->failed) {
    s->failed = true;
    snprintf(s->message, sizeof s->message, "%s: %s", what, strerror(err));
  }
  pthread_mutex_unlock(&s->life);
}

static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
    if (r > 0) {
      done += (size_t)r;
    } else if (r == 0) {
      return EIO; /* the container is shorter than its data area */
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pwrite(fd, p + done, n - done, (off_t)(off + done));
    if (r > 0) {
      done += (size_t)r;
    } else if (r == 0) {
      return EIO;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Sector locks                                                                                 */

/*
 * The data area is cut into lock regions of 2^lock_shift bytes (64 KiB, or one sector when
 * sectors are larger), and region r is guarded by stripe r % VF_STRIPES. A write locks the stripes
 * of every region it touches, in ascending stripe order and each once, so two writers can never
 * wait on each other in a cycle. A run of regions maps to a contiguous (possibly wrapping) run of
 * stripes: [a, b], or [0, b] then [a, VF_STRIPES) when it wraps, or all of them.
 */
typedef struct {
  unsigned a, b;
  bool wrap, all;
} vf_lockset;

static vf_lockset lock_range(vf_session *s, uint64_t off, uint64_t len) {
  vf_lockset l = {0, 0, false, false};
  uint64_t r0 = off >> s->lock_shift, r1 = (off + len - 1) >> s->lock_shift;
  if (r1 - r0 + 1 >= VF_STRIPES) {
    l.all = true;
    for (unsigned i = 0; i < VF_STRIPES; i++) pthread_mutex_lock(&s->stripes[i]);
    return l;
  }
  l.a = (unsigned)(r0 % VF_STRIPES);
  l.b = (unsigned)(r1 % VF_STRIPES);
  if (l.a <= l.b) {
    for (unsigned i = l.a; i <= l.b; i++) pthread_mutex_lock(&s->stripes[i]);
  } else {
    l.wrap = true;
    for (unsigned i = 0; i <= l.b; i++) pthread_mutex_lock(&s->stripes[i]);
    for (unsigned i = l.a; i < VF_STRIPES; i++) pthread_mutex_lock(&s->stripes[i]);
  }
  return l;
}

static void unlock_range(vf_session *s, vf_lockset l) {
  if (l.all) {
    for (unsigned i = 0; i < VF_STRIPES; i++) pthread_mutex_unlock(&s->stripes[i]);
  } else if (!l.wrap) {
    for (unsigned i = l.a; i <= l.b; i++) pthread_mutex_unlock(&s->stripes[i]);
  } else {
    for (unsigned i = 0; i <= l.b; i++) pthread_mutex_unlock(&s->stripes[i]);
    for (unsigned i = l.a; i < VF_STRIPES; i++) pthread_mutex_unlock(&s->stripes[i]);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Sector I/O                                                                                   */

static inline uint64_t tweak_of(const vf_session *s, uint64_t sector) {
  return s->first_tweak + sector * s->tweak_step; /* no overflow: checked in serve() */
}

/* Reads and decrypts sectors [first, first + n) into buf. 0 or an errno. */
static int read_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  int err = pread_full(s->io_fd, buf, bytes, s->data_offset + (first << s->sector_shift));
  if (err != 0) {
    io_error(w, "reading the container", err);
    return EIO; /* the cause stays in stats().lastError; see write_sectors */
  }
  if (vault_xts_run(w->xts, buf, bytes, s->sector_size, tweak_of(s, first), s->tweak_step, 0) != 0) {
    io_error(w, "XTS decryption", EIO);
    return EIO;
  }
  return 0;
}

/* Encrypts buf in place as sectors [first, first + n) and writes them. 0 or an errno. The caller
   holds the locks of the range. */
static int write_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n, bool encrypted) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  int err;
  if (!encrypted &&
      vault_xts_run(w->xts, buf, bytes, s->sector_size, tweak_of(s, first), s->tweak_step, 1) != 0) {
    io_error(w, "XTS encryption", EIO);
    return EIO;
  }
  err = pwrite_full(s->io_fd, buf, bytes, s->data_offset + (first << s->sector_shift));
  /* Counted even when it failed part-way: some of it may have reached the file. */
  atomic_fetch_add(&s->write_gen, 1);
  if (err != 0) {
    io_error(w, "writing the container", err);
    /* A block device has a fixed size: failing to store a sector is an I/O error, whatever the
       host said. Passing ENOSPC on would tell the filesystem inside that *it* is full (df inside
       shows free space), and the fallback engine already answers EIO. io_error() keeps the cause
       (stats().lastError). */
    return EIO;
  }
  return 0;
}

/*
 * Writes `len` plaintext bytes at data-area offset `off` (in range, len > 0). `src` NULL means
 * zeros. `src` may be encrypted in place when the write is sector-aligned (it is our request
 * buffer). Partial head/tail sectors are read-modify-written in w->data; len must then leave room:
 * the covering sectors are at most VF_MAX_IO + 2 sectors.
 */
static int write_range(vf_worker *w, uint8_t *src, uint64_t off, size_t len) {
  vf_session *s = w->s;
  uint64_t mask = s->sector_size - 1;
  uint64_t first = off >> s->sector_shift, last = (off + len - 1) >> s->sector_shift;
  uint64_t n = last - first + 1;
  bool head = (off & mask) != 0, tail = ((off + len) & mask) != 0;
  vf_lockset l;
  int err = 0;
  if (src != NULL && !head && !tail) {
    /* Whole sectors: encrypt outside the lock (the buffer is ours), lock only the write, so a
       concurrent RMW cannot put back stale data over it. */
    if (vault_xts_run(w->xts, src, len, s->sector_size, tweak_of(s, first), s->tweak_step, 1) != 0) {
      io_error(w, "XTS encryption", EIO);
      return EIO;
    }
    l = lock_range(s, off, len);
    err = write_sectors(w, src, first, n, true);
    unlock_range(s, l);
    return err;
  }
  l = lock_range(s, off, len);
  if (head) err = read_sectors(w, w->data, first, 1);
  if (err == 0 && tail && (last != first || !head))
    err = read_sectors(w, w->data + ((last - first) << s->sector_shift), last, 1);
  if (err == 0) {
    uint8_t *dst = w->data + (off & mask);
    if (src != NULL) {
      memcpy(dst, src, len);
    } else {
      memset(dst, 0, len);
    }
    err = write_sectors(w, w->data, first, n, false);
  }
  unlock_range(s, l);
  return err;
}

/* fdatasync unless every completed write is already covered by a successful one. */
static int sync_container(vf_session *s) {
  uint64_t want, gen;
  int err = 0;
  if (s->read_only) return 0;
  want = atomic_load(&s->write_gen);
  if (atomic_load(&s->synced_gen) >= want) return 0;
  pthread_mutex_lock(&s->sync_lock);
  /* A sync that ran while we waited for the lock may already cover us (group commit). */
  if (atomic_load(&s->synced_gen) < want) {
    gen = atomic_load(&s->write_gen); /* everything completed before this fdatasync starts */
    if (fdatasync(s->io_fd) != 0) {
      err = errno;
    } else {
      atomic_store(&s->synced_gen, gen);
    }
  }
  pthread_mutex_unlock(&s->sync_lock);
  return err;
}

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                      */

/* iov[0] is filled with the header here; iov[1..cnt) carry `len` bytes of payload. Returns 0 or
   the errno of a reply the kernel refused. */
static int reply_iov(vf_worker *w, uint64_t unique, int err, struct iovec *iov, int cnt, size_t len) {
  struct fuse_out_header out = {.len = (uint32_t)(sizeof out + len), .error = -err, .unique = unique};
  iov[0].iov_base = &out;
  iov[0].iov_len = sizeof out;
  for (;;) {
    if (writev(w->fd, iov, cnt) >= 0) return 0;
    if (errno == EINTR) continue;
    /* ENOENT: the request was interrupted meanwhile; ENODEV: the connection is gone (the next read
       says so). Neither is an error of ours. */
    if (errno == ENOENT || errno == ENODEV) return 0;
    io_error(w, "writing a FUSE reply", errno);
    return errno;
  }
}

static void reply_err(vf_worker *w, uint64_t unique, int err) {
  struct iovec iov[1];
  (void)reply_iov(w, unique, err, iov, 1, 0);
}

static int reply_buf_checked(vf_worker *w, uint64_t unique, const void *p, size_t len) {
  struct iovec iov[2] = {{NULL, 0}, {(void *)p, len}};
  return reply_iov(w, unique, 0, iov, len > 0 ? 2 : 1, len);
}

static void reply_buf(vf_worker *w, uint64_t unique, const void *p, size_t len) {
  (void)reply_buf_checked(w, unique, p, len);
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
  a->uid = 0;
  a->gid = 0;
  pthread_mutex_lock(&s->attr_lock);
  a->atime = (uint64_t)s->times[i][0].tv_sec;
  a->atimensec = (uint32_t)s->times[i][0].tv_nsec;
  a->mtime = (uint64_t)s->times[i][1].tv_sec;
  a->mtimensec = (uint32_t)s->times[i][1].tv_nsec;
  a->ctime = (uint64_t)s->times[i][2].tv_sec;
  a->ctimensec = (uint32_t)s->times[i][2].tv_nsec;
  pthread_mutex_unlock(&s->attr_lock);
}

static void reply_attr(vf_worker *w, uint64_t unique, uint64_t nodeid) {
  struct fuse_attr_out out;
  memset(&out, 0, sizeof out);
  out.attr_valid = VF_TTL;
  fill_attr(w->s, nodeid, &out.attr);
  reply_buf(w, unique, &out, sizeof out);
}

static bool known_node(uint64_t nodeid) { return nodeid == VF_ROOT_ID || nodeid == VF_FILE_ID; }

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                   */

static void op_init(vf_worker *w, uint64_t unique, const uint8_t *arg, size_t arglen) {
  vf_session *s = w->s;
  const struct fuse_init_in *in = (const void *)arg;
  struct fuse_init_out out;
  uint32_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS;
  int err = 0;
  if (s->async_dio) want |= FUSE_ASYNC_DIO;
  memset(&out, 0, sizeof out);
  if (arglen < offsetof(struct fuse_init_in, flags2) || in->major < 7) {
    err = EPROTO;
    reply_err(w, unique, EPROTO);
  } else {
    out.major = FUSE_KERNEL_VERSION;
    out.minor = in->major > 7 || in->minor > FUSE_KERNEL_MINOR_VERSION ? FUSE_KERNEL_MINOR_VERSION : in->minor;
    out.max_readahead = in->max_readahead;
    out.flags = in->flags & want;
    out.max_background = VF_MAX_BACKGROUND;
    out.congestion_threshold = VF_CONGESTION;
    out.max_write = s->max_request;
    out.time_gran = 1;
    out.max_pages = (uint16_t)(s->max_request / 4096);
    err = reply_buf_checked(w, unique, &out, out.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof out);
  }
  pthread_mutex_lock(&s->life);
  s->init_done = true;
  s->init_error = err;
  pthread_cond_broadcast(&s->life_cond);
  pthread_mutex_unlock(&s->life);
}

static void op_lookup(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen) {
  struct fuse_entry_out out;
  if (h->nodeid != VF_ROOT_ID) return reply_err(w, h->unique, h->nodeid == VF_FILE_ID ? ENOTDIR : ENOENT);
  if (arglen != sizeof VF_FILE_NAME || memcmp(arg, VF_FILE_NAME, sizeof VF_FILE_NAME) != 0)
    return reply_err(w, h->unique, ENOENT);
  memset(&out, 0, sizeof out);
  out.nodeid = VF_FILE_ID;
  out.generation = 1;
  out.entry_valid = VF_TTL;
  out.attr_valid = VF_TTL;
  fill_attr(w->s, VF_FILE_ID, &out.attr);
  reply_buf(w, h->unique, &out, sizeof out);
}

static bool time_from(struct timespec *dst, bool now, uint64_t sec, uint32_t nsec) {
  if (now) return clock_gettime(CLOCK_REALTIME, dst) == 0;
  dst->tv_sec = (time_t)sec;
  dst->tv_nsec = nsec < 1000000000u ? (long)nsec : 0;
  return true;
}

static void op_setattr(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen) {
  vf_session *s = w->s;
  const struct fuse_setattr_in *in = (const void *)arg;
  uint32_t v, cur_mode;
  int i;
  if (!known_node(h->nodeid)) return reply_err(w, h->unique, ENOENT);
  if (arglen < sizeof *in) return reply_err(w, h->unique, EINVAL);
  if (s->read_only) return reply_err(w, h->unique, EROFS);
  v = in->valid;
  i = h->nodeid == VF_ROOT_ID ? 0 : 1;
  cur_mode = i == 0 ? 0700u : 0600u;
  /* The shape never changes: a size other than the data area's, another mode or owner: EPERM.
     Setting what already is (the size some tools truncate to, the same mode) is accepted. */
  if ((v & FATTR_SIZE) && (i == 0 || in->size != s->data_size)) return reply_err(w, h->unique, EPERM);
  if ((v & FATTR_MODE) && (in->mode & 07777) != cur_mode) return reply_err(w, h->unique, EPERM);
  if (((v & FATTR_UID) && in->uid != 0) || ((v & FATTR_GID) && in->gid != 0))
    return reply_err(w, h->unique, EPERM);
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
  reply_attr(w, h->unique, h->nodeid);
}

static void op_open(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen, bool dir) {
  vf_session *s = w->s;
  const struct fuse_open_in *in = (const void *)arg;
  struct fuse_open_out out;
  if (!known_node(h->nodeid)) return reply_err(w, h->unique, ENOENT);
  if (arglen < sizeof *in) return reply_err(w, h->unique, EINVAL);
  if (dir && h->nodeid != VF_ROOT_ID) return reply_err(w, h->unique, ENOTDIR);
  if (!dir && h->nodeid != VF_FILE_ID) return reply_err(w, h->unique, EISDIR);
  if (!dir && s->read_only && (in->flags & O_ACCMODE) != O_RDONLY) return reply_err(w, h->unique, EROFS);
  memset(&out, 0, sizeof out);
  out.open_flags = dir ? FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR : s->open_flags;
  reply_buf(w, h->unique, &out, sizeof out);
}

static void op_readdir(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen) {
  static const struct {
    uint64_t ino;
    uint32_t type;
    const char *name;
  } ents[] = {{VF_ROOT_ID, 4 /* DT_DIR */, "."}, {VF_ROOT_ID, 4, ".."}, {VF_FILE_ID, 8 /* DT_REG */, VF_FILE_NAME}};
  const struct fuse_read_in *in = (const void *)arg;
  uint8_t buf[256];
  size_t used = 0, limit;
  if (h->nodeid != VF_ROOT_ID) return reply_err(w, h->unique, known_node(h->nodeid) ? ENOTDIR : ENOENT);
  if (arglen < sizeof *in) return reply_err(w, h->unique, EINVAL);
  limit = in->size < sizeof buf ? in->size : sizeof buf;
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
  reply_buf(w, h->unique, buf, used);
}

static void op_statfs(vf_worker *w, uint64_t unique) {
  struct fuse_statfs_out out;
  memset(&out, 0, sizeof out);
  out.st.blocks = w->s->data_size / 4096;
  out.st.bfree = 0;
  out.st.bavail = 0;
  out.st.files = 2;
  out.st.ffree = 0;
  out.st.bsize = 4096; /* also the loop device's discard granularity */
  out.st.namelen = 255;
  out.st.frsize = 4096;
  reply_buf(w, unique, &out, sizeof out);
}

static void op_read(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen) {
  vf_session *s = w->s;
  const struct fuse_read_in *in = (const void *)arg;
  uint64_t off, first, last;
  size_t len;
  int err;
  if (h->nodeid != VF_FILE_ID) return reply_err(w, h->unique, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (arglen < sizeof *in) return reply_err(w, h->unique, EINVAL);
  off = in->offset;
  len = in->size < VF_MAX_IO ? in->size : VF_MAX_IO; /* the kernel never asks for more */
  atomic_store_explicit(&w->c.last_io_ms, now_ms(), memory_order_relaxed);
  if (off >= s->data_size || len == 0) return reply_buf(w, h->unique, NULL, 0);
  if (len > s->data_size - off) len = (size_t)(s->data_size - off);
  first = off >> s->sector_shift;
  last = (off + len - 1) >> s->sector_shift;
  err = read_sectors(w, w->data, first, last - first + 1);
  if (err != 0) return reply_err(w, h->unique, err);
  count_add(&w->c.reads, 1);
  count_add(&w->c.bytes_read, len);
  reply_buf(w, h->unique, w->data + (off - (first << s->sector_shift)), len);
}

static void op_write(vf_worker *w, const struct fuse_in_header *h, uint8_t *arg, size_t arglen) {
  vf_session *s = w->s;
  const struct fuse_write_in *in = (const void *)arg;
  struct fuse_write_out out;
  uint64_t off;
  size_t len;
  int err;
  if (h->nodeid != VF_FILE_ID) return reply_err(w, h->unique, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (arglen < sizeof *in || arglen - sizeof *in < in->size || in->size > VF_MAX_IO)
    return reply_err(w, h->unique, EINVAL);
  if (s->read_only) return reply_err(w, h->unique, EROFS);
  off = in->offset;
  len = in->size;
  atomic_store_explicit(&w->c.last_io_ms, now_ms(), memory_order_relaxed);
  memset(&out, 0, sizeof out);
  if (len > 0) {
    /* A fixed-size file: starting at or past the end, no space; running past it, too big. */
    if (off >= s->data_size) return reply_err(w, h->unique, ENOSPC);
    if (len > s->data_size - off) return reply_err(w, h->unique, EFBIG);
    err = write_range(w, arg + sizeof *in, off, len);
    if (err != 0) return reply_err(w, h->unique, err);
  }
  count_add(&w->c.writes, 1);
  count_add(&w->c.bytes_written, len);
  out.size = (uint32_t)len;
  reply_buf(w, h->unique, &out, sizeof out);
}

static void op_fallocate(vf_worker *w, const struct fuse_in_header *h, const uint8_t *arg, size_t arglen) {
  vf_session *s = w->s;
  const struct fuse_fallocate_in *in = (const void *)arg;
  uint64_t off, end;
  uint32_t mode;
  int err = 0;
  if (h->nodeid != VF_FILE_ID) return reply_err(w, h->unique, known_node(h->nodeid) ? EISDIR : ENOENT);
  if (arglen < sizeof *in) return reply_err(w, h->unique, EINVAL);
  mode = in->mode;
  off = in->offset;
  if (in->length == 0 || __builtin_add_overflow(in->offset, in->length, &end)) return reply_err(w, h->unique, EINVAL);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    /* Preallocation: every byte of the data area already exists. Growing the file is not possible. */
    return reply_err(w, h->unique, mode == 0 && end > s->data_size ? EFBIG : 0);
  }
  if (mode != FALLOC_FL_ZERO_RANGE && mode != (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE) &&
      mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
    return reply_err(w, h->unique, EOPNOTSUPP);
  if (s->read_only) return reply_err(w, h->unique, EROFS);
  if (end > s->data_size) {
    if (!(mode & FALLOC_FL_KEEP_SIZE)) return reply_err(w, h->unique, EFBIG);
    end = s->data_size; /* KEEP_SIZE: nothing exists past the end to zero */
  }
  atomic_store_explicit(&w->c.last_io_ms, now_ms(), memory_order_relaxed);
  /* Encrypted zeros, a chunk of at most VF_MAX_IO bytes at a time (each under its own locks). A
     chunk ends on a VF_MAX_IO boundary of the data area, so its covering sectors fit w->data. */
  while (err == 0 && off < end) {
    uint64_t chunk_end = (off / VF_MAX_IO + 1) * VF_MAX_IO;
    if (chunk_end > end) chunk_end = end;
    err = write_range(w, NULL, off, (size_t)(chunk_end - off));
    off = chunk_end;
  }
  reply_err(w, h->unique, err);
}

/* Handles one request of n bytes in w->req. */
static void handle(vf_worker *w, size_t n) {
  vf_session *s = w->s;
  struct fuse_in_header *h = (struct fuse_in_header *)w->req;
  uint8_t *arg = w->req + sizeof *h;
  size_t arglen = n - sizeof *h;
  int err;
  if (h->len != n) {
    reply_err(w, h->unique, EIO);
    return;
  }
  switch (h->opcode) {
    case FUSE_INIT:
      op_init(w, h->unique, arg, arglen);
      break;
    case FUSE_LOOKUP:
      op_lookup(w, h, arg, arglen);
      break;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      break; /* no reply; our two inodes are never forgotten, and requests are short */
    case FUSE_GETATTR:
      if (!known_node(h->nodeid)) {
        reply_err(w, h->unique, ENOENT);
      } else {
        reply_attr(w, h->unique, h->nodeid);
      }
      break;
    case FUSE_SETATTR:
      op_setattr(w, h, arg, arglen);
      break;
    case FUSE_OPEN:
      op_open(w, h, arg, arglen, false);
      break;
    case FUSE_OPENDIR:
      op_open(w, h, arg, arglen, true);
      break;
    case FUSE_READDIR:
      op_readdir(w, h, arg, arglen);
      break;
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_DESTROY:
      reply_err(w, h->unique, 0);
      break;
    case FUSE_ACCESS:
      /* Only root reaches this mount (no allow_other); the kernel applies MS_RDONLY itself. */
      reply_err(w, h->unique, known_node(h->nodeid) ? 0 : ENOENT);
      break;
    case FUSE_STATFS:
      op_statfs(w, h->unique);
      break;
    case FUSE_READ:
      op_read(w, h, arg, arglen);
      break;
    case FUSE_WRITE:
      op_write(w, h, arg, arglen);
      break;
    case FUSE_FLUSH:
    case FUSE_FSYNC:
      err = sync_container(s);
      if (err != 0) io_error(w, "fdatasync of the container", err);
      reply_err(w, h->unique, err != 0 ? EIO : 0);
      break;
    case FUSE_FALLOCATE:
      op_fallocate(w, h, arg, arglen);
      break;
    default:
      reply_err(w, h->unique, ENOSYS);
      break;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Workers                                                                                      */

static int wake_signal; /* a real-time signal with a no-op handler: interrupts a worker's read() */

static void wake_handler(int sig) { (void)sig; }

/* JS thread, once per process. 0 if no free real-time signal was found (stop then relies on the
   fusectl abort file). */
static void install_wake_signal(void) {
  static bool done;
  if (done) return;
  done = true;
  for (int sig = SIGRTMIN + 4; sig <= SIGRTMAX - 4; sig++) {
    struct sigaction old, sa;
    if (sigaction(sig, NULL, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read() returns EINTR */
    if (sigaction(sig, &sa, NULL) == 0) {
      wake_signal = sig;
      return;
    }
  }
}

/*
 * Sessions that are serving, for at_exit_unmount(): process.exit() and fatal exceptions end the
 * process through exit(3) without running N-API finalizers or env cleanup hooks, and would leave a
 * dead FUSE mount behind. (The key needs no wipe then: the kernel zeroes freed pages before reuse.)
 */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static vf_session *live_sessions;
static atomic_bool exiting; /* set by at_exit_unmount: workers then leave N-API alone */

static void unmount_if_ours(vf_session *s);

static void at_exit_unmount(void) {
  atomic_store(&exiting, true);
  pthread_mutex_lock(&live_lock);
  for (vf_session *s = live_sessions; s != NULL; s = s->live_next) {
    atomic_store(&s->stopping, true);
    unmount_if_ours(s);
  }
  pthread_mutex_unlock(&live_lock);
}

static void live_add(vf_session *s) {
  static bool registered;
  pthread_mutex_lock(&live_lock);
  if (!registered) registered = atexit(at_exit_unmount) == 0;
  s->live_prev = NULL;
  s->live_next = live_sessions;
  if (live_sessions != NULL) live_sessions->live_prev = s;
  live_sessions = s;
  s->live = true;
  pthread_mutex_unlock(&live_lock);
}

static void live_remove(vf_session *s) {
  pthread_mutex_lock(&live_lock);
  if (s->live) {
    if (s->live_prev != NULL) {
      s->live_prev->live_next = s->live_next;
    } else {
      live_sessions = s->live_next;
    }
    if (s->live_next != NULL) s->live_next->live_prev = s->live_prev;
    s->live = false;
  }
  pthread_mutex_unlock(&live_lock);
}

/* Drops one count of s->running; the last one out wakes the JS thread. */
static void running_put(vf_session *s) {
  bool last;
  pthread_mutex_lock(&s->life);
  last = --s->running == 0;
  if (last) {
    s->reason = s->failed ? VF_ERROR : atomic_load(&s->stopping) ? VF_STOPPED : VF_UNMOUNTED;
  }
  pthread_cond_broadcast(&s->life_cond);
  pthread_mutex_unlock(&s->life);
  if (last && !atomic_load(&exiting)) {
    /* Queue the JS-side callback, then drop the only thread count: the tsfn finalizes after it. */
    (void)napi_call_threadsafe_function(s->tsfn, NULL, napi_tsfn_nonblocking);
    (void)napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  }
}

static void *worker_main(void *arg) {
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
      fatal_error(s, "reading /dev/fuse", e);
      break;
    }
    if ((size_t)n < sizeof(struct fuse_in_header)) {
      fatal_error(s, "reading /dev/fuse: short request", EPROTO);
      break;
    }
    handle(w, (size_t)n);
  }
  pthread_mutex_lock(&s->life);
  w->exited = true;
  pthread_mutex_unlock(&s->life);
  running_put(s);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Mount bookkeeping                                                                            */

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
static void unmount_if_ours(vf_session *s) {
  unsigned maj, min;
  bool vault;
  if (!s->mounted) return;
  if (!top_mount(s->mount_dir, &maj, &min, &vault)) {
    s->mounted = false; /* gone: unmounted from outside */
    return;
  }
  if (!vault || (s->have_dev && (maj != s->dev_major || min != s->dev_minor)))
    return; /* covered by another mount: not ours to unmount by path */
  if (umount2(s->mount_dir, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT)
    s->mounted = false;
}

/* Aborts the connection through the fusectl filesystem when it is mounted. */
static void abort_connection(vf_session *s) {
  char path[96];
  int fd;
  if (!s->have_dev) return;
  /* The directory is named after the kernel's dev_t: major << 20 | minor. */
  snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", (s->dev_major << 20) | s->dev_minor);
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, "1", 1) < 0) { /* nothing else to try here; the workers are signalled next */
  }
  close(fd);
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown                                                                                     */

static void add_ms(struct timespec *t, long ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000L;
  }
}

/* Waits until no worker runs, at most `ms` (negative: forever). Returns true if none runs. */
static bool wait_workers(vf_session *s, long ms) {
  struct timespec until;
  bool done;
  clock_gettime(CLOCK_MONOTONIC, &until);
  add_ms(&until, ms < 0 ? 0 : ms);
  pthread_mutex_lock(&s->life);
  while (s->running > 0) {
    if (ms < 0) {
      pthread_cond_wait(&s->life_cond, &s->life);
    } else if (pthread_cond_timedwait(&s->life_cond, &s->life, &until) == ETIMEDOUT) {
      break;
    }
  }
  done = s->running == 0;
  pthread_mutex_unlock(&s->life);
  return done;
}

/* Makes every worker exit (they must already see s->stopping). */
static void kick_workers(vf_session *s) {
  while (!wait_workers(s, 20)) {
    pthread_mutex_lock(&s->life);
    for (int i = 0; i < s->nthreads; i++) {
      vf_worker *w = &s->workers[i];
      if (w->started && !w->exited && wake_signal != 0) pthread_kill(w->tid, wake_signal);
    }
    pthread_mutex_unlock(&s->life);
  }
}

/*
 * Ends the session: unmount, stop and join the workers, final sync, close the descriptors (which
 * aborts the connection if it still lives), wipe the key and the buffers. Idempotent; JS thread.
 * The workers may already have exited by themselves (unmounted from outside).
 */
static void teardown(vf_session *s) {
  if (atomic_load(&s->torn_down)) return;
  live_remove(s);
  atomic_store(&s->stopping, true);
  unmount_if_ours(s);
  if (!wait_workers(s, VF_STOP_GRACE_MS)) {
    /* Still held open (a loop device attached to `volume`): abort the connection. */
    abort_connection(s);
    kick_workers(s);
  }
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    if (w->started) pthread_join(w->tid, NULL);
    w->started = false;
  }
  if (s->container_fd >= 0) {
    if (!s->read_only && atomic_load(&s->synced_gen) < atomic_load(&s->write_gen)) (void)fdatasync(s->container_fd);
    if (s->io_fd != s->container_fd) close(s->io_fd);
    close(s->container_fd);
    s->container_fd = s->io_fd = -1;
  }
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    if (w->fd >= 0 && w->fd != s->dev_fd) close(w->fd);
    w->fd = -1;
    vault_xts_ctx_free(w->xts);
    w->xts = NULL;
    vault_secure_free(w->req_mem, VF_REQ_MEM);
    w->req_mem = w->req = NULL;
    vault_secure_free(w->data, w->data_len);
    w->data = NULL;
  }
  if (s->dev_fd >= 0) close(s->dev_fd);
  s->dev_fd = -1;
  /* The mount may have outlived the connection (covered by another mount): try once more. */
  unmount_if_ours(s);
  vault_secure_free(s->key, VAULT_XTS_KEY_LEN);
  s->key = NULL;
  atomic_store(&s->torn_down, true);
}

static void session_free(vf_session *s) {
  if (s->mutexes_ready) {
    for (int i = 0; i < VF_STRIPES; i++) pthread_mutex_destroy(&s->stripes[i]);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_mutex_destroy(&s->attr_lock);
    pthread_mutex_destroy(&s->life);
    pthread_cond_destroy(&s->life_cond);
  }
  free(s->waiters);
  free(s->mount_dir);
  free(s);
}

static void session_unref(vf_session *s) {
  if (--s->refs == 0) session_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* N-API helpers                                                                                */

/* vault_throw_* live in napi_util.c (shared with vault_native). */
#define ADDON_NAME "vault_fuse"
#define CHECK VAULT_CHECK

static const napi_type_tag SESSION_TAG = {0x7661756c74667573ULL, 0x6573657373696f6eULL};

/* Property `name` of `obj`; *present false when undefined. */
static bool get_prop(napi_env env, napi_value obj, const char *name, napi_value *v, bool *present) {
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, v) != napi_ok || napi_typeof(env, *v, &t) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_get_named_property");
    return false;
  }
  *present = t != napi_undefined;
  return true;
}

/* A required (or optional, with default) non-negative integer number <= max. */
static bool get_int_prop(napi_env env, napi_value obj, const char *name, bool required, double def, double max,
                         uint64_t *out) {
  napi_value v;
  bool present;
  double d;
  char msg[160];
  if (!get_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    if (required) {
      snprintf(msg, sizeof msg, "options.%s is required", name);
      vault_throw_type_error(env, msg);
      return false;
    }
    *out = (uint64_t)def;
    return true;
  }
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a number", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (!(d >= 0 && d <= max) || (double)(uint64_t)d != d) {
    snprintf(msg, sizeof msg, "options.%s must be an integer in [0, %.0f], got %g", name, max, d);
    vault_throw_range_error(env, msg);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *name, bool def, bool *out) {
  napi_value v;
  bool present;
  char msg[96];
  if (!get_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    *out = def;
    return true;
  }
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a boolean", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  return true;
}

/* A bigint in [0, 2^64) (a safe non-negative integer number is accepted too). */
static bool get_u64_prop(napi_env env, napi_value obj, const char *name, uint64_t def, uint64_t *out) {
  napi_value v;
  bool present, lossless = false;
  napi_valuetype t;
  char msg[96];
  if (!get_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    *out = def;
    return true;
  }
  if (napi_typeof(env, v, &t) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof");
    return false;
  }
  if (t == napi_number) return get_int_prop(env, obj, name, true, 0, 9007199254740991.0, out);
  if (t != napi_bigint || napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a bigint", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (!lossless) {
    snprintf(msg, sizeof msg, "options.%s must be in [0, 2^64)", name);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}

static bool get_string_prop(napi_env env, napi_value obj, const char *name, char *buf, size_t cap) {
  napi_value v;
  bool present;
  size_t len = 0;
  char msg[96];
  if (!get_prop(env, obj, name, &v, &present)) return false;
  if (!present || napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a string", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (len == 0 || len + 1 >= cap || strlen(buf) != len) {
    snprintf(msg, sizeof msg, "options.%s must be a non-empty path without NUL bytes", name);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}

static bool session_unwrap(napi_env env, napi_callback_info info, vf_session **out) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_get_cb_info");
    return false;
  }
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, argv[0], &SESSION_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &p) != napi_ok) {
    vault_throw_type_error(env, "expected a vault_fuse session");
    return false;
  }
  *out = p;
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* JS side of the lifecycle                                                                     */

static napi_value make_result(napi_env env, vf_session *s) {
  static const char *const names[] = {"running", "unmounted", "stopped", "error"};
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_string_utf8(env, names[s->reason], NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, obj, "reason", v) != napi_ok)
    return NULL;
  if (s->reason == VF_ERROR && (napi_create_string_utf8(env, s->message, NAPI_AUTO_LENGTH, &v) != napi_ok ||
                                napi_set_named_property(env, obj, "message", v) != napi_ok))
    return NULL;
  return obj;
}

/* JS thread: the last worker has exited. */
static void tsfn_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  vf_session *s = context;
  napi_value result;
  (void)js_cb;
  (void)data;
  if (env == NULL) return; /* the environment is going away */
  teardown(s);              /* no-op when stop() already did it */
  s->finished = true;
  result = make_result(env, s);
  for (size_t i = 0; i < s->nwaiters; i++) {
    if (result != NULL) {
      (void)napi_resolve_deferred(env, s->waiters[i], result);
    } else {
      napi_value e = NULL;
      napi_value m;
      if (napi_create_string_utf8(env, "vault_fuse: cannot build the result", NAPI_AUTO_LENGTH, &m) == napi_ok)
        (void)napi_create_error(env, NULL, m, &e);
      (void)napi_reject_deferred(env, s->waiters[i], e);
    }
  }
  s->nwaiters = 0;
}

/* The environment is going away (process exit, worker termination) while the session may still
   serve: unmount and wipe rather than leave a dead mount and the key behind. */
static void env_cleanup(void *arg) {
  vf_session *s = arg;
  s->cleanup_hook = false; /* a hook runs once */
  teardown(s);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  vf_session *s = data;
  (void)env;
  (void)hint;
  s->tsfn = NULL;
  session_unref(s);
}

static void session_finalize(napi_env env, void *data, void *hint) {
  vf_session *s = data;
  (void)hint;
  teardown(s); /* a dropped session stops serving */
  if (s->cleanup_hook) {
    s->cleanup_hook = false;
    (void)napi_remove_env_cleanup_hook(env, env_cleanup, s);
  }
  session_unref(s);
}

/* ------------------------------------------------------------------------------------------ */
/* serve(opts): session                                                                         */

/*
 * Reopens the container with O_DIRECT when its filesystem or device allows our I/O pattern
 * (statx STATX_DIOALIGN: every sector offset and length, and our page-aligned buffers, meet its
 * alignment). Then the host page cache holds no second copy of the volume (as with dm-crypt), the
 * loop device's direct I/O reaches the disk, and writes skip a copy. Falls back to the buffered
 * descriptor otherwise. The flock stays on the original open file description, which we keep.
 */
static bool open_direct(vf_session *s) {
  struct statx stx;
  struct stat a, b;
  char path[64];
  int fd;
  if (statx(s->container_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 || !(stx.stx_mask & STATX_DIOALIGN))
    return false;
  if (stx.stx_dio_offset_align == 0 || stx.stx_dio_mem_align == 0 || stx.stx_dio_mem_align > 4096 ||
      s->data_offset % stx.stx_dio_offset_align != 0 || s->sector_size % stx.stx_dio_offset_align != 0)
    return false;
  snprintf(path, sizeof path, "/proc/self/fd/%d", s->container_fd);
  fd = open(path, (s->read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return false;
  if (fstat(fd, &a) != 0 || fstat(s->container_fd, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    close(fd);
    return false;
  }
  s->io_fd = fd;
  return true;
}

static napi_value fail_errno(napi_env env, const char *syscall, const char *what, int err) {
  vault_throw_errno(env, syscall, what, err);
  return NULL;
}

static napi_value serve(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ext, res_name;
  napi_valuetype t;
  char dir_arg[PATH_MAX], opts[160], what[PATH_MAX + 64];
  uint64_t container_fd, key_fd, data_offset, data_size, sector_size, threads, first_tweak, tweak_step, last;
  uint64_t max_request;
  bool read_only, async_dio, parallel, direct;
  vf_session *s = NULL;
  struct stat st;
  int err, fl;
  size_t got;
  sigset_t all, old;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object) {
    vault_throw_type_error(env, "serve(options): options must be an object");
    return NULL;
  }
  if (!get_string_prop(env, argv[0], "mountDir", dir_arg, sizeof dir_arg) ||
      !get_int_prop(env, argv[0], "containerFd", true, 0, INT32_MAX, &container_fd) ||
      !get_int_prop(env, argv[0], "keyFd", true, 0, INT32_MAX, &key_fd) ||
      !get_int_prop(env, argv[0], "dataOffset", true, 0, 9007199254740991.0, &data_offset) ||
      !get_int_prop(env, argv[0], "dataSize", true, 0, 9007199254740991.0, &data_size) ||
      !get_int_prop(env, argv[0], "sectorSize", true, 0, VF_MAX_SECTOR, &sector_size) ||
      !get_u64_prop(env, argv[0], "firstTweak", 0, &first_tweak) ||
      !get_u64_prop(env, argv[0], "tweakStep", 1, &tweak_step) ||
      !get_bool_prop(env, argv[0], "readOnly", false, &read_only) ||
      !get_int_prop(env, argv[0], "threads", false, VF_DEFAULT_THREADS, VF_MAX_THREADS, &threads) ||
      !get_bool_prop(env, argv[0], "asyncDio", true, &async_dio) ||
      !get_bool_prop(env, argv[0], "parallelDirectWrites", true, &parallel) ||
      !get_bool_prop(env, argv[0], "directIo", true, &direct) ||
      !get_int_prop(env, argv[0], "maxRequest", false, VF_MAX_IO, VF_MAX_IO, &max_request))
    return NULL;
  if (sector_size < VF_MIN_SECTOR || (sector_size & (sector_size - 1)) != 0) {
    vault_throw_range_error(env, "options.sectorSize must be a power of two in [512, 65536]");
    return NULL;
  }
  if (data_size == 0 || data_size % sector_size != 0) {
    vault_throw_range_error(env, "options.dataSize must be a positive multiple of sectorSize");
    return NULL;
  }
  if (data_offset + data_size > 9007199254740991.0) {
    vault_throw_range_error(env, "options.dataOffset + dataSize must stay below 2^53");
    return NULL;
  }
  if (max_request < 65536 || (max_request & (max_request - 1)) != 0) {
    vault_throw_range_error(env, "options.maxRequest must be a power of two in [65536, 1048576]");
    return NULL;
  }
  if (threads < 1) {
    vault_throw_range_error(env, "options.threads must be in [1, 64]");
    return NULL;
  }
  if (__builtin_mul_overflow(data_size / sector_size - 1, tweak_step, &last) ||
      __builtin_add_overflow(last, first_tweak, &last)) {
    vault_throw_range_error(env, "firstTweak + (sectors - 1) * tweakStep exceeds 2^64 - 1");
    return NULL;
  }
  /* The container: readable (and writable unless read-only), and holding the whole data area. */
  if (fstat((int)container_fd, &st) != 0) return fail_errno(env, "fstat", "options.containerFd", errno);
  fl = fcntl((int)container_fd, F_GETFL);
  if (fl < 0) return fail_errno(env, "fcntl", "options.containerFd", errno);
  if ((fl & O_ACCMODE) == O_WRONLY || (!read_only && (fl & O_ACCMODE) != O_RDWR))
    return fail_errno(env, "fcntl", "options.containerFd is not open for reading and writing", EBADF);
  /* Only a regular file or a block device can be a container, and either must hold the whole data
     area: a device's size comes from BLKGETSIZE64, since st_size is 0 for devices. Anything else
     (a character device, a FIFO, a socket) is refused before a byte is read or written. */
  uint64_t container_size = 0;
  if (S_ISREG(st.st_mode))
    container_size = (uint64_t)st.st_size;
  else if (!S_ISBLK(st.st_mode))
    return fail_errno(env, "fstat", "options.containerFd is not a regular file or block device", EINVAL);
  else if (ioctl((int)container_fd, BLKGETSIZE64, &container_size) != 0)
    return fail_errno(env, "ioctl(BLKGETSIZE64)", "options.containerFd", errno);
  if (container_size < data_offset + data_size) {
    vault_throw_error(env, "ERR_VAULT_CONTAINER_SHORT", "the container is shorter than dataOffset + dataSize");
    return NULL;
  }

  /* Cache-line aligned, so that each worker's counters sit on lines of their own. */
  if (posix_memalign((void **)&s, 64, sizeof *s + (size_t)threads * sizeof(vf_worker)) != 0)
    return fail_errno(env, "posix_memalign", "serve", ENOMEM);
  memset(s, 0, sizeof *s + (size_t)threads * sizeof(vf_worker));
  s->container_fd = s->io_fd = -1;
  s->dev_fd = -1;
  s->nthreads = (int)threads;
  s->refs = 1; /* the External, once it exists; the tsfn adds one */
  s->data_offset = data_offset;
  s->data_size = data_size;
  s->sector_size = (uint32_t)sector_size;
  s->sector_shift = (uint32_t)__builtin_ctzll(sector_size);
  s->lock_shift = s->sector_shift > VF_LOCK_SHIFT ? s->sector_shift : VF_LOCK_SHIFT;
  s->first_tweak = first_tweak;
  s->tweak_step = tweak_step;
  s->read_only = read_only;
  s->async_dio = async_dio;
  s->parallel_writes = parallel;
  s->max_request = (uint32_t)max_request;
  s->open_flags = FOPEN_DIRECT_IO | (parallel ? FOPEN_PARALLEL_DIRECT_WRITES : 0);
  s->reason = VF_RUNNING;
  for (int i = 0; i < s->nthreads; i++) s->workers[i].fd = -1;
  for (int i = 0; i < VF_STRIPES; i++) pthread_mutex_init(&s->stripes[i], NULL);
  pthread_mutex_init(&s->sync_lock, NULL);
  pthread_mutex_init(&s->attr_lock, NULL);
  pthread_mutex_init(&s->life, NULL);
  {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->life_cond, &ca);
    pthread_condattr_destroy(&ca);
  }
  s->mutexes_ready = true;
  clock_gettime(CLOCK_REALTIME, &s->start);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) s->times[i][j] = s->start;

  s->mount_dir = realpath(dir_arg, NULL);
  if (s->mount_dir == NULL) {
    snprintf(what, sizeof what, "mount point %s", dir_arg);
    vault_throw_errno(env, "realpath", what, errno);
    goto fail;
  }
  err = stat(s->mount_dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (err != 0) {
    snprintf(what, sizeof what, "mount point %s", s->mount_dir);
    vault_throw_errno(env, "stat", what, err);
    goto fail;
  }
  s->container_fd = fcntl((int)container_fd, F_DUPFD_CLOEXEC, 3);
  if (s->container_fd < 0) {
    vault_throw_errno(env, "fcntl", "duplicating options.containerFd", errno);
    goto fail;
  }
  s->io_fd = s->container_fd;
  if (direct) s->direct_io = open_direct(s);

  /* The key: straight from the pipe into locked pages. */
  s->key = vault_secure_alloc(VAULT_XTS_KEY_LEN, &err);
  if (s->key == NULL) {
    vault_throw_errno(env, "mmap/mlock", "cannot allocate locked memory for the key", err);
    goto fail;
  }
  err = vault_secure_read_fd((int)key_fd, s->key, VAULT_XTS_KEY_LEN, &got);
  if (err == -1) {
    snprintf(what, sizeof what, "reading the key from fd %d: end of file after %zu of %d bytes", (int)key_fd, got,
             VAULT_XTS_KEY_LEN);
    vault_throw_error(env, "ERR_VAULT_KEY_SHORT_READ", what);
    goto fail;
  } else if (err != 0) {
    snprintf(what, sizeof what, "reading the key from fd %d", (int)key_fd);
    vault_throw_errno(env, "read", what, err);
    goto fail;
  }
  if (CRYPTO_memcmp(s->key, s->key + VAULT_XTS_KEY_LEN / 2, VAULT_XTS_KEY_LEN / 2) == 0) {
    vault_throw_error(env, "ERR_VAULT_XTS_EQUAL_HALVES", "invalid XTS-AES-256 key: its two 32-byte halves are equal");
    goto fail;
  }

  /* Per worker: a keyed XTS context and two locked buffers. */
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    w->s = s;
    w->data_len = VF_MAX_IO + 2 * (size_t)sector_size;
    w->req = NULL;
    atomic_store(&w->c.last_io_ms, now_ms());
    w->xts = vault_xts_ctx_new(s->key);
    if (w->xts == NULL) {
      snprintf(what, sizeof what, "cannot set up an XTS-AES-256 context: %s", vault_xts_error());
      vault_throw_error(env, "ERR_VAULT_OPENSSL", what);
      goto fail;
    }
    w->req_mem = vault_secure_alloc(VF_REQ_MEM, &err);
    if (w->req_mem != NULL) w->data = vault_secure_alloc(w->data_len, &err);
    if (w->req_mem == NULL || w->data == NULL) {
      vault_throw_errno(env, "mmap/mlock", "cannot allocate locked I/O buffers", err);
      goto fail;
    }
    w->req = w->req_mem + VF_REQ_SKEW;
  }
  /* The raw key is in locked pages; the expanded schedules OpenSSL just made are on its heap. */
  {
    size_t spans = 0;
    err = vault_lock_key_copies(s->key, VAULT_XTS_KEY_LEN, &spans);
    if (err != 0) {
      vault_throw_errno(env, "mlock", "cannot lock the memory holding the AES key schedules", err);
      goto fail;
    }
  }

  install_wake_signal();
  s->dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (s->dev_fd < 0) {
    vault_throw_errno(env, "open", "/dev/fuse", errno);
    goto fail;
  }

  if (napi_create_string_utf8(env, "vault:fuse", NAPI_AUTO_LENGTH, &res_name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, res_name, 0, 1, s, tsfn_finalize, s, tsfn_call_js,
                                      &s->tsfn) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_threadsafe_function");
    goto fail;
  }
  s->refs++;
  s->running = 1; /* serve()'s token: the tsfn fires only once this and every worker are gone */

  snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,max_read=%u", s->dev_fd, s->max_request);
  if (mount("vault", s->mount_dir, "fuse.vault", MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0), opts) != 0) {
    snprintf(what, sizeof what, "mounting FUSE on %s", s->mount_dir);
    vault_throw_errno(env, "mount", what, errno);
    goto fail_running;
  }
  s->mounted = true;
  live_add(s);
  {
    bool vault = false;
    s->have_dev = top_mount(s->mount_dir, &s->dev_major, &s->dev_minor, &vault) && vault;
  }

  /* Descriptors: worker 0 reads from the mounting one, the others from clones of it. */
  s->workers[0].fd = s->dev_fd;
  for (int i = 1; i < s->nthreads; i++) {
    uint32_t master = (uint32_t)s->dev_fd;
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      vault_throw_errno(env, "open", "/dev/fuse (clone)", errno);
      goto fail_running;
    }
    if (ioctl(fd, FUSE_DEV_IOC_CLONE, &master) != 0) {
      vault_throw_errno(env, "ioctl", "FUSE_DEV_IOC_CLONE", errno);
      close(fd);
      goto fail_running;
    }
    s->workers[i].fd = fd;
  }

  /* Workers block every signal but the wake-up one: the JS thread keeps handling SIGINT etc. */
  sigfillset(&all);
  if (wake_signal != 0) sigdelset(&all, wake_signal);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    pthread_mutex_lock(&s->life);
    s->running++;
    pthread_mutex_unlock(&s->life);
    err = pthread_create(&w->tid, NULL, worker_main, w);
    if (err != 0) {
      pthread_mutex_lock(&s->life);
      s->running--;
      pthread_mutex_unlock(&s->life);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      vault_throw_errno(env, "pthread_create", "starting FUSE workers", err);
      goto fail_running;
    }
    w->started = true;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  /* Wait until the kernel's INIT has been answered (or every worker has died). */
  {
    struct timespec until;
    bool ok;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += VF_INIT_TIMEOUT_S;
    pthread_mutex_lock(&s->life);
    while (!s->init_done && s->running > 1) {
      if (pthread_cond_timedwait(&s->life_cond, &s->life, &until) == ETIMEDOUT) break;
    }
    ok = s->init_done && s->init_error == 0;
    err = s->init_done ? s->init_error : s->failed ? EIO : ETIMEDOUT;
    snprintf(what, sizeof what, "FUSE handshake on %s%s%s", s->mount_dir, s->failed ? ": " : "",
             s->failed ? s->message : "");
    pthread_mutex_unlock(&s->life);
    if (!ok) {
      vault_throw_errno(env, "read", what, err);
      goto fail_running;
    }
  }
  running_put(s); /* drop serve()'s token */

  if (napi_create_external(env, s, session_finalize, NULL, &ext) != napi_ok ||
      napi_type_tag_object(env, ext, &SESSION_TAG) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_external");
    /* Without an External, nothing will call stop(): do it now. */
    teardown(s);
    session_unref(s);
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, env_cleanup, s) == napi_ok) s->cleanup_hook = true;
  return ext;

fail_running:
  /* Drop serve()'s token first (teardown waits for the running count to reach 0), then unmount,
     stop whatever started and wipe. The last count out releases the tsfn, whose finalizer drops
     the other reference and frees the session. */
  running_put(s);
  teardown(s);
  session_unref(s);
  return NULL;
fail:
  teardown(s);
  session_unref(s);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* wait / stop / stats                                                                          */

static napi_value wait_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  napi_value promise, result;
  napi_deferred d;
  if (!session_unwrap(env, info, &s)) return NULL;
  CHECK(napi_create_promise(env, &d, &promise));
  if (s->finished) {
    result = make_result(env, s);
    if (result == NULL) {
      vault_throw_napi_failure(env, ADDON_NAME, "make_result");
      return NULL;
    }
    CHECK(napi_resolve_deferred(env, d, result));
    return promise;
  }
  if (s->nwaiters == s->capwaiters) {
    size_t cap = s->capwaiters ? s->capwaiters * 2 : 4;
    napi_deferred *p = realloc(s->waiters, cap * sizeof *p);
    if (p == NULL) {
      vault_throw_errno(env, "realloc", "wait", ENOMEM);
      return NULL;
    }
    s->waiters = p;
    s->capwaiters = cap;
  }
  s->waiters[s->nwaiters++] = d;
  return promise;
}

static napi_value stop_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  if (!session_unwrap(env, info, &s)) return NULL;
  teardown(s);
  return NULL;
}

static bool set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok;
}

static napi_value stats_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  napi_value obj, str;
  uint64_t reads = 0, writes = 0, br = 0, bw = 0, errors = 0, last = 0;
  char last_error[256];
  if (!session_unwrap(env, info, &s)) return NULL;
  for (int i = 0; i < s->nthreads; i++) {
    vf_counters *c = &s->workers[i].c;
    uint64_t l = atomic_load_explicit(&c->last_io_ms, memory_order_relaxed);
    reads += atomic_load_explicit(&c->reads, memory_order_relaxed);
    writes += atomic_load_explicit(&c->writes, memory_order_relaxed);
    br += atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
    bw += atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
    errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
    if (l > last) last = l;
  }
  pthread_mutex_lock(&s->life);
  memcpy(last_error, s->last_io_error, sizeof last_error);
  pthread_mutex_unlock(&s->life);
  CHECK(napi_create_object(env, &obj));
  if (!set_num(env, obj, "lastIoMs", (double)last) || !set_num(env, obj, "reads", (double)reads) ||
      !set_num(env, obj, "writes", (double)writes) || !set_num(env, obj, "bytesRead", (double)br) ||
      !set_num(env, obj, "bytesWritten", (double)bw) || !set_num(env, obj, "errors", (double)errors)) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_set_named_property");
    return NULL;
  }
  {
    napi_value b;
    CHECK(napi_get_boolean(env, s->direct_io, &b));
    CHECK(napi_set_named_property(env, obj, "directIo", b));
  }
  if (last_error[0] != '\0') {
    CHECK(napi_create_string_utf8(env, last_error, NAPI_AUTO_LENGTH, &str));
    CHECK(napi_set_named_property(env, obj, "lastError", str));
  }
  return obj;
}

/* ------------------------------------------------------------------------------------------ */

napi_value vault_fuse_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"serve", NULL, serve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wait", NULL, wait_session, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stop", NULL, stop_session, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, stats_session, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
